"""Issue 13: public demo data sets in the formats people bring, through the real CLI.

Samples (first rows of each, unmodified) and their sources: tests/data/formats/SOURCES.md.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from _data_helpers import read_jsonl, write_jsonl

from _cli import run_cli

Capsys = pytest.CaptureFixture[str]
FORMATS = Path(__file__).resolve().parents[1] / "data" / "formats"


def _check(capsys: Capsys, path: Path) -> dict[str, object]:
    code, out, err = run_cli(capsys, "data", "check", str(path), "--json")
    assert "Traceback" not in err and code in (0, 1)
    report: dict[str, object] = json.loads(out)
    return report


def _convert(capsys: Capsys, path: Path, out: Path) -> tuple[int, str]:
    code, stdout, err = run_cli(capsys, "data", "convert", str(path), str(out), "--to", "messages")
    assert "Traceback" not in err
    return code, stdout


def test_fastchat_sharegpt_loads_every_conversation(tmp_path: Path, capsys: Capsys) -> None:
    src = FORMATS / "fastchat_sharegpt.json"
    source_rows = json.loads(src.read_text(encoding="utf-8"))
    report = _check(capsys, src)
    assert report["usable_rows"] == report["rows_read"] == len(source_rows) == 12
    assert report["formats"] == {str(src): "sharegpt"}
    code, _ = _convert(capsys, src, tmp_path / "m.jsonl")
    written = read_jsonl(tmp_path / "m.jsonl")
    assert code == 0 and len(written) == 12
    for row, conv in zip(written, source_rows, strict=True):
        roles = [{"human": "user", "gpt": "assistant"}[t["from"]] for t in conv["conversations"]]
        assert [m["role"] for m in row["messages"]] == roles
        assert [m["content"] for m in row["messages"]] == [
            t["value"].strip() for t in conv["conversations"]
        ]


def test_llamafactory_toolcall_sharegpt_keeps_plain_rows_and_says_why_not_tool_rows(
    tmp_path: Path, capsys: Capsys
) -> None:
    src = FORMATS / "llamafactory_glaive_toolcall.json"
    rows = json.loads(src.read_text(encoding="utf-8"))
    tool_rows = [
        i
        for i, r in enumerate(rows)
        if any(t["from"] == "function_call" for t in r["conversations"])
    ]
    report = _check(capsys, src)
    issues = report["issues"]
    assert isinstance(issues, list)
    tool_errors = [i for i in issues if i["code"] == "tool-turn"]
    assert report["usable_rows"] == len(rows) - len(tool_rows)
    assert len({i["line"] for i in tool_errors}) == len(tool_rows)
    assert "function_call" in tool_errors[0]["message"] and tool_errors[0]["hint"]
    code, out = _convert(capsys, src, tmp_path / "m.jsonl")
    rejected = read_jsonl(tmp_path / "m.rejected.jsonl")
    assert code == 1 and len(read_jsonl(tmp_path / "m.jsonl")) + len(rejected) == len(rows)
    assert "unknown-key" in out and "'tools'" in out  # the dropped key is named


def test_sharegpt_role_content_variant_and_system_tag(tmp_path: Path, capsys: Capsys) -> None:
    src = FORMATS / "llamafactory_mllm_messages.json"
    report = _check(capsys, src)
    assert report["usable_rows"] == 3  # role/content turns under "messages"; "images" is named
    row = {
        "system": "丁寧に答えてください。",
        "conversations": [
            {"role": "user", "content": "送料は？"},
            {"role": "assistant", "content": "550円です。"},
        ],
    }
    path = write_jsonl(tmp_path / "s.jsonl", [row])
    code, _ = _convert(capsys, path, tmp_path / "m.jsonl")
    assert code == 0
    assert read_jsonl(tmp_path / "m.jsonl")[0]["messages"][0] == {
        "role": "system",
        "content": "丁寧に答えてください。",
    }


def test_alpaca_demo_loads_fully(capsys: Capsys) -> None:
    src = FORMATS / "llamafactory_alpaca_en.json"
    report = _check(capsys, src)
    assert report["usable_rows"] == report["rows_read"] == 20


def test_mlx_plain_text_is_one_clear_error_naming_the_format(
    tmp_path: Path, capsys: Capsys
) -> None:
    src = FORMATS / "mlx_lora_text.jsonl"
    report = _check(capsys, src)
    issues = report["issues"]
    assert isinstance(issues, list)
    (plain,) = [i for i in issues if i["code"] == "plain-text"]
    assert report["usable_rows"] == 0 and report["rows_read"] == 20
    assert "mlx-lm" in plain["message"] and "20 rows" in plain["message"]
    assert '"prompt"' in plain["hint"] and '"completion"' in plain["hint"]
    code, out = _convert(capsys, src, tmp_path / "m.jsonl")
    assert (
        code == 1 and "rejected 20" in out and len(read_jsonl(tmp_path / "m.rejected.jsonl")) == 20
    )


def test_openai_row_without_a_user_turn_gets_a_clear_reason(tmp_path: Path, capsys: Capsys) -> None:
    row = {"messages": [{"role": "system", "content": "s"}, {"role": "assistant", "content": "a"}]}
    report = _check(capsys, write_jsonl(tmp_path / "o.jsonl", [row]))
    issues = report["issues"]
    assert isinstance(issues, list)
    (issue,) = [i for i in issues if i["code"] == "missing-field"]
    assert "no user turn" in issue["message"] and "few-shot" in issue["message"]


def test_llamafactory_dataset_info_names_the_columns(tmp_path: Path, capsys: Capsys) -> None:
    src = FORMATS / "dataset_info" / "renamed_alpaca.json"
    report = _check(capsys, src)
    issues = report["issues"]
    assert isinstance(issues, list)
    assert report["usable_rows"] == report["rows_read"] == 12
    assert any(i["code"] == "dataset-info" and "q=instruction" in i["message"] for i in issues)
    code, _ = run_cli(capsys, "data", "convert", str(src), str(tmp_path / "s.jsonl"))[:2]
    original = json.loads((FORMATS / "llamafactory_alpaca_en.json").read_text(encoding="utf-8"))
    assert code == 0
    assert [r["output"] for r in read_jsonl(tmp_path / "s.jsonl")] == [
        r["output"].strip() for r in original[:12]
    ]
