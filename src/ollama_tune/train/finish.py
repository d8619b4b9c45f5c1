"""The end of a run: rank 0 writes adapter/, tokenizer/, loss.png and run.json atomically."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ollama_tune._util import atomic_dir
from ollama_tune.train.allocator import current as current_allocator
from ollama_tune.train.config import TrainConfig, TrainResult
from ollama_tune.train.data import EncodedRows, SplitData, end_of_turn
from ollama_tune.train.runinfo import peak_rss_mb, plot_loss, versions, write_run_json

if TYPE_CHECKING:  # annotations only: loop imports this module at the end of a run
    from ollama_tune.models import BaseModelRef
    from ollama_tune.train.callbacks import ReportCallback
    from ollama_tune.train.loop import Plan
    from ollama_tune.train.recall import RecallCallback


@dataclass
class FinishedRun:
    """Everything the end of a run reads: the loop hands over one object, not 14 arguments."""

    config: TrainConfig
    plan: Plan
    ref: BaseModelRef
    tokenizer: Any  # a transformers tokenizer (typed Any: transformers is imported lazily)
    trainer: Any  # the SFTTrainer that ran
    report: ReportCallback
    split: SplitData
    train_rows: EncodedRows
    test_rows: EncodedRows
    eval_loss: float | None
    resumed_from: str | None
    started: float
    recall: RecallCallback | None = None
    schedule: dict[str, Any] | None = None


def write_outputs(run: FinishedRun) -> TrainResult:
    """The run's TrainResult; rank 0 also writes the run directory's files."""
    config, trainer, report, split = run.config, run.trainer, run.report, run.split
    plan, recall, train_rows, test_rows = run.plan, run.recall, run.train_rows, run.test_rows
    eval_loss, resumed_from, started, schedule = (
        run.eval_loss, run.resumed_from, run.started, run.schedule,
    )  # fmt: skip
    run_dir = config.run_dir
    state = trainer.state
    losses = [r["loss"] for r in report.records if "loss" in r]
    epochs = config.epochs or 1.0
    stopped_early = bool(config.max_steps and state.global_step < config.max_steps) or (
        not config.max_steps and state.epoch is not None and state.epoch < epochs - 1e-6
    )
    result = TrainResult(
        run_dir=run_dir,
        adapter_dir=run_dir / ("model" if config.method == "full" else "adapter"),
        run_json=run_dir / "run.json",
        train_loss=losses[-1] if losses else None,
        eval_loss=eval_loss,
        steps=state.global_step,
        seconds=round(time.monotonic() - started, 2),
        tokens_per_s=round(report.tokens_per_s(state), 1),
        peak_rss_mb=peak_rss_mb(),
        train_rows=len(split.train),
        test_rows=len(split.test),
        resumed_from=resumed_from,
        stopped_early=stopped_early,
        device="cuda" if plan.cuda else "cpu",
        precision=plan.precision,
        notes=train_rows.notes + [f"test: {n}" for n in test_rows.notes],
        method=config.method,
        best=recall.summary() if recall is not None else None,
        schedule=schedule,
    )
    if trainer.is_world_process_zero():
        _write_files(run, result)
    trainer.accelerator.wait_for_everyone()
    return result


def _write_files(run: FinishedRun, result: TrainResult) -> None:
    config, plan, ref, tokenizer = run.config, run.plan, run.ref, run.tokenizer
    trainer, report, split, train_rows = run.trainer, run.report, run.split, run.train_rows
    from ollama_tune.train.fused_lora import frozen_base_dtype
    from ollama_tune.train.fused_mlp import fused_mlps
    from ollama_tune.train.norm_recompute import recomputed_norms
    from ollama_tune.train.prefix import shares_prefixes
    from ollama_tune.train.speed import CompactLossSFTTrainer

    run_dir = config.run_dir
    atomic_dir(result.adapter_dir, lambda d: trainer.model.save_pretrained(str(d)))
    atomic_dir(run_dir / "tokenizer", lambda d: tokenizer.save_pretrained(str(d)))
    title = f"{'Full fine-tuning' if config.method == 'full' else 'LoRA'} on {ref.spec}"
    result.loss_png = plot_loss(report.records, run_dir / "loss.png", title)
    # The TEMPLATE the training text was rendered through ships as is (one source of truth).
    tmpl = getattr(train_rows, "template", None)
    eot = tmpl.end_of_turn if tmpl is not None else end_of_turn(tokenizer)
    stops = list(
        dict.fromkeys([*(tmpl.stop if tmpl is not None else []), *_turn_ends(eot, tokenizer)])
    )
    resolved = config.to_json() | {
        "device": result.device,
        "precision": result.precision,
        "gradient_checkpointing": plan.gradient_checkpointing,
        "unsloth": plan.unsloth,
        "world_size": plan.world_size,
        "allocator": current_allocator(),  # jemalloc or the system's: peak memory differs
        # Which speed paths ran (train.speed on CPU), for comparing runs' tokens/s.
        "attention": getattr(trainer.model.config, "_attn_implementation", None),
        "loss": "compact" if isinstance(trainer, CompactLossSFTTrainer) else "trl-fused",
        "bucket_tokens": getattr(trainer.data_collator, "multiple", 0),
        "shared_prefix": shares_prefixes(trainer.data_collator),
        "fused_mlps": fused_mlps(trainer.model),
        "recomputed_norms": recomputed_norms(trainer.model),
        "frozen_base_dtype": frozen_base_dtype(trainer.model),
        # Where the trained weights are: export merges adapter/ or copies model/.
        "weights": result.adapter_dir.name,
    }
    write_run_json(
        run_dir / "run.json",
        base_model=ref.to_json(),
        chat_template=tokenizer.chat_template,
        eos_token=tokenizer.eos_token,
        bos_token=tokenizer.bos_token,
        stop_tokens=stops,
        ollama_template=tmpl.to_json() if tmpl is not None else None,
        template_renderer=getattr(train_rows, "renderer", "") or None,
        config=resolved,
        data={
            "train_path": str(split.train_path),
            "test_path": str(split.test_path),
            "train_rows": len(split.train),
            "test_rows": len(split.test),
            "validation": split.kind,
            "sha256": split.sha256,
        },
        versions=versions(),
        metrics={
            "train_loss": result.train_loss,
            "eval_loss": result.eval_loss,
            "steps": result.steps,
            "tokens_per_s": result.tokens_per_s,
            "seconds": result.seconds,
            "peak_rss_mb": result.peak_rss_mb,
        },
        schedule=result.schedule,
        best=result.best,
    )


def _turn_ends(eot: str, tokenizer: Any) -> list[str]:
    """The end-of-turn the completions were trained with, and EOS, when they are special tokens.

    A plain-text end of turn ("\n\n" in some templates) would cut answers short as a stop;
    the TEMPLATE's own stop parameters cover those."""
    special = set(getattr(tokenizer, "all_special_tokens", []) or [])
    special |= set((getattr(tokenizer, "get_added_vocab", dict)() or {}).keys())
    return [t for t in (eot.strip() if eot else "", tokenizer.eos_token) if t and t in special]
