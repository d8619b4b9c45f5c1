"""Formats and encodings the loader understands, and how it reports bad rows."""

from __future__ import annotations

import codecs
import json
from pathlib import Path

import pytest
from _data_helpers import seed_rows, write_jsonl

from ollama_tune.data import load_examples, read_examples
from ollama_tune.errors import DataError, UsageError


def test_seed_jsonl_becomes_user_assistant_with_input_appended(tmp_path: Path) -> None:
    path = write_jsonl(
        tmp_path / "d.jsonl",
        [
            {
                "instruction": "在庫を教えて",
                "input": "商品番号: ABC-123",
                "output": "確認いたします。",
            },
            {
                "instruction": "返品は？",
                "output": "30日以内です。",
                "system": "丁寧に答えてください。",
            },
        ],
    )
    result = load_examples(path)
    assert result.issues == [] and result.rejected == []
    first, second = result.examples
    assert first.question == "在庫を教えて\n\n商品番号: ABC-123"
    assert first.answer == "確認いたします。"
    assert str(first.source) == f"{path}:1"
    assert second.system == "丁寧に答えてください。"
    assert [m.role for m in second.messages] == ["system", "user", "assistant"]
    assert result.formats[str(path)] == "seed"


def test_messages_multi_turn_and_facts_are_carried(tmp_path: Path) -> None:
    row = {
        "messages": [
            {"role": "system", "content": "サポート担当です。"},
            {"role": "user", "content": "返品できますか"},
            {"role": "assistant", "content": "はい、できます。"},
            {"role": "user", "content": "期限は？"},
            {"role": "assistant", "content": "30日以内です。"},
        ],
        "facts": [["30日", "三十日"], "返品"],
    }
    ex = read_examples(write_jsonl(tmp_path / "m.jsonl", [row]))[0]
    assert len(ex.messages) == 5 and ex.question == "期限は？" and ex.answer == "30日以内です。"
    assert ex.facts == (("30日", "三十日"), ("返品",))


def test_prompt_completion_and_json_array_keep_line_numbers(tmp_path: Path) -> None:
    path = tmp_path / "pc.json"
    path.write_text(
        '[\n  {"prompt": "送料は？", "completion": "550円です。"},\n\n'
        '  {"prompt": "支払いは？",\n   "completion": "カードです。"}\n]\n',
        encoding="utf-8",
    )
    result = load_examples(path)
    assert [e.source.line for e in result.examples] == [2, 4]
    assert result.examples[1].answer == "カードです。"
    assert result.formats[str(path)] == "prompt-completion"


def test_csv_with_japanese_headers_in_shift_jis(tmp_path: Path) -> None:
    text = (
        "質問,回答,補足\n送料はいくらですか？,全国一律550円です。,\n"
        '"複数行の\n質問",はい、承ります。,注文番号あり\n'
    )
    path = tmp_path / "faq.csv"
    path.write_bytes(text.encode("cp932"))
    result = load_examples(path)
    assert result.encodings[str(path)] == "cp932"
    assert result.issues == []
    assert [e.source.line for e in result.examples] == [2, 3]
    assert result.examples[1].question == "複数行の\n質問\n\n注文番号あり"


def test_csv_map_option_and_unknown_column_warning(tmp_path: Path) -> None:
    path = tmp_path / "faq.tsv"
    path.write_text("Q_TEXT\tA_TEXT\tmemo\nHello?\tHi there.\tx\n", encoding="utf-8")
    result = load_examples(path, mapping={"Q_TEXT": "instruction", "A_TEXT": "output"})
    assert result.examples[0].question == "Hello?"
    assert [(i.code, i.source.line) for i in result.issues] == [("unknown-key", 1)]
    unmapped = load_examples(path)
    assert [(i.code, i.source.line) for i in unmapped.errors] == [("missing-column", 1)]
    assert "--map" in unmapped.errors[0].hint and "Q_TEXT" in unmapped.errors[0].message
    assert [r.source.line for r in unmapped.rejected] == [2]
    typo = load_examples(path, mapping={"Q_TXT": "instruction", "A_TEXT": "output"})
    assert "'Q_TXT'" in typo.warnings[0].message and typo.errors[0].code == "missing-column"


@pytest.mark.parametrize(
    ("bom", "codec", "expected"),
    [(codecs.BOM_UTF8, "utf-8", "utf-8-sig"), (b"", "utf-16", "utf-16")],
)
def test_bom_files_decode(tmp_path: Path, bom: bytes, codec: str, expected: str) -> None:
    line = json.dumps({"instruction": "返品は？", "output": "30日以内です。"}, ensure_ascii=False)
    path = tmp_path / "bom.jsonl"
    path.write_bytes(bom + (line + "\n").encode(codec))  # Python's utf-16 codec writes a BOM
    result = load_examples(path)
    assert result.encodings[str(path)] == expected
    assert result.examples[0].question == "返品は？" and result.issues == []


def test_encoding_override_and_bad_encoding_name(tmp_path: Path) -> None:
    path = tmp_path / "x.jsonl"
    path.write_bytes('{"instruction": "送料", "output": "無料です"}\n'.encode("euc_jp"))
    assert load_examples(path, encoding="euc_jp").examples[0].answer == "無料です"
    with pytest.raises(UsageError, match="unknown encoding"):
        load_examples(path, encoding="no-such-codec")


