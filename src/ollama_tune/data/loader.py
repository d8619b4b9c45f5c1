"""Load data files of any supported format and encoding into `Example`s.

`load_examples` never raises for bad rows: each becomes an `Issue` (with file:line and a fix
hint) and a `Rejected` record, so every row read is accounted for. Only a file that cannot be
opened at all raises `DataError`. `read_examples` is the strict convenience later stages use.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

from ollama_tune.data.encoding import check_encoding_name, decode_bytes, has_undecodable
from ollama_tune.data.formats import (
    dataset_info_mapping,
    detect_schema,
    record_to_example,
    text_row,
)
from ollama_tune.data.issues import Issue, LoadResult, Rejected, printable
from ollama_tune.data.model import Example, SourceRef
from ollama_tune.data.paths import read_data_file
from ollama_tune.data.records import (
    CONTAINERS,
    Container,
    RawRecord,
    csv_header,
    detect_container,
    duplicate_keys,
    iter_records,
)
from ollama_tune.data.rows import FIELDS, SCHEMAS, Schema, resolve_keys
from ollama_tune.errors import DataError, UsageError

FORMATS: tuple[str, ...] = (*SCHEMAS, *CONTAINERS)
PathLike = str | os.PathLike[str]
_LONE_SURROGATE = re.compile(r"[\ud800-\udfff]")


_SYNTAX_HINTS = {
    "invalid-json": "fix the syntax of this row "
    "(one JSON object per line for JSONL; quoted cells for CSV)",
    "stray-quote": 'remove the stray " (or double it as "" inside a quoted cell); a quoted cell '
    'ends with " followed by a comma or the end of the line',
}


def parse_mapping(spec: str | None) -> dict[str, str] | None:
    """`question=instruction,context=input,answer=output` → {column: field}."""
    if not spec:
        return None
    out: dict[str, str] = {}
    for part in spec.split(","):
        column, sep, target = part.partition("=")
        if not sep or not column.strip() or target.strip() not in FIELDS:
            raise UsageError(
                f"bad --map entry {part!r}",
                hint="write COLUMN=FIELD pairs separated by commas; FIELD is one of "
                f"{', '.join(FIELDS)}"
                " (e.g. --map question=instruction,answer=output)",
            )
        out[column.strip()] = target.strip()
    return out


def check_format_name(fmt: str | None) -> str | None:
    if fmt is not None and fmt not in FORMATS:
        raise UsageError(f"unknown format {fmt!r}", hint=f"use one of: {', '.join(FORMATS)}")
    return fmt


def _read_bytes(paths: Sequence[Path]) -> list[bytes]:
    problems: list[DataError] = []
    blobs = []
    for p in paths:
        try:
            blobs.append(read_data_file(p))
        except DataError as exc:
            problems.append(exc)
    if len(problems) == 1:
        raise problems[0]
    if problems:
        raise DataError(
            "; ".join(e.message for e in problems),
            hint="check the paths (each must be a data file you can read)",
        )
    return blobs


def _as_paths(paths: PathLike | Iterable[PathLike]) -> list[Path]:
    if isinstance(paths, (str, os.PathLike)):
        return [Path(paths)]
    return [Path(p) for p in paths]


def load_examples(
    paths: PathLike | Iterable[PathLike],
    *,
    format: str | None = None,
    encoding: str | None = None,
    mapping: dict[str, str] | None = None,
) -> LoadResult:
    """Read every row of every file; bad rows become issues and rejected records."""
    check_format_name(format)
    if encoding:
        check_encoding_name(encoding)
    path_list = _as_paths(paths)
    result = LoadResult()
    for path, data in zip(path_list, _read_bytes(path_list), strict=True):
        file_mapping = mapping if mapping is not None else _dataset_info(path, result)
        _load_file(str(path), path.suffix, data, result, format, encoding, file_mapping)
    return result


def _dataset_info(path: Path, result: LoadResult) -> dict[str, str] | None:
    found = dataset_info_mapping(path)
    if found is None:
        return None
    mapping, info = found
    pairs = ", ".join(f"{k}={v}" for k, v in mapping.items())
    result.issues.append(
        Issue("note", SourceRef(str(path), 1), "dataset-info",
              f"columns named by {info}: {pairs}", "pass --map to use other columns")
    )  # fmt: skip
    return mapping


def _load_file(
    name: str,
    suffix: str,
    data: bytes,
    result: LoadResult,
    fmt: str | None,
    encoding: str | None,
    mapping: dict[str, str] | None,
) -> None:
    decoded = decode_bytes(data, encoding)
    result.encodings[name] = decoded.encoding
    text = decoded.text
    container = cast(Container, fmt if fmt in CONTAINERS else detect_container(text, suffix))
    records = list(iter_records(text, container))
    forced = cast(Schema | None, fmt if fmt in SCHEMAS else None)
    tabular = container in ("csv", "tsv")
    if tabular and _header_unusable(name, text, container, mapping, records, result):
        result.formats[name] = f"{container} (seed)"
        return
    seen = _FileNotes()
    for rec in records:
        # Detected per row: a file mixing chat rows and seed rows loads both.
        schema = forced or detect_schema(rec.value, mapping)
        if rec.error is None:
            seen.schemas.setdefault(schema, None)
        _load_record(name, rec, schema, mapping, result, seen)
    label = "+".join(seen.schemas) or forced or "seed"
    result.formats[name] = f"{container} ({label})" if tabular else label
    _file_notes(name, tabular, seen, result)


@dataclass
class _FileNotes:
    """What one file's rows had in common, reported once per file instead of once per row."""

    schemas: dict[str, None] = field(default_factory=dict)
    unknown: dict[str, list[int]] = field(default_factory=dict)
    trimmed: list[int] = field(default_factory=list)
    plain_text: list[int] = field(default_factory=list)


