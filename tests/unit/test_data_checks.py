"""Every `data check` rule, each driven by a small data set that has exactly that problem."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from _data_helpers import seed_rows, write_jsonl

from ollama_tune.data import CheckConfig, validate_dataset
from ollama_tune.data.checks import CheckResult


def check(tmp_path: Path, rows: list[Any], **kw: Any) -> CheckResult:
    return validate_dataset(CheckConfig([write_jsonl(tmp_path / "d.jsonl", rows)], **kw))


def codes_at(result: CheckResult, code: str) -> list[int]:
    return [i.source.line for i in result.issues if i.code == code]


def with_row(row: dict[str, Any], n: int = 12) -> list[dict[str, Any]]:
    return [*seed_rows(n), row]


def test_clean_data_has_only_the_size_warning(tmp_path: Path) -> None:
    result = check(tmp_path, seed_rows(12))
    assert [i.code for i in result.issues] == ["few-rows"]
    assert result.ok


def test_row_count_thresholds(tmp_path: Path) -> None:
    small = check(tmp_path, seed_rows(9))
    assert [i.code for i in small.errors] == ["too-few-rows"] and not small.ok
    assert "few-rows" not in {i.code for i in check(tmp_path, seed_rows(50)).issues}


def test_exact_and_near_duplicates(tmp_path: Path) -> None:
    rows = seed_rows(12)
    exact = dict(rows[0], instruction=" " + rows[0]["instruction"].replace("返品", "返品") + "　")
    near = dict(rows[1], output=rows[1]["output"] + "よろしくお願いします。")
    result = check(tmp_path, [*rows, exact, near])
    assert codes_at(result, "duplicate") == [13]
    assert codes_at(result, "near-duplicate") == [14]
    assert "d.jsonl:2" in next(i.message for i in result.issues if i.code == "near-duplicate")


def test_full_width_variant_is_an_exact_duplicate_after_nfkc(tmp_path: Path) -> None:
    rows = seed_rows(12)
    full = dict(
        rows[1], output=rows[1]["output"].replace("550", "５５０").replace("5,000", "５，０００")
    )
    assert codes_at(check(tmp_path, [*rows, full]), "duplicate") == [13]


def test_conflicting_answers_to_the_same_question(tmp_path: Path) -> None:
    rows = seed_rows(12)
    other = dict(rows[0], output="返品はお受けしておりません。ご了承ください。")
    result = check(tmp_path, [*rows, other])
    assert codes_at(result, "conflicting-answers") == [13]


def test_identical_outputs_for_many_rows(tmp_path: Path) -> None:
    rows = seed_rows(12)
    for i in range(5):
        rows[i]["output"] = "担当者よりご連絡いたします。"
    result = check(tmp_path, rows)
    assert codes_at(result, "repeated-output") == [1]
    assert "5 rows" in next(i.message for i in result.issues if i.code == "repeated-output")


def test_too_long_with_estimate(tmp_path: Path) -> None:
    result = check(
        tmp_path, with_row({"instruction": "長い", "output": "あ" * 300 + "です。"}), max_tokens=200
    )
    assert codes_at(result, "too-long") == [13]
    assert "estimated" in next(i.message for i in result.issues if i.code == "too-long")


@pytest.mark.parametrize(
    "text",
    ["返品はâ€™可能です。", "返品は縺ァきます。", "返品は\ufffd可能です。", "cafÃ© です。"],
)
def test_mojibake(tmp_path: Path, text: str) -> None:
    assert codes_at(
        check(tmp_path, with_row({"instruction": "文字化け", "output": text})), "mojibake"
    ) == [13]


def test_mixed_digit_widths(tmp_path: Path) -> None:
    result = check(
        tmp_path, with_row({"instruction": "期限", "output": "３０日以内、14日以内です。"})
    )
    assert codes_at(result, "mixed-digit-width") == [13]


def test_mixed_politeness_in_japanese_answers(tmp_path: Path) -> None:
    result = check(
        tmp_path, with_row({"instruction": "返品", "output": "返品できます。ただし期限は30日だ。"})
    )
    assert codes_at(result, "mixed-politeness") == [13]


def test_language_mismatch_against_the_majority(tmp_path: Path) -> None:
    result = check(
        tmp_path,
        with_row({"instruction": "Returns?", "output": "You can return items within 30 days."}),
    )
    assert codes_at(result, "language-mismatch") == [13]


def test_modelfile_triple_quotes(tmp_path: Path) -> None:
    result = check(
        tmp_path, with_row({"instruction": "引用", "output": '次のように書きます。"""例"""です。'})
    )
    assert codes_at(result, "modelfile-quotes") == [13]


def test_personal_data_email_phone_card(tmp_path: Path) -> None:
    rows = seed_rows(12)
    rows.append(
        {"instruction": "連絡先は taro.yamada@example.co.jp です", "output": "承知しました。"}
    )
    rows.append(
        {
            "instruction": "電話は０９０－１２３４－５６７８です",
            "output": "折り返しご連絡いたします。",
        }
    )
    rows.append(
        {
            "instruction": "カード 4111 1111 1111 1111 で払えますか",
            "output": "はい、ご利用いただけます。",
        }
    )
    rows.append({"instruction": "注文番号 4111 1111 1111 1112 の件", "output": "確認いたします。"})
    result = check(tmp_path, rows)
    found = [
        (i.source.line, i.message.split()[0]) for i in result.issues if i.code == "personal-data"
    ]
    assert found == [(13, "e-mail"), (14, "phone"), (15, "card-like")]


def test_business_phone_in_three_answers_is_not_personal_data(tmp_path: Path) -> None:
    rows = seed_rows(12)
    for i in range(3):
        rows[i]["output"] += "お電話は0120-123-456（平日10時〜18時）まで。"
    rows[3]["output"] += "担当直通は03-1234-5678です。"
    result = check(tmp_path, rows)
    assert [i.message for i in result.issues if i.code == "personal-data"] == [
        "phone number 03-1234-5678 in the assistant turn"
    ]


def test_strict_turns_warnings_into_errors(tmp_path: Path) -> None:
    result = check(tmp_path, seed_rows(12), strict=True)
    assert [(i.severity, i.code) for i in result.issues] == [("error", "few-rows")]
    assert not result.ok


def test_every_problem_is_reported_not_just_the_first(tmp_path: Path) -> None:
    rows: list[Any] = [
        *seed_rows(12),
        {"output": "x"},
        "not an object",
        {"instruction": "a", "output": "b", "id": 1},
    ]
    result = check(tmp_path, rows)
    assert {(i.code, i.source.line) for i in result.issues} >= {
        ("missing-field", 13),
        ("not-an-object", 14),
        ("unknown-key", 15),
    }
    assert all(i.hint for i in result.issues)
