"""Offline rule-based rewordings of a question that keep its meaning.

Three kinds of rewrite, combined: the question form (〜できますか / 〜は可能ですか /
〜したいのですが… / 〜を教えてください; "Can I …" / "Is it possible to …"), the politeness
level (です・ます ↔ でしょうか, a polite opener), and domain synonyms (返品/返却, 送料/配送料,
キャンセル/取り消し …). Synonym groups are the built-in ones the data actually uses, plus the
alternatives the data's own `facts` list, plus word swaps between questions that share one
answer. Every candidate is checked by `terms.missing_terms` before it is used.
"""

from __future__ import annotations

import difflib
import itertools
import random
import re
from collections import defaultdict
from collections.abc import Callable, Sequence

from ollama_tune.data.augment.terms import Synonyms, fold, present_groups
from ollama_tune.data.model import Example

# Domain synonyms of shop support, Japanese and English; only groups the data uses are kept.
BUILTIN_SYNONYMS: tuple[tuple[str, ...], ...] = (
    ("返品", "返却"),
    ("返品し", "送り返し", "返却し"),
    ("返品送料", "返送料", "返品の送料"),
    ("送料", "配送料", "配送料金"),
    ("キャンセル", "取り消し"),
    ("キャンセルし", "取り消し"),
    ("返金", "払い戻し"),
    ("交換", "取り替え"),
    ("支払い方法", "決済方法", "お支払い方法"),
    ("配送状況", "配達状況", "配送の状況"),
    ("不良品", "欠陥品"),
    ("領収書", "レシート"),
    ("問い合わせ", "問合せ", "お問い合わせ"),
    ("届きますか", "到着しますか"),
    ("return", "send back"),
    ("refund", "reimbursement"),
    ("cancel", "call off"),
    ("shipping fee", "delivery charge", "shipping cost"),
    ("order", "purchase"),
)

_END = re.compile(r"[\s？?。．.!！…]+$")
_SURU_NOUN = re.compile(r"[\u4e00-\u9fff\u30a1-\u30fa\u30fc]$")
Rewrite = Callable[[str], list[str]]


def _ja_forms(body: str) -> list[str]:
    """Other ways to ask the same Japanese question (body without the final ？/。)."""
    out: list[str] = []
    if m := re.fullmatch(
        r"(.+?)(?:は|って|を|が)?(?:することは)?(?:でき|出来)(?:ますか|ますでしょうか|る|るの)",
        body,
    ):
        x = m.group(1)
        out += [f"{x}はできますか？", f"{x}は可能ですか？", f"{x}はできますでしょうか？"]
        if _SURU_NOUN.search(x) and "、" not in x:  # "…ですが、Xしたいのですが" reads badly
            out += [f"{x}したいのですが、できますか？", f"{x}することは可能でしょうか？"]
    elif m := re.fullmatch(
        r"(.+?)(?:を|について)(?:教えてください|教えて下さい|教えてほしいです|知りたいです|"
        r"ご教示いただけますでしょうか|教えていただけますか|伺いたいのですが)",
        body,
    ):
        x = m.group(1)
        out += [f"{x}を教えてください。", f"{x}について知りたいです。"]
        out += [f"{x}について教えていただけますか？", f"{x}について伺いたいのですが。"]
    elif m := re.fullmatch(r"(.+?)たい(?:です|のですが|んですけど|んですが|と思っています)", body):
        x = m.group(1)
        out += [f"{x}たいのですが、可能ですか？", f"{x}たいです。", f"{x}たいと考えています。"]
    elif m := re.fullmatch(r"(.+?)ますか", body):
        out += [f"{m.group(1)}ますでしょうか？"]
    elif m := re.fullmatch(r"(.+?)ますでしょうか", body):
        out += [f"{m.group(1)}ますか？"]
    elif m := re.fullmatch(r"(.+?)(?:です|でしょう)か", body):
        out += [f"{m.group(1)}ですか？", f"{m.group(1)}でしょうか？"]
    return out


def _en_forms(body: str) -> list[str]:
    out: list[str] = []
    if m := re.fullmatch(r"(?i)(?:can|could|may) i (.+)", body):
        x = m.group(1)
        out += [
            f"Is it possible to {x}?",
            f"Am I able to {x}?",
            f"I'd like to {x}. Is that possible?",
        ]
    elif m := re.fullmatch(r"(?i)how (?:do|can|should) i (.+)", body):
        x = m.group(1)
        out += [f"What is the way to {x}?", f"Could you tell me how to {x}?", f"How can I {x}?"]
    elif m := re.fullmatch(
        r"(?i)(what|when|where|which|who|how \w+) (is|are|does|do|will) (.+)", body
    ):
        out += [f"Could you tell me {m.group(1).lower()} {m.group(3)} {m.group(2)}?"]
    return out


