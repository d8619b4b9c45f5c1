"""Per-answer metrics and aggregation on hand-written Japanese and English answers."""

from __future__ import annotations

import pytest

from ollama_tune.evaluate.metrics import (
    METRICS,
    aggregate,
    check_facts,
    chrf,
    derive_facts,
    percentile,
    score_answer,
)

REF = (
    "返品は商品到着後30日以内に承ります。返金は５～７営業日で、5,000円以上のご注文は送料無料です。"
)
FACTS = [["30日以内", "30日"], ["5-7営業日"], ["5000円"]]


@pytest.mark.parametrize(
    "answer",
    [
        "30日以内なら返品できます。返金は5から7営業日、5000円以上で送料無料です。",
        "返品は３０日以内です。返金は５〜７営業日。５，０００円以上は送料無料です。",
        "返品は 30 日以内、返金は 5 - 7 営業日、5,000 円以上なら送料無料でございます。",
    ],
)
def test_fact_recall_folds_spellings_of_the_same_facts(answer: str) -> None:
    fc = check_facts(answer, REF, FACTS)
    assert fc.recall == 1.0
    assert fc.missed_labels == []


def test_fact_recall_counts_each_group_once_and_lists_missed() -> None:
    fc = check_facts("返品は30日以内です。", REF, FACTS)
    assert fc.recall == pytest.approx(1 / 3)
    assert fc.found_labels == ["30日以内"]
    assert fc.missed_labels == ["5-7営業日", "5000円"]


def test_numbers_only_match_whole() -> None:
    assert check_facts("返品は130日以内です。", REF, [["30日"]]).recall == 0.0
    assert check_facts("送料は50000円です。", REF, [["5000円"]]).recall == 0.0
    assert check_facts("返金は15-7営業日", REF, [["5-7営業日"]]).recall == 0.0


def test_a_repeated_question_earns_no_facts_but_a_confirming_answer_does() -> None:
    question = "返品は30日以内ならできますか？"
    echo = "返品は３０日以内ならできますか？　ご質問ありがとうございます。確認いたします。"
    assert check_facts(echo, REF, FACTS, question=question).recall == 0.0
    assert check_facts(echo, REF, FACTS).recall == pytest.approx(1 / 3)  # the old blind spot
    confirm = "はい、商品到着後30日以内であれば返品できます。"
    assert check_facts(confirm, REF, FACTS, question=question).recall == pytest.approx(1 / 3)
    both = echo + "はい、30日以内なら承ります。"
    assert check_facts(both, REF, FACTS, question=question).recall == pytest.approx(1 / 3)
    # Through the per-answer scorer the evaluation uses.
    assert score_answer(echo, REF, facts=FACTS, question=question).fact_recall == 0.0
    assert check_facts("30日", REF, [["30日"]], question="30日？").recall == 1.0  # too short


def test_any_alternative_in_a_group_counts() -> None:
    fc = check_facts("三十日以内にご連絡ください。", REF, [["30日", "三十日"]])
    assert fc.recall == 1.0


def test_facts_are_derived_from_the_reference_when_missing() -> None:
    groups = derive_facts(
        "「マイページ」の「注文履歴」から申請。返金は５～７営業日、手数料は5,000円。"
    )
    assert groups == (("5~7営業日",), ("5000円",), ("マイページ",), ("注文履歴",))
    fc = check_facts(
        "マイページから申請すると5-7営業日で返金されます。", REF.replace(REF, "x"), None
    )
    assert fc.recall is None  # a reference without numbers or names gives nothing to check
    fc = check_facts("マイページから5-7営業日です", "「マイページ」から。５～７営業日、5,000円。")
    assert fc.derived
    assert fc.recall == pytest.approx(2 / 3)
    assert fc.missed_labels == ["5000円"]


def test_english_facts_ignore_case_and_spaces() -> None:
    ref = "Refunds take 5-7 business days; orders over $50 ship free."
    fc = check_facts("refunds take 5 to 7 Business Days.", ref, [["5-7 business days"], ["$50"]])
    assert fc.found == (False, False)  # "5 to 7" is not a range spelling we fold
    fc = check_facts(
        "Refunds take 5–7 BUSINESS days, $50+ ships free", ref, [["5-7 business days"], ["$50"]]
    )
    assert fc.recall == 1.0


