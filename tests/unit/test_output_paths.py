"""Outputs that cannot be written, through the real CLI: one clear error naming the path.

A folder where the file should go, a file where a folder should be, a folder the user cannot
write to, a full disk (ENOSPC, simulated: the write raises it half-way, as a real disk does).
Never a traceback, never a partial file; `data split` writes both of its files or neither.
"""

from __future__ import annotations

import errno
import pathlib
import tempfile
from pathlib import Path

import pytest

from _cli import run_cli
from ollama_tune import _util

SUPPORT = Path(__file__).resolve().parents[2] / "examples" / "customer-support" / "train.jsonl"


def _fail(code: int, err: str) -> str:
    assert code == 1, err
    assert "Traceback" not in err
    return " ".join(err.split())


def _files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob("*") if p.is_file())


def test_output_that_is_a_folder_or_under_a_file(capsys, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    folder = tmp_path / "out"
    folder.mkdir()
    # data convert checks its output path up front (a usage error, exit 2) before writing.
    code, _, err = run_cli(capsys, "data", "convert", str(SUPPORT), str(folder))
    assert code == 2 and f"output {folder} is a folder" in err and "Traceback" not in err
    (tmp_path / "notes.txt").write_text("x", encoding="utf-8")
    target = tmp_path / "notes.txt" / "sub" / "out.jsonl"
    code, _, err = run_cli(capsys, "data", "convert", str(SUPPORT), str(target))
    assert code in (1, 2) and "notes.txt" in err and "Traceback" not in err, err
    code, _, err = run_cli(
        capsys, "customize", "--data", str(SUPPORT), "--base-model", "llama3.2:1b",
        "--model-name", "bot", "--output", str(folder), "--no-create",
    )  # fmt: skip
    assert code == 2 and f"--output {folder} is a folder" in err and "Traceback" not in err
    assert _files(tmp_path) == ["notes.txt"]


def test_a_folder_without_write_permission(capsys, tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    # Tests run as root here, where chmod does not stop writes: the OS answer is simulated.
    def denied(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise PermissionError(errno.EACCES, "Permission denied", kwargs.get("dir"))

    monkeypatch.setattr(tempfile, "mkstemp", denied)
    out = tmp_path / "ro" / "out.jsonl"
    code, _, err = run_cli(capsys, "data", "convert", str(SUPPORT), str(out))
    assert f"cannot write {out}: permission denied; nothing was written there" in _fail(code, err)
    assert not out.exists()


def _full_disk_after(monkeypatch, names: set[str]) -> None:  # type: ignore[no-untyped-def]
    """Writing the temporary file of any output in `names` fails half-way with ENOSPC."""
    real = pathlib.Path.write_text

    def write_text(self, data, *args, **kwargs):  # type: ignore[no-untyped-def]
        if any(self.name.startswith(f".{n}.") for n in names):
            real(self, data[: len(data) // 2], *args, **kwargs)
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(self, data, *args, **kwargs)

    monkeypatch.setattr(pathlib.Path, "write_text", write_text)


def test_a_full_disk_leaves_the_previous_output_untouched(capsys, tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "out.jsonl"
    out.write_text("previous\n", encoding="utf-8")
    _full_disk_after(monkeypatch, {"out.jsonl"})
    code, _, err = run_cli(capsys, "data", "convert", str(SUPPORT), str(out))
    text = _fail(code, err)
    assert f"cannot write {out}: no space left on the disk; nothing was written there" in text
    assert "Free some disk space" in text
    assert out.read_text(encoding="utf-8") == "previous\n" and _files(tmp_path) == ["out.jsonl"]


@pytest.mark.parametrize("full", ["train.jsonl", "test.jsonl"])
def test_split_on_a_full_disk_writes_both_files_or_neither(
    capsys, tmp_path, monkeypatch, full
) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "split"
    _full_disk_after(monkeypatch, {full})
    code, _, err = run_cli(capsys, "data", "split", str(SUPPORT), "--out", str(out))
    assert f"cannot write {out / full}: no space left on the disk" in _fail(code, err)
    assert _files(tmp_path) == []
    monkeypatch.undo()
    code, _, err = run_cli(capsys, "data", "split", str(SUPPORT), "--out", str(out), "--json")
    assert code == 0, err
    assert _files(out) == ["test.jsonl", "train.jsonl"]


def test_split_replaces_an_earlier_pair_only_when_both_are_written(
    capsys, tmp_path, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "split"
    code, _, _ = run_cli(capsys, "data", "split", str(SUPPORT), "--out", str(out), "--seed", "1")
    before = {n: (out / n).read_text(encoding="utf-8") for n in ("train.jsonl", "test.jsonl")}
    _full_disk_after(monkeypatch, {"test.jsonl"})
    code, _, err = run_cli(capsys, "data", "split", str(SUPPORT), "--out", str(out), "--seed", "2")
    _fail(code, err)
    after = {n: (out / n).read_text(encoding="utf-8") for n in ("train.jsonl", "test.jsonl")}
    assert after == before and _files(out) == ["test.jsonl", "train.jsonl"]


def test_atomic_group_puts_back_what_it_renamed_when_a_rename_fails(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from ollama_tune.errors import OutputError

    (tmp_path / "g").mkdir()
    a, b = tmp_path / "g" / "a.txt", tmp_path / "g" / "b.txt"
    a.write_text("old a", encoding="utf-8")
    b.write_text("old b", encoding="utf-8")
    real = _util.os.replace

    def replace(src, dst):  # type: ignore[no-untyped-def]
        if Path(dst) == b and not Path(src).name.endswith(".old.tmp"):  # tb -> b fails
            raise OSError(errno.EIO, "Input/output error")
        return real(src, dst)

    monkeypatch.setattr(_util.os, "replace", replace)
    with pytest.raises(OutputError, match=r"b\.txt"), _util.atomic_group([a, b]) as (ta, tb):
        ta.write_text("new a", encoding="utf-8")
        tb.write_text("new b", encoding="utf-8")
    assert (a.read_text(encoding="utf-8"), b.read_text(encoding="utf-8")) == ("old a", "old b")
    assert sorted(p.name for p in a.parent.iterdir()) == ["a.txt", "b.txt"]


def test_os_errors_outside_writes_are_still_one_line(capsys, tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    def boom(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise OSError(errno.EIO, "Input/output error", str(tmp_path / "disk"))

    monkeypatch.setattr("ollama_tune.data.split_examples", boom)  # imported when it runs
    code, _, err = run_cli(capsys, "data", "split", str(SUPPORT), "--out", str(tmp_path / "o"))
    assert code == 1 and "Traceback" not in err
    assert f"Input/output error: {tmp_path / 'disk'}" in " ".join(err.split())


def test_temp_folders_of_killed_runs_are_cleaned_when_the_same_output_is_written(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import subprocess
    import sys

    dead_pid = subprocess.Popen([sys.executable, "-c", "pass"])
    dead_pid.wait()  # its PID now names no process
    stale = tmp_path / f".merged.ollama-tune-{dead_pid.pid}.k3j2h1g0.tmp"
    (stale / "sub").mkdir(parents=True)
    (stale / "sub" / "model.safetensors").write_bytes(b"\0" * 1024)
    other = tmp_path / f".other.ollama-tune-{dead_pid.pid}.k3j2h1g0.tmp"  # another output's
    other.mkdir()
    fresh = _util.new_temp_dir(tmp_path / "merged")
    assert fresh.name.startswith(".merged.ollama-tune-") and fresh.is_dir()
    assert not stale.exists() and other.exists()
