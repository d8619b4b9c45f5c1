"""`ollama-tune data ...` through the real entry point: output, files written, exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from _data_helpers import read_jsonl, seed_rows, write_jsonl

from ollama_tune.cli import main


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as info:
        main(argv)
    out = capsys.readouterr()
    return int(info.value.code or 0), out.out, out.err


def test_check_clean_file_exits_0(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_jsonl(tmp_path / "d.jsonl", seed_rows(60))
    code, out, _ = run(["data", "check", str(path)], capsys)
    assert code == 0
    assert "0 error(s), 0 warning(s)" in out and "60 usable" in out


def test_check_reports_every_problem_with_file_line_and_exits_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = [
        *seed_rows(12),
        {"instruction": "x"},
        {"instruction": "メール", "output": "a@example.com へどうぞ。"},
    ]
    path = write_jsonl(tmp_path / "d.jsonl", rows)
    with path.open("a", encoding="utf-8") as fh:
        fh.write("{broken\n")
    code, out, _ = run(["data", "check", str(path), "--json"], capsys)
    assert code == 1
    report = json.loads(out)
    found = {(i["code"], i["line"], i["severity"]) for i in report["issues"]}
    assert {
        ("missing-field", 13, "error"),
        ("personal-data", 14, "warning"),
        ("invalid-json", 15, "error"),
        ("few-rows", 1, "warning"),
    } <= found
    assert report["rows_read"] == 15 and report["usable_rows"] == 13
    assert all(i["hint"] and i["source"].startswith(str(path)) for i in report["issues"])


def test_check_table_and_strict(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_jsonl(tmp_path / "d.jsonl", seed_rows(12))
    code, out, _ = run(["data", "check", str(path)], capsys)
    assert code == 0 and "few-rows" in out and "warning" in out
    code, out, _ = run(["data", "check", str(path), "--strict"], capsys)
    assert code == 1 and "1 error(s), 0 warning(s)" in out


@pytest.mark.parametrize(
    "argv",
    [
        ["data", "check", "{f}", "--format", "xml"],
        ["data", "check", "{f}", "--encoding", "klingon"],
        ["data", "check", "{f}", "--map", "question"],
        ["data", "check", "{f}", "--max-tokens", "0"],
        ["data", "check", "{f}", "--max-tokens", "many"],
        ["data", "split", "{f}", "--out", "o", "--test-ratio", "1.5"],
        ["data", "convert", "{f}", "out.jsonl", "--to", "yaml"],
        ["data", "convert", "{f}"],
        ["data", "frobnicate"],
    ],
)
def test_usage_errors_exit_2(
    argv: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_jsonl(tmp_path / "d.jsonl", seed_rows(12))
    code, _, err = run([a.replace("{f}", str(path)) for a in argv], capsys)
    assert code == 2, err
    assert err.strip()


def test_missing_file_exits_1_with_hint(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(["data", "check", str(tmp_path / "nope.jsonl")], capsys)
    assert code == 1 and "cannot read" in err and "Hint" in err


def test_convert_shift_jis_csv_to_messages(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = tmp_path / "faq.csv"
    src.write_bytes("問い合わせ,答え\n送料は？,550円です。\n壊れた行,\n".encode("cp932"))
    out = tmp_path / "out" / "faq.jsonl"
    code, text, _ = run(["data", "convert", str(src), str(out), "--to", "messages"], capsys)
    assert code == 1  # one row could not be converted
    assert "read 2, written 1" in text and "rejected 1" in text
    assert read_jsonl(out) == [
        {
            "messages": [
                {"role": "user", "content": "送料は？"},
                {"role": "assistant", "content": "550円です。"},
            ]
        }
    ]
    assert read_jsonl(out.with_name("faq.rejected.jsonl"))[0]["source"] == f"{src}:3"


def test_convert_with_map_and_json_summary(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = tmp_path / "x.csv"
    src.write_text("ask,reply,ctx\nQ1?,A1.,C1\n", encoding="utf-8-sig")
    out = tmp_path / "x.jsonl"
    argv = [
        "data",
        "convert",
        str(src),
        str(out),
        "--map",
        "ask=instruction,reply=output,ctx=input",
        "--json",
    ]
    code, text, _ = run(argv, capsys)
    assert code == 0
    assert json.loads(text)["written"] == 1
    assert read_jsonl(out) == [{"instruction": "Q1?", "input": "C1", "output": "A1."}]


def test_split_writes_train_and_test(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_jsonl(tmp_path / "d.jsonl", seed_rows(40))
    out = tmp_path / "split"
    code, _, _ = run(
        ["data", "split", str(path), "--out", str(out), "--seed", "3", "--test-ratio", "0.2"],
        capsys,
    )
    assert code == 0
    train, test = read_jsonl(out / "train.jsonl"), read_jsonl(out / "test.jsonl")
    assert len(train) + len(test) == 40 and len(test) == 8
    assert not {r["instruction"] for r in train} & {r["instruction"] for r in test}
    first = (out / "test.jsonl").read_bytes()
    run(
        ["data", "split", str(path), "--out", str(out), "--seed", "3", "--test-ratio", "0.2"],
        capsys,
    )
    assert (out / "test.jsonl").read_bytes() == first


def test_split_refuses_data_with_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_jsonl(tmp_path / "d.jsonl", [*seed_rows(12), {"output": "x"}])
    code, _, err = run(["data", "split", str(path), "--out", str(tmp_path / "o")], capsys)
    assert code == 1 and f"{path}:13" in err
    assert not (tmp_path / "o" / "train.jsonl").exists()


def test_stats_table_histogram_and_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rows = [*seed_rows(12), dict(seed_rows(1)[0])]
    path = write_jsonl(tmp_path / "d.jsonl", rows)
    code, out, _ = run(["data", "stats", str(path)], capsys)
    assert code == 0 and "tokens (estimated)" in out and "█" in out and "duplicates:" in out
    code, out, _ = run(["data", "stats", str(path), "--json"], capsys)
    stats = json.loads(out)
    assert stats["rows"] == 13 and stats["languages"] == {"ja": 13}
    assert stats["duplicate_groups"] == [[f"{path}:1", f"{path}:13"]]


def test_check_utf16_tsv_and_explicit_encoding(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = "".join(f"{r['instruction']}\t{r['output']}\n" for r in seed_rows(12))
    utf16 = tmp_path / "excel.txt"
    utf16.write_bytes(("質問\t回答\n" + rows).encode("utf-16"))  # Excel "Unicode text"
    code, out, _ = run(["data", "check", str(utf16), "--json"], capsys)
    assert code == 0 and json.loads(out)["usable_rows"] == 12
    assert json.loads(out)["encodings"] == {str(utf16): "utf-16"}
    sjis = tmp_path / "sjis.tsv"
    sjis.write_bytes(("質問\t回答\n" + rows).encode("shift_jis"))
    code, out, _ = run(["data", "check", str(sjis), "--encoding", "shift_jis", "--json"], capsys)
    assert code == 0 and json.loads(out)["encodings"] == {str(sjis): "shift_jis"}
    code, out, _ = run(["data", "check", str(sjis), "--encoding", "utf-8", "--json"], capsys)
    assert code == 1
    assert {i["code"] for i in json.loads(out)["issues"]} >= {"undecodable-bytes", "too-few-rows"}


def test_user_text_with_rich_markup_is_printed_verbatim(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = [*seed_rows(12), {"instruction": "a", "output": "b", "[/bold]": 1, "[red]x": 2}]
    path = write_jsonl(tmp_path / "[weird].jsonl", rows)
    code, out, _ = run(["data", "check", str(path)], capsys)
    assert code == 0
    assert "'[/bold]'" in out and "'[red]x'" in out and "[weird].jsonl" in out


def test_bad_tokenizer_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_jsonl(tmp_path / "d.jsonl", seed_rows(12))
    code, _, err = run(["data", "check", str(path), "--tokenizer", str(tmp_path / "no")], capsys)
    assert code == 2 and "is not a folder" in err
