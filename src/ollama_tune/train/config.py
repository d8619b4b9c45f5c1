"""Typed input and output of `train_lora`: `TrainConfig` in, `TrainResult` out.

`TrainConfig.validate()` reports every problem at once (flag names in kebab-case, as the CLI
spells them), instead of stopping at the first one.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from ollama_tune.errors import UsageError

Auto = Literal["auto"]


@dataclass
class TrainConfig:
    """Everything one LoRA run needs. CLI flags mirror these names in kebab-case."""

    data: list[Path] = field(default_factory=list)
    test_data: Path | None = None
    test_ratio: float = 0.15
    base_model: str = "smollm2-135m"
    output: Path | None = None
    lora_r: int = 8
    lora_alpha: int = 16
    lora_dropout: float = 0.0
    target_modules: str | list[str] = "all-linear"
    learning_rate: float = 2e-4
    epochs: float = 1.0
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
    packing: bool = True
    logging_steps: int = 1

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
        if self.learning_rate <= 0:
            problems.append(f"--learning-rate: must be > 0, got {self.learning_rate}")
        if self.epochs <= 0:
            problems.append(f"--epochs: must be > 0, got {self.epochs}")
        if self.test_data is None and not 0.0 < self.test_ratio < 1.0:
            problems.append(f"--test-ratio: must be between 0 and 1, got {self.test_ratio}")
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


@dataclass
class TrainResult:
    """What a finished (or early-stopped) run produced; paths follow the run-dir contract."""

    run_dir: Path
    adapter_dir: Path
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