def test_undecodable_bytes_reject_only_their_line(tmp_path: Path) -> None:
    good = b'{"instruction": "a?", "output": "b."}\n'
    path = tmp_path / "bad.jsonl"
    path.write_bytes(good + b'{"instruction": "\xff\xfe\xfa", "output": "x"}\n' + good)
    result = load_examples(path, encoding="utf-8")
    assert len(result.examples) == 2
    assert [(i.code, i.source.line) for i in result.errors] == [("undecodable-bytes", 2)]
    assert "\\xff" in result.rejected[0].raw


@pytest.mark.parametrize(
    ("row", "code"),
    [
        ("{not json", "invalid-json"),
        ("[1, 2]", "not-an-object"),
        ('{"output": "x"}', "missing-field"),
        ('{"instruction": "  ", "output": "x"}', "empty-field"),
        ('{"instruction": ["a"], "output": "x"}', "wrong-type"),
        ('{"instruction": "a", "output": "x", "facts": [[1]]}', "wrong-type"),
        ('{"messages": [{"role": "bot", "content": "x"}]}', "unknown-role"),
        ('{"messages": [{"role": "user", "content": "x"}]}', "no-assistant-turn"),
        ('{"messages": "hello"}', "wrong-type"),
    ],
)
def test_each_structural_error(tmp_path: Path, row: str, code: str) -> None:
    path = tmp_path / "e.jsonl"
    path.write_text('{"instruction": "ok?", "output": "ok."}\n' + row + "\n", encoding="utf-8")
    result = load_examples(path)
    assert code in {i.code for i in result.errors}
    assert all(i.source.line == 2 and i.hint for i in result.errors)
    assert len(result.examples) == 1 and len(result.rejected) == 1
    assert result.rejected[0].source.line == 2 and code in result.rejected[0].reason


def test_read_examples_lists_every_error_with_file_line(tmp_path: Path) -> None:
    path = tmp_path / "e.jsonl"
    path.write_text(
        '{"output": "x"}\n{"instruction": "ok", "output": "ok"}\nnope\n', encoding="utf-8"
    )
    with pytest.raises(DataError) as info:
        read_examples(path)
    assert f"{path}:1" in info.value.message and f"{path}:3" in info.value.message
    assert info.value.hint


def test_unreadable_file_raises_data_error(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="cannot read"):
        load_examples([tmp_path / "missing.jsonl"])


def test_example_customer_support_loads_clean() -> None:
    path = Path(__file__).parents[2] / "examples" / "customer-support" / "train.jsonl"
    if not path.exists():
        pytest.skip("examples/customer-support not written yet")
    result = load_examples(path)
    assert result.errors == [] and len(result.examples) >= 120


def test_seed_rows_helper_is_clean(tmp_path: Path) -> None:
    result = load_examples(write_jsonl(tmp_path / "s.jsonl", seed_rows(12)))
    assert result.issues == [] and len(result.examples) == 12


def test_pretty_printed_objects_in_jsonl_keep_their_first_line(tmp_path: Path) -> None:
    path = tmp_path / "pretty.json"
    obj = {"instruction": "送料は？", "output": "550円です。"}
    path.write_text(
        json.dumps(obj, ensure_ascii=False, indent=2) + "\n{broken\n" + json.dumps(obj) + "\n",
        encoding="utf-8",
    )
    result = load_examples(path)
    assert [e.source.line for e in result.examples] == [1, 6]
    assert [(i.code, i.source.line) for i in result.issues] == [("invalid-json", 5)]


def test_format_override(tmp_path: Path) -> None:
    path = tmp_path / "data.txt"
    path.write_text("q\ta\n送料は？\t550円です。\n", encoding="utf-8")
    assert load_examples(path, format="tsv").examples[0].answer == "550円です。"
    chat = tmp_path / "chat.jsonl"
    chat.write_text('{"messages": [{"role": "user", "content": "a"}]}\n', encoding="utf-8")
    forced = load_examples(chat, format="seed")
    assert {i.code for i in forced.errors} == {"missing-field"}
    with pytest.raises(UsageError, match="unknown format"):
        load_examples(chat, format="xml")


@pytest.mark.parametrize(
    ("codec", "detected"),
    [("cp932", "cp932"), ("euc_jp", None), ("iso2022_jp", "iso2022_jp"), ("utf-8", "utf-8")],
)
def test_japanese_encodings_are_detected(tmp_path: Path, codec: str, detected: str | None) -> None:
    text = (
        "質問,回答\n送料はいくらですか？,全国一律550円です。\n"
        "返品できますか,30日以内なら承ります。\n"
    )
    path = tmp_path / "faq.csv"
    path.write_bytes(text.encode(codec))
    result = load_examples(path)
    assert [e.answer for e in result.examples] == ["全国一律550円です。", "30日以内なら承ります。"]
    if detected:
        assert result.encodings[str(path)] == detected


def test_western_cp1252_csv(tmp_path: Path) -> None:
    path = tmp_path / "faq.csv"
    path.write_bytes("question,answer\nCafé hours?,We’re open 9–5.\n".encode("cp1252"))
    result = load_examples(path)
    assert result.encodings[str(path)] == "cp1252"
    assert result.examples[0].answer == "We’re open 9–5."
