"""Which shape a parsed row has, and the chat formats that are mapped onto OpenAI messages.

Detected per row from its keys: `messages` (OpenAI chat), `conversations` (ShareGPT, as
FastChat and LLaMA-Factory write it: `from`/`value` turns tagged human/gpt/system, or
`role`/`content`), `prompt`+`completion`, mlx-lm's plain `text` (which has no question/answer
split, so it is refused with what to do), and otherwise the seed format. A LLaMA-Factory
`dataset_info.json` beside a file supplies its column names.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ollama_tune.data.model import SourceRef
from ollama_tune.data.rows import RowOutcome, Schema, messages_row, resolve_keys, seed_row

# ShareGPT speaker tags → roles (FastChat writes human/gpt; others write user/assistant).
SHAREGPT_ROLES = {
    "human": "user",
    "user": "user",
    "gpt": "assistant",
    "assistant": "assistant",
    "chatgpt": "assistant",
    "bing": "assistant",
    "bard": "assistant",
    "model": "assistant",
    "system": "system",
}


def detect_schema(value: Any, mapping: dict[str, str] | None = None) -> Schema:
    if isinstance(value, dict):
        if "messages" in value:
            return "messages"
        if "conversations" in value:
            return "sharegpt"
        if "prompt" in value and "completion" in value:
            return "prompt-completion"
        if "text" in value:
            fields = set(resolve_keys([str(k) for k in value], mapping).values())
            if not fields & {"instruction", "output"}:
                return "text"
    return "seed"


def sharegpt_row(record: dict[str, Any], source: SourceRef) -> RowOutcome:
    """`{"conversations": [{"from": "human", "value": ...}, ...], "system"?: ...}`."""
    raw = record.get("conversations")
    if not isinstance(raw, list):
        return messages_row(record, source, "conversations")
    turns: list[Any] = []
    system = record.get("system")
    if isinstance(system, str) and system.strip():
        turns.append({"role": "system", "content": system})
    for turn in raw:
        if isinstance(turn, dict) and ("from" in turn or "value" in turn):
            speaker = turn.get("from")
            role = (
                SHAREGPT_ROLES.get(speaker.lower(), speaker)
                if isinstance(speaker, str)
                else speaker
            )
            turns.append({"role": role, "content": turn.get("value")})
        else:
            turns.append(turn)
    out = messages_row(record, source, "conversations", turns, known=("system",))
    if system is not None and not isinstance(system, str):
        out.error("wrong-type", "'system' is not text", "write 'system' as a JSON string")
        out.example = None
    return out


def text_row() -> RowOutcome:
    return RowOutcome().error(
        "plain-text",
        'plain text (mlx-lm\'s {"text": ...} format) has no question/answer split',
        'write each row as {"prompt": "question", "completion": "answer"} (mlx-lm reads that '
        'too) or {"instruction": ..., "output": ...}; ollama-tune learns answers to questions',
    )


def record_to_example(
    value: Any, source: SourceRef, schema: Schema, mapping: dict[str, str] | None
) -> RowOutcome:
    if not isinstance(value, dict):
        return RowOutcome().error(
            "not-an-object",
            f"the row is a JSON {type(value).__name__}, expected an object",
            'write each row as an object, e.g. {"instruction": "...", "output": "..."}',
        )
    if schema == "messages":
        return messages_row(value, source)
    if schema == "sharegpt":
        return sharegpt_row(value, source)
    if schema == "text":
        return text_row()
    return seed_row(value, source, mapping)


# LLaMA-Factory's alpaca column names (data/README.md) → our fields.
_LLAMA_FACTORY_COLUMNS = {
    "prompt": "instruction",
    "query": "input",
    "response": "output",
    "system": "system",
    "history": "history",
}


def dataset_info_mapping(path: Path) -> tuple[dict[str, str], Path] | None:
    """Column mapping from a LLaMA-Factory `dataset_info.json` next to `path`, if it names it.

    Only the simple case: an alpaca-formatted entry whose `columns` rename the fields.
    """
    info_path = path.parent / "dataset_info.json"
    try:
        info = json.loads(info_path.read_text(encoding="utf-8-sig"))
    except (OSError, ValueError):
        return None
    if not isinstance(info, dict):
        return None
    for entry in info.values():
        if not isinstance(entry, dict) or entry.get("file_name") != path.name:
            continue
        columns = entry.get("columns")
        if entry.get("formatting", "alpaca") != "alpaca" or not isinstance(columns, dict):
            return None
        mapping = {
            str(column): _LLAMA_FACTORY_COLUMNS[key]
            for key, column in columns.items()
            if key in _LLAMA_FACTORY_COLUMNS and isinstance(column, str)
        }
        return (mapping, info_path) if mapping else None
    return None
