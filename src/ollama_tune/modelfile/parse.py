"""Ollama's Modelfile parser (`parser/parser.go` ParseFile), rune for rune, in linear time.

The states and transitions are Ollama's: case-insensitive keywords, `#` comments only at line
starts, `"…"`/`\"\"\"…\"\"\"` values spanning lines (a value ends at the first newline where its
quotes are closed), no escapes, non-printable characters dropped. Two things differ, both only
in how problems are reported: every error carries its line, and parsing goes on after an error
(from the next line) so that one mistake does not hide the ones after it.

Linear time: a value's characters are taken a line at a time and kept in a list, and whether
the quotes are closed is decided from the value's first and last three characters, so a 10 MB
value costs one pass instead of one re-scan per line.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

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
KEYWORDS_HINT = "Keywords: " + ", ".join(c.upper() for c in COMMANDS) + "."
QQQ = '"""'
_BLANKS = " \t\r\n"
_NIL, _NAME, _VALUE, _PARAM, _MESSAGE, _COMMENT = range(6)
_NEWLINE = re.compile(r"[\r\n]")
_COMMAND_START = re.compile(r"[ \t]*(?:" + "|".join(COMMANDS) + r")[ \t]", re.IGNORECASE)


@dataclass(frozen=True)
class Command:
    name: str  # lower-case keyword, or the parameter name for PARAMETER
    args: str
    line: int
    role: str | None = None
    triple_quoted: bool = False
    end_line: int = 0


@dataclass(frozen=True)
class ParseProblem:
    line: int
    message: str
    hint: str


def unquote(s: str) -> tuple[str, bool]:
    """Ollama's unquote(): a value is complete once its quotes (if any) are closed."""
    if s.startswith(QQQ):
        return (s[3:-3], True) if len(s) >= 6 and s.endswith(QQQ) else ("", False)
    if s.startswith('"'):
        return (s[1:-1], True) if len(s) >= 2 and s.endswith('"') else ("", False)
    return s, True


def _kept(chunk: str) -> str:
    """The characters Ollama's parser keeps inside a value: printable ones and blanks."""
    if chunk.isprintable():
        return chunk
    return "".join(c for c in chunk if c in " \t" or c.isprintable())


@dataclass
class _Value:
    """A value being read: its pieces, and what unquote() needs to know, kept up to date."""

    pieces: list[str] = field(default_factory=list)
    size: int = 0  # characters kept so far
    first: int = -1  # offset of the first non-blank character (-1: none yet)
    end: int = 0  # offset just after the last non-blank character
    head: str = ""  # up to 3 characters from `first`
    tail: str = ""  # the last 3 characters kept (blank or not)
    end3: str = ""  # the 3 characters ending at `end`

    def add(self, text: str) -> None:
        if not text:
            return
        core = text.rstrip(_BLANKS)
        if core:
            lead = len(text) - len(text.lstrip(_BLANKS))
            if self.first < 0:
                self.first = self.size + lead
            self.end = self.size + len(core)
            self.end3 = (self.tail + core)[-3:]
        if self.first >= 0 and len(self.head) < 3:
            start = max(0, self.first - self.size)
            self.head = (self.head + text[start:])[:3]
        self.tail = (self.tail + text)[-3:]
        self.pieces.append(text)
        self.size += len(text)

    def closed(self) -> bool:
        """unquote(strip(buffer)) is ok, without building the buffer."""
        length = self.end - self.first if self.first >= 0 else 0
        head = self.head[:length]
        if head.startswith(QQQ):
            return length >= 6 and self.end3 == QQQ
        if head.startswith('"'):
            return length >= 2 and self.end3.endswith('"')
        return True

    def text(self) -> str:
        value, _ = unquote("".join(self.pieces).strip(_BLANKS))
        return value

    def triple(self) -> bool:
        return self.head.startswith(QQQ) and self.end - self.first >= 6


