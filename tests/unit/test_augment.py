"""`data augment`: rewordings keep the key terms, never copy a test question, stay with their
original through `data split`; offline rules and a teacher served by the fake Ollama."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from _cli import run_cli
from ollama_tune.data import read_examples
from ollama_tune.data.augment import Synonyms, augment_examples, key_terms, missing_terms

TRAIN = [
    {"instruction": "返品はできますか？", "input": "",
     "output": "はい、商品到着後14日以内であれば返品を承っております。", "facts": [["14日"]]},
    {"instruction": "送料はいくらですか？", "input": "",
     "output": "送料は全国一律550円です。5,000円以上のご注文で送料無料になります。"},
    {"instruction": "ABC-123を2個注文した場合の送料を教えてください", "input": "",
     "output": "ABC-123を2個ご注文の場合、合計5,000円以上となり送料無料です。"},
    {"instruction": "注文をキャンセルしたいです", "input": "",
     "output": "発送前のご注文はマイページからキャンセルできます。"},
    {"instruction": "Can I return an opened item?", "input": "",
     "output": "Opened items can be returned within 14 days only if they are faulty."},
]  # fmt: skip


def _write(path: Path, rows: list[dict[str, object]]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), "utf-8")
    return path


def _rows(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text("utf-8").splitlines()]


@pytest.fixture
def train(tmp_path: Path) -> Path:
    return _write(tmp_path / "train.jsonl", TRAIN)


def test_key_terms_are_numbers_names_and_domain_words() -> None:
    terms = key_terms("ABC-123を2個注文した場合の送料を教えてください", "ABC-123の送料は…")
    assert {"abc-123", "2", "送料"} <= set(terms)
    assert "教" not in "".join(terms)  # the question form is not a key term


def test_key_terms_split_compounds_with_mecab_and_fall_back_to_script_runs(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from ollama_tune.data.augment import terms

    q, a = "返品送料はいくらですか？", "返品送料は無料です。"
    assert terms._tagger() is not None  # fugashi + unidic-lite are in the train extra
    assert {"返品", "送料"} <= set(key_terms(q, a))  # MeCab: two nouns
    monkeypatch.setattr(terms, "_tagger", lambda: None)
    assert "返品送料" in key_terms(q, a)  # script runs: one compound
    assert missing_terms(q, "返品送料は？", a) == []


def test_a_rewording_that_loses_or_changes_a_number_or_name_is_caught() -> None:
    q, a = "ABC-123を2個注文した場合の送料を教えてください", "ABC-123の送料"
    assert missing_terms(q, "ABC-123を2個注文した場合の送料について知りたいです。", a) == []
    assert "2" in missing_terms(q, "ABC-123を注文した場合の送料を教えてください", a)
    assert "abc-123" in missing_terms(q, "この商品を2個注文した場合の送料を教えてください", a)
    assert "+3" in missing_terms(q, "ABC-123を2個、3回注文した場合の送料を教えてください", a)
    assert "送料" in missing_terms(q, "ABC-123を2個注文した場合の値段を教えてください", a)


def test_a_synonym_counts_as_the_same_key_word() -> None:
    syn = Synonyms((("返品", "返却"),))
    q, a = "返品はできますか？", "返品は14日以内なら承ります。"
    assert missing_terms(q, "返却は可能ですか？", a, syn) == []
    assert missing_terms(q, "返却は可能ですか？", a) == ["返品"]


def test_rule_rewordings_keep_answer_facts_and_key_terms(train: Path) -> None:
    rows = read_examples(train)
    result = augment_examples(rows, n=3, seed=1)
    added = [ex for ex in result.examples if ex.extra.get("augmented_from")]
    syn = Synonyms(tuple(tuple(g) for g in result.synonyms))
    assert result.added == len(added) >= 12  # most rows get their 3 rewordings
    for ex in added:
        src = next(r for r in rows if f"train.jsonl:{r.source.line}" == ex.extra["augmented_from"])
        assert ex.answer == src.answer and ex.facts == src.facts
        assert ex.question != src.question
        assert missing_terms(src.question, ex.question, src.answer, syn) == []
    texts = {ex.question for ex in added}
    assert texts & {"返品は可能ですか？", "返品はできますでしょうか？", "返却はできますか？"}
    assert any(t.startswith(("Is it possible to return", "Am I able to return")) for t in texts)
    assert any("取り消し" in t for t in texts)  # キャンセル → 取り消し, from the built-in groups


def test_verb_stem_synonyms_swap_only_where_a_verb_is() -> None:
    from ollama_tune.data.augment.rules import BUILTIN_SYNONYMS, synonym_variants

    syn = Synonyms(BUILTIN_SYNONYMS)
    noun = synonym_variants("注文の取り消しは可能でしょうか。", syn)
    assert "注文のキャンセルは可能でしょうか。" in noun
    assert not [v for v in noun if "キャンセルしは" in v]  # the noun is not a verb stem
    verb = synonym_variants("注文を取り消したいです", syn)
    assert "注文をキャンセルしたいです" in verb


def test_same_seed_same_rewordings(train: Path) -> None:
    rows = read_examples(train)
    first = [ex.question for ex in augment_examples(rows, n=2, seed=7).examples]
    assert first == [ex.question for ex in augment_examples(rows, n=2, seed=7).examples]


def test_cli_writes_originals_then_marked_rewordings(
    train: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "aug.jsonl"
    code, stdout, err = run_cli(capsys, "data", "augment", str(train), str(out), "--n", "2")
    assert code == 0, err
    rows = _rows(out)
    assert [r["instruction"] for r in rows if "augmented_from" not in r] == [
        r["instruction"] for r in TRAIN
    ]
    marked = [r for r in rows if "augmented_from" in r]
    assert len(marked) == 2 * len(TRAIN)
    assert {r["augmented_from"] for r in marked} == {f"train.jsonl:{i}" for i in range(1, 6)}
    by_answer = {r["output"]: r for r in TRAIN}
    assert all(by_answer[r["output"]].get("facts") == r.get("facts") for r in marked)
    assert "5 rows + 10 rewordings (rules)" in stdout
    # The marker survives loading: `data check` knows the key, `data split` keeps families.
    code, stdout, _ = run_cli(capsys, "data", "check", str(out), "--json")
    assert "unknown-key" not in stdout
    split = tmp_path / "split"
    code, _, err = run_cli(capsys, "data", "split", str(out), "--out", str(split),
                           "--test-ratio", "0.34")  # fmt: skip
    assert code == 0, err
    train_answers = {r["output"] for r in _rows(split / "train.jsonl")}
    test_answers = {r["output"] for r in _rows(split / "test.jsonl")}
    assert test_answers and not train_answers & test_answers


def test_excluded_test_questions_are_never_produced(
    train: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    test = _write(tmp_path / "test.jsonl", [
        {"instruction": "返品は可能ですか？", "output": "14日以内です。"},  # a rule rewording
        {"instruction": "送料はいくらですか？", "facts": [["550円"]]},  # a train question
    ])  # fmt: skip
    out = tmp_path / "aug.jsonl"
    code, _, err = run_cli(
        capsys, "data", "augment", str(train), str(out), "--n", "3",
        "--exclude", str(test), "--json",
    )  # fmt: skip
    assert code == 0, err
    questions = [r["instruction"] for r in _rows(out)]
    assert "返品は可能ですか？" not in questions
    assert not [r for r in _rows(out) if r.get("augmented_from") == "train.jsonl:2"]
    assert questions.count("送料はいくらですか？") == 1  # the user's row itself is kept


def test_output_that_is_an_input_is_refused(
    train: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run_cli(capsys, "data", "augment", str(train), str(train))
    assert code == 2 and "also an input" in err


def _teacher_reply(messages: list[dict[str, str]]) -> str:
    ask = messages[-1]["content"]
    if "返品" in ask:  # one good, one that drops the number-less key word, one duplicate
        return json.dumps(
            {"rewordings": ["返品の受付はしていますか？", "できますか？", "返品はできますか？"]},
            ensure_ascii=False,
        )
    if "ABC-123" in ask:
        return '```json\n{"rewordings": ["ABC-123を3個買うと送料は？"]}\n```'  # new number
    return "I'm sorry, I cannot help with that."  # garbage: no JSON at all


def test_teacher_rewordings_are_filtered_and_garbage_falls_back_to_rules(
    fake_ollama,
    train: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],  # type: ignore[no-untyped-def]
) -> None:
    fake_ollama.add_model("qwen2.5:7b")
    fake_ollama.script("qwen2.5:7b", _teacher_reply)
    out = tmp_path / "aug.jsonl"
    code, stdout, err = run_cli(
        capsys, "data", "augment", str(train), str(out), "--n", "2",
        "--teacher", "ollama:qwen2.5:7b", "--json",
    )  # fmt: skip
    assert code == 0, err
    report = json.loads(stdout)
    assert report["method"] == "teacher+rules"
    assert report["teacher_unreadable"] == 3  # 送料, キャンセル and the English row
    rows = _rows(out)
    first = [r["instruction"] for r in rows if r.get("augmented_from") == "train.jsonl:1"]
    assert first[0] == "返品の受付はしていますか？"  # the teacher's usable rewording comes first
    assert "できますか？" not in first
    dropped = {d["text"]: d["reason"] for d in report["dropped"]}
    assert "lost 返品" in dropped["できますか？"]
    assert "+3" in dropped["ABC-123を3個買うと送料は？"]
    assert all(len([r for r in rows if r.get("augmented_from") == f"train.jsonl:{i}"]) == 2
               for i in range(1, 6))  # fmt: skip
    sent = fake_ollama.requests_to("/api/chat")
    assert len(sent) == 5
    assert sent[0].json["format"]["properties"]["rewordings"]["type"] == "array"
    assert "言い換え" in sent[0].json["messages"][-1]["content"]
    assert "rewordings of this question" in sent[-1].json["messages"][-1]["content"]


def _recipe(tmp_path: Path, train: Path, augment: str) -> object:
    from ollama_tune.config import load_recipe

    path = tmp_path / "recipe.yaml"
    path.write_text(f"name: shop\ndata:\n  train: {train.name}\n  test_ratio: 0.4\n{augment}")
    return load_recipe(path, {})


@pytest.mark.parametrize("enabled", [True, False])
def test_recipe_augment_stage_rewords_the_train_split_only(
    train: Path, tmp_path: Path, enabled: bool
) -> None:
    from ollama_tune.pipeline import Context, run_stages
    from ollama_tune.pipeline.augment_stage import train_data
    from ollama_tune.pipeline.stages import build_stages

    section = f"augment:\n  enabled: {str(enabled).lower()}\n  n: 2\n"
    ctx = Context(recipe=_recipe(tmp_path, train, section), workdir=tmp_path / "w")
    stages = [s for s in build_stages() if s.name in ("check", "split", "augment")]
    assert [s.name for s in stages] == ["check", "split", "augment"]
    run_stages(stages, ctx)
    split_train = ctx.workdir / "data" / "train.jsonl"
    if not enabled:
        assert train_data(ctx) == split_train
        return
    assert train_data(ctx) == ctx.workdir / "data" / "train.augmented.jsonl"
    rows = _rows(train_data(ctx))
    originals = _rows(split_train)
    test_qs = {r["messages"][0]["content"] for r in _rows(ctx.workdir / "data" / "test.jsonl")}
    assert len(rows) == 3 * len(originals) == 9
    assert not test_qs & {r["messages"][0]["content"] for r in rows}
    assert ctx.outputs["augment"]["added"] == 6
    train_stage = next(s for s in build_stages() if s.name == "train")
    assert "augment" in train_stage.depends  # new rewordings retrain


def test_a_local_gguf_teacher_runs_embedded_and_its_output_is_filtered(
    smollm2_gguf: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The real SmolLM2-135M as teacher: whatever it writes, only rewordings that keep the
    key terms reach the output, and the row still gets its n rewordings."""
    src = _write(tmp_path / "train.jsonl", [TRAIN[2]])
    out = tmp_path / "aug.jsonl"
    code, stdout, err = run_cli(
        capsys, "data", "augment", str(src), str(out), "--n", "2",
        "--teacher", str(smollm2_gguf), "--json",
    )  # fmt: skip
    assert code == 0, err
    assert json.loads(stdout)["method"] == "teacher+rules"
    rows = _rows(out)
    assert len(rows) == 3
    for r in rows[1:]:
        assert missing_terms(TRAIN[2]["instruction"], r["instruction"], TRAIN[2]["output"]) == []