def test_chrf_is_character_level_and_scores_japanese() -> None:
    same = chrf(REF, REF)
    close = chrf("返品は商品到着後30日以内に承ります。", REF)
    unrelated = chrf("Hello, how can I help you today?", REF)
    assert same == pytest.approx(1.0)
    assert 0.15 < close < same
    assert unrelated < 0.05
    assert chrf("", REF) == 0.0


def test_score_answer_for_a_good_japanese_answer() -> None:
    ans = "返品は30日以内に承ります。\n返金は5-7営業日です。5000円以上は送料無料です。"
    m = score_answer(ans, REF, facts=FACTS, done_reason="stop", ttft_s=0.2, total_s=1.5)
    assert m.fact_recall == 1.0
    assert m.language == "ja" and m.language_match is True
    assert m.japanese_share == 1.0
    assert m.politeness == 1.0
    assert m.stopped
    assert m.structure is None  # the reference has no steps
    assert m.length_ratio == pytest.approx(len(ans.strip()) / len(REF), rel=0.1)


def test_score_answer_for_an_english_answer_to_a_japanese_question() -> None:
    m = score_answer("You can return items within 30 days.", REF, facts=FACTS, done_reason="length")
    assert m.language == "en" and m.language_match is False
    assert m.japanese_share == 0.0
    assert m.politeness == 0.0  # no 丁寧語 at all
    assert not m.stopped
    assert m.fact_recall == 0.0  # "30 days" is not the fact "30日"


def test_plain_form_japanese_scores_low_politeness() -> None:
    m = score_answer("返品は30日以内にできる。返金は5-7営業日かかる。", REF)
    assert m.politeness == 0.0
    assert m.language_match


def test_structure_applies_only_when_the_reference_has_steps() -> None:
    ref = "手順は次のとおりです。\n1. マイページにログイン\n2. 注文履歴を開く\n3. 返品を申請"
    assert score_answer("1. ログイン\n2. 注文履歴\n3. 申請", ref).structure is True
    assert score_answer("ログインして申請してください。", ref).structure is False


def test_english_reference_has_no_politeness() -> None:
    m = score_answer("Sure, within 30 days.", "Returns are accepted within 30 days.")
    assert m.politeness is None
    assert m.language_match is True
    assert m.fact_recall == 1.0  # derived fact "30"


def test_percentile_interpolates() -> None:
    assert percentile([], 50) is None
    assert percentile([3.0], 95) == 3.0
    assert percentile([1.0, 2.0, 3.0, 4.0], 50) == 2.5
    assert percentile([float(i) for i in range(1, 101)], 95) == pytest.approx(95.05)


def test_aggregate_means_percentiles_and_judge() -> None:
    good = score_answer("返品は30日以内、5-7営業日、5000円です。", REF, facts=FACTS, total_s=1.0)
    bad = score_answer("No idea.", REF, facts=FACTS, done_reason="length", total_s=3.0)
    agg = aggregate(
        [good, bad],
        [{"correctness": 5, "politeness": 4, "naturalness": 5}, None],
    )
    assert agg["fact_recall"] == pytest.approx(0.5)
    assert agg["fact_accuracy"] == pytest.approx(0.5)
    assert agg["stop_rate"] == pytest.approx(0.5)
    assert agg["language_match"] == pytest.approx(0.5)
    assert agg["p50_latency_s"] == pytest.approx(2.0)
    assert agg["p95_latency_s"] == pytest.approx(2.9)
    assert agg["p50_ttft_s"] is None  # not reported by this runtime
    assert agg["judge_correctness"] == 5.0
    assert agg["judge_score"] == pytest.approx(14 / 3)
    assert set(agg) == set(METRICS)


def test_metric_best_and_format() -> None:
    assert METRICS["fact_recall"].best([0.2, None, 0.9]) == 0.9
    assert METRICS["p95_latency_s"].best([2.0, 1.5]) == 1.5
    assert METRICS["length_ratio"].best([0.5, 1.2, 3.0]) == 1.2
    assert METRICS["fact_recall"].format(0.875) == "87.5%"
    assert METRICS["p95_latency_s"].format(None) == "—"
