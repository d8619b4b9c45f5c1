"""Issue 13: no data command loses, replaces or hangs on what the user gave (real CLI)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from _data_helpers import read_jsonl, seed_rows, write_jsonl

from _cli import run_cli

Capsys = pytest.CaptureFixture[str]


def _one_line_error(err: str) -> str:
    """The `Error:` message (one line; rich may wrap it on screen) after checking the form."""
    assert "Traceback" not in err and err.startswith("Error: "), err
    message = err.split("Hint:")[0]
    assert "Hint:" in err, err
    return " ".join(message.split())


def test_convert_onto_its_own_input_is_refused(tmp_path: Path, capsys: Capsys) -> None:
    data = write_jsonl(tmp_path / "d.jsonl", seed_rows(12))
    before = data.read_bytes()
    code, _, err = run_cli(capsys, "data", "convert", str(data), str(data))
    assert code == 2 and "is the input file" in _one_line_error(err)
    assert data.read_bytes() == before


def test_convert_onto_a_link_to_its_input_is_refused(tmp_path: Path, capsys: Capsys) -> None:
    data = write_jsonl(tmp_path / "d.jsonl", seed_rows(12))
    os.link(data, tmp_path / "hard.jsonl")
    (tmp_path / "soft.jsonl").symlink_to(data)
    for out in ("hard.jsonl", "soft.jsonl"):
        code, _, err = run_cli(capsys, "data", "convert", str(data), str(tmp_path / out))
        assert code == 2 and "is the input file" in err, out
    assert len(read_jsonl(data)) == 12


def test_convert_never_deletes_an_input_named_like_its_rejected_file(
    tmp_path: Path, capsys: Capsys
) -> None:
    # OUT.rejected.jsonl used to be removed as "stale" even when it was the input.
    data = write_jsonl(tmp_path / "out.rejected.jsonl", seed_rows(12))
    code, _, err = run_cli(capsys, "data", "convert", str(data), str(tmp_path / "out.jsonl"))
    assert code == 2 and "rejected-rows file" in _one_line_error(err)
    assert len(read_jsonl(data)) == 12


def test_convert_keeps_a_stale_rejected_file_and_says_so(tmp_path: Path, capsys: Capsys) -> None:
    data = write_jsonl(tmp_path / "d.jsonl", seed_rows(12))
    stale = tmp_path / "out.rejected.jsonl"
    stale.write_text("mine\n", encoding="utf-8")
    code, out, _ = run_cli(capsys, "data", "convert", str(data), str(tmp_path / "out.jsonl"))
    assert code == 0 and "stale-rejected" in out
    assert stale.read_text(encoding="utf-8") == "mine\n"
    assert len(read_jsonl(tmp_path / "out.jsonl")) == 12


def test_customize_output_onto_the_data_file_is_refused(tmp_path: Path, capsys: Capsys) -> None:
    data = write_jsonl(tmp_path / "d.jsonl", seed_rows(12))
    before = data.read_bytes()
    code, _, err = run_cli(
        capsys, "customize", "-d", str(data), "-b", "llama3", "-n", "x", "-o", str(data),
        "--no-create",
    )  # fmt: skip
    assert code == 2 and "is the input file" in _one_line_error(err)
    assert data.read_bytes() == before


def test_split_out_onto_the_input_is_refused(tmp_path: Path, capsys: Capsys) -> None:
    data = write_jsonl(tmp_path / "train.jsonl", seed_rows(12))
    before = data.read_bytes()
    code, _, err = run_cli(capsys, "data", "split", str(data), "--out", str(tmp_path))
    assert code == 2 and "is the input file" in _one_line_error(err)
    assert data.read_bytes() == before


@pytest.mark.parametrize("where", ["folder", "parent-is-file"])
def test_unusable_output_paths_are_one_clear_error(
    where: str, tmp_path: Path, capsys: Capsys
) -> None:
    data = write_jsonl(tmp_path / "d.jsonl", seed_rows(12))
    target = tmp_path if where == "folder" else data / "out.jsonl"
    code, _, err = run_cli(capsys, "data", "convert", str(data), str(target))
    line = _one_line_error(err)
    assert code == 2 and ("is a folder" in line or "is a file, not a folder" in line)
    code, _, err = run_cli(capsys, "data", "split", str(data), "--out", str(data / "sub"))
    assert code == 2 and "is a file, not a folder" in _one_line_error(err)


def test_dev_zero_is_refused_not_read(capsys: Capsys) -> None:
    code, _, err = run_cli(capsys, "data", "check", "/dev/zero")
    assert code == 1 and "not a regular file" in _one_line_error(err)


def test_a_fifo_is_refused_without_hanging(tmp_path: Path, capsys: Capsys) -> None:
    fifo = tmp_path / "pipe.jsonl"
    os.mkfifo(fifo)
    code, _, err = run_cli(capsys, "data", "convert", str(fifo), str(tmp_path / "o.jsonl"))
    assert code == 1 and "not a regular file" in _one_line_error(err)


def test_a_folder_as_data_is_one_clear_error(tmp_path: Path, capsys: Capsys) -> None:
    code, _, err = run_cli(capsys, "data", "check", str(tmp_path))
    assert code == 1 and "is a folder" in _one_line_error(err)


def test_an_oversized_file_is_refused_with_the_numbers(
    tmp_path: Path, capsys: Capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ollama_tune.data import paths

    data = write_jsonl(tmp_path / "d.jsonl", seed_rows(12))
    monkeypatch.setattr(paths, "MAX_DATA_BYTES", 100)
    monkeypatch.setattr(paths.read_data_file, "__defaults__", (100,))
    code, _, err = run_cli(capsys, "data", "check", str(data))
    assert code == 1 and "more than the 100 bytes" in _one_line_error(err)
