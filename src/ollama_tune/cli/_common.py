"""Shared rendering helpers for the CLI: consoles, tables, progress bars, JSON output."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from ollama_tune._util import ProgressFn

console = Console()
err_console = Console(stderr=True)


@contextmanager
def progress_bar(description: str = "working") -> Iterator[ProgressFn]:
    """A rich progress bar driven through the library's `progress(desc, done, total)` callback."""
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=err_console,
        transient=False,
    ) as bar:
        tasks: dict[str, Any] = {}

        def update(desc: str, done: float, total: float | None) -> None:
            if desc not in tasks:
                tasks[desc] = bar.add_task(desc, total=total)
            bar.update(tasks[desc], completed=done, total=total)

        yield update
        del description


def waiting_note(description: str, completed: float, total: float | None) -> None:
    """Progress callback for calls without a bar: one dim line per "still waiting" note."""
    err_console.print(f"[dim]… {description}: {completed:.0f} s[/dim]", highlight=False)


def print_json(obj: Any) -> None:
    """Machine-readable output: UTF-8, no ASCII escapes, stable key order."""
    console.print_json(json.dumps(obj, ensure_ascii=False, default=str))
