"""`ollama-tune train` (LoRA or full fine-tuning into a run directory).

The command is attached in `register(app)` (`export` and `chat` have their own modules). Heavy
imports stay inside the functions so `ollama-tune --help` remains instant.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import typer

from ollama_tune.cli._options import JSON
from ollama_tune.train.settings import TrainSettings


def _help(field: str, default: str | None = None) -> str:
    """The flag's help: the settings field's description and its default."""
    info = TrainSettings.model_fields[field]
    shown = default or info.default
    if isinstance(shown, bool):
        shown = "on" if shown else "off"
    return f"{(info.description or '').rstrip('.')} (default: {shown})"


def _train_command(
    data: list[Path] = typer.Option(..., "--data", help="Training rows (JSONL/CSV); repeatable."),
    test_data: Path | None = typer.Option(
        None,
        "--test-data",
        help="Validation rows that pick the best checkpoint (else carved from --data); keep "
        "your final test questions out of it.",
    ),
    base_model: str = typer.Option(
        "smollm2-135m", "--base-model", help="Alias, .gguf, HF dir/repo id or Ollama name."
    ),
    output: Path | None = typer.Option(
        None, "--output", "-o", help="Run directory (runs/train-…)."
    ),
    resume: bool = typer.Option(False, "--resume", help="Continue from the last checkpoint."),
    system: str | None = typer.Option(None, "--system", help="System prompt for rows without one."),
    template: str | None = typer.Option(
        None,
        "--template",
        help="Train through this Ollama TEMPLATE: a Go TEMPLATE file or ollama:NAME.",
    ),
    # TrainSettings' fields, each flag named after its field and None when not given, so the
    # model's default applies (tests/unit/test_settings_flags.py keeps them in step).
    method: str | None = typer.Option(None, "--method", help=_help("method")),
    lora_r: int | None = typer.Option(None, "--lora-r", help=_help("lora_r")),
    lora_alpha: int | None = typer.Option(None, "--lora-alpha", help=_help("lora_alpha")),
    lora_dropout: float | None = typer.Option(None, "--lora-dropout", help=_help("lora_dropout")),
    target_modules: str | None = typer.Option(
        None, "--target-modules", help=_help("target_modules")
    ),
    epochs: float | None = typer.Option(
        None, "--epochs", help=_help("epochs", "from the row count")
    ),
    max_steps: int | None = typer.Option(None, "--max-steps", help=_help("max_steps")),
    learning_rate: float | None = typer.Option(
        None, "--learning-rate", "--lr", help=_help("learning_rate", "by method")
    ),
    batch_size: int | None = typer.Option(None, "--batch-size", help=_help("batch_size")),
    gradient_accumulation_steps: int | None = typer.Option(
        None,
        "--gradient-accumulation-steps",
        "--grad-accum",
        help=_help("gradient_accumulation_steps"),
    ),
    max_seq_len: int | None = typer.Option(None, "--max-seq-len", help=_help("max_seq_len")),
    seed: int | None = typer.Option(None, "--seed", help=_help("seed")),
    qlora: bool | None = typer.Option(None, "--qlora/--no-qlora", help=_help("qlora")),
    packing: bool | None = typer.Option(None, "--packing/--no-packing", help=_help("packing")),
    bf16: str | None = typer.Option(None, "--bf16", help=_help("bf16")),
    gradient_checkpointing: str | None = typer.Option(
        None, "--gradient-checkpointing", help=_help("gradient_checkpointing")
    ),
    logging_steps: int | None = typer.Option(None, "--logging-steps", help=_help("logging_steps")),
    save_steps: int | None = typer.Option(None, "--save-steps", help=_help("save_steps")),
    eval_steps: int | None = typer.Option(None, "--eval-steps", help=_help("eval_steps")),
    early_stopping_patience: int | None = typer.Option(
        None, "--early-stopping-patience", help=_help("early_stopping_patience")
    ),
    val_ratio: float | None = typer.Option(
        None, "--val-ratio", "--test-ratio", help=_help("val_ratio") + " (when no --test-data)"
    ),
    val_questions: int | None = typer.Option(None, "--val-questions", help=_help("val_questions")),
    val_recall: bool | None = typer.Option(
        None, "--val-recall/--no-val-recall", help=_help("val_recall")
    ),
    val_at_start: bool | None = typer.Option(
        None, "--val-at-start/--no-val-at-start", help=_help("val_at_start")
    ),
    val_max_tokens: int | None = typer.Option(
        None, "--val-max-tokens", help=_help("val_max_tokens", "1.25 × the answers' p95")
    ),
    as_json: bool = JSON,
) -> None:
    """Fine-tune on your question→answer data: a LoRA adapter, or the whole model with
    --method full (writes a run directory)."""
    from ollama_tune.train import TrainConfig, train_lora

    given = {k: v for k, v in locals().items() if k in TrainSettings.model_fields}
    config = TrainConfig(
        **{k: v for k, v in given.items() if v is not None},
        data=list(data),
        test_data=test_data,
        base_model=base_model,
        output=output,
        resume=resume,
        system=system,
        template=template,
    )
    # Under accelerate/torchrun every rank runs this command; only rank 0 talks to the user.
    distributed = "RANK" in os.environ
    main_rank = os.environ.get("RANK", "0") == "0"
    run = train_lora if distributed else _in_child
    result = _train_with_bar(config, run) if main_rank and not as_json else run(config)
    if main_rank:
        _render(result, as_json)


def _in_child(config: Any, progress: Any = None, on_log: Any = None) -> Any:
    """A single-process run trains in its own process, as `run` does."""
    from ollama_tune.train import train_in_child

    return train_in_child(config, progress, on_log)


def _train_with_bar(config: Any, run: Any) -> Any:
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    from ollama_tune.cli._common import err_console

    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("loss {task.fields[loss]}  {task.fields[tps]} tok/s"),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=err_console) as bar:
        task = bar.add_task("training", total=None, loss="-", tps="-")

        def progress(desc: str, done: float, total: float | None) -> None:
            bar.update(task, description=desc, completed=done, total=total)

        def on_log(record: dict[str, Any]) -> None:
            if "loss" in record:
                bar.update(task, loss=f"{record['loss']:.3f}")
            bar.update(task, tps=f"{record['tokens_per_s']:.0f}")

        return run(config, progress, on_log)


def _render(result: Any, as_json: bool) -> None:
    from rich.table import Table

    from ollama_tune.cli._common import console, print_json

    best = result.best or {}
    schedule = result.schedule or {}
    fields = {
        "run_dir": str(result.run_dir),
        "method": result.method,
        "adapter" if result.method == "lora" else "model": str(result.adapter_dir),
        "train_loss": result.train_loss,
        "eval_loss": result.eval_loss,
        "steps": result.steps,
        "seconds": result.seconds,
        "tokens_per_s": result.tokens_per_s,
        "peak_rss_mb": result.peak_rss_mb,
        "rows": f"{result.train_rows} train / {result.test_rows} test",
        "device": f"{result.device} ({result.precision})",
        "resumed_from": result.resumed_from,
        "stopped_early": result.stopped_early,
        "epochs": schedule.get("epochs"),
        "learning_rate": schedule.get("learning_rate"),
        "best_step": best.get("step"),
        "val_fact_recall": best.get("fact_recall"),
        "val_stop_rate": best.get("stop_rate"),
    }
    if as_json:
        print_json(fields | {"notes": result.notes})
        return
    table = Table("", "", title="Training finished", show_header=False)
    for key, value in fields.items():
        shown: Any = value
        if isinstance(value, float) and key.endswith("loss"):
            shown = f"{value:.4f}"
        elif isinstance(value, float) and key.startswith("val_"):
            shown = f"{value:.1%}"
        table.add_row(key.replace("_", " "), "-" if shown is None else str(shown))
    console.print(table)
    if best:
        console.print(f"kept step {best['step']} of {best['last_step']}: {best['why']}")
    for note in result.notes:
        console.print(f"[yellow]note:[/yellow] {note}")
    console.print(f"Next: [bold]ollama-tune export {result.run_dir} --quant q4_k_m[/bold]")


def register(app: typer.Typer) -> None:
    """Attach this module's commands to the root app."""
    app.command("train")(_train_command)
