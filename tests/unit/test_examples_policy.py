"""The bundled customer-support data set agrees, to the letter, with the store policy it was
written from (`shared/store-policy.ja.md`).

A small model fine-tuned on this data repeats its numbers verbatim, so one wrong period or fee
in the data becomes a wrong promise to a customer. These checks read the policy itself (not a
copy of its numbers) so that editing either side without the other fails here.
Standard library + pytest only: the data loader is developed in parallel.
"""

from __future__ import annotations

import json
import os
import re
import unicodedata
from itertools import pairwise
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
CS_DIR = REPO / "examples" / "customer-support"
SALES_DIR = REPO / "examples" / "sales"

# ---------------------------------------------------------------------------------------------
# Locating and normalising


def _policy_path() -> Path:
    """`$OLLAMA_TUNE_SHARED/store-policy.ja.md`, else `<repo>/../shared/store-policy.ja.md`."""
    candidates = []
    if os.environ.get("OLLAMA_TUNE_SHARED"):
        candidates.append(Path(os.environ["OLLAMA_TUNE_SHARED"]) / "store-policy.ja.md")
    candidates.append(Path(__file__).resolve().parents[3] / "shared" / "store-policy.ja.md")
    for path in candidates:
        if path.is_file():
            return path
    pytest.fail(
        "store-policy.ja.md not found at " + ", ".join(map(str, candidates)) + "; clone the "
        "shared material beside the repository or set OLLAMA_TUNE_SHARED to its folder"
    )


@pytest.fixture(scope="module")
def policy() -> str:
    return _policy_path().read_text(encoding="utf-8")


