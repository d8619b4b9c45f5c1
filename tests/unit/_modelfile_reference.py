"""A plain transcription of Ollama's Modelfile parser (`parser/parser.go` ParseFile), kept
as the reference the linear-time parser in `ollama_tune.modelfile.parse` is checked against.

It is ollama-tune's parser as it was before it was made linear: one method per state, one
rune at a time, the buffer a string re-stripped at every newline (quadratic in the length of
a value), stopping at the first error. `bench/bench_modelfile_parse.py` times it as "old".
"""

from __future__ import annotations

from dataclasses import dataclass

from ollama_tune.errors import ModelfileError

COMMANDS = (
    "from",
    "license",
    "template",
    "system",
    "adapter",
    "draft",
    "renderer",
    "parser",
    "parameter",
    "message",
    "requires",
)
MESSAGE_ROLES = ("system", "user", "assistant")

_NIL, _NAME, _VALUE, _PARAM, _MESSAGE, _COMMENT = range(6)
_QQQ = '"""'


@dataclass(frozen=True)
class _Command:
    name: str  # lower-case keyword, or the parameter name for PARAMETER
    args: str
    line: int
    role: str | None = None


def _unquote(s: str) -> tuple[str, bool]:
    """Ollama's unquote(): a value is complete once its quotes (if any) are closed."""
    if s.startswith(_QQQ):
        return (s[3:-3], True) if len(s) >= 6 and s.endswith(_QQQ) else ("", False)
    if s.startswith('"'):
        return (s[1:-1], True) if len(s) >= 2 and s.endswith('"') else ("", False)
    return s, True


def _strip(s: str) -> str:
    # Only ASCII blanks and newlines can reach the buffer (other spaces are non-printable).
    return s.strip(" \t\r\n")


_KEYWORDS_HINT = "Keywords: " + ", ".join(c.upper() for c in COMMANDS) + "."


class _Parser:
    """Port of Ollama's ParseFile state machine (one method per state), with line numbers."""

    def __init__(self, path: str | None) -> None:
        self.path = path
        self.commands: list[_Command] = []
        self.state, self.buf, self.line, self.start = _NIL, "", 1, 1
        self.name = ""
        self.role: str | None = None

    def error(self, line: int, message: str, hint: str | None) -> ModelfileError:
        where = f"{self.path}:{line}" if self.path else f"line {line}"
        return ModelfileError(f"{where}: {message}", hint=hint)

    def run(self, text: str) -> list[_Command]:
        text = text.removeprefix("\ufeff")
        handlers = {
            _NIL: self._nil,
            _COMMENT: self._comment,
            _NAME: self._name,
            _PARAM: self._param,
            _MESSAGE: self._message,
            _VALUE: self._value,
        }
        for i, ch in enumerate(text):
            handlers[self.state](ch)
            # CRLF is one line break; a lone CR counts as one too (Ollama counts both).
            if ch == "\n" or (ch == "\r" and text[i + 1 : i + 2] != "\n"):
                self.line += 1
        self._finish()
        return self.commands

    def _nil(self, ch: str) -> None:
        if ch == "#":
            self.state = _COMMENT
        elif ch not in " \t\r\n":
            # Ollama enters the name state even on a non-printable rune, but drops the rune.
            self.state, self.start, self.buf = _NAME, self.line, ch if ch.isprintable() else ""

    def _comment(self, ch: str) -> None:
        if ch in "\r\n":
            self.state = _NIL

    def _name(self, ch: str) -> None:
        if ch in " \t":
            keyword = self.buf.lower()
            if keyword not in COMMANDS:
                raise self.error(self.line, f"unknown command {self.buf!r}", _KEYWORDS_HINT)
            self.name, self.buf = keyword, ""
            self.state = {"parameter": _PARAM, "message": _MESSAGE}.get(keyword, _VALUE)
        elif ch.isascii() and ch.isalpha():
            self.buf += ch
        elif ch in "\r\n":
            raise self.error(self.line, f"{self.buf.upper()} has no value", _KEYWORDS_HINT)
        else:
            raise self.error(
                self.line, f"unexpected {ch!r} in command {self.buf!r}", _KEYWORDS_HINT
            )

    def _param(self, ch: str) -> None:
        if ch.isascii() and (ch.isalnum() or ch == "_"):
            self.buf += ch
        elif ch in " \t" and self.buf:
            self.name, self.state, self.buf = self.buf, _VALUE, ""
        else:
            what = f"PARAMETER {self.buf!r} has no value" if ch in "\r\n" else "bad PARAMETER name"
            hint = "Write `PARAMETER name value`, e.g. `PARAMETER temperature 0.7`."
            raise self.error(self.line, what, hint)

    def _message(self, ch: str) -> None:
        if ch.isascii() and ch.isalpha():
            self.buf += ch
        elif ch in " \t" and self.buf in MESSAGE_ROLES:
            self.role, self.state, self.buf = self.buf, _VALUE, ""
        else:
            raise self.error(
                self.line,
                f"MESSAGE role {self.buf!r} is not one of {', '.join(MESSAGE_ROLES)}",
                "Write `MESSAGE user text` or `MESSAGE assistant text` (lower-case role).",
            )

    def _value(self, ch: str) -> None:
        if ch in "\r\n":  # a newline ends the value once its quotes are closed
            value, ok = _unquote(_strip(self.buf))
            if not ok:
                self.buf += ch
                return
            self.commands.append(_Command(self.name, value, self.start, self.role))
            self.state, self.buf, self.role = _NIL, "", None
        elif ch in " \t" or ch.isprintable():
            self.buf += ch  # other non-printable runes are dropped, as Ollama does

    def _finish(self) -> None:
        if self.state == _VALUE:
            value, ok = _unquote(_strip(self.buf))
            if not ok:
                raise self.error(
                    self.start,
                    "quoted value is never closed",
                    'Close it with the same quotes it opened with (" or """).',
                )
            self.commands.append(_Command(self.name, value, self.start, self.role))
        elif self.state in (_NAME, _PARAM, _MESSAGE):
            raise self.error(
                self.start, f"incomplete command {self.buf!r} at end of file", _KEYWORDS_HINT
            )


def _parse_commands(text: str, path: str | None = None) -> list[_Command]:
    return _Parser(path).run(text)
