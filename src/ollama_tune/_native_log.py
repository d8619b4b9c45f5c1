"""Keep llama.cpp's native log out of the terminal (library code never prints).

llama.cpp writes to file descriptor 2 and, through llama-cpp-python's log callback, to
`sys.stderr`; that callback maps ggml's WARN level to ERROR, so `verbose=False` still lets
per-tensor and context warnings through. Both go to a temp file whose text can be put into
an error message.
"""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager, redirect_stderr
from pathlib import Path


@contextmanager
def captured_native_stderr() -> Iterator[Path]:
    """Redirect fd 2 and `sys.stderr` to a temp file for the block; yield its path."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.NamedTemporaryFile("w+", prefix="llama-cpp-", suffix=".log") as fh:
        os.dup2(fh.fileno(), 2)
        try:
            with redirect_stderr(fh):
                yield Path(fh.name)
        finally:
            fh.flush()
            os.dup2(saved, 2)
            os.close(saved)


def log_tail(path: Path, lines: int = 5) -> str:
    """The last lines of a captured log (call it inside the block), for error messages."""
    sys.stderr.flush()
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    return "\n".join(text.strip().splitlines()[-lines:])