def _rows(path: Path) -> list[dict]:
    with path.open(encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


@pytest.fixture(scope="module")
def cs_train() -> list[dict]:
    return _rows(CS_DIR / "train.jsonl")


@pytest.fixture(scope="module")
def cs_test() -> list[dict]:
    return _rows(CS_DIR / "test.jsonl")


_RANGE = re.compile(r"(?<=\d)\s*[〜~\-−–—‐]\s*(?=\d)")
_THOUSANDS = re.compile(r"(?<=\d),(?=\d{3})")
_MONTHS = re.compile(r"(?<=\d)[ヵカケかヶ]月")


def norm(text: str) -> str:
    """NFKC, one range mark (5〜7 = 5～7 = 5-7), no thousands comma, one spelling of ヶ月."""
    t = unicodedata.normalize("NFKC", text)
    t = _RANGE.sub("~", t)
    t = _THOUSANDS.sub("", t)
    return _MONTHS.sub("ヶ月", t)


# ---------------------------------------------------------------------------------------------
# What counts as a fact: numbers with units, phone numbers, opening hours, quoted screen names

_PHONE = re.compile(r"\d{2,4}~\d{2,4}~\d{3,4}")
_HOURS = re.compile(r"\d{1,2}:\d{2}(?:~\d{1,2}:\d{2})?")
# Longest units first so that 営業日 is not read as 日 and 年間 not as 年.
_UNITS = "営業日|日間|日|円|年間|年|ヶ月|週間|時間|時|分|秒|ポイント|%|個|点|件|回|歳|名"
_QUANTITY = re.compile(rf"\d+(?:\.\d+)?(?:~\d+(?:\.\d+)?)?(?:{_UNITS})")
_QUOTED = re.compile(r"「([^」]+)」")


def quantities(text: str) -> set[str]:
    t = norm(text)
    found = set(_PHONE.findall(t))
    t = _PHONE.sub(" ", t)
    found |= set(_HOURS.findall(t))
    t = _HOURS.sub(" ", t)
    return found | set(_QUANTITY.findall(t))


def screen_names(text: str) -> set[str]:
    return {norm(name) for name in _QUOTED.findall(text)}


def policy_screen_names(policy: str) -> set[str]:
    """Quoted names in the rules (the title quotes the shop's name, which is not a screen)."""
    return screen_names("\n".join(policy_bullets(policy)))


def unknown_facts(text: str, policy: str) -> list[str]:
    """Numbers-with-units and 「names」 in `text` that the policy does not contain."""
    bad = sorted(quantities(text) - quantities(policy))
    bad += sorted(f"「{n}」" for n in screen_names(text) - policy_screen_names(policy))
    return bad


def _answer_texts(rows: list[dict]) -> list[tuple[str, str]]:
    """(where, text) for every output and every fact string."""
    out = []
    for i, row in enumerate(rows, 1):
        out.append((f"line {i} output", row["output"]))
        for group in row.get("facts", []):
            out.extend((f"line {i} fact", fact) for fact in group)
    return out


def fact_problems(rows: list[dict], policy: str) -> list[str]:
    return [
        f"{where}: {bad} not in the policy"
        for where, text in _answer_texts(rows)
        for bad in unknown_facts(text, policy)
    ]


# ---------------------------------------------------------------------------------------------
# Policy rules, each tied to a distinctive phrase of its bullet and the words an answer that
# states the rule must contain (normalised).

RULES: dict[str, tuple[str, ...]] = {
    "未使用・未開封の商品に限る": ("14日以内", "未使用", "未開封"),
    "手順: 1. マイページから返品申請": ("返品申請", "返品ラベル", "梱包"),
    "返品確認後5〜7営業日": ("5〜7営業日", "支払い方法"),
    "お客様都合の返品の送料": ("お客様都合", "送料", "お客様負担"),
    "不良品・誤配送は商品到着後30日以内": ("30日以内", "当社負担", "交換または返金"),
    "購入金額100円（税抜）につき1ポイント": ("100円", "税抜", "1ポイント"),
    "通常ポイント: 最終利用日から1年間": ("通常ポイント", "最終利用日", "1年間"),
    "キャンペーンポイント: 付与日から6ヶ月": ("キャンペーンポイント", "付与日", "6ヶ月"),
    "誕生日ポイント: 付与日から3ヶ月": ("誕生日ポイント", "付与日", "3ヶ月"),
    "「ポイント履歴」で確認": ("マイページ", "「ポイント履歴」"),
    "注文確定から2〜4営業日": ("注文確定", "2〜4営業日"),
    "平日14時までの注文は当日出荷": ("平日14時", "当日出荷"),
    "全国一律550円": ("550円", "5,000円", "送料無料"),
    "「注文履歴」から追跡番号": ("「注文履歴」", "追跡番号"),
    "在庫は商品番号": ("在庫", "商品番号", "商品ページ"),
    "「入荷お知らせメール」に登録": ("「入荷お知らせメール」", "再入荷"),
    "使える方法: クレジットカード": ("クレジットカード", "220円", "330円"),
    "発送前であればマイページの「注文履歴」から": ("発送前", "「注文履歴」", "キャンセル"),
    "発送後のキャンセルはできない": ("発送後", "キャンセル", "返品"),
    "「パスワードをお忘れの方」": ("「パスワードをお忘れの方」", "メールアドレス", "24時間"),
    "電話: 0120-123-456": ("0120-123-456", "平日10:00〜18:00"),
    "メール・チャットは24時間受付": ("メール・チャット", "24時間", "1営業日以内"),
}

RETURN_STEPS = ("返品申請", "返品ラベル", "梱包")
PASSWORD_STEPS = ("「パスワードをお忘れの方」", "メールアドレス", "再設定用リンク")
_POLITE_END = re.compile(r"(です|ます|ました|ません|ませ|ございます|ください|でしょう)か?$")
_STEP = re.compile(r"^\s*(\d+)\.\s")


# Values tied to their subject: a clause (for the return periods, whose subject often sits in
# another clause: the sentence or answer) that names the subjects of exactly one value may only
# carry that value. This catches 220円 and 330円 swapped, which the number check alone cannot.
BINDINGS: dict[str, dict[str, str]] = {
    "円": {"コンビニ払い": "220円", "代金引換": "330円", "代引": "330円"},
    "ヶ月|年間": {
        "キャンペーンポイント": "6ヶ月",
        "誕生日ポイント": "3ヶ月",
        "通常ポイント": "1年間",
    },
    "営業日": {"返金": "5〜7営業日", "お届け": "2〜4営業日", "返信": "1営業日"},
    "日": {"未開封": "14日", "不良品": "30日", "誤配送": "30日"},
}
_CLAUSE = re.compile(r"[。、，,\n]")
_SENTENCE = re.compile(r"[。\n]")


def binding_problems(rows: list[dict]) -> list[str]:
    problems = []
    for i, row in enumerate(rows, 1):
        text = norm(row["output"])
        for units, subjects in BINDINGS.items():
            unit = re.compile(rf"\d(?:{units})$")
            # Bare 日 only ever counts the return periods, so a whole answer can be judged.
            parts = [text, *_SENTENCE.split(text)] if units == "日" else _CLAUSE.split(text)
            for part in parts:
                named = {norm(v) for k, v in subjects.items() if k in part}
                found = {q for q in quantities(part) if unit.search(q)}
                if len(named) == 1 and found - named:
                    problems.append(f"line {i}: {sorted(found - named)} next to {named}")
    return problems


def policy_bullets(policy: str) -> list[str]:
    """The rule bullets under the policy's `##` sections."""
    return [line[2:].strip() for line in policy.splitlines() if line.startswith("- ")]


def covering_questions(rows: list[dict], keywords: tuple[str, ...]) -> set[str]:
    keys = [norm(k) for k in keywords]
    return {
        norm(r["instruction"] + r["input"]).replace(" ", "")
        for r in rows
        if all(k in norm(r["output"]) for k in keys)
    }


def step_order_problems(text: str, steps: tuple[str, ...]) -> list[str]:
    """Numbered lines that name the steps must name them in the policy's order."""
    numbered = [(int(m.group(1)), line) for line in text.splitlines() if (m := _STEP.match(line))]
    seen = []
    for step in steps:
        numbers = [n for n, line in numbered if step in line]
        if numbers:
            seen.append((step, numbers[0]))
    numbers = [n for _, n in seen]
    if any(a >= b for a, b in pairwise(numbers)):
        return [f"steps out of order: {seen}"]
    return []


def impolite_sentences(text: str) -> list[str]:
    """Sentences (split at 。！？ and line ends) that do not end in a です・ます form."""
    bad = []
    for line in text.splitlines():
        for sentence in re.split(r"(?<=[。！？!?])", line):
            s = sentence.strip().rstrip("。！？!?")
            if s and not _POLITE_END.search(s):
                bad.append(s)
    return bad


def procedure_problems(rows: list[dict]) -> list[str]:
    problems = []
    for i, row in enumerate(rows, 1):
        text = row["output"]
        for steps in (RETURN_STEPS, PASSWORD_STEPS):
            problems += [f"line {i}: {p}" for p in step_order_problems(text, steps)]
        # The policy numbers the return procedure, so a full walk-through is numbered too.
        if all(s in text for s in RETURN_STEPS):
            lines = [ln for ln in text.splitlines() if _STEP.match(ln)]
            for n, step in enumerate(RETURN_STEPS, 1):
                if not any(ln.lstrip().startswith(f"{n}.") and step in ln for ln in lines):
                    problems.append(f"line {i}: step {n} ({step}) is not a numbered line")
    return problems


# ---------------------------------------------------------------------------------------------
# The tests


def test_policy_found_and_has_the_expected_facts(policy: str) -> None:
    facts = quantities(policy)
    for expected in ("14日", "30日", "5~7営業日", "100円", "1年間", "6ヶ月", "3ヶ月", "2~4営業日"):
        assert expected in facts
    for expected in ("14時", "550円", "5000円", "220円", "330円", "24時間", "1営業日"):
        assert expected in facts
    assert {"0120~123~456", "10:00~18:00"} <= facts
    assert policy_screen_names(policy) == {
        "ポイント履歴",
        "注文履歴",
        "入荷お知らせメール",
        "パスワードをお忘れの方",
    }


def test_policy_location_can_be_overridden(
    policy: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "store-policy.ja.md").write_text(policy, encoding="utf-8")
    monkeypatch.setenv("OLLAMA_TUNE_SHARED", str(tmp_path))
    assert _policy_path() == tmp_path / "store-policy.ja.md"
    monkeypatch.setenv("OLLAMA_TUNE_SHARED", str(tmp_path / "missing"))
    assert _policy_path().parent.name == "shared"


def test_every_number_and_screen_name_in_answers_is_in_the_policy(
    policy: str, cs_train: list[dict], cs_test: list[dict]
) -> None:
    assert fact_problems(cs_train, policy) == []
    assert fact_problems(cs_test, policy) == []


def test_a_single_changed_period_is_caught(policy: str, cs_train: list[dict]) -> None:
    mutated = [dict(r) for r in cs_train]
    victim = next(i for i, r in enumerate(mutated) if "14日" in r["output"])
    mutated[victim]["output"] = mutated[victim]["output"].replace("14日", "15日", 1)
    problems = fact_problems(mutated, policy)
    assert problems == [f"line {victim + 1} output: 15日 not in the policy"]
    # 30日 is in the policy (for faulty goods), so only its subject gives it away.
    mutated[victim]["output"] = cs_train[victim]["output"].replace("14日", "30日", 1)
    assert fact_problems(mutated, policy) == []
    assert binding_problems(mutated) != []


@pytest.mark.parametrize(
    ("old", "new"),
    [("550円", "500円"), ("「注文履歴」", "「購入履歴」"), ("10:00〜18:00", "9:00〜18:00")],
)
def test_other_single_changes_are_caught(
    policy: str, cs_train: list[dict], old: str, new: str
) -> None:
    mutated = [dict(r) for r in cs_train]
    victim = next(r for r in mutated if old in r["output"])
    victim["output"] = victim["output"].replace(old, new, 1)
    assert len(fact_problems(mutated, policy)) == 1


def test_values_stay_with_their_subject(
    policy: str, cs_train: list[dict], cs_test: list[dict]
) -> None:
    for subjects in BINDINGS.values():
        for subject, value in subjects.items():
            assert norm(value) in quantities(policy), value
            # 代引 is the everyday short form of the policy's 代金引換.
            assert subject in policy or subject == "代引", subject
    assert binding_problems(cs_train) == []
    assert binding_problems(cs_test) == []


@pytest.mark.parametrize(
    ("a", "b"),
    [("220円", "330円"), ("6ヶ月", "3ヶ月"), ("5〜7営業日", "2〜4営業日"), ("14日", "30日")],
)
def test_swapped_values_are_caught(cs_train: list[dict], a: str, b: str) -> None:
    """Both values are in the policy, so only the subject binding can tell they were swapped."""
    swapped = [
        {**r, "output": r["output"].replace(a, "\0").replace(b, a).replace("\0", b)}
        for r in cs_train
    ]
    assert len(binding_problems(swapped)) >= 3


def test_modelfile_states_only_policy_facts(policy: str) -> None:
    text = (CS_DIR / "customer-support.modelfile").read_text(encoding="utf-8")
    body = "\n".join(ln for ln in text.splitlines() if not ln.startswith("#"))
    assert sorted(quantities(body) - quantities(policy)) == []
    names = screen_names(body) - {"みどり商店オンライン"}
    assert names <= policy_screen_names(policy)
    assert binding_problems([{"output": body}]) == []


def test_every_policy_rule_is_mapped_to_keywords(policy: str) -> None:
    bullets = policy_bullets(policy)
    for bullet in bullets:
        owners = [phrase for phrase in RULES if phrase in bullet]
        assert len(owners) == 1, f"policy rule without exactly one keyword map: {bullet}"
    assert len(RULES) == len(bullets)


@pytest.mark.parametrize("phrase", list(RULES))
def test_every_rule_is_covered_by_three_distinct_training_questions(
    phrase: str, cs_train: list[dict], policy: str
) -> None:
    keywords = RULES[phrase]
    for k in keywords:
        assert norm(k) in norm(policy), f"keyword {k!r} of rule {phrase!r} is not in the policy"
    questions = covering_questions(cs_train, keywords)
    assert len(questions) >= 3, f"{phrase}: only {len(questions)} questions state {keywords}"


def test_step_keywords_follow_the_policy_order(policy: str) -> None:
    match = re.search(r"手順:\s*1\.\s*(.+?)\s+2\.\s*(.+?)\s+3\.\s*(.+)", policy)
    assert match, "the return procedure line 手順: 1. … 2. … 3. … is missing from the policy"
    for step, keyword in zip(match.groups(), RETURN_STEPS, strict=True):
        assert keyword in step
    bullet = next(b for b in policy_bullets(policy) if PASSWORD_STEPS[0] in b)
    positions = [bullet.index(k) for k in PASSWORD_STEPS]
    assert positions == sorted(positions)


def test_procedure_answers_keep_the_policy_step_order(
    cs_train: list[dict], cs_test: list[dict]
) -> None:
    assert procedure_problems(cs_train) == []
    assert procedure_problems(cs_test) == []
    walkthroughs = [r for r in cs_train if all(s in r["output"] for s in RETURN_STEPS)]
    assert len(walkthroughs) >= 3


def test_swapped_steps_are_caught(cs_train: list[dict]) -> None:
    row = next(r for r in cs_train if "2. 返品ラベル" in r["output"])
    swapped = row["output"].replace("1. ", "#").replace("2. ", "1. ").replace("#", "2. ")
    assert procedure_problems([{**row, "output": swapped}]) != []


def test_every_answer_is_polite(cs_train: list[dict], cs_test: list[dict]) -> None:
    bad = {
        row["instruction"]: impolite_sentences(row["output"])
        for row in cs_train + cs_test
        if impolite_sentences(row["output"])
    }
    assert bad == {}
    assert impolite_sentences("返品は14日以内だよ。") == ["返品は14日以内だよ"]


def test_referrals_give_the_full_contact_details(cs_train: list[dict], cs_test: list[dict]) -> None:
    """An answer that sends the customer to the desk says how to reach it, exactly."""
    for row in cs_train + cs_test:
        text = norm(row["output"])
        if "お問い合わせ窓口" in text:
            assert "0120~123~456" in text and "メール・チャット" in text, row["instruction"]
        if "0120~123~456" in text:
            assert "平日10:00~18:00" in text, row["instruction"]


def test_sales_answers_use_only_policy_or_given_numbers(policy: str) -> None:
    """Sales answers may quote prices from the row's own input, otherwise only the policy's."""
    for i, row in enumerate(_rows(SALES_DIR / "train.jsonl") + _rows(SALES_DIR / "test.jsonl")):
        allowed = quantities(policy) | quantities(row["instruction"] + row["input"])
        assert quantities(row["output"]) <= allowed, (i, quantities(row["output"]) - allowed)
        assert screen_names(row["output"]) <= policy_screen_names(policy), i