def _lines_text(lines: list[int]) -> str:
    return ", ".join(map(str, lines[:10])) + (
        f" and {len(lines) - 10} more" if len(lines) > 10 else ""
    )


def _file_notes(name: str, tabular: bool, seen: _FileNotes, result: LoadResult) -> None:
    for key, lines in seen.unknown.items():
        more = f" (and {len(lines) - 1} more rows)" if len(lines) > 1 and not tabular else ""
        # A CSV column is declared once, in the header: point there.
        result.issues.append(
            Issue(
                "warning",
                SourceRef(name, 1 if tabular else lines[0]),
                "unknown-key",
                f"unknown {'column' if tabular else 'key'} {key!r} is ignored{more}",
                "rename it (e.g. with --map COLUMN=FIELD) or remove it; "
                f"known fields: {', '.join(FIELDS)}, messages",
            )
        )
    if seen.plain_text:
        _, code, message, hint = text_row().problems[0]
        n = len(seen.plain_text)
        result.issues.append(
            Issue(
                "error",
                SourceRef(name, seen.plain_text[0]),
                code,
                f"{message} ({n} row{'s' if n > 1 else ''}: lines {_lines_text(seen.plain_text)})",
                hint,
            )
        )
    if seen.trimmed:
        n = len(seen.trimmed)
        result.issues.append(
            Issue(
                "note",
                SourceRef(name, seen.trimmed[0]),
                "whitespace-trimmed",
                f"surrounding whitespace (spaces, full-width U+3000 spaces, line breaks) trimmed "
                f"in {n} row{'s' if n > 1 else ''}: lines {_lines_text(seen.trimmed)}",
                "nothing to do: Ollama strips it from Modelfile values anyway; remove it from "
                "the file to silence this note",
            )
        )


def _header_unusable(
    name: str,
    text: str,
    container: Container,
    mapping: dict[str, str] | None,
    records: list[RawRecord],
    result: LoadResult,
) -> bool:
    """One error at the header (not one per row) when no column holds the question/answer."""
    header = csv_header(text, "\t" if container == "tsv" else ",")
    for column in mapping or {}:
        if column not in header:
            result.issues.append(
                Issue("warning", SourceRef(name, 1), "unknown-key",
                      f"--map names column {column!r}, which the header does not have",
                      f"the header has: {', '.join(header)}")
            )  # fmt: skip
    fields = set(resolve_keys(header, mapping).values())
    missing = [f for f in ("instruction", "output") if f not in fields]
    if not missing or not records:
        return False
    message = f"no column for {' and '.join(missing)}; the header has: {', '.join(header)}"
    pairs = ",".join(f"COLUMN={f}" for f in missing)
    hint = f"name the columns with --map {pairs} (or rename them question/answer, 質問/回答)"
    result.issues.append(Issue("error", SourceRef(name, 1), "missing-column", message, hint))
    for rec in records:
        if not _rejected_undecodable(name, rec, result):
            reason = f"missing-column: {message}"
            result.rejected.append(Rejected(SourceRef(name, rec.line), reason, printable(rec.raw)))
    return True


