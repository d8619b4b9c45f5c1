"""Ctrl-C and SIGTERM: stop cleanly, say what was interrupted and how to go on.

Both signals raise `KeyboardInterrupt` in the main thread (SIGTERM as its subclass
`Terminated`), so every `finally` runs: temporary files are removed, nothing half-written is
renamed into place. typer turns the exception into a silent exit 130, so the handler also
records the signal; `main` then prints the message and exits 130 (SIGINT) or 143 (SIGTERM).
A signal the parent shell ignores (a background job's SIGINT) stays ignored.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from types import FrameType

# Groups whose sub-command names the work (`data split`), not the first word alone.
GROUPS = ("data", "modelfile", "template")
RESUME = {
    "run": "Re-run the same command: finished stages are skipped and training resumes.",
    "train": "Re-run the same command with --resume to continue from the last checkpoint.",
}
DEFAULT_RESUME = "Nothing half-written was kept; run the same command again."


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised like Ctrl-C so that cleanup runs."""


@dataclass
class Caught:
    signal: int | None = None


@contextmanager
def handled() -> Iterator[Caught]:
    """Install the handlers for the duration of one command, then restore the old ones."""
    caught = Caught()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        caught.signal = signum
        raise Terminated() if signum == signal.SIGTERM else KeyboardInterrupt()

    previous = {}
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            if signal.getsignal(sig) is not signal.SIG_IGN:
                previous[sig] = signal.signal(sig, on_signal)
        except ValueError:  # not the main thread: leave signals alone
            pass
    try:
        yield caught
    except KeyboardInterrupt:
        caught.signal = caught.signal or signal.SIGINT
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def command_words(args: list[str]) -> str:
    words = []
    for a in args:
        if a.startswith("-"):
            break
        words.append(a)
        if len(words) == 2 or words[0] not in GROUPS:
            break
    return " ".join(words) or "the command"


def describe(args: list[str], signum: int) -> tuple[str, str]:
    """(what was interrupted, how to resume) for the message."""
    words = command_words(args)
    name = "SIGTERM" if signum == signal.SIGTERM else "Ctrl-C (SIGINT)"
    what = f"`ollama-tune {words}` was stopped by {name} before it finished."
    return what, RESUME.get(words.split(" ")[0], DEFAULT_RESUME)


def exit_code(signum: int) -> int:
    return 128 + signum
