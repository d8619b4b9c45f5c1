"""The training stage: LoRA/QLoRA through PEFT + TRL into a run directory.

`train_lora(TrainConfig, progress=None) -> TrainResult`. Heavy libraries (torch,
transformers, peft, trl) are imported only when a run starts, so importing this is instant.
"""

from __future__ import annotations

from typing import Any

from ollama_tune._util import ProgressFn
from ollama_tune.train.config import TrainConfig, TrainResult

__all__ = ["TrainConfig", "TrainResult", "train_lora"]


def train_lora(
    config: TrainConfig, progress: ProgressFn | None = None, on_log: Any = None
) -> TrainResult:
    """Train a LoRA adapter; see `ollama_tune.train.loop` for what is written where."""
    from ollama_tune.train.loop import train_lora as _train

    return _train(config, progress, on_log)