def _openers(question: str, japanese: bool) -> list[str]:
    """The question behind a polite opener: the same request at a higher register."""
    if japanese:
        return [f"すみません、{question}", f"恐れ入りますが、{question}", f"質問です。{question}"]
    # "Can I…" → "Hello, can I…"; "I" and acronyms ("ABC") keep their capital.
    lead = question[:1].lower() + question[1:] if question[1:2].islower() else question
    return [f"Hello, {lead}", f"Quick question: {lead}"]


def form_variants(question: str) -> list[str]:
    """Question-form and politeness rewrites of `question` (the original excluded)."""
    text = question.strip()
    body = _END.sub("", text)
    japanese = bool(re.search(r"[\u3040-\u30ff\u4e00-\u9fff]", text))
    # Only a one-line question gets its ending rewritten; longer ones keep their wording.
    forms = (_ja_forms(body) if japanese else _en_forms(body)) if "\n" not in text else []
    if japanese:
        # Casual topic "Xって" → "Xは", after a word of 2+ characters only: "持って" is a verb.
        forms += [
            re.sub(
                r"(?<=[\u4e00-\u9fff\u30a1-\u30fa\u30fc]{2})って(?![いおきくしたもみるれ])",
                "は",
                text,
            )
        ]
    forms += _openers(text, japanese)
    return [f for f in dict.fromkeys(forms) if fold(f) != fold(text)]


def synonym_variants(question: str, synonyms: Synonyms) -> list[str]:
    """`question` with one synonym swapped for another of its group."""
    out = []
    for group in synonyms.groups:
        for word in sorted(group, key=len, reverse=True):
            if m := _occurrence(word, group, question):
                out += [question[: m.start()] + o + question[m.end() :] for o in group if o != word]
                break
    return out


def _occurrence(word: str, group: Sequence[str], text: str) -> re.Match[str] | None:
    """Where `word` stands in `text` as the group means it. A group of verb stems
    (返品し/返却し, キャンセルし/取り消し) swaps only before an inflection: 取り消しは is a noun,
    and 「キャンセルしは」 is not Japanese."""
    stems = all(w.endswith("し") for w in group)
    return re.search(re.escape(word) + ("(?=[たてまなよ])" if stems else ""), text)


def mine_synonyms(examples: Sequence[Example]) -> Synonyms:
    """Synonym groups for this data: built-in groups it uses, its `facts` alternatives, and
    one-word swaps between questions that share an answer."""
    texts = [t for ex in examples for t in (ex.question, ex.answer)]
    groups = present_groups(BUILTIN_SYNONYMS, texts)
    for ex in examples:
        for alts in ex.facts or ():
            words = [a for a in alts if a and not re.search(r"\d", a)]
            if len(words) > 1:
                groups.append(tuple(words))
    by_answer: dict[str, list[str]] = defaultdict(list)
    for ex in examples:
        by_answer[fold(ex.answer)].append(ex.question)
    for questions in by_answer.values():
        for a, b in itertools.pairwise(questions):
            if pair := _one_swap(a, b):
                groups.append(pair)
    return Synonyms(tuple(dict.fromkeys(groups)))


def _one_swap(a: str, b: str) -> tuple[str, str] | None:
    """The one word `a` and `b` differ in, when they differ in exactly one short span."""
    ops = [op for op in difflib.SequenceMatcher(None, a, b).get_opcodes() if op[0] != "equal"]
    if len(ops) != 1 or ops[0][0] != "replace":
        return None
    _, i1, i2, j1, j2 = ops[0]
    x, y = a[i1:i2], b[j1:j2]
    ok = all(2 <= len(w) <= 8 and not re.search(r"[\d\s、。？?]", w) for w in (x, y))
    return (x, y) if ok else None


def rule_rewordings(
    question: str, synonyms: Synonyms, rng: random.Random, limit: int = 24
) -> list[str]:
    """Candidate rewordings, shuffled with `rng`: forms, synonyms, and both combined."""
    forms = form_variants(question)
    swaps = synonym_variants(question, synonyms)
    mixed = [s for f in forms[:4] for s in synonym_variants(f, synonyms)]
    candidates = list(dict.fromkeys([*forms, *swaps, *mixed]))
    rng.shuffle(candidates)
    # Prefer a changed question form over a bare opener: openers go last.
    candidates.sort(
        key=lambda c: c.startswith(("すみません", "恐れ入", "質問です", "Hello", "Quick"))
    )
    return [c for c in candidates if fold(c) != fold(question)][:limit]
