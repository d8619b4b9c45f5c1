"""`train.linear_ce` must give transformers' loss and gradients without holding all logits."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from ollama_tune.train import linear_ce
from ollama_tune.train.linear_ce import IGNORE, head_parts, linear_cross_entropy


def _case(n: int = 700, d: int = 24, vocab: int = 300) -> tuple[Any, ...]:
    torch.manual_seed(3)
    hidden = torch.randn(2, n // 2, d, requires_grad=True)
    head = torch.nn.Linear(d, vocab, bias=False)
    targets = torch.randint(0, vocab, (2, n // 2))
    targets[:, ::3] = IGNORE  # unlabelled positions (prompt tokens, row ends)
    return hidden, head, targets


def _reference(hidden: Any, head: Any, targets: Any, num_items: Any) -> tuple[Any, ...]:
    logits = head(hidden).float()
    flat, labels = logits.reshape(-1, logits.shape[-1]), targets.reshape(-1)
    if num_items is None:
        loss = torch.nn.functional.cross_entropy(flat, labels, ignore_index=IGNORE)
    else:
        loss = torch.nn.functional.cross_entropy(flat, labels, ignore_index=IGNORE, reduction="sum")
        loss = loss / num_items
    keep = labels != IGNORE
    logp = torch.log_softmax(flat[keep].detach(), -1)
    correct = int((logp.argmax(-1) == labels[keep]).sum())
    entropy = float(-(logp.exp() * logp).sum())
    return loss, correct, entropy


@pytest.mark.parametrize("num_items", [None, 517])
@pytest.mark.parametrize("train_head", [False, True])
def test_loss_gradients_and_metrics_equal_the_plain_head(num_items: Any, train_head: bool) -> None:
    hidden, head, targets = _case()
    head.weight.requires_grad_(train_head)
    want, correct, entropy = _reference(hidden, head, targets, num_items)
    want.backward()
    want_dh = hidden.grad.clone()
    want_dw = head.weight.grad.clone() if train_head else None
    hidden.grad, head.weight.grad = None, None

    got = linear_cross_entropy(hidden, head, targets, num_items)
    got.loss.backward()
    assert float(got.loss) == pytest.approx(float(want), rel=1e-5)
    assert torch.allclose(hidden.grad, want_dh, atol=1e-7, rtol=1e-4)
    if train_head:
        assert torch.allclose(head.weight.grad, want_dw, atol=1e-7, rtol=1e-4)
    else:
        assert head.weight.grad is None
    assert got.count == int((targets != IGNORE).sum()) and got.correct == correct
    assert got.entropy == pytest.approx(entropy, rel=1e-5)


def test_logits_exist_one_chunk_at_a_time(monkeypatch: pytest.MonkeyPatch) -> None:
    hidden, head, targets = _case(n=1000)
    shapes: list[tuple[int, ...]] = []
    real = torch.log_softmax
    monkeypatch.setattr(
        linear_ce.torch, "log_softmax", lambda x, **kw: shapes.append(x.shape) or real(x, **kw)
    )
    monkeypatch.setattr(linear_ce, "CHUNK", 128)
    linear_cross_entropy(hidden, head, targets).loss.backward()
    labelled = int((targets != IGNORE).sum())
    assert max(s[0] for s in shapes) == 128 and sum(s[0] for s in shapes) == labelled


def test_under_bf16_autocast_it_stays_close_to_the_autocast_head() -> None:
    hidden, head, targets = _case()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        want, _, _ = _reference(hidden, head, targets, None)
        want.backward()
        want_dh = hidden.grad.clone()
        hidden.grad = None
        got = linear_cross_entropy(hidden, head, targets)
    got.loss.backward()
    assert float(got.loss) == pytest.approx(float(want), rel=1e-2)
    err = float((hidden.grad - want_dh).abs().max() / want_dh.abs().max())
    assert err < 2e-2


def test_no_gradient_work_without_grad() -> None:
    hidden, head, targets = _case()
    with torch.no_grad():
        got = linear_cross_entropy(hidden, head, targets)
    assert got.loss.grad_fn is None
    assert float(got.loss) == pytest.approx(float(_reference(hidden, head, targets, None)[0]))


def test_only_plain_bias_free_heads_of_known_decoders_qualify(tiny_model_dir: Path) -> None:
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(str(tiny_model_dir))
    parts = head_parts(model)
    assert parts is not None and parts[1] is model.lm_head and parts[0] is model.model
    peft = get_peft_model(model, LoraConfig(r=2, target_modules="all-linear"))
    assert head_parts(peft) is not None  # LoRA on the body, plain head
    with_head = get_peft_model(
        AutoModelForCausalLM.from_pretrained(str(tiny_model_dir)),
        LoraConfig(r=2, target_modules=["q_proj", "lm_head"]),
    )
    assert head_parts(with_head) is None  # a LoRA head is not a plain nn.Linear
    scaled = AutoModelForCausalLM.from_pretrained(str(tiny_model_dir))
    scaled.config.model_type = "granite"  # multiplies its logits: keeps the plain path
    assert head_parts(scaled) is None
