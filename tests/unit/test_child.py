"""`call_in_child`: the pipeline's training runs in a spawned process (real processes here)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from _child_work import (
    data_error,
    killed,
    logs_and_progress,
    pid_and_progress,
    unpicklable_error,
    wait_for_stop,
)

from ollama_tune._child import call_in_child
from ollama_tune.errors import DataError, TrainingError


def test_the_result_and_every_progress_call_come_back_from_another_process() -> None:
    seen: list[tuple[str, float, float | None]] = []
    result = call_in_child(pid_and_progress, 3, progress=lambda *a: seen.append(a))
    assert result["steps"] == 3 and result["pid"] != os.getpid()
    assert seen == [("step", 1, 3), ("step", 2, 3), ("step", 3, 3)]


def test_relayed_callbacks_run_here_in_order_with_the_progress_calls() -> None:
    seen: list[tuple[Any, ...]] = []
    pid = call_in_child(
        logs_and_progress,
        progress=lambda *a: seen.append(("progress", *a)),
        relay={"on_log": lambda record: seen.append(("log", record["step"]))},
    )
    assert pid != os.getpid()
    assert seen == [
        ("progress", "step", 1, 3),
        ("log", 1),
        ("progress", "step", 2, 3),
        ("log", 2),
        ("progress", "step", 3, 3),
        ("log", 3),
    ]


def test_the_childs_error_is_raised_with_its_class_message_and_hint() -> None:
    with pytest.raises(DataError) as caught:
        call_in_child(data_error, "train.jsonl")
    assert caught.value.message == "train.jsonl:3: no 'output'"
    assert caught.value.hint == "add the answer to line 3"


def test_an_error_that_cannot_be_pickled_still_says_what_it_was() -> None:
    with pytest.raises(TrainingError, match=r"_Unpicklable: a=1 b=2"):
        call_in_child(unpicklable_error)


def test_a_child_killed_by_the_kernel_is_reported_as_likely_out_of_memory() -> None:
    with pytest.raises(TrainingError) as caught:
        call_in_child(killed, what="training")
    assert "killed (SIGKILL)" in caught.value.message
    assert caught.value.hint is not None and "out-of-memory" in caught.value.hint


def test_an_interrupt_in_the_parent_stops_the_child_after_its_cleanup(tmp_path: Path) -> None:
    marker = tmp_path / "cleaned"

    def interrupt(description: str, completed: float, total: float | None) -> None:
        raise KeyboardInterrupt  # what Ctrl-C raises in the parent while it waits

    with pytest.raises(KeyboardInterrupt):
        call_in_child(wait_for_stop, str(marker), progress=interrupt)
    # The child's `finally` ran before call_in_child returned: it was stopped, not abandoned.
    assert marker.read_text(encoding="utf-8") == "cleaned up\n"
