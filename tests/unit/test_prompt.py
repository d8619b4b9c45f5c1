"""Few-shot builder: diverse shots, token budget → num_ctx, refusals with numbers, knowledge."""

from __future__ import annotations

from pathlib import Path

import pytest

from ollama_tune.data.model import Example, Message, SourceRef
from ollama_tune.errors import UsageError
from ollama_tune.modelfile import Modelfile
from ollama_tune.prompt import (
    CustomizeConfig,
    build_customization,
    estimate_tokens,
    select_diverse,
    token_counter,
)

TOPICS = {
    "返品": ["返品はできますか？", "返品の期限は？", "返品の送料は？", "開封後の返品は？"],
    "配送": ["配送日数は？", "配送料はいくら？", "配送先を変更したい", "海外配送はある？"],
    "ポイント": [
        "ポイントの期限は？",
        "ポイントの使い方は？",
        "ポイントが付かない",
        "ポイント残高は？",
    ],
}


def _ex(q: str, a: str, line: int) -> Example:
    msgs = (Message("user", q), Message("assistant", a))
    return Example(messages=msgs, source=SourceRef("faq.jsonl", line))


def _faq() -> list[Example]:
    rows = [(q, f"{topic}についての回答です。") for topic, qs in TOPICS.items() for q in qs]
    return [_ex(q, a, i + 1) for i, (q, a) in enumerate(rows)]


def _topic(question: str) -> str:
    return next(t for t, qs in TOPICS.items() if question in qs)


def test_shots_cover_different_topics_not_the_first_rows() -> None:
    faq = _faq()
    picked = select_diverse([e.question for e in faq], 3)
    assert sorted(_topic(faq[i].question) for i in picked) == sorted(TOPICS)
    assert {_topic(e.question) for e in faq[:3]} == {"返品"}  # what "first K" would have given
    assert select_diverse([e.question for e in faq], 3) == picked  # deterministic


def test_estimate_is_conservative_for_japanese_and_ascii() -> None:
    # ≈1.7 tokens per CJK character (SmolLM2's byte-level BPE), ≈4 other characters per token.
    assert estimate_tokens("返品できますか") == 12
    assert estimate_tokens("abcdefgh") == 2
    assert estimate_tokens("返品 ok") == 5


def test_build_sets_num_ctx_from_budget_and_holds_out_rows() -> None:
    faq = _faq()
    result = build_customization(
        CustomizeConfig(examples=faq, base_model="llama3.2:1b", shots=3, holdout=3)
    )
    b = result.budget
    assert b.total == b.system + b.shots + b.question + b.answer
    assert b.num_ctx >= b.total and b.num_ctx == 2048
    mf = result.modelfile
    assert ("num_ctx", "2048") in mf.parameters and ("temperature", "0.7") in mf.parameters
    assert len(mf.messages) == 6 and mf.from_ == "llama3.2:1b"
    assert not {e.source for e in result.shots} & {e.source for e in result.held_out}
    assert len(result.held_out) == 3
    assert Modelfile.parse(mf.render()) == mf


def test_num_ctx_too_small_is_refused_with_the_numbers() -> None:
    with pytest.raises(UsageError) as err:
        build_customization(CustomizeConfig(examples=_faq(), base_model="m", shots=3, num_ctx=100))
    msg = err.value.message
    assert "--num-ctx 100" in msg and "SYSTEM" in msg and "tokens (estimate)" in msg
    assert "--num-ctx 2048" in (err.value.hint or "")


def test_knowledge_mode_puts_the_faq_in_system_and_refuses_when_too_big() -> None:
    faq = _faq()
    result = build_customization(
        CustomizeConfig(examples=faq, base_model="m", shots=1, knowledge=True, holdout=2)
    )
    system = result.modelfile.system or ""
    for ex in faq:
        assert (f"Q: {ex.question}" in system) == (ex not in result.held_out)
    big = [_ex(f"質問{i}", "長い回答" * 400, i) for i in range(60)]
    with pytest.raises(UsageError, match=r"needs num_ctx \d+, above the limit 32768"):
        build_customization(CustomizeConfig(examples=big, base_model="m", knowledge=True))


def test_rows_that_cannot_be_written_are_skipped_as_shots_with_their_row() -> None:
    faq = [_ex("引用は？", 'こう書きます:\n"""\n引用\n"""', 99), *_faq()]
    result = build_customization(CustomizeConfig(examples=faq, base_model="m", shots=12, holdout=0))
    assert any("faq.jsonl:99" in w and '"""' in w for w in result.warnings)
    assert all(e.source.line != 99 for e in result.shots)
    with pytest.raises(UsageError, match=r"faq\.jsonl:99"):
        build_customization(CustomizeConfig(examples=faq, base_model="m", knowledge=True))


def test_real_tokenizer_counts_replace_the_estimate(smol_tokenizer_dir: Path) -> None:
    count, how = token_counter(smol_tokenizer_dir)
    assert how.startswith("tokenizer:")
    assert count("hello world") == 2  # SmolLM2's BPE: "hello", " world"
    result = build_customization(
        CustomizeConfig(examples=_faq(), base_model="m", tokenizer=smol_tokenizer_dir)
    )
    assert result.budget.counted_with.startswith("tokenizer:")
    # Japanese costs SmolLM2 more than one token per character: the estimate is not used.
    assert result.budget.system != estimate_tokens(result.modelfile.system or "") + 8
