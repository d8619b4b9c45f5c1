"""Trainer callbacks: progress reporting and `metrics.jsonl`, from rank 0 only.

Progress goes through the library's `progress(desc, done, total)` callback (the CLI's bar);
per-log figures (loss, tokens/s, ETA) through an optional `on_log(dict)` hook.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from transformers import TrainerCallback

from ollama_tune._util import ProgressFn, atomic_write_text

LogFn = Callable[[dict[str, Any]], None]
PROGRESS_DESC = "training"


class ReportCallback(TrainerCallback):  # type: ignore[misc]
    """Collects every log record, rewrites metrics.jsonl and reports progress."""

    def __init__(
        self, metrics_path: Path, progress: ProgressFn | None, on_log: LogFn | None
    ) -> None:
        self.metrics_path = metrics_path
        self.progress = progress
        self.on_log_fn = on_log
        self.records: list[dict[str, Any]] = []
        self.start = time.monotonic()
        self.start_step = 0
        self.start_tokens = 0
        self.step_seconds = 0.0
        self.step_started = self.start

    def on_train_begin(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
        # After a resume, speed counts only the steps this process ran.
        self.start = time.monotonic()
        self.start_step = state.global_step
        self.start_tokens = state.num_input_tokens_seen or 0
        self.step_seconds = 0.0
        self.step_started = self.start
        if self.metrics_path.is_file() and state.global_step:
            kept = [json.loads(x) for x in self.metrics_path.read_text("utf-8").splitlines() if x]
            self.records = [r for r in kept if r.get("step", 0) <= state.global_step]
        if self.progress and state.is_world_process_zero:
            self.progress(PROGRESS_DESC, state.global_step, state.max_steps)

    def on_step_begin(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
        self.step_started = time.monotonic()

    def on_step_end(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
        self.step_seconds += time.monotonic() - self.step_started

    def tokens_per_s(self, state: Any) -> float:
        """Training throughput (all ranks' tokens), not counting validation or checkpoints."""
        tokens = (state.num_input_tokens_seen or 0) - self.start_tokens
        return tokens / self.step_seconds if self.step_seconds > 0 else 0.0

    def add_record(self, record: dict[str, Any]) -> None:
        """Append one record (a log, or a recall validation) and rewrite metrics.jsonl."""
        self.records.append(record)
        lines = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in self.records)
        atomic_write_text(self.metrics_path, lines)

    def on_log(self, args: Any, state: Any, control: Any, logs: Any = None, **kw: Any) -> None:
        if not state.is_world_process_zero or not logs:
            return
        elapsed = time.monotonic() - self.start
        done = state.global_step - self.start_step
        left = state.max_steps - state.global_step
        record = {
            "step": state.global_step,
            "epoch": round(state.epoch or 0.0, 4),
            **{k: v for k, v in logs.items() if isinstance(v, int | float)},
            "tokens_per_s": round(self.tokens_per_s(state), 1),
            "elapsed_s": round(elapsed, 2),
            "eta_s": round(elapsed / done * left, 1) if done else None,
        }
        self.add_record(record)
        if self.on_log_fn:
            self.on_log_fn(record)
        if self.progress:
            self.progress(PROGRESS_DESC, state.global_step, state.max_steps)
