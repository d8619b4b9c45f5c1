"""Functions the spawned children of test_child.py run (a child imports them by name)."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import Any

from ollama_tune._util import ProgressFn
from ollama_tune.errors import DataError


def pid_and_progress(steps: int, progress: ProgressFn) -> dict[str, Any]:
    for i in range(steps):
        progress("step", i + 1, steps)
    return {"pid": os.getpid(), "steps": steps}


def data_error(path: str, progress: ProgressFn) -> None:
    raise DataError(f"{path}:3: no 'output'", hint="add the answer to line 3")


class _Unpicklable(Exception):
    def __init__(self, a: int, b: int) -> None:  # pickling calls cls(*args): one arg too few
        super().__init__(f"a={a} b={b}")


def unpicklable_error(progress: ProgressFn) -> None:
    raise _Unpicklable(1, 2)


def killed(progress: ProgressFn) -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def wait_for_stop(marker: str, progress: ProgressFn) -> None:
    try:
        progress("started", 0, None)
        time.sleep(60)
    finally:
        Path(marker).write_text("cleaned up\n", encoding="utf-8")


def allocator_and_env(progress: ProgressFn) -> tuple[str, str]:
    from ollama_tune.train.allocator import current

    return current(), os.environ.get("LD_PRELOAD", "")


def logs_and_progress(progress: ProgressFn, on_log: Any) -> int:
    for i in range(3):
        progress("step", i + 1, 3)
        on_log({"loss": 1.0 / (i + 1), "step": i + 1})
    return os.getpid()
