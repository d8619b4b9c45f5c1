"""Japanese text features: normalisation for fact matching, language, politeness, structure."""

from __future__ import annotations

import pytest

from ollama_tune import japanese


@pytest.mark.parametrize(
    "variant",
    [
        "５～７営業日",
        "5-7営業日",
        "5から7営業日",
        "5〜7営業日",
        "5 ~ 7 営業日",
        "５－７営業日",
        "5~7営業日",
    ],
)
def test_range_spellings_normalise_to_one_form(variant: str) -> None:
    assert japanese.normalize_for_match(variant) == "5~7営業日"


@pytest.mark.parametrize("variant", ["5,000円", "5000円", "５，０００円", "５０００円", "5 000円"])
def test_thousands_separators_and_full_width_digits_fold(variant: str) -> None:
    assert japanese.normalize_for_match(variant) == "5000円"


def test_normalisation_folds_case_and_half_width_katakana() -> None:
    assert japanese.normalize_for_match("ﾏｲﾍﾟｰｼﾞ") == japanese.normalize_for_match("マイページ")
    assert japanese.normalize_for_match("My Page") == "mypage"


def test_normalisation_keeps_distinct_numbers_apart() -> None:
    assert japanese.normalize_for_match("15営業日") != japanese.normalize_for_match("5営業日")
    # A comma that is not a thousands separator stays a separator between numbers.
    assert japanese.normalize_for_match("1,2") == "1,2"


def test_japanese_ratio_counts_letters_only() -> None:
    assert japanese.japanese_ratio("返品は30日以内です。") == 1.0
    assert japanese.japanese_ratio("Returns within 30 days.") == 0.0
    assert japanese.japanese_ratio("12345!") == 0.0
    assert 0.4 < japanese.japanese_ratio("返品 OK") < 0.6


@pytest.mark.parametrize(
    ("text", "lang"),
    [
        ("返品は30日以内に承ります。", "ja"),
        ("Returns are accepted within 30 days.", "en"),
        ("退货请在三十天内申请", "zh"),
        ("반품은 30일 이내에 가능합니다", "ko"),
        ("42", "unknown"),
    ],
)
def test_detect_language(text: str, lang: str) -> None:
    assert japanese.detect_language(text) == lang


def test_polite_answer_has_polite_endings_only() -> None:
    p = japanese.politeness(
        "ご注文ありがとうございます。返品は30日以内に承ります。ご確認ください。"
    )
    assert (p.polite, p.plain) == (3, 0)
    assert p.ratio == 1.0
    assert not p.mixed


def test_plain_form_answer_is_not_polite() -> None:
    p = japanese.politeness("返品は30日以内にできる。送料は客が払う。")
    assert p.polite == 0 and p.plain == 2
    assert p.ratio == 0.0


def test_mixed_register_is_detected() -> None:
    p = japanese.politeness("返品は可能です。送料は自分で払う。")
    assert p.mixed
    assert p.ratio == 0.5


def test_politeness_ignores_english_and_list_items() -> None:
    p = japanese.politeness("Thank you.\n1. マイページを開く\n2. 返品申請")
    assert p.ratio is None


def test_structure_needs_two_steps_or_bullets() -> None:
    assert japanese.has_structure("1. ログイン\n2. 注文履歴を開く\n3. 返品を選ぶ")
    assert japanese.has_structure("・送料無料\n・30日以内")
    assert japanese.has_structure("１．ログイン\n２．申請")  # full-width numbering
    assert not japanese.has_structure("1. ログインしてください。")
    assert not japanese.has_structure("返品は30日以内です。")
    assert japanese.count_steps("① 開く\n② 選ぶ\n③ 送る") == 3


@pytest.mark.parametrize(
    "sentence",
    [
        "よろしいでしょうか？",
        "ご存じありませんか？",
        "ご不明点はございますか。",
        "承知いたしました！",
    ],
)
def test_polite_questions_and_exclamations_count_as_polite(sentence: str) -> None:
    assert japanese.sentence_endings(sentence) == ["polite"]


def test_code_blocks_do_not_change_the_language_of_an_answer() -> None:
    from ollama_tune.japanese import detect_language, japanese_ratio

    answer = (
        "ファイルは with 文で開くのが安全です。\n```python\n"
        "with open('data.txt', encoding='utf-8') as f:\n    content = f.read()\n"
        "print(content.splitlines())\n```\n`read()` は全体を文字列で返します。"
    )
    assert detect_language(answer) == "ja"
    assert japanese_ratio(answer) > 0.8
    assert detect_language("```python\nprint('hello world')\n```\nUse print to write text.") == "en"
