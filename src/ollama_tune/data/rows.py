"""Turn one parsed record into an `Example`, or say exactly why it cannot be one.

Three row shapes are understood: the seed format `{"instruction", "input"?, "output"}` (also
`{"prompt", "completion"}`, `{"question", "answer"}` and the Japanese column names Excel
sheets use), and OpenAI chat `{"messages": [...]}`. A `system` key becomes a system message;
`facts` (fact groups for evaluation) is carried through.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any, Literal

from ollama_tune.data.model import ROLES, Example, Message, Role, SourceRef
from ollama_tune.data.normalize import trim
from ollama_tune.data.records import JsonNumber

Schema = Literal["seed", "messages", "prompt-completion", "sharegpt", "text"]
SCHEMAS: tuple[str, ...] = ("seed", "messages", "prompt-completion", "sharegpt", "text")
FIELDS: tuple[str, ...] = ("instruction", "input", "output", "system", "facts", "history")
# Row metadata carried in `Example.extra`: a rewording's source row (`data augment`).
META_KEYS: tuple[str, ...] = ("augmented_from",)


def _meta(record: dict[str, Any]) -> dict[str, object]:
    if not any(k in record for k in META_KEYS):
        return {}
    return {k: v for k in META_KEYS if isinstance(v := record.get(k), str) and v}


# Column/key names people use, lower-cased; the canonical name always wins over an alias.
_ALIAS_WORDS = {
    "instruction": "instruction question prompt query q 質問 質問内容 問い合わせ 問い合わせ内容 "
    "お問い合わせ お問い合わせ内容 問い 設問 指示",
    "input": "input context 補足 補足情報 入力 文脈 詳細",
    "output": "output answer completion response a 回答 回答内容 答え 返答 応答 出力",
    "system": "system system_prompt システム システムプロンプト",
    "facts": "facts 事実 ファクト",
    "history": "history 履歴",
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
    # Some text had surrounding whitespace that was trimmed (the loader counts these rows).
    trimmed: bool = False

    def text(self, value: str) -> str:
        """`value` trimmed of the whitespace Ollama would strip, noting that it was."""
        kept = trim(value)
        self.trimmed |= kept != value
        return kept

    def error(self, code: str, message: str, hint: str) -> RowOutcome:
        self.problems.append(("error", code, message, hint))
        return self


def not_text(where: str, value: Any) -> tuple[str, str] | None:
    """(message, hint) when a value that must be text is a number, boolean, list or object.

    Numbers are not turned into text: `1.50` would silently become "1.5" and NaN "nan".
    """
    if isinstance(value, str) and not isinstance(value, JsonNumber):
        return None
    if isinstance(value, (JsonNumber, bool)):
        shown = str(value) if isinstance(value, JsonNumber) else str(value).lower()
        kind = "a JSON number" if isinstance(value, JsonNumber) else "a JSON boolean"
        return (
            f"{where} is {shown} ({kind}), expected text",
            f'quote it so the exact text is kept: "{shown}"',
        )
    kinds = ((dict, "an object"), (list, "a list"), (type(None), "null"))
    kind = next((k for t, k in kinds if isinstance(value, t)), type(value).__name__)
    return f"{where} is {kind}, expected text", f"write {where} as a JSON string"


def resolve_keys(keys: list[str], mapping: dict[str, str] | None) -> dict[str, str]:
    """Which field each key feeds: `--map` first, then the canonical names, then aliases."""
    # Rows of one file share their keys: resolve each key list once.
    return dict(_resolve_keys(tuple(keys), tuple(mapping.items()) if mapping else ()))


@functools.lru_cache(maxsize=256)
def _key_plan(
    keys: tuple[str, ...], pairs: tuple[tuple[str, str], ...]
) -> tuple[dict[str, str], tuple[str, ...]]:
    """Field → key, and the keys no field takes, for one key list (rows share theirs).
    Callers must not change the returned dict: it is cached."""
    resolved = _resolve_keys(keys, pairs)
    unknown = tuple(k for k in keys if k not in resolved and k not in META_KEYS)
    return {f: k for k, f in resolved.items()}, unknown


@functools.lru_cache(maxsize=256)
def _resolve_keys(keys: tuple[str, ...], pairs: tuple[tuple[str, str], ...]) -> dict[str, str]:
    mapping = dict(pairs)
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


def _facts(value: Any) -> tuple[tuple[str, ...], ...] | None:
    """Fact groups; a bare string counts as a group with one acceptable form."""
    if not isinstance(value, list):
        return None
    groups: list[tuple[str, ...]] = []
    for group in value:
        if not_text("", group) is None:
            groups.append((group,))
        elif isinstance(group, list) and group and all(not_text("", s) is None for s in group):
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
    by_field, unknown = _key_plan(tuple(record), tuple(mapping.items()) if mapping else ())
    out.unknown_keys = list(unknown)
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
        problem = not_text(f"'{key}'", value)
        if problem is not None:
            out.error("wrong-type", *problem)
            continue
        if name in ("instruction", "output") and not value.strip():
            out.error("empty-field", f"'{key}' is empty", f"fill in '{key}' or delete the row")
        texts[name] = out.text(value)
    facts = _read_facts(record, by_field.get("facts"), out)
    history = _read_history(record, by_field.get("history"), out)
    if out.problems:
        return out
    user = texts["instruction"]
    if texts.get("input", "").strip():
        user = f"{user}\n\n{texts['input']}"
    msgs = [m for q, a in history for m in (Message("user", q), Message("assistant", a))]
    msgs += [Message("user", user), Message("assistant", texts["output"])]
    if texts.get("system", "").strip():
        msgs.insert(0, Message("system", texts["system"]))
    extra: dict[str, object] = {
        "instruction": texts["instruction"],
        "input": texts.get("input", ""),
        **_meta(record),
    }
    if history:
        extra["history"] = history
    out.example = Example(tuple(msgs), source, facts, extra)
    return out


_HISTORY_HINT = 'write history as earlier [question, answer] pairs: [["Q1", "A1"], ["Q2", "A2"]]'


def _read_history(
    record: dict[str, Any], key: str | None, out: RowOutcome
) -> list[tuple[str, str]]:
    """Alpaca's `history`: earlier turns of the conversation, oldest first."""
    if key is None or record.get(key) in (None, "", []):
        return []
    value = record[key]
    pairs: list[tuple[str, str]] = []
    for i, pair in enumerate(value if isinstance(value, list) else [value]):
        if not isinstance(pair, list) or len(pair) != 2:
            out.error("wrong-type", f"'{key}'[{i}] is not a [question, answer] pair", _HISTORY_HINT)
            return []
        for j, text in enumerate(pair):
            problem = not_text(f"'{key}'[{i}][{j}]", text)
            if problem is not None:
                out.error("wrong-type", *problem)
                return []
            if not text.strip():
                out.error("empty-field", f"'{key}'[{i}][{j}] is empty", "fill it in or drop it")
                return []
        pairs.append((out.text(pair[0]), out.text(pair[1])))
    return pairs


