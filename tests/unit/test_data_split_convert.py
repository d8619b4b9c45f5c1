"""split (deterministic, no near-duplicate leakage), convert (nothing lost), stats, writer."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from _data_helpers import read_jsonl, seed_rows, write_jsonl

from ollama_tune.data import (
    ConvertConfig,
    Example,
    Message,
    SourceRef,
    convert_data,
    dataset_stats,
    read_examples,
    split_examples,
    validation_split,
)
from ollama_tune.data import (
    write_jsonl as write_examples,
)
from ollama_tune.data.split import duplicate_groups
from ollama_tune.errors import DataError, UsageError


def _examples(tmp_path: Path, n: int) -> list[Example]:
    return read_examples(write_jsonl(tmp_path / "d.jsonl", seed_rows(n)))


def test_split_is_deterministic_and_sized(tmp_path: Path) -> None:
    examples = _examples(tmp_path, 40)
    a = split_examples(examples, test_ratio=0.25, seed=7)
    b = split_examples(examples, test_ratio=0.25, seed=7)
    c = split_examples(examples, test_ratio=0.25, seed=8)
    assert a.train == b.train and a.test == b.test
    assert len(a.train) + len(a.test) == 40
    assert 6 <= len(a.test) <= 10
    assert a.test != c.test


def test_split_keeps_near_duplicates_together(tmp_path: Path) -> None:
    rows = seed_rows(20)
    # Three paraphrase-level copies of row 0 and an exact repeat of row 5.
    rows += [dict(rows[0], output=rows[0]["output"] + s) for s in ("！", "ね。", "よ。")]
    rows.append(dict(rows[5]))
    examples = read_examples(write_jsonl(tmp_path / "d.jsonl", rows))
    groups = [g for g in duplicate_groups(examples) if len(g) > 1]
    assert sorted(map(sorted, groups)) == [[0, 20, 21, 22], [5, 23]]
    for seed in range(15):
        result = split_examples(examples, test_ratio=0.3, seed=seed)
        test = set(map(id, result.test))
        for group in groups:
            sides = {id(examples[i]) in test for i in group}
            assert len(sides) == 1, f"seed {seed} split group {group}"


def _augmented(tmp_path: Path, n: int, k: int) -> list[Example]:
    """`n` FAQ rows, each followed by `k` rewordings marked as `data augment` marks them."""
    rows = []
    for i, row in enumerate(seed_rows(n), start=1):
        rows.append(row)
        rows += [
            dict(row, instruction=f"{row['instruction']}（言い換え{j}）", augmented_from=f"d:{i}")
            for j in range(k)
        ]
    return read_examples(write_jsonl(tmp_path / "aug.jsonl", rows))


@pytest.mark.parametrize("seed", [0, 1, 42])
def test_validation_of_augmented_rows_is_rewordings_of_answers_still_trained(
    tmp_path: Path, seed: int
) -> None:
    examples = _augmented(tmp_path, 30, 3)
    result = validation_split(examples, ratio=0.2, seed=seed)
    assert result.kind == "rewordings"
    assert len(result.train) + len(result.test) == len(examples) == 120
    assert 18 <= len(result.test) <= 24  # whole families of 3 rewordings, up to 20 % of rows
    assert all(ex.extra.get("augmented_from") for ex in result.test)
    # No FAQ row leaves training, and every validation answer is one the model is taught.
    originals = [ex for ex in examples if not ex.extra.get("augmented_from")]
    assert all(any(ex is t for t in result.train) for ex in originals)
    assert {ex.answer for ex in result.test} <= {ex.answer for ex in originals}
    # The whole-row split would have taken answers out of training.
    rows_split = split_examples(examples, test_ratio=0.2, seed=seed)
    assert {ex.answer for ex in rows_split.train} < {ex.answer for ex in originals}
    again = validation_split(examples, ratio=0.2, seed=seed)
    assert again.test == result.test


def test_validation_without_rewordings_holds_rows_out(tmp_path: Path) -> None:
    examples = _examples(tmp_path, 40)
    result = validation_split(examples, ratio=0.25, seed=7)
    plain = split_examples(examples, test_ratio=0.25, seed=7)
    assert result.kind == "rows" and result.test == plain.test and result.train == plain.train


def test_rewordings_whose_original_is_gone_stay_in_training(tmp_path: Path) -> None:
    examples = _augmented(tmp_path, 10, 2)
    orphans = examples[1:]  # family 1's original removed: only its 2 rewordings teach it
    result = validation_split(orphans, ratio=0.5, seed=3)
    assert result.kind == "rewordings" and len(result.test) >= 8
    assert not [ex for ex in result.test if ex.answer == examples[0].answer]
    assert sum(ex.answer == examples[0].answer for ex in result.train) == 2


def test_split_rejects_bad_ratio(tmp_path: Path) -> None:
    with pytest.raises(UsageError):
        split_examples(_examples(tmp_path, 12), test_ratio=1.5)


def test_write_jsonl_seed_round_trip_without_escapes(tmp_path: Path) -> None:
    rows = seed_rows(3)
    rows[0]["input"] = "商品番号: ABC-123"
    rows[1]["system"] = "丁寧に。"
    rows[2]["facts"] = [["30日"], ["マイページ"]]
    examples = read_examples(write_jsonl(tmp_path / "in.jsonl", rows))
    out = tmp_path / "out.jsonl"
    assert write_examples(examples, out, style="seed") == 3
    text = out.read_text(encoding="utf-8")
    assert "\\u" not in text and "返品" in text
    assert read_jsonl(out) == [
        {**rows[0]},
        {**rows[1]},
        {**rows[2]},
    ]


def test_write_jsonl_messages_style_and_multi_turn_refused_as_seed(tmp_path: Path) -> None:
    msgs = tuple(
        Message(r, c)
        for r, c in [("user", "a"), ("assistant", "b"), ("user", "c"), ("assistant", "d")]
    )
    ex = Example(msgs, SourceRef("x.jsonl", 4), facts=(("d",),))
    write_examples([ex], tmp_path / "m.jsonl", style="messages")
    assert read_jsonl(tmp_path / "m.jsonl") == [
        {"messages": [m.to_dict() for m in msgs], "facts": [["d"]]}
    ]
    with pytest.raises(DataError, match=r"x\.jsonl:4"):
        write_examples([ex], tmp_path / "s.jsonl", style="seed")


def test_convert_csv_to_seed_accounts_for_every_row(tmp_path: Path) -> None:
    src = tmp_path / "faq.csv"
    src.write_bytes('質問,回答\n送料は？,550円です。\n空欄,\n"未閉鎖,引用\n'.encode("cp932"))
    result = convert_data(ConvertConfig([src], tmp_path / "out.jsonl", to="seed"))
    assert (result.read, result.written, result.rejected) == (3, 1, 2)
    assert read_jsonl(tmp_path / "out.jsonl") == [
        {"instruction": "送料は？", "input": "", "output": "550円です。"}
    ]
    rejected = read_jsonl(tmp_path / "out.rejected.jsonl")
    assert [r["source"] for r in rejected] == [f"{src}:3", f"{src}:4"]
    assert "empty-field" in rejected[0]["reason"] and rejected[0]["raw"] == "空欄,"


def test_convert_multi_turn_to_seed_goes_to_rejected(tmp_path: Path) -> None:
    chat = {
        "messages": [
            {"role": "user", "content": "a"},
            {"role": "assistant", "content": "b"},
            {"role": "user", "content": "c"},
            {"role": "assistant", "content": "d"},
        ]
    }
    src = write_jsonl(tmp_path / "chat.jsonl", [chat, {"messages": chat["messages"][:2]}])
    result = convert_data(ConvertConfig([src], tmp_path / "seed.jsonl", to="seed"))
    assert (result.read, result.written, result.rejected) == (2, 1, 1)
    assert "no-seed-form" in read_jsonl(tmp_path / "seed.rejected.jsonl")[0]["reason"]
    as_messages = convert_data(ConvertConfig([src], tmp_path / "msg.jsonl", to="messages"))
    assert (as_messages.written, as_messages.rejected) == (2, 0)
    assert json.loads((tmp_path / "msg.jsonl").read_text().splitlines()[0]) == chat


def test_stats_counts_rows_languages_and_duplicate_groups(tmp_path: Path) -> None:
    rows = [*seed_rows(12), dict(seed_rows(1)[0])]
    rows.append({"instruction": "Hi", "output": "Hello, how can I help you today?"})
    examples = read_examples(write_jsonl(tmp_path / "d.jsonl", rows))
    stats = dataset_stats(examples)
    assert stats.rows == 14 and stats.languages == {"ja": 13, "en": 1}
    assert stats.duplicate_groups == [[f"{tmp_path / 'd.jsonl'}:1", f"{tmp_path / 'd.jsonl'}:13"]]
    assert sum(n for _, _, n in stats.histogram) == 14
    assert stats.tokens["min"] <= stats.tokens["median"] <= stats.tokens["max"]
    assert stats.turns["max"] == 2


def test_training_split_of_rewordings_is_the_same_after_resume(tmp_path: Path) -> None:
    from ollama_tune.train.data import prepare_split

    _augmented(tmp_path, 20, 3)
    data = tmp_path / "aug.jsonl"
    first = prepare_split([data], None, 0.1, 5, tmp_path / "run", resume=False)
    again = prepare_split([data], None, 0.1, 5, tmp_path / "run", resume=True)
    assert first.kind == again.kind == "rewordings" and first.sha256 == again.sha256
    assert all(ex.extra.get("augmented_from") for ex in again.test) and len(again.test) == 6
    given = prepare_split([data], data, 0.1, 5, tmp_path / "run2", resume=False)
    assert given.kind == "given"
