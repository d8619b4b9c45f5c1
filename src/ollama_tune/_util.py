"""Small shared helpers: atomic writes, hashing, user/cache directories.

Outputs are written to a temporary name in the same folder and renamed, so an interrupted
command never leaves a half-written file behind. Temporary names say whose they are
(`.NAME.ollama-tune-PID.XXXX.tmp`); the next write of the same output removes the ones whose
process is gone (a run killed by SIGKILL cannot clean up after itself). A write that fails
(full disk, read-only folder, a folder where a file should be) is one `OutputError` naming the
path, never a traceback, and leaves nothing behind.
"""

from __future__ import annotations

import errno
import glob
import hashlib
import json
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

from ollama_tune.errors import OutputError

# (description, completed, total or None); the CLI turns calls into a rich progress bar.
ProgressFn = Callable[[str, float, float | None], None]


def noop_progress(description: str, completed: float, total: float | None) -> None:
    """Default progress callback: library functions never print."""


TMP_TAG = "ollama-tune"
_TMP_TAIL = re.compile(r"(\d+)\.[A-Za-z0-9_]+\.tmp")
_WRITE_ERRNOS = {
    errno.ENOSPC: "no space left on the disk",
    errno.EDQUOT: "the disk quota is exceeded",
    errno.EFBIG: "the file is too large for this file system",
    errno.EROFS: "the file system is read-only",
    errno.EACCES: "permission denied",
    errno.EPERM: "permission denied",
    errno.EISDIR: "it is a folder",
    errno.ENOTDIR: "a part of the path is a file, not a folder",
}


def temp_prefix(target: Path) -> str:
    """Temporary files of `target` are `.NAME.ollama-tune-PID.XXXX.tmp`: whose, and for what."""
    return f".{target.name}.{TMP_TAG}-{os.getpid()}."


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # alive, but someone else's
        return True
    return True


def clean_stale_temps(target: str | os.PathLike[str]) -> list[Path]:
    """Remove temporary files/folders of `target` left by ollama-tune runs that were killed."""
    target = Path(target)
    prefix = f".{target.name}.{TMP_TAG}-"
    removed: list[Path] = []
    with suppress(OSError):
        for p in target.parent.glob(glob.escape(prefix) + "*.tmp"):
            m = _TMP_TAIL.fullmatch(p.name[len(prefix) :])
            if m is None or _pid_alive(int(m.group(1))):
                continue  # a run still writing it, or not one of ours
            with suppress(OSError):
                shutil.rmtree(p) if p.is_dir() and not p.is_symlink() else p.unlink()
                removed.append(p)
    return removed


