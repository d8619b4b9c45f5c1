"""The training stage: LoRA/QLoRA through PEFT + TRL into a run directory.

`train_lora(TrainConfig, progress=None) -> TrainResult`. Heavy libraries (torch,
transformers, peft, trl) are imported only when a run starts, so importing this is instant.
"""

from __future__ import annotations

from typing import Any

from ollama_tune._util import ProgressFn
from ollama_tune.train.config import TrainConfig, TrainResult

__all__ = ["TrainConfig", "TrainResult", "train_in_child", "train_lora"]


def train_lora(
    config: TrainConfig, progress: ProgressFn | None = None, on_log: Any = None
) -> TrainResult:
    """Train a LoRA adapter; see `ollama_tune.train.loop` for what is written where."""
    from ollama_tune.train.loop import train_lora as _train

    return _train(config, progress, on_log)


def train_in_child(
    config: TrainConfig, progress: ProgressFn | None = None, on_log: Any = None
) -> TrainResult:
    """`train_lora` in a process of its own (`run` and single-process `train` both do this).

    What training leaves behind (torch's threads, a 9 GB heap) made the later llama.cpp answers
    2.8x slower in the same process; the child starts on jemalloc where the system has it.
    """
    from ollama_tune._child import call_in_child
    from ollama_tune.train.allocator import training_env

    config.validate()  # bad settings fail here at once, before a process starts
    relay = {"on_log": on_log} if on_log else None
    result: TrainResult = call_in_child(
        train_lora, config, progress=progress, env=training_env(), relay=relay
    )
    return result
