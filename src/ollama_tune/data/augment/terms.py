"""Key terms of a question, and whether a rewording kept them.

A paraphrase is only useful if it asks the same thing: every number (with its unit), every
product name or code (Latin letters, 「quoted」 names) and the question's domain words (kanji
and katakana words that the answer uses too, e.g. 返品, ポイント) must survive, either as they
are or as a synonym of the same group. Japanese has no spaces: words come from MeCab
(`fugashi` + `unidic-lite`, in the `train` extra) when installed, else from script runs (kanji,
katakana), which join compounds (返品送料) but need no dictionary.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

_NUMBER = re.compile(r"\d+(?:[.:/]\d+)*")
_LATIN = re.compile(r"[a-z][a-z0-9]*(?:[-_.][a-z0-9]+)*")
_QUOTED = re.compile(r"[「『\"]([^「」『』\"]{1,40})[」』\"]")
_KANJI = re.compile(r"[\u4e00-\u9fff\u3005]{2,}")
_KATAKANA = re.compile(r"[\u30a1-\u30fa\u30fc]{2,}")
# Words that only shape the question ("教えて", "可能", "質問") and are rewritten by design.
FORM_WORDS = frozenset(["可能", "質問", "教示", "方法", "場合", "大丈夫", "是非"])
# English words that only shape a question; other Latin words count when the answer has them.
_EN_FORM_WORDS = (
    "a an the i me my we our you your is are am was be been it this that there do does did "
    "can could would will should may might please tell know like want wondering possible "
    "able how what when where which who why way about to of for in on at with and or if "
    "any some have has get hi hello thanks quick question"
)
_EN_FORM = frozenset(_EN_FORM_WORDS.split())


def fold(text: str) -> str:
    """NFKC, lower case, thousands separators removed: the form terms are compared in."""
    text = unicodedata.normalize("NFKC", text).lower()
    return re.sub(r"(?<=\d),(?=\d{3})", "", text)


@dataclass(frozen=True)
class Synonyms:
    """Groups of interchangeable words; `canon` maps each word to its group's first word."""

    groups: tuple[tuple[str, ...], ...] = ()

    @property
    def canon(self) -> dict[str, str]:
        return {fold(w): fold(g[0]) for g in self.groups for w in g}

    def normalise(self, text: str) -> str:
        """`text` folded, every synonym replaced by its group's head (longest match first)."""
        out = fold(text)
        mapping = self.canon
        if not mapping:
            return out
        pattern = re.compile("|".join(re.escape(w) for w in sorted(mapping, key=len, reverse=True)))
        return pattern.sub(lambda m: mapping[m.group(0)], out)


@functools.cache
def _tagger() -> Any:
    """fugashi's MeCab tagger with unidic-lite, or None when they are not installed."""
    try:
        import fugashi

        return fugashi.Tagger()
    except (ImportError, RuntimeError):  # RuntimeError: fugashi without a dictionary
        return None


def content_words(text: str) -> list[str]:
    """Japanese nouns of 2+ characters (MeCab), else kanji and katakana runs."""
    tagger = _tagger()
    if tagger is None:
        return [*_KANJI.findall(text), *_KATAKANA.findall(text)]
    words = []
    for w in tagger(text):
        feature = w.feature
        noun = feature.pos1 == "名詞" and feature.pos2 not in ("数詞", "代名詞")
        if noun and (_KANJI.fullmatch(w.surface) or _KATAKANA.fullmatch(w.surface)):
            words.append(w.surface)  # both patterns need 2+ characters
    return words


def key_terms(question: str, answer: str = "", synonyms: Synonyms | None = None) -> list[str]:
    """What a rewording of `question` must keep, folded: numbers, names, domain words."""
    syn = synonyms or Synonyms()
    q, a = syn.normalise(question), syn.normalise(answer)
    terms: list[str] = _NUMBER.findall(q)
    raw = unicodedata.normalize("NFKC", question)
    names = {fold(t) for t in re.findall(r"[A-Za-z0-9]*(?:[A-Z]{2}|\d)[A-Za-z0-9-]*", raw)}
    terms += [
        t
        for t in _LATIN.findall(q)
        if t in names or (t not in _EN_FORM and len(t) > 2 and re.search(rf"\b{t}", a))
    ]
    terms += [fold(m) for m in _QUOTED.findall(unicodedata.normalize("NFKC", question))]
    heads = set(syn.canon.values())
    for run in content_words(q):
        if run in FORM_WORDS:
            continue
        # A domain word: the answer uses it too, or it is in a synonym group.
        if run in a or run in heads or any(h in run for h in heads):
            terms.append(run)
    return list(dict.fromkeys(terms))


def missing_terms(
    original: str, rewording: str, answer: str = "", synonyms: Synonyms | None = None
) -> list[str]:
    """The key terms of `original` that `rewording` lost (empty: the rewording is kept)."""
    syn = synonyms or Synonyms()
    have = syn.normalise(rewording)
    numbers = set(_NUMBER.findall(have))
    lost = []
    for term in key_terms(original, answer, syn):
        found = term in numbers if term.isdigit() or _NUMBER.fullmatch(term) else term in have
        if not found:
            lost.append(term)
    # A new number changes the question ("14日" → "30日"), even if all old ones are there.
    old = set(_NUMBER.findall(syn.normalise(original)))
    lost += [f"+{n}" for n in sorted(numbers - old)]
    return lost


def present_groups(groups: Iterable[Sequence[str]], texts: Iterable[str]) -> list[tuple[str, ...]]:
    """The groups of which at least one word occurs in `texts` (the data decides)."""
    corpus = "\n".join(fold(t) for t in texts)
    return [tuple(g) for g in groups if any(fold(w) in corpus for w in g)]
