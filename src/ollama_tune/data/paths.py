"""Safe paths for the data stage: read only regular files of a sane size, never write onto an input.

A data command reads user files and writes new ones; these checks run before either, so a
typo (`data convert X X`, `--out` onto the data folder, `/dev/zero`, a FIFO) ends in one clear
message instead of a lost file, a MemoryError or a hang.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable
from pathlib import Path

from ollama_tune.errors import DataError, UsageError

# The largest data file read into memory (question→answer sets are far smaller than this).
MAX_DATA_BYTES = 1 << 30


def same_file(a: str | os.PathLike[str], b: str | os.PathLike[str]) -> bool:
    """True when `a` and `b` name one file: equal resolved paths, or the same inode (links)."""
    pa, pb = Path(a), Path(b)
    if pa.resolve() == pb.resolve():
        return True
    try:
        return os.path.samefile(pa, pb)
    except OSError:
        return False  # one of them does not exist yet


def refuse_input_as_output(
    outputs: Iterable[str | os.PathLike[str]], inputs: Iterable[str | os.PathLike[str]], flag: str
) -> None:
    """UsageError when writing any of `outputs` would replace one of `inputs`."""
    input_list = list(inputs)
    for out in outputs:
        for src in input_list:
            if same_file(out, src):
                raise UsageError(
                    f"{flag} {out} is the input file {src}: writing it would replace your data",
                    hint="choose another output path (inputs are never overwritten)",
                )


def check_output_file(path: str | os.PathLike[str], flag: str) -> None:
    """UsageError when `path` cannot become a file: it is a folder, or a parent is a file."""
    p = Path(path)
    if p.is_dir():
        raise UsageError(
            f"{flag} {p} is a folder, expected a file name",
            hint=f"name a file inside it, e.g. {p / 'out.jsonl'}",
        )
    for parent in p.parents:
        if parent.exists() and not parent.is_dir():
            raise UsageError(
                f"{flag} {p}: {parent} is a file, not a folder",
                hint="choose a path whose folders are folders",
            )


def check_output_dir(path: str | os.PathLike[str], flag: str) -> None:
    """UsageError when `path` cannot be a folder (it, or a parent, is a file)."""
    p = Path(path)
    for candidate in (p, *p.parents):
        if candidate.exists() and not candidate.is_dir():
            raise UsageError(
                f"{flag} {p}: {candidate} is a file, not a folder",
                hint=f"choose a folder for {flag}",
            )


def read_data_file(path: Path, limit: int = MAX_DATA_BYTES) -> bytes:
    """The bytes of a regular file of at most `limit` bytes; DataError (never a hang) otherwise."""
    try:
        # stat before open: opening a FIFO blocks until someone writes to it.
        info = os.stat(path)
    except OSError as exc:
        raise DataError(
            f"cannot read {path}: {exc.strerror or exc}",
            hint="check the path (and that it is a file you can read)",
        ) from None
    if stat.S_ISDIR(info.st_mode):
        raise DataError(
            f"{path} is a folder, expected a data file",
            hint="pass the data files inside it (e.g. its *.jsonl)",
        )
    if not stat.S_ISREG(info.st_mode):
        raise DataError(
            f"{path} is not a regular file (a device, pipe or socket)",
            hint="save the data to a file first and pass that file",
        )
    if info.st_size > limit:
        raise DataError(
            f"{path} is {info.st_size:,} bytes, more than the {limit:,} bytes a data file may have",
            hint="split it into smaller files, or remove what is not question→answer data",
        )
    try:
        with open(path, "rb") as fh:
            data = fh.read(limit + 1)
    except OSError as exc:
        raise DataError(
            f"cannot read {path}: {exc.strerror or exc}",
            hint="check the path (and that it is a file you can read)",
        ) from None
    if len(data) > limit:  # it grew while we read it
        raise DataError(f"{path} is more than {limit:,} bytes", hint="split it into smaller files")
    return data