_TOOL_ROLES = ("function_call", "observation", "tool", "function", "ipython")


def _message(i: int, m: Any, out: RowOutcome, key: str = "messages") -> Message | None:
    where = f"{key}[{i}]"
    if not isinstance(m, dict):
        out.error(
            "wrong-type",
            f"{where} is {type(m).__name__}, expected an object",
            'write each message as {"role": "user", "content": "..."}',
        )
        return None
    role, content = m.get("role"), m.get("content")
    if role in _TOOL_ROLES:
        out.error(
            "tool-turn",
            f"{where} is a {role!r} (tool-calling) turn, which a Modelfile or a chat "
            "fine-tune here cannot carry",
            "keep rows of plain question→answer turns; drop the tool-calling conversations",
        )
        return None
    if role not in ROLES:
        out.error(
            "unknown-role", f"{where} has role {role!r}", "use one of: system, user, assistant"
        )
        return None
    problem = not_text(f"{where}.content", content)
    if problem is not None or not isinstance(content, str):
        out.error("wrong-type", *(problem or ("", "")))
        return None
    if not content.strip() and role != "system":
        out.error(
            "empty-field", f"{where} ({role}) has empty content", "fill it in or drop the turn"
        )
        return None
    known: Role = role
    return Message(known, out.text(content))


def messages_row(
    record: dict[str, Any],
    source: SourceRef,
    key: str = "messages",
    turns: list[Any] | None = None,
    known: tuple[str, ...] = (),
) -> RowOutcome:
    """OpenAI chat rows; other chat formats hand in their `turns` already in role/content form."""
    out = RowOutcome()
    out.unknown_keys = [k for k in record if k not in (key, "facts", *known, *META_KEYS)]
    raw = record.get(key) if turns is None else turns
    if not isinstance(raw, list) or not raw:
        return out.error(
            "wrong-type",
            f"'{key}' is not a non-empty list",
            f'write "{key}": [{{"role": "user", ...}}, {{"role": "assistant", ...}}]',
        )
    msgs = [msg for i, m in enumerate(raw) if (msg := _message(i, m, out, key)) is not None]
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
        # OpenAI's fine-tuning accepts system + assistant alone; here every row is asked.
        return out.error(
            "missing-field",
            "the conversation has no user turn: ollama-tune needs the question to build "
            "few-shot examples and to test the model",
            "add the question as a message with role 'user' before the answer",
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
