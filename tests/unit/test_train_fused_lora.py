"""`train.fused_lora` must give PEFT's numbers — outputs and every LoRA gradient — faster."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import torch


def _peft_pair(tiny_model_dir: Path, **lora: Any) -> tuple[Any, Any]:
    """The same PEFT model twice (LoRA B not zero, so the LoRA path counts); the second fused."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from ollama_tune.train.fused_lora import fuse_lora_layers

    torch.manual_seed(1)
    base = AutoModelForCausalLM.from_pretrained(str(tiny_model_dir))
    cfg = LoraConfig(
        r=4, lora_alpha=8, target_modules="all-linear", init_lora_weights=False, **lora
    )
    reference = get_peft_model(base, cfg).train()
    fused = copy.deepcopy(reference)
    # 2 layers × q, k, v, o, gate, up, down (the tied LM head is not a LoRA target).
    assert fuse_lora_layers(fused) == 14
    return reference, fused


def _loss_and_grads(model: Any, ids: torch.Tensor, autocast: bool) -> tuple[Any, list[Any]]:
    model.zero_grad()
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
        logits = model(input_ids=ids, use_cache=False).logits
    loss = torch.nn.functional.cross_entropy(logits[0, :-1].float(), ids[0, 1:])
    loss.backward()
    grads = [p.grad.clone() for p in model.parameters() if p.requires_grad]
    return logits.detach().float(), grads


def _spy(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    from ollama_tune.train import fused_lora

    calls: list[int] = []
    real = fused_lora._LoraLinearFn.apply
    monkeypatch.setattr(fused_lora._LoraLinearFn, "apply", lambda *a: calls.append(1) or real(*a))
    return calls


def _worst(got: list[Any], want: list[Any]) -> float:
    """Largest error of any gradient, relative to that gradient's largest entry."""
    return max(float((g - w).abs().max() / w.abs().max()) for g, w in zip(got, want, strict=True))


IDS = torch.tensor([[5, 90, 311, 7, 2048, 13, 77, 400]])


def test_fused_lora_gives_peft_outputs_and_gradients_in_fp32(
    tiny_model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    reference, fused = _peft_pair(tiny_model_dir)
    calls = _spy(monkeypatch)
    want_logits, want_grads = _loss_and_grads(reference, IDS, autocast=False)
    assert not calls
    got_logits, got_grads = _loss_and_grads(fused, IDS, autocast=False)
    assert len(calls) == 14  # every LoRA layer took the fused path
    assert torch.allclose(got_logits, want_logits, atol=1e-5)
    assert len(got_grads) == len(want_grads) == 28
    assert _worst(got_grads, want_grads) < 1e-4


def test_under_bf16_autocast_peft_ops_share_one_input_cast(
    tiny_model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ollama_tune.train import fused_lora

    reference, fused = _peft_pair(tiny_model_dir)
    calls = _spy(monkeypatch)
    casts: list[tuple[torch.Tensor, torch.Tensor]] = []
    real = fused_lora._shared_cast
    monkeypatch.setattr(
        fused_lora, "_shared_cast", lambda x, d: casts.append((x, real(x, d))) or casts[-1][1]
    )
    _, exact = _loss_and_grads(reference, IDS, autocast=False)
    want_logits, want = _loss_and_grads(reference, IDS, autocast=True)
    assert not casts
    got_logits, got = _loss_and_grads(fused, IDS, autocast=True)
    assert not calls  # the single node stays out of autocast
    assert len(casts) == 14
    # Per layer one cast for q, k, v and one for gate, up; o and down already get bf16.
    fresh = {id(out) for x, out in casts if out is not x}
    assert len(fresh) == 4
    assert torch.equal(got_logits, want_logits)  # the same ops on the same bf16 values
    # Gradients: only the sum of q/k/v input gradients is now taken in bf16.
    # Here: 0.062 vs PEFT's 0.064 from fp32 (a hidden size of 16 in bf16 is coarse).
    assert _worst(got, exact) < 1.2 * _worst(want, exact)


def test_fused_lora_leaves_dropout_disabled_and_merged_adapters_to_peft(
    tiny_model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = _spy(monkeypatch)
    ids = torch.tensor([[5, 90, 311, 7]])
    reference, fused = _peft_pair(tiny_model_dir, lora_dropout=0.5)
    fused(input_ids=ids)  # dropout draws a mask per input: PEFT's path, not ours
    assert not calls

    reference, fused = _peft_pair(tiny_model_dir)
    reference.eval(), fused.eval()
    with torch.no_grad():
        with fused.disable_adapter():
            off = fused(input_ids=ids).logits
        assert not calls
        fused.merge_adapter()
        merged = fused(input_ids=ids).logits
        assert not calls
        fused.unmerge_adapter()
        on = fused(input_ids=ids).logits
        assert len(calls) == 14
        want = reference(input_ids=ids).logits
    assert torch.allclose(on, want, atol=1e-5) and torch.allclose(merged, want, atol=1e-4)
    assert not torch.allclose(off, want, atol=1e-3)  # the adapter really was off


def test_frozen_base_kept_in_bf16_gives_autocasts_bits_without_the_fp32_copy(
    tiny_model_dir: Path,
) -> None:
    from ollama_tune.train.fused_lora import frozen_base_dtype, store_frozen_base

    _, fused = _peft_pair(tiny_model_dir)
    stored = copy.deepcopy(fused)
    assert frozen_base_dtype(stored) == "float32"
    assert store_frozen_base(stored, torch.bfloat16) == 14
    assert store_frozen_base(stored, torch.bfloat16) == 0  # already stored
    assert frozen_base_dtype(stored) == "bfloat16"
    trained = [p.dtype for p in stored.parameters() if p.requires_grad]
    assert len(trained) == 28 and set(trained) == {torch.float32}  # LoRA A/B stay fp32
    want_logits, want = _loss_and_grads(fused, IDS, autocast=True)
    got_logits, got = _loss_and_grads(stored, IDS, autocast=True)
    assert torch.equal(got_logits, want_logits)
    assert all(torch.equal(g, w) for g, w in zip(got, want, strict=True))
    # Outside autocast (the validation answers) the layers compute as under it, in fp32 out.
    with torch.no_grad():
        plain = stored(input_ids=IDS).logits
    assert plain.dtype == torch.float32
    assert torch.allclose(plain, want_logits, atol=1e-2)
