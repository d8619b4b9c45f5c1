"""`ollama-tune modelfile lint|show` through the CLI: every problem, with file:line."""

from __future__ import annotations

import json
from pathlib import Path

from _cli import run_cli

# The guide's own style, with the mistakes people make when they copy it.
BAD = """\
FROM ./weights/missing.gguf
PARAMETER temperature 0.7     # 生成パラメータ
PARAMETER top_p 1.5
PARAMETER tfs_z 1
PARAMETER mirostat 2
PARAMETER num_ctxx 4096
MESSAGE user 質問例
MESSAGE user 質問例2
"""


run = run_cli


def test_lint_reports_every_problem_with_its_line(capsys, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "Modelfile"
    path.write_text(BAD, encoding="utf-8")
    code, out, _ = run(capsys, "modelfile", "lint", str(path), "--json")
    assert code == 1
    found = {(i["line"], i["code"], i["severity"]) for i in json.loads(out)}
    assert found == {
        (1, "from-not-found", "error"),
        (2, "bad-value", "error"),
        (3, "out-of-range", "error"),
        (4, "removed-parameter", "error"),
        (5, "ignored-parameter", "warning"),
        (6, "unknown-parameter", "error"),
        (8, "message-order", "warning"),  # two user turns in a row; and it ends on a user turn
    }
    code, out, _ = run(capsys, "modelfile", "lint", str(path))
    assert code == 1 and "inline comments" in out and "5 error(s), 3 warning(s)" in out


def test_lint_clean_file_and_warnings_only_exit_0(capsys, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "m.gguf").write_bytes(b"GGUF")
    path = tmp_path / "Modelfile"
    path.write_text("FROM ./m.gguf\nPARAMETER temperature 0.2\n", encoding="utf-8")
    code, out, _ = run(capsys, "modelfile", "lint", str(path))
    assert code == 0 and "no problems" in out
    path.write_text("FROM llama3.2:1b\nPARAMETER penalize_newline true\n", encoding="utf-8")
    code, out, _ = run(capsys, "modelfile", "lint", str(path))
    assert code == 0 and "deprecated" in out


def test_lint_parse_error_and_missing_from(capsys, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "Modelfile"
    path.write_text("SYSTEM hi\nMESSAGE robot hello\n", encoding="utf-8")
    code, _, err = run(capsys, "modelfile", "lint", str(path))
    assert code == 1 and f"{path}:2" in "".join(err.split()) and "robot" in err
    path.write_text("SYSTEM hi\n", encoding="utf-8")
    code, out, _ = run(capsys, "modelfile", "lint", str(path), "--json")
    assert code == 1 and json.loads(out)[0]["code"] == "missing-from"


def test_show_normalises_and_prints_create_args(capsys, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "Modelfile"
    path.write_text(
        'from llama3.2:1b\nparameter temperature 0.5\nsystem "やあ"\n', encoding="utf-8"
    )
    code, out, _ = run(capsys, "modelfile", "show", str(path))
    assert code == 0 and out == "FROM llama3.2:1b\nSYSTEM やあ\nPARAMETER temperature 0.5\n"
    code, out, _ = run(capsys, "modelfile", "show", str(path), "--create-args")
    assert json.loads(out) == {
        "from": "llama3.2:1b",
        "system": "やあ",
        "parameters": {"temperature": 0.5},
    }