def _reject(
    result: LoadResult, source: SourceRef, rec: RawRecord, code: str, message: str, hint: str
) -> None:
    result.issues.append(Issue("error", source, code, message, hint))
    result.rejected.append(Rejected(source, f"{code}: {message}", printable(rec.raw)))


def _rejected_undecodable(name: str, rec: RawRecord, result: LoadResult) -> bool:
    if not has_undecodable(rec.raw):
        return False
    _reject(
        result,
        SourceRef(name, rec.line),
        rec,
        "undecodable-bytes",
        f"bytes that are not valid text in {result.encodings[name]}",
        "re-save the file as UTF-8, or pass --encoding "
        "(e.g. --encoding cp932 for Excel files from Japanese Windows)",
    )
    return True


def _load_record(
    name: str,
    rec: RawRecord,
    schema: Schema,
    mapping: dict[str, str] | None,
    result: LoadResult,
    seen: _FileNotes,
) -> None:
    source = SourceRef(name, rec.line)
    if _rejected_undecodable(name, rec, result):
        return
    if rec.error is not None:
        code, message = rec.error
        _reject(
            result,
            source,
            rec,
            code,
            message,
            _SYNTAX_HINTS.get(code, _SYNTAX_HINTS["invalid-json"]),
        )
        return
    outcome = record_to_example(rec.value, source, schema, mapping)
    if schema == "text" and outcome.example is None:
        # Said once per file (the fix is the same for every row), each row still rejected.
        seen.plain_text.append(rec.line)
        reason = "; ".join(f"{c}: {m}" for _, c, m, _ in outcome.problems)
        result.rejected.append(Rejected(source, reason, printable(rec.raw)))
        return
    for key in outcome.unknown_keys:
        seen.unknown.setdefault(key, []).append(rec.line)
    for key in duplicate_keys(rec.value):
        message = f"key {key!r} appears more than once; the last one is used"
        hint = f"keep one {key!r} in this row so it says one thing"
        outcome.problems.append(("warning", "duplicate-key", message, hint))
    example = outcome.example
    if example is not None and any(_LONE_SURROGATE.search(m.content) for m in example.messages):
        outcome.error(
            "undecodable-bytes",
            "text holds an unpaired \\ud800-\\udfff escape",
            "remove the broken \\u escape",
        )
        example = None
    for severity, code, message, hint in outcome.problems:
        result.issues.append(
            Issue("error" if severity == "error" else "warning", source, code, message, hint)
        )
    if example is None:
        reason = "; ".join(f"{c}: {m}" for s, c, m, _ in outcome.problems if s == "error")
        result.rejected.append(Rejected(source, reason, printable(rec.raw)))
    else:
        if outcome.trimmed:
            seen.trimmed.append(rec.line)
        result.examples.append(example)


def read_examples(
    paths: PathLike | Iterable[PathLike],
    *,
    format: str | None = None,
    encoding: str | None = None,
    mapping: dict[str, str] | None = None,
) -> list[Example]:
    """The usable rows, or `DataError` listing every error-level issue with file:line."""
    return usable_examples(load_examples(paths, format=format, encoding=encoding, mapping=mapping))


def usable_examples(result: LoadResult) -> list[Example]:
    """`result.examples`, or `DataError` listing every error-level issue with file:line."""
    errors = result.errors
    if errors:
        lines = "\n".join(f"  {i.source}: {i.message}" for i in errors[:50])
        more = f"\n  … and {len(errors) - 50} more" if len(errors) > 50 else ""
        raise DataError(
            f"{len(errors)} problem(s) in the data:\n{lines}{more}",
            hint="run `ollama-tune data check FILE` for every problem with a fix hint",
        )
    return result.examples
