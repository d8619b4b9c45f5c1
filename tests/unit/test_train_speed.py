"""CPU speed paths of training (`train.speed`) must change the speed only, never the numbers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from ollama_tune.train import TrainConfig
from ollama_tune.train import loop as train_loop


def _packed_batch(rows: list[list[int]]) -> dict[str, Any]:
    from trl.trainer.sft_trainer import DataCollatorForLanguageModeling

    collate = DataCollatorForLanguageModeling(pad_token_id=0, padding_free=True)
    return collate([{"input_ids": r} for r in rows])  # type: ignore[no-any-return]


def test_packed_attention_runs_per_row_and_matches_each_row_alone(
    tiny_model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from transformers import AutoModelForCausalLM

    from ollama_tune.train import speed

    reference = AutoModelForCausalLM.from_pretrained(str(tiny_model_dir)).eval()
    model = AutoModelForCausalLM.from_pretrained(str(tiny_model_dir)).eval()
    assert speed.use_packed_attention(model)
    assert model.config._attn_implementation == speed.PACKED_ATTENTION
    calls: list[tuple[int, bool]] = []
    real = speed.sdpa_attention_forward

    def spy(module: Any, query: torch.Tensor, *args: Any, **kw: Any) -> Any:
        calls.append((query.shape[2], args[5] if len(args) > 5 else kw.get("is_causal")))
        return real(module, query, *args, **kw)

    monkeypatch.setattr(speed, "sdpa_attention_forward", spy)
    rows = [list(range(100, 117)), list(range(300, 311)), list(range(500, 505))]
    batch = _packed_batch(rows)
    assert batch["cu_seq_lens_q"].tolist() == [0, 17, 28, 33]
    with torch.no_grad():
        packed = model(**batch, use_cache=False).logits[0]
        starts = [0, 17, 28]
        for start, row in zip(starts, rows, strict=True):
            alone = reference(input_ids=torch.tensor([row]), use_cache=False).logits[0]
            assert torch.allclose(packed[start : start + len(row)], alone, atol=1e-5)
    # Two layers, three rows each, causal within each row and never over the whole pack.
    assert sorted(calls) == sorted([(17, True), (11, True), (5, True)] * 2)

    calls.clear()
    with torch.no_grad():  # A padded batch (no cu_seq_lens) is plain SDPA with its mask.
        ids = torch.tensor([rows[0], rows[1] + [0] * 6])
        mask = torch.tensor([[1] * 17, [1] * 11 + [0] * 6])
        got = model(input_ids=ids, attention_mask=mask, use_cache=False).logits
        want = reference(input_ids=ids, attention_mask=mask, use_cache=False).logits
    assert torch.allclose(got[1, :11], want[1, :11], atol=1e-5)
    assert [n for n, _ in calls] == [17, 17]


def _cpu_trainer(
    tiny_model_dir: Path, tmp_path: Path, bf16: bool = False, system: str | None = None
) -> Any:
    from ollama_tune.data.model import Example, Message, SourceRef
    from ollama_tune.models import resolve_base_model
    from ollama_tune.train.data import encode_rows
    from ollama_tune.train.trainer import build_trainer

    cfg = TrainConfig(
        data=[tmp_path / "unused.jsonl"], base_model=str(tiny_model_dir), output=tmp_path / "run"
    )
    # fp32 on CPU, whatever the machine has: the comparison needs exact arithmetic.
    plan = train_loop.Plan(False, bf16, False, False, False, False, rank=0, world_size=1)
    model, tok = train_loop._load(resolve_base_model(str(tiny_model_dir)), cfg, plan)
    examples = [
        Example(
            messages=(
                *([Message("system", system)] if system else []),
                Message("user", f"送料はいくらですか？（{i}）"),
                Message("assistant", "全国一律550円です。" * (1 + i % 3)),
            ),
            source=SourceRef("qa.jsonl", i + 1),
        )
        for i in range(6)
    ]
    rows = encode_rows(tok, examples, cfg.max_seq_len)
    empty = encode_rows(tok, [], cfg.max_seq_len)
    trainer, _, _ = build_trainer(cfg, plan, model, tok, rows, empty, None, None)
    return trainer


def _loss_grads_tokens(
    trainer: Any, model: Any, batch: dict[str, Any]
) -> tuple[float, list[torch.Tensor], int]:
    """One `CompactLossSFTTrainer` loss + backward on `batch`: loss, trained grads, tokens seen."""
    from ollama_tune.train.speed import CompactLossSFTTrainer

    trained = [p for p in model.parameters() if p.requires_grad]
    model.zero_grad()
    before = trainer.state.num_input_tokens_seen
    trainer._track_num_input_tokens(batch)
    loss = CompactLossSFTTrainer.compute_loss(trainer, model, dict(batch))
    loss.backward()
    seen = trainer.state.num_input_tokens_seen - before
    return float(loss.detach()), [p.grad.clone() for p in trained], seen


def _for_trl(batch: dict[str, Any]) -> dict[str, Any]:
    """The batch without the bucket's count, which TRL's loss would pass on to the model."""
    from ollama_tune.train.speed import BUCKET_PAD

    return {k: v for k, v in batch.items() if k != BUCKET_PAD}


def test_compact_loss_equals_trls_loss_gradients_and_metrics(
    tiny_model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from trl import SFTTrainer

    from ollama_tune.train import linear_ce, norm_recompute
    from ollama_tune.train.fused_lora import FusedLoraLinear
    from ollama_tune.train.fused_mlp import fused_mlps
    from ollama_tune.train.norm_recompute import recomputed_norms
    from ollama_tune.train.speed import CompactLossSFTTrainer

    trainer = _cpu_trainer(tiny_model_dir, tmp_path)
    assert isinstance(trainer, CompactLossSFTTrainer)
    # CPU LoRA runs get the fused layers (`train.fused_lora`): 2 layers × 7 linears.
    assert sum(isinstance(m, FusedLoraLinear) for m in trainer.model.modules()) == 14
    batch = next(iter(trainer.get_train_dataloader()))
    assert batch["input_ids"].shape[0] == 1 and (batch["labels"] == -100).any()
    model = trainer.model.train()
    lora = [p for p in model.parameters() if p.requires_grad]

    def run(compute: Any, **kw: Any) -> tuple[float, list[torch.Tensor], dict[str, float]]:
        model.zero_grad()
        trainer._metrics["train"].clear()
        # TRL's own loss gets the batch without the bucket's count (its model call takes **kw).
        ours = compute is CompactLossSFTTrainer.compute_loss
        loss = compute(trainer, model, dict(batch) if ours else _for_trl(batch), **kw)
        loss.backward()
        metrics = {k: v[-1] for k, v in trainer._metrics["train"].items()}
        return float(loss.detach()), [p.grad.clone() for p in lora], metrics

    fused: list[int] = []
    real = linear_ce._LinearCrossEntropyFn.apply
    monkeypatch.setattr(
        linear_ce._LinearCrossEntropyFn, "apply", lambda *a: fused.append(1) or real(*a)
    )
    # Our loss rebuilds the RMSNorm outputs in backward (`train.norm_recompute`); TRL's keeps them.
    rebuilt: list[int] = []
    rebuild = norm_recompute._Recipe.rebuild
    monkeypatch.setattr(
        norm_recompute._Recipe, "rebuild", lambda r: rebuilt.append(1) or rebuild(r)
    )
    assert recomputed_norms(model) == 5 and fused_mlps(model) == 2
    for kw in ({}, {"num_items_in_batch": torch.tensor(40)}):
        ours = run(CompactLossSFTTrainer.compute_loss, **kw)
        theirs = run(SFTTrainer.compute_loss, **kw)
        # A training step of a plain-head decoder scores the head in chunks (`train.linear_ce`).
        assert len(fused) == 1 and rebuilt
        fused.clear()
        rebuilt.clear()
        assert ours[0] == pytest.approx(theirs[0], rel=1e-5), kw
        for a, b in zip(ours[1], theirs[1], strict=True):
            assert torch.allclose(a, b, atol=1e-6, rtol=1e-4)
        assert ours[2]["mean_token_accuracy"] == pytest.approx(theirs[2]["mean_token_accuracy"])
        assert ours[2]["entropy"] == pytest.approx(theirs[2]["entropy"], rel=1e-4)
    # Evaluation asks for the logits (return_outputs): the logits path, same loss.
    with torch.no_grad():
        model.eval()
        loss, outputs = CompactLossSFTTrainer.compute_loss(
            trainer, model, dict(batch), return_outputs=True
        )
        want = SFTTrainer.compute_loss(trainer, model, _for_trl(batch))
    assert not fused and outputs.logits is not None
    assert float(loss) == pytest.approx(float(want), rel=1e-5)


def test_fused_head_step_keeps_the_runs_bf16_autocast(tiny_model_dir: Path, tmp_path: Path) -> None:
    from trl import SFTTrainer

    from ollama_tune.train.speed import CompactLossSFTTrainer

    trainer = _cpu_trainer(tiny_model_dir, tmp_path, bf16=True)
    batch = next(iter(trainer.get_train_dataloader()))
    model = trainer.model.train()
    seen: list[bool] = []
    layer = next(m for m in model.modules() if type(m).__name__ == "LlamaDecoderLayer")
    layer.register_forward_pre_hook(lambda *_: seen.append(torch.is_autocast_enabled("cpu")))
    ours = CompactLossSFTTrainer.compute_loss(trainer, model, dict(batch))
    assert seen == [True]  # the decoder, called directly, still ran under bf16 autocast
    # In `train()` accelerate puts this autocast on the prepared model's forward.
    with trainer.accelerator.autocast():
        theirs = SFTTrainer.compute_loss(trainer, model, _for_trl(batch))
    assert seen == [True, True]
    assert float(ours) == pytest.approx(float(theirs), rel=2e-2)
    # A bf16 LoRA run keeps its frozen base weights in bf16 (train.fused_lora), LoRA in fp32.
    from ollama_tune.train.fused_lora import frozen_base_dtype

    assert frozen_base_dtype(model) == "bfloat16"
    ours.backward()
    lora = [p for p in model.parameters() if p.requires_grad]
    assert lora and all(p.dtype == torch.float32 and p.grad is not None for p in lora)


def test_cpu_bf16_auto_follows_the_cpus_own_flags(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = TrainConfig(data=[tmp_path / "x.jsonl"])
    cases = ((True, False, True), (False, True, True), (False, False, False))
    for avx512_bf16, amx, expected in cases:
        monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda v=avx512_bf16: v)
        monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda v=amx: v)
        plan = train_loop.plan_device(cfg)
        assert plan.bf16 is expected and plan.precision == ("bf16" if expected else "fp32")
    cfg.bf16 = False  # an explicit choice wins over the flags
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: True)
    assert train_loop.plan_device(cfg).bf16 is False


def test_compact_loss_is_used_only_for_models_that_keep_selected_logits(
    tiny_model_dir: Path,
) -> None:
    from transformers import AutoModelForCausalLM

    from ollama_tune.train.speed import supports_compact_loss

    assert supports_compact_loss(AutoModelForCausalLM.from_pretrained(str(tiny_model_dir)))

    class OldStyle(torch.nn.Module):
        def forward(self, input_ids: torch.Tensor, labels: torch.Tensor | None = None) -> None:
            return None

    assert not supports_compact_loss(OldStyle())
