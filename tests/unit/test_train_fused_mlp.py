"""`train.fused_mlp` must give the model's own numbers — outputs and every gradient — while
keeping less for the backward pass; anything it does not cover runs the model's own forward."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import torch

IDS = torch.tensor([[5, 90, 31, 7, 200, 13, 77, 40, 3, 250, 1, 64]])


def _tiny(kind: str = "llama", **extra: Any) -> Any:
    """A 2-layer random model of one transformers family (vocabulary 256)."""
    import transformers

    config_cls, model_cls = {
        "llama": ("LlamaConfig", "LlamaForCausalLM"),
        "qwen2": ("Qwen2Config", "Qwen2ForCausalLM"),
        "mistral": ("MistralConfig", "MistralForCausalLM"),
        "gemma": ("GemmaConfig", "GemmaForCausalLM"),
    }[kind]
    config = getattr(transformers, config_cls)(
        vocab_size=256,
        hidden_size=32,
        intermediate_size=48,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        head_dim=8,
        max_position_embeddings=64,
        **extra,
    )
    torch.manual_seed(3)
    return getattr(transformers, model_cls)(config).train()


def _lora(model: Any, **lora: Any) -> Any:
    from peft import LoraConfig, get_peft_model

    from ollama_tune.train.fused_lora import fuse_lora_layers

    cfg = LoraConfig(
        r=4, lora_alpha=8, target_modules="all-linear", init_lora_weights=False, **lora
    )
    peft_model = get_peft_model(model, cfg).train()
    fuse_lora_layers(peft_model)
    return peft_model


def _fused_pair(model: Any, expect: int = 2) -> tuple[Any, Any]:
    from ollama_tune.train.fused_mlp import fuse_mlps, fused_mlps

    fused = copy.deepcopy(model)
    assert fuse_mlps(fused) == expect
    assert fused_mlps(fused) == expect and fused_mlps(model) == 0
    return model, fused


def _step(model: Any, autocast: bool = False) -> tuple[torch.Tensor, list[torch.Tensor], int]:
    """Logits, every trainable gradient, and the bytes kept for backward (distinct storages)."""
    model.zero_grad()
    kept: dict[int, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        if t.grad_fn is not None:  # activations, not parameters
            kept[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
        return t

    with (
        torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t),
        torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast),
    ):
        logits = model(input_ids=IDS, use_cache=False).logits
    loss = torch.nn.functional.cross_entropy(logits[0, :-1].float(), IDS[0, 1:])
    loss.backward()
    grads = [p.grad.clone() for p in model.parameters() if p.requires_grad]
    return logits.detach().float(), grads, sum(kept.values())


def _spy(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    from ollama_tune.train import fused_mlp

    calls: list[int] = []
    real = fused_mlp._SwiGLUDownFn.apply
    monkeypatch.setattr(fused_mlp._SwiGLUDownFn, "apply", lambda *a: calls.append(1) or real(*a))
    return calls


def _assert_same(got: tuple[Any, ...], want: tuple[Any, ...]) -> None:
    torch.testing.assert_close(got[0], want[0], rtol=1e-5, atol=1e-6)
    assert len(got[1]) == len(want[1]) > 0
    for g, w in zip(got[1], want[1], strict=True):
        assert w.abs().max() > 0
        torch.testing.assert_close(g, w, rtol=1e-4, atol=1e-6 * float(w.abs().max()))


@pytest.mark.parametrize("kind", ["llama", "qwen2", "mistral"])
def test_lora_outputs_and_gradients_equal_the_models_own_with_less_kept(
    kind: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    reference, fused = _fused_pair(_lora(_tiny(kind)))
    want = _step(reference)
    calls = _spy(monkeypatch)
    got = _step(fused)
    assert len(calls) == 2  # one node per layer
    _assert_same(got, want)
    # Per layer two (tokens × intermediate) fp32 tensors fewer: SiLU output and the product.
    assert want[2] - got[2] >= 2 * 2 * IDS.numel() * 48 * 4


def test_full_fine_tuning_gradients_of_gate_up_and_down_weights(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    reference, fused = _fused_pair(_tiny("llama", mlp_bias=True))
    want = _step(reference)
    calls = _spy(monkeypatch)
    got = _step(fused)
    assert len(calls) == 2
    _assert_same(got, want)  # every weight and bias, down_proj's included
    assert want[2] > got[2]


@pytest.mark.parametrize("method", ["lora", "lora-bf16-base", "full"])
def test_under_bf16_autocast_the_same_bits_with_less_kept(
    method: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ollama_tune.train.fused_lora import store_frozen_base

    model = _tiny("llama", mlp_bias=method == "full")
    if method != "full":
        model = _lora(model)
    if method == "lora-bf16-base":  # what a bf16 LoRA run trains on (store_frozen_base)
        assert store_frozen_base(model, torch.bfloat16) == 14
    reference, fused = _fused_pair(model)
    want = _step(reference, autocast=True)
    calls = _spy(monkeypatch)
    got = _step(fused, autocast=True)
    assert len(calls) == 2
    # The unfused layers' own bf16 ops in their order: every output and gradient bit for bit.
    assert torch.equal(got[0], want[0])
    assert len(got[1]) == len(want[1]) > 0
    assert all(torch.equal(g, w) for g, w in zip(got[1], want[1], strict=True))
    # Per layer two bf16 (tokens × intermediate) tensors fewer.
    assert want[2] - got[2] >= 2 * 2 * IDS.numel() * 48 * 2


def test_left_to_the_models_own_forward(monkeypatch: pytest.MonkeyPatch) -> None:
    # Inference, LoRA dropout on the down projection: the model's own path.
    reference, fused = _fused_pair(_lora(_tiny()))
    calls = _spy(monkeypatch)
    with torch.no_grad():
        torch.testing.assert_close(fused(input_ids=IDS).logits, reference(input_ids=IDS).logits)
    dropped = _fused_pair(_lora(_tiny(), lora_dropout=0.1))[1]
    dropped(input_ids=IDS).logits.sum().backward()
    assert calls == []


def test_other_activations_and_mlp_shapes_are_not_fused() -> None:
    from ollama_tune.train.fused_mlp import fuse_mlps

    assert fuse_mlps(_tiny("gemma")) == 0  # same MLP body, GELU
    model = _tiny()
    for layer in model.model.layers:
        layer.mlp.act_fn = torch.nn.ReLU()
    assert fuse_mlps(model) == 0
    model = _tiny()
    assert fuse_mlps(model) == 2
    assert fuse_mlps(model) == 0  # already fused: nothing twice
