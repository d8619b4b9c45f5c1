"""Run one half of a CPU-bound job in a forked child while the parent does the other half.

`data check` of a large file spends most of its time in pure-Python checks; the data-set-wide
ones (duplicates, conflicts) and the per-row ones need the same loaded rows and nothing from
each other. Forking shares the rows for free (pickling 100,000 rows costs more than checking
them), and only the child's small result travels back. Where forking is unsafe or absent
(threads running, torch loaded, not Linux) the job simply runs in the parent.
"""

from __future__ import annotations

import contextlib
import gc
import os
import sys
import threading
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

T = TypeVar("T")


def can_fork() -> bool:
    """Forking copies one thread; a process with other threads (or torch's OpenMP pool, which
    Python cannot see) may hold locks the child would wait on forever."""
    return (
        sys.platform == "linux"
        and (os.cpu_count() or 1) > 1
        and threading.active_count() == 1
        and "torch" not in sys.modules
        and not os.environ.get("OLLAMA_TUNE_NO_FORK")
    )


def _child(fn: Callable[[], Any], write_fd: int) -> None:
    import pickle

    try:
        payload = pickle.dumps(("ok", fn()), protocol=pickle.HIGHEST_PROTOCOL)
    except BaseException:
        payload = pickle.dumps(("failed", None))
    with os.fdopen(write_fd, "wb") as pipe:
        pipe.write(payload)


def start(fn: Callable[[], T]) -> Callable[[], T]:
    """Start `fn` in a forked child; the returned function waits for its result.

    If the child cannot be started or fails, waiting runs `fn` in the parent, so the result
    (or the exception) is always the one `fn` gives.
    """
    if not can_fork():
        return fn
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: compute, send, leave without running the parent's cleanups
        os.close(read_fd)
        code = 0
        try:
            _child(fn, write_fd)
        except BaseException:
            code = 1
        os._exit(code)
    os.close(write_fd)

    def wait() -> T:
        import pickle

        with os.fdopen(read_fd, "rb") as pipe:
            data = pipe.read()
        os.waitpid(pid, 0)
        try:
            status, value = pickle.loads(data)
        except Exception:
            status, value = "failed", None
        return value if status == "ok" else fn()

    return wait


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """No cyclic garbage collection while building many small acyclic objects: CPython would
    otherwise rescan every live row again and again (about 10% of `data check`)."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()