class Parser:
    """Port of Ollama's ParseFile state machine (one method per state), with line numbers."""

    def __init__(self) -> None:
        self.commands: list[Command] = []
        self.problems: list[ParseProblem] = []
        self.state, self.line, self.start = _NIL, 1, 1
        self.buf: list[str] = []
        self.value = _Value()
        self.name = ""
        self.role: str | None = None
        self.resume_after_qqq = False
        self._text, self._i = "", 0

    def run(self, text: str) -> list[Command]:
        text = self._text = text.removeprefix("\ufeff")
        handlers = {
            _NIL: self._nil,
            _NAME: self._name,
            _PARAM: self._param,
            _MESSAGE: self._message,
        }
        i, n = 0, len(text)
        while i < n:
            if self.state in (_VALUE, _COMMENT):
                # Everything up to the next line break at once: the linear-time path.
                m = _NEWLINE.search(text, i)
                j = m.start() if m else n
                if self.state == _VALUE:
                    self.value.add(_kept(text[i:j]))
                i = j
                if i == n:
                    break
            ch, self._i = text[i], i
            if self.state == _VALUE:
                self._value_newline(ch)
            elif self.state == _COMMENT:
                self._comment_newline()
            else:
                handlers[self.state](ch)
            # CRLF is one line break; a lone CR counts as one too (Ollama counts both).
            if ch == "\n" or (ch == "\r" and text[i + 1 : i + 2] != "\n"):
                self.line += 1
            i += 1
        self._finish()
        return self.commands

    # ---- errors and recovery --------------------------------------------------------------
    def _error(self, message: str, hint: str, line: int | None = None) -> None:
        """Record a problem and skip the rest of the line, as if it were a comment."""
        line = self.line if line is None else line
        last = self.commands[-1] if self.commands else None
        if last and last.triple_quoted and self.start == last.end_line + 1 and self._closes_later():
            keyword = last.name.upper() if last.role is None else f"MESSAGE {last.role}"
            message = (
                f'the {keyword} value opened with """ on line {last.line} ended at the """ on '
                f"line {last.end_line}, so line {self.start} is read as a command ({message}): "
                'the text contains """, which cannot be written in a Modelfile'
            )
            hint = (
                'Remove or reword the """ inside that text; the JSON create API '
                "(`ollama-tune create`, customize) takes it unchanged."
            )
            self.resume_after_qqq = True
        self.problems.append(ParseProblem(line, message, hint))
        self.state, self.buf, self.role = _COMMENT, [], None

    def _line_start(self) -> int:
        return max(self._text.rfind("\n", 0, self._i), self._text.rfind("\r", 0, self._i)) + 1

    def _closes_later(self) -> bool:
        """A later line ends with \"\"\" before any line starts a command: the value's real end."""
        rest = self._text[self._line_start() :].splitlines()
        for k, row in enumerate(rest):
            if k and _COMMAND_START.match(row):
                return False
            if row.rstrip(_BLANKS).endswith(QQQ):
                return True
        return False

    def _comment_newline(self) -> None:
        # After a value cut short by a \"\"\" inside it, skip to the line that really closes it.
        if self.resume_after_qqq:
            if not self._text[self._line_start() : self._i].rstrip(_BLANKS).endswith(QQQ):
                return
            self.resume_after_qqq = False
        self.state = _NIL

    # ---- states ----------------------------------------------------------------------------
    def _nil(self, ch: str) -> None:
        if ch == "#":
            self.state = _COMMENT
        elif ch not in _BLANKS:
            # Ollama enters the name state even on a non-printable rune, but drops the rune.
            self.state, self.start = _NAME, self.line
            self.buf = [ch] if ch.isprintable() else []

    def _name(self, ch: str) -> None:
        if ch.isascii() and ch.isalpha():
            self.buf.append(ch)
            return
        word = "".join(self.buf)
        if ch in " \t":
            keyword = word.lower()
            if keyword not in COMMANDS:
                self._error(f"unknown command {word!r}", KEYWORDS_HINT)
                return
            self.name, self.buf = keyword, []
            self.state = {"parameter": _PARAM, "message": _MESSAGE}.get(keyword, _VALUE)
            if self.state == _VALUE:
                self.value = _Value()
        elif ch in "\r\n":
            self._error(f"{word.upper()} has no value", KEYWORDS_HINT)
            self._comment_newline()
        else:
            self._error(f"unexpected {ch!r} in command {word!r}", KEYWORDS_HINT)

    def _param(self, ch: str) -> None:
        if ch.isascii() and (ch.isalnum() or ch == "_"):
            self.buf.append(ch)
        elif ch in " \t" and self.buf:
            self.name, self.state, self.buf = "".join(self.buf), _VALUE, []
            self.value = _Value()
        else:
            word = "".join(self.buf)
            what = f"PARAMETER {word!r} has no value" if ch in "\r\n" else "bad PARAMETER name"
            self._error(what, "Write `PARAMETER name value`, e.g. `PARAMETER temperature 0.7`.")
            if ch in "\r\n":
                self._comment_newline()

    def _message(self, ch: str) -> None:
        if ch.isascii() and ch.isalpha():
            self.buf.append(ch)
            return
        word = "".join(self.buf)
        if ch in " \t" and word in MESSAGE_ROLES:
            self.role, self.state, self.buf = word, _VALUE, []
            self.value = _Value()
        else:
            self._error(
                f"MESSAGE role {word!r} is not one of {', '.join(MESSAGE_ROLES)}",
                "Write `MESSAGE user text` or `MESSAGE assistant text` (lower-case role).",
            )
            if ch in "\r\n":
                self._comment_newline()

    def _value_newline(self, ch: str) -> None:
        # A newline ends the value once its quotes are closed; otherwise it is part of it.
        if not self.value.closed():
            self.value.add(ch)
            return
        self._emit()
        self.state, self.role = _NIL, None

    def _emit(self) -> None:
        v = self.value
        self.commands.append(
            Command(self.name, v.text(), self.start, self.role, v.triple(), self.line)
        )

    def _finish(self) -> None:
        if self.state == _VALUE:
            if not self.value.closed():
                self._error(
                    "quoted value is never closed",
                    'Close it with the same quotes it opened with (" or """).',
                    line=self.start,
                )
                return
            self._emit()
        elif self.state in (_NAME, _PARAM, _MESSAGE):
            self._error(
                f"incomplete command {''.join(self.buf)!r} at end of file",
                KEYWORDS_HINT,
                line=self.start,
            )


def parse_commands(text: str) -> tuple[list[Command], list[ParseProblem]]:
    """Every command Ollama would read, and every problem (empty when Ollama accepts it)."""
    parser = Parser()
    commands = parser.run(text)
    return commands, parser.problems
