"""`train.norm_recompute` must give the same gradients while keeping the RMSNorm outputs out of
the backward pass's memory, and must keep a tensor whenever rebuilding it could differ."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import torch
from test_train_fused_mlp import IDS, _lora, _tiny


def _recomputed(model: Any, expect: int) -> Any:
    from ollama_tune.train.norm_recompute import recompute_norms, recomputed_norms

    twin = copy.deepcopy(model)
    assert recompute_norms(twin) == expect
    assert recomputed_norms(twin) == expect and recomputed_norms(model) == 0
    assert recompute_norms(twin) == 0  # nothing twice
    return twin


def _step(
    model: Any, monkeypatch: pytest.MonkeyPatch, recipes: bool
) -> tuple[list[torch.Tensor], int, int]:
    """Every trainable gradient, bytes kept for backward (distinct storages), rebuilds run."""
    from ollama_tune.train import norm_recompute

    kept: dict[int, int] = {}
    rebuilt: list[int] = []
    real_pack, real_rebuild = norm_recompute._pack, norm_recompute._Recipe.rebuild

    def pack(t: torch.Tensor) -> Any:
        packed = real_pack(t)
        if isinstance(packed, torch.Tensor) and not isinstance(packed, torch.nn.Parameter):
            kept[packed.untyped_storage().data_ptr()] = packed.untyped_storage().nbytes()
        return packed

    monkeypatch.setattr(norm_recompute, "_pack", pack)
    monkeypatch.setattr(
        norm_recompute._Recipe, "rebuild", lambda self: rebuilt.append(1) or real_rebuild(self)
    )
    model.zero_grad()
    with (
        norm_recompute.recipes()
        if recipes
        else torch.autograd.graph.saved_tensors_hooks(pack, norm_recompute._unpack)
    ):
        logits = model(input_ids=IDS, use_cache=False).logits
    torch.nn.functional.cross_entropy(logits[0, :-1], IDS[0, 1:]).backward()
    monkeypatch.undo()
    grads = [p.grad.clone() for p in model.parameters() if p.requires_grad]
    return grads, sum(kept.values()), len(rebuilt)


@pytest.mark.parametrize("method", ["lora", "full"])
def test_same_gradients_without_keeping_the_norm_outputs(
    method: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ollama_tune.train.fused_mlp import fuse_mlps

    base = _tiny("qwen2")
    model = _lora(base) if method == "lora" else base
    fuse_mlps(model)
    twin = _recomputed(model, expect=5)  # 2 layers × 2 norms + the final norm
    want, kept_before, _ = _step(model, monkeypatch, recipes=False)
    got, kept_after, rebuilt = _step(twin, monkeypatch, recipes=True)
    assert rebuilt >= 4  # q/k/v and gate/up read the rebuilt outputs
    assert len(got) == len(want) > 0
    for g, w in zip(got, want, strict=True):
        assert torch.equal(g, w)  # the norm's own ops again: the same bits
    # At least the two (tokens × hidden) fp32 outputs of both layers are no longer kept.
    assert kept_before - kept_after >= 2 * 2 * IDS.numel() * 32 * 4


def test_an_output_changed_in_place_is_kept_not_rebuilt(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from ollama_tune.train import norm_recompute

    norm = _recomputed(_tiny(), expect=5).model.norm
    x = torch.randn(1, 6, 32, requires_grad=True)
    w = torch.randn(32, 8, requires_grad=True)

    def grads(recipes: bool) -> tuple[torch.Tensor, ...]:
        x.grad = w.grad = None
        with norm_recompute.recipes() if recipes else torch.enable_grad():
            y = norm(x * 1.0)
            y.mul_(3.0)  # after the norm registered it: a rebuild would give the old values
            loss = (y @ w).square().sum()
        loss.backward()
        return x.grad.clone(), w.grad.clone()

    rebuilt: list[int] = []
    real = norm_recompute._Recipe.rebuild
    monkeypatch.setattr(norm_recompute._Recipe, "rebuild", lambda s: rebuilt.append(1) or real(s))
    for got, want in zip(grads(True), grads(False), strict=True):
        assert torch.equal(got, want)
    assert rebuilt == []


def test_outside_recipes_and_for_other_norms_nothing_changes() -> None:
    from ollama_tune.train import norm_recompute

    assert norm_recompute.recompute_norms(_tiny("gemma")) == 0  # its own RMSNorm body
    model = _recomputed(_tiny(), expect=5)
    model(input_ids=IDS).logits.sum().backward()  # no recipes(): tensors kept as usual
    assert norm_recompute._OUTPUTS is None
    with torch.no_grad(), norm_recompute.recipes():
        assert norm_recompute._OUTPUTS is None  # inference keeps nothing to rebuild
