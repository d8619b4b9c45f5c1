"""Typed input and output of `train_lora`: `TrainConfig` in, `TrainResult` out.

`TrainConfig.validate()` reports every problem at once (flag names in kebab-case, as the CLI
spells them), instead of stopping at the first one.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from ollama_tune.errors import UsageError

Auto = Literal["auto"]
Method = Literal["lora", "full"]


@dataclass
class TrainConfig:
    """Everything one run needs. CLI flags mirror these names in kebab-case.

    `epochs` and `learning_rate` left as None are chosen from the data size
    (`schedule_defaults`); `test_data`/`test_ratio` is the validation set that the loss and
    the fact-recall validations (`val_recall`) use to pick the best checkpoint.
    """

    data: list[Path] = field(default_factory=list)
    test_data: Path | None = None
    test_ratio: float = 0.15
    base_model: str = "smollm2-135m"
    output: Path | None = None
    method: Method = "lora"
    lora_r: int = 8
    lora_alpha: int = 16
    lora_dropout: float = 0.0
    target_modules: str | list[str] = "all-linear"
    learning_rate: float | None = None
    epochs: float | None = None
    max_steps: int | None = None
    batch_size: int = 4
    grad_accum: int = 1
    max_seq_len: int = 512
    seed: int = 42
    eval_steps: int | None = None
    save_steps: int = 50
    early_stopping_patience: int | None = None
    resume: bool = False
    qlora: bool = False
    bf16: bool | Auto = "auto"
    gradient_checkpointing: bool | Auto = "auto"
    system: str | None = None
    # The Ollama TEMPLATE training renders through: a Go TEMPLATE file or `ollama:NAME`
    # (None: an Ollama base's own, else the tokenizer's chat template converted).
    template: str | None = None
    packing: bool = True
    logging_steps: int = 1
    # Answer the validation questions during training and keep the weights that know most.
    val_recall: bool = True
    val_questions: int = 24
    val_max_tokens: int = 96

    @property
    def run_dir(self) -> Path:
        if self.output is None:
            # Resolved once so every later read sees the same folder.
            self.output = Path("runs") / datetime.now().strftime("train-%Y%m%d-%H%M%S")
        return Path(self.output)

    def validate(self) -> None:
        """Raise one UsageError listing every bad value."""
        problems: list[str] = []
        if not self.data:
            problems.append("--data: at least one training file is required")
        positive = {
            "lora-r": self.lora_r,
            "lora-alpha": self.lora_alpha,
            "batch-size": self.batch_size,
            "grad-accum": self.grad_accum,
            "max-seq-len": self.max_seq_len,
            "save-steps": self.save_steps,
            "logging-steps": self.logging_steps,
            "val-questions": self.val_questions,
            "val-max-tokens": self.val_max_tokens,
        }
        optional = {
            "max-steps": self.max_steps,
            "eval-steps": self.eval_steps,
            "early-stopping-patience": self.early_stopping_patience,
        }
        for name, value in {**positive, **optional}.items():
            if value is not None and value < 1:
                problems.append(f"--{name}: must be ≥ 1, got {value}")
        if not 0.0 <= self.lora_dropout < 1.0:
            problems.append(f"--lora-dropout: must be in [0, 1), got {self.lora_dropout}")
        if self.learning_rate is not None and self.learning_rate <= 0:
            problems.append(f"--learning-rate: must be > 0, got {self.learning_rate}")
        if self.epochs is not None and self.epochs <= 0:
            problems.append(f"--epochs: must be > 0, got {self.epochs}")
        if self.method not in ("lora", "full"):
            problems.append(f"--method: must be lora or full, got {self.method!r}")
        if self.method == "full" and self.qlora:
            problems.append("--method full: cannot train 4-bit weights; drop --qlora")
        if self.test_data is None and not 0.0 < self.test_ratio < 1.0:
            problems.append(f"--test-ratio: must be between 0 and 1, got {self.test_ratio}")
        # Early stopping on the loss (without --val-recall) restores a saved checkpoint.
        if self.early_stopping_patience and not self.val_recall:
            problems.extend(filter(None, [step_alignment_problem(self)]))
        if problems:
            raise UsageError(
                "Invalid training settings:\n  " + "\n  ".join(problems),
                hint="Fix the values above; `ollama-tune train --help` lists every flag.",
            )

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["data"] = [str(p) for p in self.data]
        out["test_data"] = str(self.test_data) if self.test_data else None
        out["output"] = str(self.run_dir)
        return out


def step_alignment_problem(config: TrainConfig) -> str | None:
    """With loss-based early stopping the best checkpoint must have been saved: save steps
    fall on evaluation steps. None when they do (or the values are not positive yet)."""
    eval_steps = config.eval_steps or config.save_steps
    if config.save_steps < 1 or eval_steps < 1 or config.save_steps % eval_steps == 0:
        return None
    return (
        f"--save-steps {config.save_steps} must be a multiple of --eval-steps {eval_steps} "
        "with --early-stopping-patience (the best checkpoint must have been saved)"
    )


# Small FAQ sets need many passes before a fact sticks; early stopping ends the run sooner.
ROWS_SEEN = 1500
MAX_EPOCHS = 12
LEARNING_RATES: dict[str, float] = {"lora": 5e-4, "full": 5e-5}
SCHEDULE_RULE = (
    f"epochs = clamp(ceil({ROWS_SEEN} / training rows), 1, {MAX_EPOCHS}) unless --epochs or "
    "--max-steps is given; learning rate = "
    + ", ".join(f"{k} {v:g}" for k, v in LEARNING_RATES.items())
    + " unless --learning-rate is given"
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
    return replace(config, epochs=epochs, learning_rate=lr), record


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
