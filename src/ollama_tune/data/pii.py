"""Personal data in rows: e-mail addresses, phone numbers, card numbers (Luhn-checked).

Text is NFKC-normalised first so full-width digits (０９０－１２３４－５６７８) are caught too.
"""

from __future__ import annotations

import re

from ollama_tune.data.normalize import nfkc

_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
# Japanese numbers: mobile 090-1234-5678, landline 03-1234-5678, toll-free 0120-123-456,
# with hyphens, spaces, brackets or nothing; and +81 international forms.
_PHONE = re.compile(
    r"(?<![\d-])(?:\+81[-\s]?\d{1,4}|0\d{1,4})[-\s(（)）]{0,2}\d{1,4}[-\s)）]{0,2}\d{3,4}(?![\d-])"
)
_CARD = re.compile(r"(?<!\d)(?:\d[ -]?){12,18}\d(?!\d)")


def normalize(text: str) -> str:
    return nfkc(text)


def emails(text: str, normalized: bool = False) -> list[str]:
    """`normalized`: the caller already passed `text` through `normalize` (one NFKC per text)."""
    t = text if normalized else normalize(text)
    return _EMAIL.findall(t) if "@" in t else []


def phone_numbers(text: str, normalized: bool = False) -> list[str]:
    """Phone-number-shaped strings with 10-11 digits (Japanese numbering), as written."""
    out = []
    for m in _PHONE.finditer(text if normalized else normalize(text)):
        digits = re.sub(r"\D", "", m.group())
        digits = "0" + digits[2:] if m.group().startswith("+81") else digits
        if 10 <= len(digits) <= 11:
            out.append(m.group())
    return out


def phone_key(number: str) -> str:
    """The digits of a number, so 03-1234-5678 and 0312345678 count as the same."""
    return re.sub(r"\D", "", number)


def luhn_ok(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 1:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def card_numbers(text: str, normalized: bool = False) -> list[str]:
    """13-19 digit runs (spaces/hyphens allowed) that pass the Luhn check."""
    out = []
    for m in _CARD.finditer(text if normalized else normalize(text)):
        digits = re.sub(r"\D", "", m.group())
        if 13 <= len(digits) <= 19 and luhn_ok(digits) and len(set(digits)) > 1:
            out.append(m.group())
    return out
