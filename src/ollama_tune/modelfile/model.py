"""The `Modelfile` dataclass: parse, render, lint, and turn into Ollama's create API arguments.

One `Modelfile` object is the single source of truth for a customized model: `render()` gives
the text people read (and `ollama create -f` accepts), `to_create_args()` gives the JSON body of
`POST /api/create`. Parsing follows Ollama's own parser (`parser/parser.go`) rune for rune —
case-insensitive keywords, `#` comments only at line starts, `"…"`/`\"\"\"…\"\"\"` values spanning
lines, no escapes, non-printable characters dropped — in linear time (`parse`), but
reports every error with its line, not only the first. Rendering refuses values that would
not read back identically instead of changing them.
"""

from __future__ import annotations

import os
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ollama_tune._util import sha256_file
from ollama_tune.errors import ModelfileError
from ollama_tune.modelfile.lint import LintIssue, lint_modelfile
from ollama_tune.modelfile.params import typed_parameters
from ollama_tune.modelfile.parse import (
    MESSAGE_ROLES,
    QQQ,
    Command,
    ParseProblem,
    parse_commands,
)

__all__ = ["EXTRA_COMMANDS", "Modelfile", "value_problem"]

# Commands Ollama accepts that ollama-tune keeps verbatim but does not interpret.
EXTRA_COMMANDS = ("draft", "renderer", "parser")


def _parse_error(problems: list[ParseProblem], path: str | None) -> ModelfileError:
    """One error naming every problem (file:line each), the first one's hint."""
    where = [f"{path}:{p.line}" if path else f"line {p.line}" for p in problems]
    lines = [f"{w}: {p.message}" for w, p in zip(where, problems, strict=True)]
    if len(lines) > 1:
        lines[0] += f" (and {len(lines) - 1} more problem(s))"
    return ModelfileError("\n".join(lines), hint=problems[0].hint)


