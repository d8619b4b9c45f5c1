"""Training text is rendered through the Ollama TEMPLATE: ids, loss mask and the Go fallback."""

from __future__ import annotations

from pathlib import Path

import pytest

from ollama_tune.data.model import Example, Message, SourceRef
from ollama_tune.templates import render_go

QUESTION = '注文を "キャンセル" したいです。\n{{ .System }} は？'
ANSWER = "マイページの「注文履歴」からキャンセルできます。"


def _examples() -> list[Example]:
    one = Example((Message("user", QUESTION), Message("assistant", ANSWER)), SourceRef("t", 1))
    multi = Example(
        (
            Message("system", "あなたはサポート担当です。"),
            Message("user", "こんにちは"),
            Message("assistant", "こんにちは！"),
            Message("user", QUESTION),
            Message("assistant", ANSWER),
        ),
        SourceRef("t", 2),
    )
    return [one, multi]


def test_a_training_row_tokenises_to_exactly_the_ids_of_the_go_rendering(
    smol_tokenizer_dir: Path,
) -> None:
    from transformers import AutoTokenizer

    from ollama_tune.train.data import encode_rows

    tok = AutoTokenizer.from_pretrained(str(smol_tokenizer_dir))
    enc = encode_rows(tok, _examples(), 512)
    assert enc.renderer == "go" and enc.template.end_of_turn == "<|im_end|>"
    for ex, row in zip(_examples(), enc.rows, strict=True):
        # What Ollama feeds the model for this chat request, by Go's text/template.
        prompt = render_go(enc.template.template, [m.to_dict() for m in ex.prompt_messages])
        prompt_ids = tok(prompt, add_special_tokens=False)["input_ids"]
        completion_ids = tok(ANSWER + "<|im_end|>", add_special_tokens=False)["input_ids"]
        assert row["input_ids"] == prompt_ids + completion_ids
        # Loss on the completion only, the end-of-turn token included.
        assert row["labels"] == [-100] * len(prompt_ids) + completion_ids
        assert completion_ids[-1] == tok.convert_tokens_to_ids("<|im_end|>")
    # Special tokens are parsed, as llama.cpp does: <|im_start|> is one id, not characters.
    assert enc.rows[0]["input_ids"].count(tok.convert_tokens_to_ids("<|im_start|>")) == 3


def test_without_go_the_converted_layout_renders_the_same_ids(
    smol_tokenizer_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from transformers import AutoTokenizer

    from ollama_tune.train.data import encode_rows

    tok = AutoTokenizer.from_pretrained(str(smol_tokenizer_dir))
    with_go = encode_rows(tok, _examples(), 512)
    monkeypatch.setenv("PATH", str(tmp_path))  # no `go`
    without = encode_rows(tok, _examples(), 512)
    assert without.renderer == "layout" and without.rows == with_go.rows


def test_a_template_file_without_go_falls_back_to_jinja_with_a_warning(
    smol_tokenizer_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dataclasses import replace

    from transformers import AutoTokenizer

    from ollama_tune.train.data import encode_rows, training_template

    tok = AutoTokenizer.from_pretrained(str(smol_tokenizer_dir))
    as_file = replace(training_template(tok), layout=None, matched="file")
    with_go = encode_rows(tok, _examples(), 512, template=as_file)
    monkeypatch.setenv("PATH", str(tmp_path))
    jinja = encode_rows(tok, _examples(), 512, template=as_file)
    assert jinja.renderer == "jinja" and "Go is not installed" in jinja.notes[0]
    assert jinja.rows == with_go.rows  # SmolLM2's template converts exactly: same text
