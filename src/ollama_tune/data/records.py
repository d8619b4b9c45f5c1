"""Split decoded text into raw records with their line numbers: JSONL, JSON array, CSV/TSV.

This layer only knows containers. Whether a record is a seed row, a chat or a
prompt/completion pair is decided in `rows.py`. A record that cannot be parsed is kept with
its error so the loader can report it and hand it to `*.rejected.jsonl`.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal

Container = Literal["jsonl", "json", "csv", "tsv"]
CONTAINERS: tuple[str, ...] = ("jsonl", "json", "csv", "tsv")
_NEWLINE = re.compile(r"\r\n|\r|\n")
_MAX_OBJECT_LINES = 500


class JsonNumber(str):
    """A JSON number (or NaN/Infinity) kept as the exact text in the file.

    Python's json would turn `1.50` into 1.5 and `1e3` into 1000.0; a message about the value
    must quote what the user wrote, and no number may become text without a word.
    """


class JsonObject(dict[str, Any]):
    """A JSON object that remembers which keys it held more than once (json keeps the last)."""

    duplicates: list[str]


def _object(pairs: list[tuple[str, Any]]) -> JsonObject:
    obj = JsonObject(pairs)
    seen: set[str] = set()
    obj.duplicates = []
    for key, _ in pairs:
        if key in seen and key not in obj.duplicates:
            obj.duplicates.append(key)
        seen.add(key)
    return obj


_DECODER = json.JSONDecoder(
    object_pairs_hook=_object,
    parse_float=JsonNumber,
    parse_int=JsonNumber,
    parse_constant=JsonNumber,
)


def loads(text: str) -> Any:
    """`json.loads` that keeps numbers as `JsonNumber` and objects as `JsonObject`."""
    value, end = _DECODER.raw_decode(text, len(text) - len(text.lstrip()))
    if text[end:].strip():
        raise json.JSONDecodeError("Extra data", text, end)
    return value


def duplicate_keys(value: Any) -> list[str]:
    """Every key found twice in one object anywhere inside `value` (walked without recursion)."""
    found: list[str] = []
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, JsonObject):
            found += [k for k in item.duplicates if k not in found]
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return found


@dataclass
class RawRecord:
    line: int
    raw: str
    value: Any = None
    # Set when the record could not be parsed: (issue code, message).
    error: tuple[str, str] | None = None


def detect_container(text: str, suffix: str) -> Container:
    """From the file extension first, then from the first non-blank character."""
    suffix = suffix.lower()
    if suffix == ".csv":
        return "csv"
    if suffix in (".tsv", ".tab"):
        return "tsv"
    if suffix in (".jsonl", ".ndjson"):
        return "jsonl"
    head = text.lstrip()[:1]
    if head == "[":
        return "json"
    if head == "{" or suffix == ".json":
        return "jsonl"
    first_line = text.lstrip().split("\n", 1)[0]
    return "tsv" if first_line.count("\t") > first_line.count(",") else "csv"


def split_lines(text: str) -> list[str]:
    """Lines the way JSONL and CSV see them; `str.splitlines` would also split on U+2028 etc.,
    which are legal inside JSON strings."""
    return _NEWLINE.split(text)


def iter_jsonl(text: str) -> Iterator[RawRecord]:
    """One object per line; an object pretty-printed over several lines is accepted too."""
    lines = split_lines(text)
    n = 0
    while n < len(lines):
        line = lines[n]
        n += 1
        if not line.strip():
            continue
        try:
            yield RawRecord(n, line, loads(line))
            continue
        except json.JSONDecodeError as exc:
            error = f"invalid JSON: {exc.msg}"
        except RecursionError:
            error = "invalid JSON: nested too deeply"
        multi = _multi_line_object(lines, n - 1) if line.lstrip().startswith("{") else None
        if multi is None:
            yield RawRecord(n, line, error=("invalid-json", error))
            continue
        value, used = multi
        yield RawRecord(n, "\n".join(lines[n - 1 : n - 1 + used]), value)
        n += used - 1


def _multi_line_object(lines: list[str], start: int) -> tuple[Any, int] | None:
    """(object, lines used) when an object starting at `start` ends at the end of a line."""
    # Bounded, so a file full of broken lines stays linear.
    rest = "\n".join(lines[start : start + _MAX_OBJECT_LINES])
    try:
        value, end = _DECODER.raw_decode(rest, len(rest) - len(rest.lstrip()))
    except (json.JSONDecodeError, RecursionError):
        return None
    tail = rest[end:].split("\n", 1)[0]
    if tail.strip() or not isinstance(value, dict):
        return None
    return value, rest.count("\n", 0, end) + 1


def _line_of(text: str, pos: int) -> int:
    return text.count("\n", 0, pos) + 1


def iter_json_array(text: str) -> Iterator[RawRecord]:
    """Walk a JSON array element by element so every row keeps its own line number."""
    decoder = _DECODER
    pos = len(text) - len(text.lstrip())
    pos += 1  # the "["
    while True:
        while pos < len(text) and text[pos] in " \t\r\n,":
            pos += 1
        if pos >= len(text) or text[pos] == "]":
            rest = text[pos + 1 :].strip()
            if pos >= len(text) or rest:
                msg = "missing ']'" if pos >= len(text) else "text after the closing ']'"
                yield RawRecord(_line_of(text, pos), rest, error=("invalid-json", msg))
            return
        try:
            value, end = decoder.raw_decode(text, pos)
        except (json.JSONDecodeError, RecursionError) as exc:
            msg = exc.msg if isinstance(exc, json.JSONDecodeError) else "nested too deeply"
            # Nothing after a broken element can be trusted: keep the rest as one record.
            yield RawRecord(_line_of(text, pos), text[pos:], error=("invalid-json", msg))
            return
        yield RawRecord(_line_of(text, pos), text[pos:end], value)
        pos = end


def iter_csv(text: str, delimiter: str) -> Iterator[RawRecord]:
    """Rows as dicts keyed by the header; line numbers are where each row starts."""
    # A long answer is not a syntax error: allow any cell the text itself can hold.
    old_limit = csv.field_size_limit()
    csv.field_size_limit(max(old_limit, min(len(text) + 1, 2**31 - 1)))
    try:
        yield from _csv_rows(text, delimiter)
    finally:
        csv.field_size_limit(old_limit)


def _csv_rows(text: str, delimiter: str) -> Iterator[RawRecord]:
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    lines = split_lines(text)
    try:
        header = next(reader)
    except (StopIteration, csv.Error):
        return
    header = [h.strip() for h in header]
    start = reader.line_num + 1
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            yield RawRecord(
                start, _raw(lines, start, reader.line_num), error=("invalid-csv", str(exc))
            )
            start = reader.line_num + 1
            continue
        raw = _raw(lines, start, reader.line_num)
        line, start = start, reader.line_num + 1
        if not any(cell.strip() for cell in row):
            continue
        stray = _stray_quote(raw, line, delimiter) if start - line > 1 else None
        if stray is not None:
            yield RawRecord(line, raw, error=("stray-quote", stray))
        elif len(row) != len(header):
            msg = f"{len(row)} columns, the header has {len(header)}"
            yield RawRecord(line, raw, error=("invalid-csv", msg))
        else:
            yield RawRecord(line, raw, dict(zip(header, row, strict=True)))


def _stray_quote(raw: str, first_line: int, delimiter: str) -> str | None:
    """Why a row spanning lines is really rows merged by a stray quote (None if it is not).

    A legitimate multi-line cell is closed by a quote followed by the delimiter or the line
    end; the lenient reader instead glues whatever follows into the cell, silently.
    """
    try:
        rows = list(csv.reader(io.StringIO(raw, newline=""), delimiter=delimiter, strict=True))
        if len(rows) == 1:
            return None
    except csv.Error:
        pass
    opened = _multi_line_quote(raw, delimiter)
    line = first_line + raw.count("\n", 0, opened)
    column = opened - raw.rfind("\n", 0, opened)
    last = first_line + raw.count("\n")
    return (
        f"a quote opened at line {line} (column {column}) is not closed where the cell ends, "
        f'so lines {first_line}-{last} were read as one row: a stray " merges rows'
    )


def _multi_line_quote(raw: str, delimiter: str) -> int:
    """Offset of the opening quote of the first quoted cell that runs past a line end."""
    opened, quoted, field_start = 0, False, True
    i = 0
    while i < len(raw):
        ch = raw[i]
        if quoted:
            if ch == '"' and raw[i + 1 : i + 2] == '"':
                i += 1
            elif ch == '"':
                quoted = False
            elif ch in "\r\n":
                return opened
        elif ch == '"' and field_start:
            opened, quoted = i, True
        field_start = not quoted and ch in (delimiter, "\n", "\r")
        i += 1
    return opened


def _raw(lines: list[str], first: int, last: int) -> str:
    return "\n".join(lines[first - 1 : max(first, last)])


def csv_header(text: str, delimiter: str) -> list[str]:
    try:
        return [
            h.strip() for h in next(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter))
        ]
    except (StopIteration, csv.Error):
        return []


def iter_records(text: str, container: Container) -> Iterator[RawRecord]:
    if container == "jsonl":
        return iter_jsonl(text)
    if container == "json":
        return iter_json_array(text)
    return iter_csv(text, "\t" if container == "tsv" else ",")