def new_temp_dir(target: str | os.PathLike[str]) -> Path:
    """A temporary folder next to `target` (to be renamed onto it), named and cleaned like files."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    clean_stale_temps(target)
    return Path(tempfile.mkdtemp(prefix=temp_prefix(target), suffix=".tmp", dir=target.parent))


def output_error(target: Path, exc: OSError) -> OutputError:
    """The one message for an output that cannot be written: which path, and why."""
    why = _WRITE_ERRNOS.get(exc.errno or 0, exc.strerror or str(exc))
    hints = {
        errno.ENOSPC: "Free some disk space, or write the output to another disk.",
        errno.EDQUOT: "Free some space in your quota, or write the output elsewhere.",
        errno.EISDIR: "Give a file name, not a folder.",
    }
    return OutputError(
        f"cannot write {target}: {why}; nothing was written there",
        hint=hints.get(exc.errno or 0, "Choose an output path in a folder you can write to."),
    )


def _prepare(target: Path) -> Path:
    """Check `target` can be an output, clean stale temps, and create its temporary file."""
    if target.is_dir():
        raise OutputError(
            f"cannot write {target}: it is a folder", hint="Give a file name, not a folder."
        )
    for parent in target.parents:
        if parent.exists():
            if not parent.is_dir():
                raise OutputError(
                    f"cannot write {target}: {parent} is a file, not a folder",
                    hint="Choose an output path whose folders are folders.",
                )
            break
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        clean_stale_temps(target)
        fd, tmp = tempfile.mkstemp(prefix=temp_prefix(target), suffix=".tmp", dir=target.parent)
    except OSError as exc:
        raise output_error(target, exc) from None
    os.close(fd)
    tmp_path = Path(tmp)
    # mkstemp creates 0600 files; outputs (reports, bundles) get the usual umask-based mode.
    umask = os.umask(0)
    os.umask(umask)
    tmp_path.chmod(0o666 & ~umask)
    return tmp_path


def _group_target(path: Path) -> Path | None:
    """The output a temporary path of ours stands for (None when `path` is not one)."""
    m = re.fullmatch(rf"\.(.+)\.{TMP_TAG}-\d+\.[A-Za-z0-9_]+\.tmp", path.name)
    return path.with_name(m.group(1)) if m else None


def _ours(exc: OSError, *paths: Path) -> bool:
    """An OSError raised while writing our temporary file (not, say, reading an input)."""
    return exc.errno in _WRITE_ERRNOS and (
        exc.filename is None or str(exc.filename) in {str(p) for p in paths}
    )


def atomic_dir(target: Path, fill: Callable[[Path], Any]) -> Path:
    """Write a directory through `fill(tmp_dir)` then swap it in, so readers never see half."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = new_temp_dir(target)  # .NAME.ollama-tune-PID.*.tmp; a killed run's is cleaned next time
    try:
        fill(tmp)
        old = target.with_name(f".{target.name}.old")
        if target.exists():
            shutil.rmtree(old, ignore_errors=True)
            os.rename(target, old)
        os.rename(tmp, target)
        shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


@contextmanager
def atomic_path(target: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path next to `target`; rename it onto `target` only on success.

    A write that fails (full disk, read-only folder, …) raises `OutputError` naming `target`
    and leaves neither a partial `target` nor the temporary file.
    """
    target = Path(target)
    real = _group_target(target)
    if real is not None:  # already a temporary file of `atomic_group`: write it directly
        try:
            yield target
        except OSError as exc:
            if _ours(exc, target):
                raise output_error(real, exc) from None
            raise
        return
    tmp_path = _prepare(target)
    try:
        yield tmp_path
        os.replace(tmp_path, target)
    except OSError as exc:
        if _ours(exc, tmp_path, target):
            raise output_error(target, exc) from None
        raise
    finally:
        with suppress(OSError):
            tmp_path.unlink()


@contextmanager
def atomic_group(targets: Sequence[str | os.PathLike[str]]) -> Iterator[list[Path]]:
    """Temporary paths for several outputs that replace their targets all together, or none.

    Every file is written completely first; only then are they renamed into place (renames
    need no space), and if one rename fails the ones done are put back.
    """
    paths = [Path(t) for t in targets]
    tmps: list[Path] = []
    try:
        for p in paths:
            tmps.append(_prepare(p))
        try:
            yield tmps
        except OSError as exc:
            bad = next((p for p, t in zip(paths, tmps, strict=False) if _ours(exc, t, p)), None)
            if bad is not None:
                raise output_error(bad, exc) from None
            raise
        _swap_all(paths, tmps)
    finally:
        for t in tmps:
            with suppress(OSError):
                t.unlink()


def _swap_all(paths: list[Path], tmps: list[Path]) -> None:
    backups: list[tuple[Path, Path | None]] = []
    try:
        for p, t in zip(paths, tmps, strict=True):
            old = None
            if p.exists():
                old = p.with_name(temp_prefix(p) + "old.tmp")
                os.replace(p, old)
            backups.append((p, old))
            os.replace(t, p)
    except OSError as exc:
        for p, old in reversed(backups):
            with suppress(OSError):
                if old is not None:
                    os.replace(old, p)
                else:
                    p.unlink()
        raise output_error(backups[-1][0] if backups else paths[0], exc) from None
    for _, old in backups:
        if old is not None:
            with suppress(OSError):
                old.unlink()


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
