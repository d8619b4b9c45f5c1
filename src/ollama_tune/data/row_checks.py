"""Checks that look at one row's text: personal data, mojibake, digit widths, politeness,
text a Modelfile cannot carry, length. Each returns warnings; `checks.py` runs them all."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence

from ollama_tune.data import pii
from ollama_tune.data.issues import Issue
from ollama_tune.data.model import Example
from ollama_tune.japanese import detect_language, mixes_digit_widths, mixes_politeness

# UTF-8 read as Latin-1/CP1252 (Ã©, â€™, ã€), UTF-8 read as CP932 (縺, 繧, 繝), and U+FFFD.
_MOJIBAKE = re.compile(
    r"â€|Ã[\u0080-\u00bf]|ã[\u0080-\u00bf€‚ƒ„…†‡ˆ‰Š‹ŒŽ‘’“”•–—˜™š›œžŸ]|ï¿½|[縺繧繝]|\ufffd"
)
_DIGIT_OR_AT = re.compile(r"[\d@]")
# A number in at least this many rows' answers is the business's own contact, not personal data.
BUSINESS_PHONE_ROWS = 3


def _warn(ex: Example, code: str, message: str, hint: str) -> Issue:
    return Issue("warning", ex.source, code, message, hint)


def business_phones(examples: Sequence[Example]) -> set[str]:
    counts: Counter[str] = Counter()
    for ex in examples:
        counts.update({pii.phone_key(n) for n in pii.phone_numbers(ex.answer)})
    return {k for k, c in counts.items() if c >= BUSINESS_PHONE_ROWS}


def personal_data(ex: Example, business: set[str]) -> list[Issue]:
    out = []
    for m in ex.messages:
        text = pii.normalize(m.content)
        if not _DIGIT_OR_AT.search(text):
            continue  # no address, phone or card without an @ or a digit
        for email in pii.emails(text, normalized=True):
            out.append(
                _warn(
                    ex,
                    "personal-data",
                    f"e-mail address {email} in the {m.role} turn",
                    "remove or mask it (e.g. user@example.com) before training",
                )
            )
        for phone in pii.phone_numbers(text, normalized=True):
            if pii.phone_key(phone) not in business:
                out.append(
                    _warn(
                        ex,
                        "personal-data",
                        f"phone number {phone} in the {m.role} turn",
                        f"mask it (e.g. 090-XXXX-XXXX); a number that appears in "
                        f"{BUSINESS_PHONE_ROWS}+ answers counts as your own business "
                        "contact and is not flagged",
                    )
                )
        for card in pii.card_numbers(text, normalized=True):
            out.append(
                _warn(
                    ex,
                    "personal-data",
                    f"card-like number {card} (passes Luhn) in the {m.role} turn",
                    "remove it: never train on payment card numbers",
                )
            )
    return out


def text_problems(ex: Example, language: str | None = None) -> list[Issue]:
    """`language`: the answer's, when the caller has already detected it."""
    out = []
    for m in ex.messages:
        bad = _MOJIBAKE.search(m.content)
        if bad:
            out.append(
                _warn(
                    ex,
                    "mojibake",
                    f"garbled text {bad.group()!r} in the {m.role} turn "
                    "(text decoded with the wrong encoding)",
                    "re-export the source as "
                    "UTF-8, or read it with the right --encoding (e.g. cp932)",
                )
            )
        if mixes_digit_widths(m.content):
            out.append(
                _warn(
                    ex,
                    "mixed-digit-width",
                    f"the {m.role} turn mixes full-width (０-９) and half-width (0-9) digits",
                    "use one width throughout (half-width is usual for numbers)",
                )
            )
        if '"""' in m.content:
            out.append(
                _warn(
                    ex,
                    "modelfile-quotes",
                    f'the {m.role} turn contains """, which an Ollama Modelfile cannot carry',
                    "replace \"\"\" (e.g. with “ ” or ''')",
                )
            )
    if (language or detect_language(ex.answer)) == "ja" and mixes_politeness(ex.answer):
        out.append(
            _warn(
                ex,
                "mixed-politeness",
                "the answer mixes です・ます and plain form",
                "write every sentence in the polite form (です・ます)",
            )
        )
    return out


def answer_languages(examples: Sequence[Example]) -> list[str]:
    return [detect_language(ex.answer) for ex in examples]


def language_mismatches(
    examples: Sequence[Example], langs: Sequence[str] | None = None
) -> list[Issue]:
    """Answers in another language than most answers (needs a clear majority)."""
    langs = answer_languages(examples) if langs is None else langs
    known = [lang for lang in langs if lang not in ("unknown", "other")]
    if len(known) < 5:
        return []
    majority, count = Counter(known).most_common(1)[0]
    if count / len(known) < 0.6:
        return []
    return [
        _warn(
            ex,
            "language-mismatch",
            f"the answer is in {lang!r}, most answers are in {majority!r}",
            f"translate it to {majority!r} or remove it: mixed languages teach the model to switch",
        )
        for ex, lang in zip(examples, langs, strict=True)
        if lang not in ("unknown", "other", majority)
    ]
