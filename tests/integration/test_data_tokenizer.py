"""`data check/stats --tokenizer` with SmolLM2's real tokenizer (imports transformers)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ollama_tune.cli import main
from ollama_tune.data import Example, Message, SourceRef
from ollama_tune.data.tokens import tokenizer_counter

pytestmark = pytest.mark.integration

ROWS = [
    {
        "instruction": f"返品の期限について質問{i}です",
        "output": "商品到着後30日以内です。" * (1 + 20 * (i == 0)),
    }
    for i in range(12)
]


def test_counter_uses_the_chat_template(smol_tokenizer_dir: Path) -> None:
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(smol_tokenizer_dir))
    ex = Example(
        (Message("user", "送料は？"), Message("assistant", "550円です。")), SourceRef("x", 1)
    )
    n = tokenizer_counter(smol_tokenizer_dir)(ex)
    text = tok.apply_chat_template(ex.to_messages_dicts(), tokenize=False)
    assert "<|im_start|>" in text
    assert n == len(tok(text, add_special_tokens=False)["input_ids"])


def test_check_and_stats_with_tokenizer(
    smol_tokenizer_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "d.jsonl"
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in ROWS), "utf-8")
    argv = [
        "data",
        "check",
        str(path),
        "--tokenizer",
        str(smol_tokenizer_dir),
        "--max-tokens",
        "150",
    ]
    argv += ["--json"]
    with pytest.raises(SystemExit) as info:
        main(argv)
    report = json.loads(capsys.readouterr().out)
    assert info.value.code == 0
    too_long = [i for i in report["issues"] if i["code"] == "too-long"]
    assert [i["line"] for i in too_long] == [1] and "counted" in too_long[0]["message"]
    with pytest.raises(SystemExit):
        main(["data", "stats", str(path), "--tokenizer", str(smol_tokenizer_dir), "--json"])
    stats = json.loads(capsys.readouterr().out)
    assert stats["tokens_estimated"] is False and stats["tokens"]["max"] > 150


def test_folder_without_a_tokenizer_is_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "d.jsonl"
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in ROWS), "utf-8")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(SystemExit) as info:
        main(["data", "check", str(path), "--tokenizer", str(empty)])
    assert info.value.code == 1
    assert "cannot load a tokenizer" in capsys.readouterr().err
