"""Small shared helpers: atomic writes, hashing, user/cache directories.

Outputs are written to a temporary name in the same folder and renamed, so an interrupted
command never leaves a half-written file behind.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

# (description, completed, total or None); the CLI turns calls into a rich progress bar.
ProgressFn = Callable[[str, float, float | None], None]


def noop_progress(description: str, completed: float, total: float | None) -> None:
    """Default progress callback: library functions never print."""


@contextmanager
def atomic_path(target: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path next to `target`; rename it onto `target` only on success."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    # mkstemp creates 0600 files; outputs (reports, bundles) get the usual umask-based mode.
    umask = os.umask(0)
    os.umask(umask)
    tmp_path.chmod(0o666 & ~umask)
    try:
        yield tmp_path
        os.replace(tmp_path, target)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def atomic_write_text(target: str | os.PathLike[str], text: str) -> Path:
    with atomic_path(target) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(target)


def atomic_write_bytes(target: str | os.PathLike[str], data: bytes) -> Path:
    with atomic_path(target) as tmp:
        tmp.write_bytes(data)
    return Path(target)


def atomic_write_json(target: str | os.PathLike[str], obj: Any) -> Path:
    text = json.dumps(obj, ensure_ascii=False, indent=2, default=str) + "\n"
    return atomic_write_text(target, text)


def sha256_file(path: str | os.PathLike[str], chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def home_dir() -> Path:
    """User directory for ollama-tune state (`OLLAMA_TUNE_HOME`, default ~/.ollama-tune)."""
    return Path(os.environ.get("OLLAMA_TUNE_HOME") or Path.home() / ".ollama-tune")


def cache_dir() -> Path:
    """Cache for derived artefacts, e.g. dequantised GGUF bases (`OLLAMA_TUNE_CACHE`)."""
    default = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "ollama-tune"
    path = Path(os.environ.get("OLLAMA_TUNE_CACHE") or default)
    path.mkdir(parents=True, exist_ok=True)
    return path
