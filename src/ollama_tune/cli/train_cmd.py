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
from ollama_tune.errors import UsageError


def _auto_bool(value: str, flag: str) -> bool | str:
    mapping: dict[str, bool | str] = {
        "auto": "auto",
        "on": True,
        "true": True,
        "off": False,
        "false": False,
    }
    if value.lower() not in mapping:
        raise UsageError(f"{flag}: expected auto, on or off; got {value!r}.", hint=f"{flag} auto")
    return mapping[value.lower()]


def _train_command(
    data: list[Path] = typer.Option(..., "--data", help="Training rows (JSONL/CSV); repeatable."),
    test_data: Path | None = typer.Option(
        None,
        "--test-data",
        help="Validation rows that pick the best checkpoint (else carved from --data); keep "
        "your final test questions out of it.",
    ),
    test_ratio: float = typer.Option(
        0.15, "--test-ratio", help="Share held out when no --test-data."
    ),
    base_model: str = typer.Option(
        "smollm2-135m", "--base-model", help="Alias, .gguf, HF dir/repo id or Ollama name."
    ),
    output: Path | None = typer.Option(
        None, "--output", "-o", help="Run directory (runs/train-…)."
    ),
    lora_r: int = typer.Option(8, "--lora-r", help="LoRA rank."),
    lora_alpha: int = typer.Option(16, "--lora-alpha", help="LoRA alpha (scale = alpha / r)."),
    lora_dropout: float = typer.Option(
        0.0, "--lora-dropout", help="Dropout on LoRA inputs (0 is fastest)."
    ),
    target_modules: str = typer.Option(
        "all-linear", "--target-modules", help="'all-linear' or comma-separated module names."
    ),
    method: str = typer.Option(
        "lora", "--method", help="lora (an adapter) or full (every weight; models up to ~1B)."
    ),
    learning_rate: float | None = typer.Option(
        None, "--learning-rate", "--lr", help="Peak learning rate [default: by method]."
    ),
    epochs: float | None = typer.Option(
        None, "--epochs", help="Passes over the rows [default: from the row count]."
    ),
    max_steps: int | None = typer.Option(None, "--max-steps", help="Stop after N steps."),
    batch_size: int = typer.Option(4, "--batch-size", help="Packed sequences per step and device."),
    grad_accum: int = typer.Option(1, "--grad-accum", help="Gradient accumulation steps."),
    max_seq_len: int = typer.Option(512, "--max-seq-len", help="Longest row/pack in tokens."),
    seed: int = typer.Option(42, "--seed", help="Seed for split, init and data order."),
    eval_steps: int | None = typer.Option(
        None, "--eval-steps", help="Validate every N steps (and at each epoch end)."
    ),
    save_steps: int = typer.Option(50, "--save-steps", help="Checkpoint every N steps."),
    early_stopping_patience: int | None = typer.Option(
        None, "--early-stopping-patience", help="Stop after N validations without improvement."
    ),
    val_recall: bool = typer.Option(
        True,
        "--val-recall/--no-val-recall",
        help="Answer the validation questions while training; keep the best weights.",
    ),
    val_questions: int = typer.Option(
        24, "--val-questions", help="Validation rows used (loss and answers) each time."
    ),
    val_max_tokens: int = typer.Option(
        96, "--val-max-tokens", help="Longest validation answer in tokens."
    ),
    resume: bool = typer.Option(False, "--resume", help="Continue from the last checkpoint."),
    qlora: bool = typer.Option(False, "--qlora", help="4-bit QLoRA (CUDA + bitsandbytes)."),
    bf16: str = typer.Option("auto", "--bf16", help="bf16: auto, on or off."),
    gradient_checkpointing: str = typer.Option(
        "auto", "--gradient-checkpointing", help="auto (by free memory), on or off."
    ),
    system: str | None = typer.Option(None, "--system", help="System prompt for rows without one."),
    template: str | None = typer.Option(
        None,
        "--template",
        help="Train through this Ollama TEMPLATE: a Go TEMPLATE file or ollama:NAME.",
    ),
    packing: bool = typer.Option(True, "--packing/--no-packing", help="Padding-free packing."),
    as_json: bool = JSON,
) -> None:
    """Fine-tune on your question→answer data: a LoRA adapter, or the whole model with
    --method full (writes a run directory)."""
    from ollama_tune.train import TrainConfig, train_lora

    targets: str | list[str] = target_modules
    if target_modules != "all-linear":
        targets = [t.strip() for t in target_modules.split(",") if t.strip()]
    config = TrainConfig(
        data=list(data),
        test_data=test_data,
        test_ratio=test_ratio,
        base_model=base_model,
        output=output,
        method=method,  # type: ignore[arg-type]
        lora_r=lora_r,
        lora_alpha=lora_alpha,
        lora_dropout=lora_dropout,
        target_modules=targets,
        learning_rate=learning_rate,
        epochs=epochs,
        max_steps=max_steps,
        batch_size=batch_size,
        grad_accum=grad_accum,
        max_seq_len=max_seq_len,
        seed=seed,
        eval_steps=eval_steps,
        save_steps=save_steps,
        early_stopping_patience=early_stopping_patience,
        resume=resume,
        qlora=qlora,
        bf16=_auto_bool(bf16, "--bf16"),  # type: ignore[arg-type]
        gradient_checkpointing=_auto_bool(gradient_checkpointing, "--gradient-checkpointing"),  # type: ignore[arg-type]
        system=system,
        template=template,
        packing=packing,
        val_recall=val_recall,
        val_questions=val_questions,
        val_max_tokens=val_max_tokens,
    )
    # Under accelerate/torchrun every rank runs this command; only rank 0 talks to the user.
    main_rank = os.environ.get("RANK", "0") == "0"
    if main_rank and not as_json:
        result = _train_with_bar(config, train_lora)
    else:
        result = train_lora(config)
    if main_rank:
        _render(result, as_json)


def _train_with_bar(config: Any, train_lora: Any) -> Any:
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

        return train_lora(config, progress, on_log)


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
