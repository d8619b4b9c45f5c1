"""Turn a data file's bytes into text: BOMs, UTF-8 first, then Shift_JIS/CP932 and friends.

Excel exports in Japan are usually CP932; UTF-16 comes from "Unicode text" exports. UTF-8 is
tried first because it is by far the most common and decoding it strictly is fast and certain.
Bytes that no encoding explains are kept as lone surrogates (`surrogateescape`), so the loader
can reject exactly the lines that hold them instead of the whole file.
"""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass

from ollama_tune.errors import UsageError
from ollama_tune.japanese import japanese_ratio

_BOMS: tuple[tuple[bytes, str], ...] = (
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)
# Encodings charset-normalizer may name for Japanese text; CP932 is a superset of Shift_JIS.
_JAPANESE = {"shift_jis", "cp932", "euc_jp", "iso2022_jp", "shift_jis_2004", "shift_jisx0213"}
_SURROGATE = re.compile(r"[\udc80-\udcff]")
_LATIN = re.compile(r"[A-Za-z\u00c0-\u00ff]")
# ISO-2022-JP (old Japanese e-mail) is 7-bit, so it would pass as UTF-8: spot its escapes.
_ISO2022_ESCAPES = (b"\x1b$B", b"\x1b$@", b"\x1b(J")


@dataclass(frozen=True)
class Decoded:
    text: str
    encoding: str
    # True when some bytes could not be decoded; they appear as lone surrogates in `text`.
    lossy: bool = False


def check_encoding_name(name: str) -> str:
    """Validate an `--encoding` value early, so a typo is a usage error, not a data error."""
    try:
        return codecs.lookup(name).name
    except LookupError:
        raise UsageError(
            f"unknown encoding {name!r}",
            hint="use a Python codec name such as utf-8, utf-8-sig, utf-16, cp932 or shift_jis",
        ) from None


def has_undecodable(text: str) -> bool:
    return bool(_SURROGATE.search(text))


def _strict(data: bytes, encoding: str) -> str | None:
    try:
        return data.decode(encoding)
    except (UnicodeDecodeError, LookupError):
        return None


def _lossy(data: bytes, encoding: str) -> Decoded:
    try:
        return Decoded(data.decode(encoding, errors="surrogateescape"), encoding, lossy=True)
    except (UnicodeDecodeError, LookupError):
        # Some codecs (utf-16) cannot surrogate-escape; fall back to UTF-8, which always can.
        return Decoded(data.decode("utf-8", errors="surrogateescape"), "utf-8", lossy=True)


def _guess(data: bytes) -> str | None:
    """charset-normalizer's best guess, preferring CP932 when it reads as Japanese."""
    from charset_normalizer import from_bytes

    cp932 = _strict(data, "cp932")
    if cp932 is not None and japanese_ratio(cp932) >= 0.3:
        return "cp932"
    # Western Excel exports are CP1252; on short inputs charset-normalizer may name an exotic
    # code page instead, so take CP1252 when it yields nothing but Latin letters.
    cp1252 = _strict(data, "cp1252")
    if cp1252 is not None and all(_LATIN.match(c) for c in cp1252 if c.isalpha()):
        return "cp1252"
    best = from_bytes(data).best()
    if best is None:
        return None
    name = codecs.lookup(best.encoding).name
    if name.replace("-", "_") in _JAPANESE and cp932 is not None:
        return "cp932"
    return name


def decode_bytes(data: bytes, encoding: str | None = None) -> Decoded:
    """Decode `data` with `encoding` when given, else detect; never raises for bad bytes."""
    if encoding:
        text = _strict(data, encoding)
        return Decoded(text, encoding) if text is not None else _lossy(data, encoding)
    for bom, name in _BOMS:
        if data.startswith(bom):
            text = _strict(data, name)
            return Decoded(text, name) if text is not None else _lossy(data, name)
    if any(esc in data for esc in _ISO2022_ESCAPES):
        text = _strict(data, "iso2022_jp")
        if text is not None:
            return Decoded(text, "iso2022_jp")
    text = _strict(data, "utf-8")
    if text is not None:
        return Decoded(text, "utf-8")
    guessed = _guess(data)
    if guessed is not None:
        text = _strict(data, guessed)
        if text is not None:
            return Decoded(text, guessed)
    return _lossy(data, "utf-8")
