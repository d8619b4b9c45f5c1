"""Japanese-aware text features shared by data checks and evaluation.

Normalisation for matching facts, script/language shares, politeness (です・ます vs plain form)
of sentence endings, and whether an answer has numbered/bulleted steps. Pure standard library so
`data check` stays instant.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

_KANA = re.compile(r"[\u3040-\u309f\u30a0-\u30ff\u31f0-\u31ff\uff66-\uff9f]")
_JA = re.compile(
    r"[\u3040-\u309f\u30a0-\u30ff\u31f0-\u31ff\u3400-\u4dbf\u4e00-\u9fff\uff66-\uff9f々〆ー]"
)
_HANGUL = re.compile(r"[\uac00-\ud7af\u1100-\u11ff]")
_LATIN = re.compile(r"[A-Za-z\u00c0-\u024f]")


def _counter(chars: re.Pattern[str]) -> re.Pattern[str]:
    """Runs of everything *outside* a character class: deleting them leaves the class's
    characters, so `len(sub)` counts them without a list per character (ten times faster)."""
    return re.compile("[^" + chars.pattern[1:-1] + "]+")


_NOT_KANA, _NOT_JA = _counter(_KANA), _counter(_JA)
_NOT_HANGUL, _NOT_LATIN = _counter(_HANGUL), _counter(_LATIN)


def _count(others: re.Pattern[str], text: str) -> int:
    return len(others.sub("", text))


# Range markers people write between numbers: 5〜7, 5～7, 5~7, 5-7, 5－7, 5から7.
_RANGE = re.compile(r"(\d)\s*(?:〜|～|~|-|−|–|—|－|ー|から)\s*(\d)")
_DIGIT_COMMA = re.compile(r"(?<=\d)[,，](?=\d{3})")
_SPACES = re.compile(r"\s+")

Language = Literal["ja", "zh", "ko", "en", "other", "unknown"]
Ending = Literal["polite", "plain", "other"]


def normalize_for_match(text: str) -> str:
    """Fold the ways one fact can be written: NFKC (full/half width), case, spaces,
    range markers (5〜7 = 5～7 = 5-7 = 5から7) and thousands separators (5,000 = 5000)."""
    t = unicodedata.normalize("NFKC", text).lower()
    t = _SPACES.sub("", t)
    t = _DIGIT_COMMA.sub("", t)
    # Twice: overlapping matches such as 1-2-3 need a second pass.
    t = _RANGE.sub(r"\1~\2", t)
    return _RANGE.sub(r"\1~\2", t)


def normalize_text(text: str) -> str:
    """Normalisation for duplicate detection: NFKC, lower case, whitespace collapsed."""
    return _SPACES.sub(" ", unicodedata.normalize("NFKC", text)).strip().lower()


_CODE = re.compile(r"```.*?(?:```|$)|`[^`\n]*`", re.DOTALL)


def strip_code(text: str) -> str:
    """Drop fenced and inline code: a Python answer explained in Japanese is Japanese."""
    return _CODE.sub(" ", text) if "`" in text else text


def _letters(text: str) -> str:
    # filter() with the C method: `data check` runs this on every answer.
    return "".join(filter(str.isalpha, strip_code(text)))


def japanese_ratio(text: str) -> float:
    """Share of letters that are Japanese script (kana or kanji); digits/punctuation ignored."""
    letters = _letters(text)
    if not letters:
        return 0.0
    return _count(_NOT_JA, letters) / len(letters)


def detect_language(text: str) -> Language:
    """Coarse script-based language of a text: enough to tell a Japanese answer from an English
    one (the most common failure of small models), not a general language identifier."""
    letters = _letters(text)
    if len(letters) < 2:
        return "unknown"
    n = len(letters)
    # Each script counted only when the earlier ones did not decide.
    ja = _count(_NOT_JA, letters)
    if ja / n >= 0.3:
        kana = _count(_NOT_KANA, letters)
        # Kanji without any kana reads as Chinese.
        return "ja" if kana > 0 or ja / n < 0.5 or kana / max(ja, 1) > 0.05 else "zh"
    if _count(_NOT_HANGUL, letters) / n >= 0.3:
        return "ko"
    if _count(_NOT_LATIN, letters) / n >= 0.6:
        return "en"
    return "other"


_POLITE_END = re.compile(
    r"(です|ます|ました|ません|ませんでした|ましょう|でしょう|ございます|ございません|"
    r"ください|下さい|いたします|致します|ませ|でしたら|ですね|ますね|ですよ|ますよ|ですか|ますか|"
    r"でした|ましたか|いただけます|いただけますか|でございます|でしょうか|ませんか|"
    r"ませんでしたか|でしたか|ございますか)$"
)
_PLAIN_END = re.compile(
    r"(だ|である|だよ|だね|だった|じゃない|ない|なかった|した|する|できる|できない|れる|られる|"
    r"いる|ある|あった|なる|なった|った|んだ|のだ|よ|ね|わ|ぞ|ぜ|しろ|せよ|こと|"
    # Dictionary-form verbs end in an u-row kana (払う, 書く, 話す…); polite forms are tested first.
    r"[うくすつぬむるぐぶた])$"
)
_SENTENCE_SPLIT = re.compile(r"(?<=[。！？!?])|\n")
_TRAILING = re.compile(r"[\s。．.！!？?、,…・)）」』】\]\"'`*~〜ー♪☆★😊🙇]+$")
_LIST_ITEM = re.compile(r"^\s*(?:\d+[.)．、]|[-・*•●○◦]|[①-⑳])\s*")


def sentence_endings(text: str) -> list[Ending]:
    """Classify the end of each Japanese sentence as polite (です・ます…), plain, or other.

    List items ("1. マイページから返品申請") and non-Japanese sentences count as "other":
    noun-phrase steps are fine in a polite answer.
    """
    return [e for e, s in _endings(text) if japanese_ratio(s) >= 0.5]


def _endings(text: str) -> Iterator[tuple[Ending, str]]:
    """Each sentence's ending with the sentence, before the script test (the costly part)."""
    for raw in _SENTENCE_SPLIT.split(text):
        if _LIST_ITEM.match(raw) and not raw.rstrip().endswith("。"):
            continue
        s = _TRAILING.sub("", raw.strip())
        if s:
            polite = _POLITE_END.search(s)
            yield ("polite" if polite else "plain" if _PLAIN_END.search(s) else "other"), s


