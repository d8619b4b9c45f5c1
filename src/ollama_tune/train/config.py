"""Typed input and output of `train_lora`: `TrainConfig` in, `TrainResult` out.

`TrainConfig.validate()` reports every problem at once (flag names in kebab-case, as the CLI
spells them), instead of stopping at the first one.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, ClassVar

from pydantic import Field, field_validator

from ollama_tune.errors import UsageError
from ollama_tune.settings import UserConfig
from ollama_tune.train.settings import (
    Auto,
    Method,
    TrainSettings,
    cross_field_problems,
    step_alignment_problem,
)

__all__ = [
    "Auto",
    "Method",
    "TrainConfig",
    "TrainResult",
    "TrainSettings",
    "schedule_defaults",
    "step_alignment_problem",
]
_HINT = "Fix the values above; `ollama-tune train --help` lists every flag."


class TrainConfig(TrainSettings, UserConfig):
    """`TrainSettings` plus the run's inputs: everything `train_lora` needs, and what the
    pipeline's train stage hashes. CLI flags mirror the names in kebab-case.

    `epochs` and `learning_rate` left as None are chosen from the data size
    (`schedule_defaults`); `test_data` (else `val_ratio` of `data`) is the validation set that
    the loss and the fact-recall validations (`val_recall`) use to pick the best checkpoint.
    """

    data: list[Path] = Field(default_factory=list, validate_default=True)
    test_data: Path | None = None
    base_model: str = "smollm2-135m"
    output: Path | None = None
    resume: bool = False
    system: str | None = None
    # The Ollama TEMPLATE training renders through: a Go TEMPLATE file or `ollama:NAME`
    # (None: an Ollama base's own, else the tokenizer's chat template converted).
    template: str | None = None
    command: ClassVar[str] = "train"
    what: ClassVar[str | None] = "training"

    @field_validator("base_model", "template", mode="before")
    @classmethod
    def _path_as_text(cls, value: Any) -> Any:
        # A local model folder or TEMPLATE file may come as a Path from library callers.
        return os.fspath(value) if isinstance(value, os.PathLike) else value

    @field_validator("data")
    @classmethod
    def _some_data(cls, value: list[Path]) -> list[Path]:
        if not value:
            raise ValueError("at least one training file is required")
        return value

    @property
    def run_dir(self) -> Path:
        if self.output is None:
            # Resolved once so every later read sees the same folder.
            self.output = Path("runs") / datetime.now().strftime("train-%Y%m%d-%H%M%S")
        return Path(self.output)

    def validate(self) -> None:  # type: ignore[override]
        """Raise one UsageError listing every problem the fields alone cannot show."""
        problems = cross_field_problems(self)
        if problems:
            raise UsageError("Invalid training settings:\n  " + "\n  ".join(problems), hint=_HINT)

    def to_json(self) -> dict[str, Any]:
        out = self.model_dump(mode="json")
        out["output"] = str(self.run_dir)
        return out


# Small FAQ sets need many passes before a fact sticks; early stopping ends the run sooner.
ROWS_SEEN = 1500
MAX_EPOCHS = 12
LEARNING_RATES: dict[str, float] = {"lora": 5e-4, "full": 5e-5}
SCHEDULE_RULE = (
    f"epochs = clamp(ceil({ROWS_SEEN} / training rows), 1, {MAX_EPOCHS}) unless --epochs or "
    "--max-steps is given; learning rate = "
    + ", ".join(f"{k} {v:g}" for k, v in LEARNING_RATES.items())
    + " unless --learning-rate is given; val_max_tokens = 1.25 × the 95th percentile answer "
    "length in tokens unless --val-max-tokens is given"
)


def schedule_defaults(config: TrainConfig, rows: int) -> tuple[TrainConfig, dict[str, Any]]:
    """Fill unset `epochs`/`learning_rate` from the number of training rows.

    Returns the resolved config and what run.json records (the rule, the values, which were
    chosen here); values the user gave are kept as they are.
    """
    chosen: list[str] = []
    epochs = config.epochs
    if epochs is None:
        if config.max_steps is None:
            epochs = float(min(MAX_EPOCHS, max(1, math.ceil(ROWS_SEEN / max(rows, 1)))))
            chosen.append("epochs")
        else:
            epochs = 1.0  # max_steps decides the length; Trainer still wants a number
    lr = config.learning_rate
    if lr is None:
        lr = LEARNING_RATES[config.method]
        chosen.append("learning_rate")
    record = {
        "rule": SCHEDULE_RULE,
        "rows": rows,
        "epochs": epochs,
        "max_steps": config.max_steps,
        "learning_rate": lr,
        "chosen": chosen,
    }
    return config.model_copy(update={"epochs": epochs, "learning_rate": lr}), record


# The validation budget: room for the long answers of the data plus a margin, so "stopped by
# itself" measures the model and not the budget (SmolLM2 spends ~1.7 tokens per Japanese char).
BUDGET_QUANTILE, BUDGET_MARGIN, BUDGET_RANGE = 0.95, 1.25, (32, 1024)


def answer_token_budget(completion_lengths: list[int]) -> int:
    """Tokens a validation answer may take: the answers' 95th percentile length × 1.25."""
    if not completion_lengths:
        return BUDGET_RANGE[0]
    ordered = sorted(completion_lengths)
    p95 = ordered[math.ceil(BUDGET_QUANTILE * len(ordered)) - 1]  # nearest rank
    return max(BUDGET_RANGE[0], min(BUDGET_RANGE[1], math.ceil(p95 * BUDGET_MARGIN)))


def completion_lengths(rows: list[dict[str, list[int]]]) -> list[int]:
    """Tokens the loss covers in each encoded row: the answer and its end-of-turn."""
    return [sum(1 for lab in row["labels"] if lab != -100) for row in rows]


def resolve_val_budget(
    config: TrainConfig, rows: list[dict[str, list[int]]], schedule: dict[str, Any]
) -> TrainConfig:
    """Fill an unset `val_max_tokens` from the encoded rows' completion lengths (recorded in
    the schedule run.json keeps)."""
    if config.val_max_tokens is not None:
        schedule["val_max_tokens"] = config.val_max_tokens
        return config
    budget = answer_token_budget(completion_lengths(rows))
    schedule["val_max_tokens"] = budget
    schedule["chosen"].append("val_max_tokens")
    return config.model_copy(update={"val_max_tokens": budget})


@dataclass
class TrainResult:
    """What a finished (or early-stopped) run produced; paths follow the run-dir contract."""

    run_dir: Path
    adapter_dir: Path  # adapter/ for LoRA; model/ (the whole fine-tuned model) for full
    run_json: Path
    train_loss: float | None
    eval_loss: float | None
    steps: int
    seconds: float
    tokens_per_s: float
    peak_rss_mb: float
    train_rows: int
    test_rows: int
    resumed_from: str | None = None
    stopped_early: bool = False
    device: str = "cpu"
    precision: str = "fp32"
    loss_png: Path | None = None
    notes: list[str] = field(default_factory=list)
    method: str = "lora"
    best: dict[str, Any] | None = None
    schedule: dict[str, Any] | None = None
