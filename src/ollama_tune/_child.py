"""Run one library call in a fresh Python process and bring its result back.

Why: after training, the process keeps torch's OpenMP threads and the allocator's freed blocks;
llama.cpp answered 2.8× slower in that process than in a fresh one, and the RSS stayed at the
training peak (BENCHMARKS.md, issue 10). A spawned child hands both back when it exits.

The child's progress calls are forwarded to the parent's callback; its exception is raised in
the parent (the same class when it pickles); Ctrl-C or SIGTERM of the parent stops the child,
lets its cleanup run, and raises KeyboardInterrupt in the parent.
"""

from __future__ import annotations

import multiprocessing
import os
import pickle
import queue as queue_mod
import signal
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any, TypeVar

from ollama_tune._util import ProgressFn, noop_progress
from ollama_tune.errors import OllamaTuneError, TrainingError

T = TypeVar("T")
_POLL_S = 0.5
_STOP_GRACE_S = 60.0  # a child saving a checkpoint on Ctrl-C gets this long before a SIGKILL


def _stop_once_on_signal() -> None:
    """The first SIGINT/SIGTERM raises KeyboardInterrupt; later ones (the terminal's SIGINT and
    the parent's SIGTERM both arrive) are ignored so that cleanup is not cut short."""

    def on_signal(signum: int, frame: FrameType | None) -> None:
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, signal.SIG_IGN)
        raise KeyboardInterrupt

    for sig in (signal.SIGINT, signal.SIGTERM):
        if signal.getsignal(sig) is not signal.SIG_IGN:  # a background job's SIGINT stays ignored
            signal.signal(sig, on_signal)


def _portable(exc: BaseException) -> BaseException:
    """`exc` if it survives pickling, else an OllamaTuneError that keeps its message."""
    try:
        back = pickle.loads(pickle.dumps(exc))
        if isinstance(back, BaseException) and str(back) == str(exc):
            return back  # type: ignore[no-any-return]
    except Exception:  # any pickling failure means "send a plain copy"
        pass
    where = traceback.format_exception_only(type(exc), exc)[-1].strip()
    return TrainingError(f"the child process failed: {where}")


def _relayed(out: Any, name: str) -> Callable[..., None]:
    def call(*args: Any) -> None:
        out.put(("relay", name, args))

    return call


def _child_main(
    out: Any,
    fn: Callable[..., Any],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    relay: tuple[str, ...] = (),
) -> None:
    _stop_once_on_signal()
    callbacks = {name: _relayed(out, name) for name in ("progress", *relay)}
    try:
        result = fn(*args, **callbacks, **kwargs)
    except KeyboardInterrupt:
        out.put(("interrupted",))
        return
    except BaseException as exc:  # every failure goes back to the parent
        out.put(("error", _portable(exc)))
        return
    out.put(("ok", result))


@contextmanager
def _environment(extra: dict[str, str]) -> Iterator[None]:
    """os.environ plus `extra` while a child is spawned (it inherits the process environment)."""
    saved = {k: os.environ.get(k) for k in extra}
    os.environ.update(extra)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _stop(proc: Any) -> None:
    if proc.is_alive():
        proc.terminate()  # SIGTERM: the child raises KeyboardInterrupt, its `finally`s run
        proc.join(_STOP_GRACE_S)
    if proc.is_alive():
        proc.kill()
        proc.join()


def _died(what: str, code: int | None) -> OllamaTuneError:
    if code is not None and code < 0 and -code == signal.SIGKILL:
        return TrainingError(
            f"the {what} process was killed (SIGKILL) before it finished",
            hint="this is usually the kernel's out-of-memory killer: lower the batch size or "
            "max_seq_len, close other programs, then run the same command again to resume",
        )
    return TrainingError(
        f"the {what} process ended (exit code {code}) without a result",
        hint="run the same command again to resume; OLLAMA_TUNE_DEBUG=1 shows more",
    )


def call_in_child(
    fn: Callable[..., T],
    *args: Any,
    progress: ProgressFn | None = None,
    what: str = "training",
    env: dict[str, str] | None = None,
    relay: dict[str, Callable[..., Any]] | None = None,
    **kwargs: Any,
) -> T:
    """`fn(*args, progress=..., **kwargs)` in a spawned interpreter; `fn` must be importable.

    `env` is added to the child's environment only (LD_PRELOAD must be set before it starts).
    `relay` names more callback arguments of `fn` (e.g. `on_log`): the child's calls to them
    run the given callables in this process, in order with its progress calls.
    """
    callbacks: dict[str, Callable[..., Any]] = {"progress": progress or noop_progress}
    callbacks |= relay or {}
    ctx = multiprocessing.get_context("spawn")  # fork would copy the very state we leave behind
    out = ctx.Queue()
    proc = ctx.Process(
        target=_child_main,
        args=(out, fn, args, kwargs, tuple(relay or ())),
        name=f"ollama-tune {what}",
    )
    with _environment(env or {}):
        proc.start()
    try:
        while True:
            try:
                msg = out.get(timeout=_POLL_S)
            except queue_mod.Empty:
                if not proc.is_alive() and out.empty():
                    proc.join()
                    raise _died(what, proc.exitcode) from None
                continue
            if msg[0] == "relay":
                callbacks[msg[1]](*msg[2])
                continue
            proc.join()
            if msg[0] == "ok":
                return msg[1]  # type: ignore[no-any-return]
            if msg[0] == "interrupted":
                raise KeyboardInterrupt
            raise msg[1]
    except BaseException:
        _stop(proc)
        raise
