"""Turn one parsed record into an `Example`, or say exactly why it cannot be one.

Three row shapes are understood: the seed format `{"instruction", "input"?, "output"}` (also
`{"prompt", "completion"}`, `{"question", "answer"}` and the Japanese column names Excel
sheets use), and OpenAI chat `{"messages": [...]}`. A `system` key becomes a system message;
`facts` (fact groups for evaluation) is carried through.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from ollama_tune.data.model import ROLES, Example, Message, Role, SourceRef

Schema = Literal["seed", "messages", "prompt-completion"]
SCHEMAS: tuple[str, ...] = ("seed", "messages", "prompt-completion")
FIELDS: tuple[str, ...] = ("instruction", "input", "output", "system", "facts")
# Row metadata carried in `Example.extra`: a rewording's source row (`data augment`).
META_KEYS: tuple[str, ...] = ("augmented_from",)


def _meta(record: dict[str, Any]) -> dict[str, object]:
    return {k: v for k in META_KEYS if isinstance(v := record.get(k), str) and v}


# Column/key names people use, lower-cased; the canonical name always wins over an alias.
_ALIAS_WORDS = {
    "instruction": "instruction question prompt query q 質問 質問内容 問い合わせ 問い合わせ内容 "
    "お問い合わせ お問い合わせ内容 問い 設問 指示",
    "input": "input context 補足 補足情報 入力 文脈 詳細",
    "output": "output answer completion response a 回答 回答内容 答え 返答 応答 出力",
    "system": "system system_prompt システム システムプロンプト",
    "facts": "facts 事実 ファクト",
}
ALIASES: dict[str, str] = {
    word: name for name, words in _ALIAS_WORDS.items() for word in words.split()
}


@dataclass
class RowOutcome:
    example: Example | None = None
    # (severity, code, message, hint); the loader attaches the source.
    problems: list[tuple[str, str, str, str]] = field(default_factory=list)
    unknown_keys: list[str] = field(default_factory=list)

    def error(self, code: str, message: str, hint: str) -> RowOutcome:
        self.problems.append(("error", code, message, hint))
        return self


def resolve_keys(keys: list[str], mapping: dict[str, str] | None) -> dict[str, str]:
    """Which field each key feeds: `--map` first, then the canonical names, then aliases."""
    out: dict[str, str] = {}
    taken: set[str] = set()
    for key in keys:
        if mapping and key in mapping:
            out[key] = mapping[key]
            taken.add(mapping[key])
    for key in keys:
        if key not in out and key.strip().lower() in FIELDS and key.strip().lower() not in taken:
            out[key] = key.strip().lower()
            taken.add(out[key])
    for key in keys:
        target = ALIASES.get(key.strip().lower())
        if key not in out and target and target not in taken:
            out[key] = target
            taken.add(target)
    return out


def detect_schema(value: Any) -> Schema:
    if isinstance(value, dict):
        if "messages" in value:
            return "messages"
        if "prompt" in value and "completion" in value:
            return "prompt-completion"
    return "seed"


def _facts(value: Any) -> tuple[tuple[str, ...], ...] | None:
    """Fact groups; a bare string counts as a group with one acceptable form."""
    if not isinstance(value, list):
        return None
    groups: list[tuple[str, ...]] = []
    for group in value:
        if isinstance(group, str):
            groups.append((group,))
        elif isinstance(group, list) and group and all(isinstance(s, str) for s in group):
            groups.append(tuple(group))
        else:
            return None
    return tuple(groups)


_FACTS_HINT = (
    'write facts as a list of groups of acceptable strings: [["30日", "三十日"], ["送料"]]'
)


def _read_facts(record: dict[str, Any], key: str | None, out: RowOutcome) -> Any:
    if key is None or record.get(key) in (None, "", []):
        return None
    facts = _facts(record[key])
    if facts is None:
        out.error("wrong-type", f"'{key}' is not a list of lists of strings", _FACTS_HINT)
    return facts


def seed_row(
    record: dict[str, Any], source: SourceRef, mapping: dict[str, str] | None
) -> RowOutcome:
    out = RowOutcome()
    keys = resolve_keys(list(record), mapping)
    by_field = {f: k for k, f in keys.items()}
    out.unknown_keys = [k for k in record if k not in keys and k not in META_KEYS]
    texts: dict[str, str] = {}
    for name in ("instruction", "input", "output", "system"):
        key = by_field.get(name)
        value = record.get(key) if key is not None else None
        if value is None:
            if name in ("instruction", "output"):
                out.error(
                    "missing-field",
                    f"no '{name}' {'(question)' if name == 'instruction' else '(answer)'}",
                    f"add an '{name}' key, or name the column with --map COLUMN={name}",
                )
            continue
        if isinstance(value, (int, float)) and not isinstance(value, bool) and name != "system":
            value = str(value)  # spreadsheets turn "30" into a number
        if not isinstance(value, str):
            out.error(
                "wrong-type",
                f"'{key}' is {type(value).__name__}, expected a string",
                f"write '{key}' as a JSON string",
            )
            continue
        if name in ("instruction", "output") and not value.strip():
            out.error("empty-field", f"'{key}' is empty", f"fill in '{key}' or delete the row")
        texts[name] = value
    facts = _read_facts(record, by_field.get("facts"), out)
    if out.problems:
        return out
    user = texts["instruction"]
    if texts.get("input", "").strip():
        user = f"{user}\n\n{texts['input']}"
    msgs = [Message("user", user), Message("assistant", texts["output"])]
    if texts.get("system", "").strip():
        msgs.insert(0, Message("system", texts["system"]))
    extra: dict[str, object] = {
        "instruction": texts["instruction"],
        "input": texts.get("input", ""),
        **_meta(record),
    }
    out.example = Example(tuple(msgs), source, facts, extra)
    return out


def _message(i: int, m: Any, out: RowOutcome) -> Message | None:
    where = f"messages[{i}]"
    if not isinstance(m, dict):
        out.error(
            "wrong-type",
            f"{where} is {type(m).__name__}, expected an object",
            'write each message as {"role": "user", "content": "..."}',
        )
        return None
    role, content = m.get("role"), m.get("content")
    if role not in ROLES:
        out.error(
            "unknown-role", f"{where} has role {role!r}", "use one of: system, user, assistant"
        )
        return None
    if not isinstance(content, str):
        out.error(
            "wrong-type",
            f"{where}.content is {type(content).__name__}, expected a string",
            "write the content as a JSON string",
        )
        return None
    if not content.strip() and role != "system":
        out.error(
            "empty-field", f"{where} ({role}) has empty content", "fill it in or drop the turn"
        )
        return None
    known: Role = role
    return Message(known, content)


def messages_row(record: dict[str, Any], source: SourceRef) -> RowOutcome:
    out = RowOutcome()
    out.unknown_keys = [k for k in record if k not in ("messages", "facts", *META_KEYS)]
    raw = record.get("messages")
    if not isinstance(raw, list) or not raw:
        return out.error(
            "wrong-type",
            "'messages' is not a non-empty list",
            'write "messages": [{"role": "user", ...}, {"role": "assistant", ...}]',
        )
    msgs = [msg for i, item in enumerate(raw) if (msg := _message(i, item, out)) is not None]
    facts = _read_facts(record, "facts", out)
    if out.problems:
        return out
    if not any(m.role == "assistant" for m in msgs):
        return out.error(
            "no-assistant-turn",
            "the conversation has no assistant turn",
            "add the answer as a message with role 'assistant'",
        )
    if not any(m.role == "user" for m in msgs):
        return out.error(
            "missing-field",
            "the conversation has no user turn",
            "add the question as a message with role 'user'",
        )
    if msgs[-1].role != "assistant":
        out.problems.append(
            (
                "warning",
                "trailing-turns",
                "turns after the last assistant answer are ignored",
                "end each conversation with the assistant's answer",
            )
        )
    out.example = Example(tuple(msgs), source, facts, _meta(record))
    return out


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
    return seed_row(value, source, mapping)