def mixes_politeness(text: str) -> bool:
    """`politeness(text).mixed`, testing a sentence's script only when its ending would decide
    something, and stopping at the first sentence of the second kind."""
    seen: set[Ending] = set()
    for ending, s in _endings(text):
        if ending == "other" or ending in seen or japanese_ratio(s) < 0.5:
            continue
        seen.add(ending)
        if len(seen) == 2:
            return True
    return False


@dataclass(frozen=True)
class Politeness:
    polite: int
    plain: int
    other: int

    @property
    def ratio(self) -> float | None:
        """Share of polite endings among polite+plain ones; None when there are none."""
        judged = self.polite + self.plain
        return None if judged == 0 else self.polite / judged

    @property
    def mixed(self) -> bool:
        return self.polite > 0 and self.plain > 0


def politeness(text: str) -> Politeness:
    endings = sentence_endings(text)
    return Politeness(
        polite=endings.count("polite"),
        plain=endings.count("plain"),
        other=endings.count("other"),
    )


_STEP_LINE = re.compile(r"^\s*(?:\d+[.)．、:]|[①-⑳]|\(\d+\)|（\d+）)\s*\S", re.MULTILINE)
_BULLET_LINE = re.compile(r"^\s*[-・*•●○◦]\s*\S", re.MULTILINE)


_CIRCLED = re.compile(r"[①-⑳]")


def _fold_steps(text: str) -> str:
    # NFKC turns ① into a bare "1", losing the step marker, so circled digits become "1." first.
    return unicodedata.normalize(
        "NFKC", _CIRCLED.sub(lambda m: f"{ord(m.group()) - 0x245F}.", text)
    )


def count_steps(text: str) -> int:
    """Number of numbered-step lines (1. / 1) / ① / (1))."""
    return len(_STEP_LINE.findall(_fold_steps(text)))


def has_structure(text: str) -> bool:
    """True when the text lays out at least two numbered steps or bullet points."""
    t = _fold_steps(text)
    return len(_STEP_LINE.findall(t)) >= 2 or len(_BULLET_LINE.findall(t)) >= 2


_FULL_DIGIT = re.compile(r"[０-９]")
_HALF_DIGIT = re.compile(r"[0-9]")


def mixes_digit_widths(text: str) -> bool:
    """Both full-width (０-９) and half-width (0-9) digits in one text."""
    return bool(_FULL_DIGIT.search(text)) and bool(_HALF_DIGIT.search(text))
