"""Issue 13: values are never changed without a word (real CLI, real files).

Numbers are not text, whitespace Ollama strips is trimmed with a note, `data convert` shows
every warning, Alpaca `history` becomes turns, duplicate keys are named, formats per row.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from _data_helpers import read_jsonl, seed_rows, write_jsonl

from _cli import run_cli
from ollama_tune.modelfile import Modelfile

Capsys = pytest.CaptureFixture[str]


def _check_json(capsys: Capsys, *files: Path) -> tuple[int, dict[str, object]]:
    code, out, err = run_cli(capsys, "data", "check", *map(str, files), "--json")
    assert "Traceback" not in err
    return code, json.loads(out)


def _issues(report: dict[str, object]) -> list[dict[str, object]]:
    issues = report["issues"]
    assert isinstance(issues, list)
    return issues


@pytest.mark.parametrize("text", ["123", "1.50", "1e3", "-0", "NaN", "Infinity", "true"])
def test_a_non_string_answer_is_an_error_quoting_the_exact_value(
    text: str, tmp_path: Path, capsys: Capsys
) -> None:
    path = tmp_path / "d.jsonl"
    good = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in seed_rows(11))
    path.write_text(good + '{"instruction": "価格は？", "output": ' + text + "}\n", "utf-8")
    code, report = _check_json(capsys, path)
    (issue,) = [i for i in _issues(report) if i["severity"] == "error"]
    assert code == 1 and issue["line"] == 12 and issue["code"] == "wrong-type"
    assert f"is {text} (a JSON " in str(issue["message"]) and f'"{text}"' in str(issue["hint"])
    code, out, _ = run_cli(capsys, "data", "convert", str(path), str(tmp_path / "o.jsonl"))
    assert code == 1 and "read 12, written 11" in out and "rejected 1" in out
    assert f"{path}:12" in out and text in out


def test_a_number_in_a_chat_turn_or_question_is_an_error(tmp_path: Path, capsys: Capsys) -> None:
    rows = [
        *seed_rows(10),
        {"instruction": 42, "output": "はい"},
        {"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": 3.0}]},
    ]
    code, report = _check_json(capsys, write_jsonl(tmp_path / "d.jsonl", rows))
    errors = [(i["line"], i["message"]) for i in _issues(report) if i["severity"] == "error"]
    assert code == 1
    assert errors == [
        (11, "'instruction' is 42 (a JSON number), expected text"),
        (12, "messages[1].content is 3.0 (a JSON number), expected text"),
    ]


def _faq_with_full_width_spaces(tmp_path: Path, n: int) -> Path:
    rows = seed_rows(n)
    for row in rows:
        row["output"] += "\u3000"  # a trailing full-width space, common in Japanese text
    rows[3]["instruction"] = "\u3000 " + rows[3]["instruction"] + "\n"
    return write_jsonl(tmp_path / "faq.jsonl", rows)


def test_surrounding_whitespace_is_trimmed_with_a_note_counting_rows(
    tmp_path: Path, capsys: Capsys
) -> None:
    path = _faq_with_full_width_spaces(tmp_path, 60)
    code, report = _check_json(capsys, path)
    (note,) = [i for i in _issues(report) if i["code"] == "whitespace-trimmed"]
    assert code == 0 and report["usable_rows"] == 60 and note["severity"] == "note"
    assert "in 60 rows" in str(note["message"]) and "U+3000" in str(note["message"])
    code, out, _ = run_cli(capsys, "data", "convert", str(path), str(tmp_path / "o.jsonl"))
    assert code == 0 and "whitespace-trimmed" in out
    written = read_jsonl(tmp_path / "o.jsonl")
    assert len(written) == 60 and not any(r["output"].endswith("\u3000") for r in written)
    assert written[3]["instruction"] == seed_rows(60)[3]["instruction"]
    code, _, err = run_cli(capsys, "data", "check", str(path), "--strict")
    assert code == 0, err  # a note is not a warning: --strict does not fail on it


def test_customize_uses_rows_with_full_width_spaces_as_examples(
    tmp_path: Path, capsys: Capsys
) -> None:
    path = _faq_with_full_width_spaces(tmp_path, 12)
    mf_path = tmp_path / "Modelfile"
    code, out, err = run_cli(
        capsys, "customize", "-d", str(path), "-b", "llama3", "-n", "x", "-o", str(mf_path),
        "--no-create", "--shots", "4",
    )  # fmt: skip
    assert code == 0, err
    assert "4 example pair(s)" in out and "whitespace" in out and "12 rows" in out
    mf = Modelfile.read(mf_path)
    assert len(mf.messages) == 8 and all(c == c.strip() for _, c in mf.messages)


def test_customize_with_fewer_usable_rows_than_shots_says_why(
    tmp_path: Path, capsys: Capsys
) -> None:
    rows = seed_rows(8)  # rows 2, 5 and 8 are held out as test questions
    rows[2]["output"] = "途中に\u3000全角空白"  # Ollama's parser drops it inside a value
    path = write_jsonl(tmp_path / "faq.jsonl", rows)
    code, out, err = run_cli(
        capsys, "customize", "-d", str(path), "-b", "llama3", "-n", "x",
        "-o", str(tmp_path / "Modelfile"), "--no-create", "--shots", "5",
    )  # fmt: skip
    assert code == 0, err
    flat = " ".join(out.split())
    assert "4 of the 5 example(s) asked for" in flat and "the data has 8 row(s)" in flat
    assert f"3 held out as test questions ({path}:2, {path}:5, {path}:8)" in flat
    assert f"1 cannot be written in a Modelfile ({path}:3)" in flat


def test_convert_shows_unknown_and_duplicate_keys(tmp_path: Path, capsys: Capsys) -> None:
    path = tmp_path / "d.jsonl"
    rows = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in seed_rows(10))
    rows += (
        '{"instruction": "送料は？", "output": "旧い答え", "output": "550円です。", "memo": "x"}\n'
    )
    path.write_text(rows, encoding="utf-8")
    code, out, _ = run_cli(capsys, "data", "convert", str(path), str(tmp_path / "o.jsonl"))
    flat = " ".join(out.split())
    assert code == 0 and "duplicate-key" in flat and "'output' appears more than once" in flat
    assert "unknown-key" in flat and "'memo'" in flat
    assert read_jsonl(tmp_path / "o.jsonl")[-1]["output"] == "550円です。"


def test_alpaca_history_becomes_turns_and_round_trips(tmp_path: Path, capsys: Capsys) -> None:
    row = {
        "instruction": "では送料は？",
        "input": "",
        "output": "550円です。",
        "history": [["返品できますか", "30日以内なら可能です。"]],
    }
    path = write_jsonl(tmp_path / "a.jsonl", [*seed_rows(10), row])
    code, out, _ = run_cli(
        capsys, "data", "convert", str(path), str(tmp_path / "m.jsonl"), "--to", "messages"
    )
    assert code == 0 and "read 11, written 11" in out
    turns = read_jsonl(tmp_path / "m.jsonl")[-1]["messages"]
    assert [t["content"] for t in turns] == [
        "返品できますか",
        "30日以内なら可能です。",
        "では送料は？",
        "550円です。",
    ]
    code, out, _ = run_cli(capsys, "data", "convert", str(path), str(tmp_path / "s.jsonl"))
    assert code == 0 and read_jsonl(tmp_path / "s.jsonl")[-1] == row


def test_format_is_detected_per_row(tmp_path: Path, capsys: Capsys) -> None:
    chat = {"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]}
    path = write_jsonl(tmp_path / "mixed.jsonl", [chat, *seed_rows(11)])
    code, report = _check_json(capsys, path)
    assert code == 0 and report["usable_rows"] == 12 and report["errors"] == 0
    assert report["formats"] == {str(path): "messages+seed"}


def _csv(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "faq.csv"
    path.write_text("question,answer\n" + body, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("body", "opened"),
    [
        # The quote closes in the middle of a later cell: rows 3-5 were silently one row.
        ('q1,a1\nq2,"a2 stray\nq3,a3\nq4,"a4"\nq5,a5\n', "line 3 (column 4)"),
        # Never closed: the rest of the file became one cell.
        ('q1,a1\n"q2 stray,a2\nq3,a3\nq4,a4\n', "line 3 (column 1)"),
    ],
)
def test_a_stray_csv_quote_is_an_error_saying_where_it_opened(
    body: str, opened: str, tmp_path: Path, capsys: Capsys
) -> None:
    path = _csv(tmp_path, body)
    code, report = _check_json(capsys, path)
    (error,) = [i for i in _issues(report) if i["code"] == "stray-quote"]
    assert code == 1 and error["line"] == 3 and opened in str(error["message"])
    assert "stray" in str(error["hint"])
    code, _, _ = run_cli(capsys, "data", "convert", str(path), str(tmp_path / "o.jsonl"))
    rejected = read_jsonl(tmp_path / "o.rejected.jsonl")
    assert (
        code == 1 and len(read_jsonl(tmp_path / "o.jsonl")) + len(rejected) == report["rows_read"]
    )
    assert "q3,a3" in str(rejected[0]["raw"])


def test_a_legitimate_multi_line_csv_cell_still_loads(tmp_path: Path, capsys: Capsys) -> None:
    path = _csv(tmp_path, 'q1,"一行目\n二行目, カンマも"\nq2,"a ""quoted"" word"\n')
    code, report = _check_json(capsys, path)
    assert code == 1 and report["usable_rows"] == 2 and report["errors"] == 1  # too-few-rows
    code, _, _ = run_cli(capsys, "data", "convert", str(path), str(tmp_path / "o.jsonl"))
    assert code == 0
    assert read_jsonl(tmp_path / "o.jsonl")[0]["output"] == "一行目\n二行目, カンマも"


def test_a_csv_cell_over_the_csv_module_limit_loads(tmp_path: Path, capsys: Capsys) -> None:
    long_answer = "長い回答です。" * 30_000  # 210,000 characters > csv's 131,072 default
    path = _csv(tmp_path, f'q1,"{long_answer}"\n')
    code, out, _ = run_cli(capsys, "data", "convert", str(path), str(tmp_path / "o.jsonl"))
    assert code == 0 and "read 1, written 1" in out
    assert read_jsonl(tmp_path / "o.jsonl")[0]["output"] == long_answer


def _customize(capsys: Capsys, tmp_path: Path, *extra: str) -> tuple[int, str, str, str]:
    path = write_jsonl(tmp_path / "faq.jsonl", seed_rows(10))
    mf = tmp_path / "Modelfile"
    code, out, err = run_cli(
        capsys, "customize", "-d", str(path), "-b", "llama3", "-n", "x", "-o", str(mf),
        "--no-create", "--knowledge", "-k", "2", *extra,
    )  # fmt: skip
    return code, " ".join(out.split()), err, Modelfile.read(mf).system or "" if code == 0 else ""


def test_knowledge_keeps_every_row_unless_test_questions_says_otherwise(
    tmp_path: Path, capsys: Capsys
) -> None:
    code, out, err, system = _customize(capsys, tmp_path)
    assert code == 0, err
    assert all(f"Q: {r['instruction']}" in system for r in seed_rows(10))
    assert "Held out" not in out
    code, out, err, system = _customize(capsys, tmp_path, "--test-questions", "2")
    held = [r for r in seed_rows(10) if f"Q: {r['instruction']}" not in system]
    assert code == 0 and len(held) == 2, err
    path = tmp_path / "faq.jsonl"
    assert (
        f"Held out 2 row(s) as test questions, not in the examples and the knowledge block: {path}:"
        in out
    )
    code, _, err, _ = _customize(capsys, tmp_path, "--test-questions", "-1")
    assert code == 2 and "--test-questions -1" in err