@dataclass
class Modelfile:
    """An Ollama Modelfile. Equality ignores where it was read from."""

    from_: str | None = None
    parameters: list[tuple[str, str]] = field(default_factory=list)
    template: str | None = None
    system: str | None = None
    adapters: list[str] = field(default_factory=list)
    license: list[str] = field(default_factory=list)
    messages: list[tuple[str, str]] = field(default_factory=list)
    requires: str | None = None
    extra: list[tuple[str, str]] = field(default_factory=list)
    path: str | None = field(default=None, compare=False)
    # (field, index) -> source line, for lint messages; index 0 for single-valued fields.
    lines: dict[tuple[str, int], int] = field(default_factory=dict, compare=False, repr=False)
    repeated: list[tuple[str, int]] = field(default_factory=list, compare=False, repr=False)

    @classmethod
    def parse(cls, text: str, path: str | os.PathLike[str] | None = None) -> Modelfile:
        """Parse Modelfile text the way Ollama does; raise ModelfileError naming every problem."""
        mf, problems = cls.parse_all(text, path)
        if problems:
            raise _parse_error(problems, mf.path)
        return mf

    @classmethod
    def parse_all(
        cls, text: str, path: str | os.PathLike[str] | None = None
    ) -> tuple[Modelfile, list[ParseProblem]]:
        """What can be read, and every parse problem (lint reports both)."""
        mf = cls(path=str(path) if path is not None else None)
        commands, problems = parse_commands(text)
        for cmd in commands:
            mf._add(cmd)
        return mf, problems

    @classmethod
    def read(cls, path: str | os.PathLike[str]) -> Modelfile:
        mf, problems = cls.read_all(path)
        if problems:
            raise _parse_error(problems, mf.path)
        return mf

    @classmethod
    def read_all(cls, path: str | os.PathLike[str]) -> tuple[Modelfile, list[ParseProblem]]:
        try:
            raw = Path(path).read_bytes()
        except OSError as exc:
            raise ModelfileError(
                f"cannot read Modelfile {path}: {exc.strerror}", hint="Check the path."
            ) from None
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ModelfileError(
                f"{path}: not UTF-8 (byte {exc.start})", hint="Save the Modelfile as UTF-8."
            ) from None
        return cls.parse_all(text, path)

    def _add(self, cmd: Command) -> None:
        key = cmd.name
        lists: dict[str, list[Any]] = {
            "adapter": self.adapters,
            "license": self.license,
        }
        if cmd.role is not None:
            self.lines[("message", len(self.messages))] = cmd.line
            self.messages.append((cmd.role, cmd.args))
        elif key in lists:
            self.lines[(key, len(lists[key]))] = cmd.line
            lists[key].append(cmd.args)
        elif key in ("from", "template", "system", "requires"):
            attr = "from_" if key == "from" else key
            if getattr(self, attr) is not None:
                self.repeated.append((key.upper(), cmd.line))
            setattr(self, attr, cmd.args)
            self.lines[(key, 0)] = cmd.line
        elif key in EXTRA_COMMANDS:
            self.extra.append((key, cmd.args))
        else:
            self.lines[("parameter", len(self.parameters))] = cmd.line
            self.parameters.append((key, cmd.args))

    # ---- rendering -----------------------------------------------------------------------

    def render(self) -> str:
        """Text that Ollama's parser reads back as exactly this Modelfile."""
        out: list[str] = []
        if self.from_ is not None:
            out.append(_command("FROM", self.from_, "FROM"))
        out += [_command("ADAPTER", a, f"ADAPTER #{i + 1}") for i, a in enumerate(self.adapters)]
        if self.template is not None:
            out.append(_command("TEMPLATE", self.template, "TEMPLATE"))
        if self.system is not None:
            out.append(_command("SYSTEM", self.system, "SYSTEM"))
        for name, value in self.parameters:
            if not name or not all(c.isascii() and (c.isalnum() or c == "_") for c in name):
                raise ModelfileError(
                    f"PARAMETER name {name!r} is not valid",
                    hint="Use letters, digits and _ only.",
                )
            out.append(_command(f"PARAMETER {name}", value, f"PARAMETER {name}"))
        for i, (role, content) in enumerate(self.messages):
            if role not in MESSAGE_ROLES:
                raise ModelfileError(
                    f"MESSAGE #{i + 1} has role {role!r}",
                    hint=f"Use one of {', '.join(MESSAGE_ROLES)}.",
                )
            out.append(_command(f"MESSAGE {role}", content, f"MESSAGE #{i + 1} ({role})"))
        out += [_command("LICENSE", t, f"LICENSE #{i + 1}") for i, t in enumerate(self.license)]
        if self.requires is not None:
            out.append(_command("REQUIRES", self.requires, "REQUIRES"))
        out += [_command(k.upper(), v, k.upper()) for k, v in self.extra]
        return "\n".join(out) + "\n"

    # ---- create API ----------------------------------------------------------------------

    def local_file(self, value: str | None, base_dir: str | os.PathLike[str] | None) -> Path | None:
        """The file a FROM/ADAPTER value points at (Ollama's path rules), if it exists."""
        if not value:
            return None
        p = Path(value).expanduser()
        if not p.is_absolute():
            p = Path(base_dir or ".") / p
        return p.resolve() if p.exists() else None

    def to_create_args(
        self,
        base_dir: str | os.PathLike[str] | None = None,
        digests: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        """The JSON body of `POST /api/create` (minus `model` and `stream`).

        A FROM that names an existing local file becomes `files` {name: sha256 digest}; any
        other FROM is a model name (`from`). Values go untouched — the JSON API has no quoting
        limits. `digests` (path -> "sha256:…") saves re-hashing files already uploaded.
        """
        digests = dict(digests or {})

        def digest(p: Path) -> str:
            return digests.get(str(p)) or f"sha256:{sha256_file(p)}"

        args: dict[str, Any] = {}
        src = self.local_file(self.from_, base_dir)
        if src is not None:
            args["files"] = {src.name: digest(src)}
        elif self.from_:
            args["from"] = self.from_
        adapters = [self.local_file(a, base_dir) for a in self.adapters]
        if adapters:
            missing = [a for a, p in zip(self.adapters, adapters, strict=True) if p is None]
            if missing:
                raise ModelfileError(
                    f"ADAPTER file not found: {missing[0]}",
                    hint="ADAPTER paths are relative to the Modelfile's folder.",
                )
            args["adapters"] = {p.name: digest(p) for p in adapters if p is not None}
        for key in ("template", "system"):
            if getattr(self, key) is not None:
                args[key] = getattr(self, key)
        if self.license:
            args["license"] = self.license[0] if len(self.license) == 1 else list(self.license)
        if params := typed_parameters(self.parameters):
            args["parameters"] = params
        if self.messages:
            args["messages"] = [{"role": r, "content": c} for r, c in self.messages]
        return args

    def lint(
        self, base_dir: str | os.PathLike[str] | None = None, *, allow_outside: bool = False
    ) -> list[LintIssue]:
        """Every problem at once (see `lint`)."""
        return lint_modelfile(self, base_dir, allow_outside=allow_outside)


def value_problem(value: str) -> str | None:
    """Why `value` cannot be written in a Modelfile (None when it can)."""
    try:
        _quote(value, "value")
    except ModelfileError as exc:
        return exc.message
    return None


def _quote(value: str, what: str) -> str:
    """The first spelling Ollama's parser reads back as `value`, or ModelfileError."""
    for ch in value:
        if not (ch.isprintable() or ch in "\t\r\n"):
            code = f"U+{ord(ch):04X} {unicodedata.name(ch, 'control character')}"
            raise ModelfileError(
                f"{what} contains {code}, which Ollama's Modelfile parser silently drops",
                hint="Replace it in your data (e.g. a full-width space with a normal space).",
            )
    candidates = [value] if value else []
    candidates.append(QQQ + value + QQQ)
    for text in candidates:
        cmds = _safe_parse("SYSTEM " + text + "\n")
        if cmds is not None and len(cmds) == 1 and cmds[0].args == value:
            return text
    raise ModelfileError(
        f'{what} contains """ where Ollama\'s parser would end the value early',
        hint='Remove or change the """ in that text (the JSON create API has no such limit).',
    )


def _safe_parse(text: str) -> list[Command] | None:
    commands, problems = parse_commands(text)
    return None if problems else commands


def _command(keyword: str, value: str, what: str) -> str:
    return f"{keyword} {_quote(value, what)}"
