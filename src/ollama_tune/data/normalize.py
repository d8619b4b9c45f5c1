"""Text normalisation of the data stage: surrounding whitespace Ollama would strip, trimmed at
load time (and counted, never silent), and NFKC with an ASCII fast path.

Ollama's Modelfile parser trims the whitespace around SYSTEM and MESSAGE values with Go's
`unicode.IsSpace`, so a trailing full-width space (U+3000, common in Japanese text) cannot
survive a Modelfile. Trimming when the data is read keeps such rows usable everywhere (few-shot
examples, training, evaluation) instead of refusing them later; the loader reports how many rows
were trimmed and where.
"""

from __future__ import annotations

import unicodedata

# Go's unicode.IsSpace: \t \n \v \f \r, space, U+0085, U+00A0 and the Unicode Z categories.
GO_SPACE = (
    "\t\n\v\f\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009"
    "\u200a\u2028\u2029\u202f\u205f\u3000"
)


def trim(text: str) -> str:
    return text.strip(GO_SPACE)


def untrimmed(texts: list[str]) -> bool:
    """True when any text has surrounding whitespace that `trim` removes."""
    return any(t != trim(t) for t in texts)


def nfkc(text: str) -> str:
    """NFKC; ASCII text is already normal (most English rows skip the work)."""
    return text if text.isascii() else unicodedata.normalize("NFKC", text)
