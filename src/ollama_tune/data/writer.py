"""Write examples as seed JSONL or messages JSONL: atomic, UTF-8, no `\\u` escapes.

Seed rows keep the `instruction`/`input` split they were read with; a multi-turn
conversation has no seed form, so `seed_record` says why instead of guessing.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from typing import Any, Literal

from ollama_tune._util import atomic_path
from ollama_tune.data.model import Example
from ollama_tune.errors import DataError

Style = Literal["seed", "messages"]
STYLES: tuple[str, ...] = ("seed", "messages")


def seed_record(example: Example) -> dict[str, Any]:
    """`{"instruction", "input", "output"}` (+ `system`, `facts`, Alpaca `history`).

    ValueError for a multi-turn conversation that did not come from an Alpaca `history` row.
    """
    history = _alpaca_history(example)
    roles: list[str] = [m.role for m in example.messages]
    if history:
        roles = [r for r in roles if r != "system"][2 * len(history) :]
        roles = (["system"] if example.system is not None else []) + roles
    if roles not in (["user", "assistant"], ["system", "user", "assistant"]):
        raise ValueError(
            f"a conversation of {len(roles)} turns ({', '.join(roles)}) has no seed form; "
            "write it with --to messages"
        )
    user = example.question
    instruction, input_ = user, ""
    orig_i, orig_in = example.extra.get("instruction"), example.extra.get("input")
    if isinstance(orig_i, str) and isinstance(orig_in, str):
        composed = f"{orig_i}\n\n{orig_in}" if orig_in.strip() else orig_i
        if composed == user:
            instruction, input_ = orig_i, orig_in
    record: dict[str, Any] = {"instruction": instruction, "input": input_, "output": example.answer}
    if example.system is not None:
        record["system"] = example.system
    if history:
        record["history"] = [list(pair) for pair in history]
    if example.facts is not None:
        record["facts"] = [list(g) for g in example.facts]
    return _with_meta(record, example)


def _with_meta(record: dict[str, Any], example: Example) -> dict[str, Any]:
    """Keep the row's metadata (a rewording's `augmented_from`) when it is written again."""
    origin = example.extra.get("augmented_from")
    if isinstance(origin, str):
        record["augmented_from"] = origin
    return record


def _alpaca_history(example: Example) -> list[tuple[str, str]]:
    """The `history` pairs a seed row was read with, when the turns still match them."""
    history = example.extra.get("history")
    if not isinstance(history, list) or not history:
        return []
    turns = [m.content for m in example.messages if m.role != "system"]
    flat = [text for pair in history for text in pair]
    return history if turns[: len(flat)] == flat else []


def messages_record(example: Example) -> dict[str, Any]:
    record: dict[str, Any] = {"messages": example.to_messages_dicts()}
    if example.facts is not None:
        record["facts"] = [list(g) for g in example.facts]
    return _with_meta(record, example)


def to_record(example: Example, style: str) -> dict[str, Any]:
    return seed_record(example) if style == "seed" else messages_record(example)


# Line separators other than \n that `str.splitlines` and some JSONL readers split on.
_SEPARATORS = str.maketrans({"\x85": "\\u0085", "\u2028": "\\u2028", "\u2029": "\\u2029"})


def dumps(record: dict[str, Any]) -> str:
    """One JSONL line: readable UTF-8 (no \\u escapes) except for the rare line separators."""
    return json.dumps(record, ensure_ascii=False).translate(_SEPARATORS)


def write_jsonl(
    examples: Iterable[Example], path: str | os.PathLike[str], style: str = "seed"
) -> int:
    """Write one JSON object per line, atomically; returns the number of rows written.

    Raises `DataError` (listing file:line) when some rows have no form in `style`.
    """
    if style not in STYLES:
        raise DataError(f"unknown style {style!r}", hint="use 'seed' or 'messages'")
    lines, problems = [], []
    for ex in examples:
        try:
            lines.append(dumps(to_record(ex, style)))
        except ValueError as exc:
            problems.append(f"{ex.source}: {exc}")
    if problems:
        raise DataError(
            f"{len(problems)} row(s) cannot be written as {style}:\n  "
            + "\n  ".join(problems[:20]),
            hint="write them with style 'messages' (data convert --to messages)",
        )
    with atomic_path(path) as tmp:
        tmp.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return len(lines)


def auto_style(examples: Iterable[Example]) -> str:
    """Seed when every row has a seed form (the seed guide's format), else messages."""
    for ex in examples:
        try:
            seed_record(ex)
        except ValueError:
            return "messages"
    return "seed"
