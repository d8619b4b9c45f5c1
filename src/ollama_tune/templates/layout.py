"""The turn layout read off a chat template, and the Ollama TEMPLATE written from it.

A `Layout` says what a chat template prints around message contents: the text before the first
message (by its role), between two consecutive messages (by the pair of roles), and after the
last user turn (the generation prompt). `go_template` writes it as a Go `text/template` over
`.Messages` the way Ollama feeds it; `render` is the same layout in Python, used to check a
conversion against the Jinja template before Go is even called. Both print a date the chat
template takes from `strftime_now` as Ollama's `currentDate` when the format is ISO
(`%Y-%m-%d`, what `currentDate` prints), else as the date of the conversion (a difference).
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

# strftime_now(fmt) renders as this marker while probing, so dates can be found in the layout.
DATE_MARK = "\x00DATE:{}\x00"
_DATE_RE = re.compile("\x00DATE:([^\x00]*)\x00")
_ISO = "%Y-%m-%d"

ROLES = ("system", "user", "assistant")
EMPTY = {"system": "esys", "assistant": "eassistant"}


@dataclass(frozen=True)
class Layout:
    """What a chat template prints around message contents (dates as DATE_MARK markers).

    `system_mode`: "turn" (system messages print in sequence, as their own turn or merged into
    the following user turn), "last_user" (all system text goes inside the last user turn,
    Mistral v0.3), "fold" (the template has no system role: SYSTEM is put before the first user
    turn's text, as Ollama's own Gemma TEMPLATE does).
    """

    head: dict[str, str]  # role of the first message -> text before it
    sep: dict[tuple[str, str], str]  # (previous role, role) -> text between the two contents
    gen: str  # after the last message when it is not an assistant turn
    system_mode: str = "turn"
    sys_pre: str = ""  # "last_user": text before the system text inside the user turn
    sys_post: str = ""  # "last_user": text between the system text and the user's

    @property
    def roles(self) -> tuple[str, ...]:
        # "esys"/"eassistant": an empty message the template prints unlike the others of its role.
        return (*ROLES, *(e for e in EMPTY.values() if e in self.head))

    def role_of(self, message: dict[str, str]) -> str:
        empty = EMPTY.get(message["role"]) if not message["content"] else None
        return empty if empty and empty in self.head else message["role"]

    def text(self, s: str) -> str:
        """A layout string with its date markers filled in (what the TEMPLATE prints today)."""
        return _DATE_RE.sub(lambda m: _today(m.group(1)), s)

    def before(self, prev: str, role: str) -> str:
        if not prev:
            return self.head.get(role, self.head.get("user", ""))
        found = self.sep.get((prev, role))
        if found is not None:
            return found
        # Pairs the probes could not show (a system turn after the first) render like a user turn.
        return self.sep.get((prev, "user"), self.sep.get(("assistant", "user"), ""))

    def render(self, messages: Sequence[dict[str, str]]) -> str:
        """The layout applied to `messages` already collated as Ollama does (see `gorender`)."""
        msgs = list(messages)
        systems = [m["content"] for m in msgs if m["role"] == "system"]
        last_user = max((i for i, m in enumerate(msgs) if m["role"] == "user"), default=-1)
        out: list[str] = []
        prev = ""
        for i, m in enumerate(msgs):
            role = self.role_of(m)
            if role == "system" and self.system_mode in ("last_user", "fold"):
                continue
            out.append(self.before(prev, role))
            if role == "user" and i == last_user and self.system_mode == "last_user" and systems:
                out.append(self.sys_pre + "\n\n".join(systems) + self.sys_post)
            if role == "user" and self.system_mode == "fold" and systems and prev == "":
                out.append("\n\n".join(systems) + "\n\n")
            out.append(m["content"])
            prev = role
        if msgs and prev != "assistant":
            out.append(self.gen)
        return self.text("".join(out))

    def go_template(self) -> str:
        """The Ollama TEMPLATE (Go text/template) that prints exactly what `render` prints."""
        lines = ['{{- $prev := "" }}{{- $role := "" }}']
        skip = []
        if self.system_mode in ("last_user", "fold"):
            lines.append("{{- $hasSys := false }}{{- $lastUser := -1 }}")
            lines.append(
                "{{- range $i, $m := .Messages }}"
                '{{- if eq .Role "system" }}{{ $hasSys = true }}{{ end }}'
                '{{- if eq .Role "user" }}{{ $lastUser = $i }}{{ end }}{{- end }}'
            )
            skip.append('(eq .Role "system")')
        lines.append("{{- range $i, $m := .Messages }}{{- $role = .Role }}")
        for role, empty in EMPTY.items():
            if empty in self.head:
                lines.append(
                    f'{{{{- if and (eq .Role "{role}") (not .Content) }}}}'
                    f'{{{{ $role = "{empty}" }}}}{{{{ end }}}}'
                )
        body = [self._go_before(), self._go_system_insert(), "{{- .Content }}{{ $prev = $role }}"]
        if skip:
            lines.append("{{- if " + skip[0] + " }}{{- else }}")
            lines += body
            lines.append("{{- end }}")
        else:
            lines += body
        lines.append("{{- end }}")
        lines.append(
            '{{- if and .Messages (ne $prev "assistant") }}' + _go_text(self.gen) + "{{ end }}"
        )
        return "\n".join(line for line in lines if line)

    def _go_before(self) -> str:
        parts = ['{{- if eq $prev "" }}' + self._go_by_role(lambda r: self.before("", r))]
        for prev in self.roles:
            parts.append(
                f'{{{{- else if eq $prev "{prev}" }}}}'
                + self._go_by_role(lambda r, p=prev: self.before(p, r))  # type: ignore[misc]
            )
        parts.append("{{- end }}")
        return "\n".join(parts)

    def _go_by_role(self, text_for: Any) -> str:
        texts = {r: text_for(r) for r in self.roles}
        branches = [r for r in self.roles if r != "user" and texts[r] != texts["user"]]
        if not branches:
            return _go_text(texts["user"])
        out = ""
        for n, role in enumerate(branches):
            out += ("{{ if" if n == 0 else "{{ else if") + f' eq $role "{role}" }}}}'
            out += _go_text(texts[role])
        return out + "{{ else }}" + _go_text(texts["user"]) + "{{ end }}"

    def _go_system_insert(self) -> str:
        if self.system_mode == "last_user":
            return (
                '{{- if and (eq .Role "user") (eq $i $lastUser) $hasSys }}'
                + _go_text(self.sys_pre)
                + "{{ $.System }}"
                + _go_text(self.sys_post)
                + "{{ end }}"
            )
        if self.system_mode == "fold":
            return (
                '{{- if and (eq .Role "user") (eq $prev "") $hasSys }}'
                '{{ $.System }}{{ "\\n\\n" }}{{ end }}'
            )
        return ""


def _today(fmt: str) -> str:
    return datetime.now().strftime(fmt)


def _go_text(s: str) -> str:
    """Literal text as Go template actions; dates become `currentDate` where Ollama has it."""
    s = _DATE_RE.sub(lambda m: m.group(0) if m.group(1) == _ISO else _today(m.group(1)), s)
    out = []
    pos = 0
    for m in _DATE_RE.finditer(s):
        out.append(_go_literal(s[pos : m.start()]) + "{{ currentDate }}")
        pos = m.end()
    out.append(_go_literal(s[pos:]))
    return "".join(out)


def _go_literal(s: str) -> str:
    # A JSON string is a valid Go interpreted string literal (same escapes, \uXXXX included).
    return "{{ " + json.dumps(s, ensure_ascii=False) + " }}" if s else ""


def dates_in(layout: Layout) -> list[str]:
    """The strftime formats the layout prints."""
    texts = [*layout.head.values(), *layout.sep.values(), layout.gen, layout.sys_pre]
    return sorted({m.group(1) for t in texts for m in _DATE_RE.finditer(t)})


def is_iso(fmt: str) -> bool:
    return fmt == _ISO


@dataclass(frozen=True)
class OllamaTemplate:
    """An Ollama TEMPLATE with its stop tokens, the SYSTEM the chat template defaults to, and
    what training appends after an answer (`end_of_turn`, the first stop)."""

    family: str
    template: str
    stop: list[str]
    default_system: str | None = None
    variant: str | None = None
    matched: str = "probed"  # "probed" (converted from the chat template), "file", "ollama"
    notes: list[str] = field(default_factory=list)
    answer_prefix: str = ""  # what the chat template prints between its prompt and the answer
    end_of_turn: str = ""  # text after the answer in a training completion (e.g. "<|im_end|>")
    end_of_turn_printed: bool = True  # False: the chat template prints none, training adds EOS
    jinja_kwargs: dict[str, Any] = field(default_factory=dict)  # e.g. enable_thinking=False
    native_completion: bool = True  # the chat template's own prompt prefixes its full render
    system_supported: bool = True  # the chat template renders system messages itself
    layout: Layout | None = None

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> OllamaTemplate:
        """The TEMPLATE a run recorded in run.json (`to_json`), without its layout."""
        return cls(
            family=str(data.get("family") or "custom"),
            template=str(data["template"]),
            stop=list(data.get("stop") or []),
            default_system=data.get("default_system"),
            matched=str(data.get("matched") or "run"),
            notes=list(data.get("notes") or []),
            answer_prefix=str(data.get("answer_prefix") or ""),
            end_of_turn=str(data.get("end_of_turn") or ""),
            end_of_turn_printed=bool(data.get("end_of_turn_printed", True)),
            jinja_kwargs=dict(data.get("jinja_kwargs") or {}),
            native_completion=bool(data.get("native_completion", True)),
            system_supported=bool(data.get("system_supported", True)),
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "family": self.family,
            "template": self.template,
            "stop": self.stop,
            "default_system": self.default_system,
            "matched": self.matched,
            "answer_prefix": self.answer_prefix,
            "end_of_turn": self.end_of_turn,
            "end_of_turn_printed": self.end_of_turn_printed,
            "jinja_kwargs": self.jinja_kwargs,
            "native_completion": self.native_completion,
            "system_supported": self.system_supported,
            "notes": self.notes,
        }


# Special-token shapes used to find the end-of-turn token in what follows an answer.
_SPECIAL = re.compile(
    r"<\|[^<>|\s]{1,48}\|>|<｜[^<>｜]{1,48}｜>|</s>|<[a-z][a-z_]{1,30}>|\[/?[A-Z_]{2,24}\]"
    r"|<\|[a-z_]+>|<[a-z_]+\|>"
)


def first_special(text: str, eos: str) -> int:
    """End offset of the first special token (or EOS) in `text`; 0 when there is none."""
    ends = []
    m = _SPECIAL.search(text)
    if m:
        ends.append((m.start(), m.end()))
    if eos and eos in text:
        ends.append((text.find(eos), text.find(eos) + len(eos)))
    return min(ends)[1] if ends else 0
