"""The result shapes of loading and checking data: issues, rejected rows, load results.

Loading never stops at the first bad row: every problem becomes an `Issue` with `file:line`,
and every row that could not become an `Example` becomes a `Rejected` record, so a converter
can account for every row it read.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

from ollama_tune.data.model import Example, SourceRef

# A note reports what the loader normalised (e.g. trimmed whitespace); it is never a problem.
Severity = Literal["error", "warning", "note"]
# The order a person fixes them in.
SEVERITIES: tuple[Severity, ...] = ("error", "warning", "note")


_SURROGATE = re.compile(r"[\ud800-\udfff]")


def _escape(m: re.Match[str]) -> str:
    code = ord(m.group())
    # \udc80-\udcff are raw bytes kept by `surrogateescape`; others come from JSON \u escapes.
    return f"\\x{code - 0xDC00:02x}" if 0xDC80 <= code <= 0xDCFF else f"\\u{code:04x}"


def printable(text: str) -> str:
    """Text safe to print or write as UTF-8: undecodable bytes shown as \\xNN escapes."""
    return _SURROGATE.sub(_escape, text)


@dataclass(frozen=True)
class Issue:
    """One problem found in the data, with where it is and how to fix it."""

    severity: Severity
    source: SourceRef
    code: str
    message: str
    hint: str = ""

    def __post_init__(self) -> None:
        # Messages quote keys/values from files that may hold undecodable bytes.
        object.__setattr__(self, "message", printable(self.message))
        object.__setattr__(self, "hint", printable(self.hint))

    def to_dict(self) -> dict[str, object]:
        return {
            "severity": self.severity,
            "source": str(self.source),
            "path": self.source.path,
            "line": self.source.line,
            "code": self.code,
            "message": self.message,
            "hint": self.hint,
        }

    def as_error(self) -> Issue:
        """The same issue promoted to an error (`--strict`)."""
        return Issue("error", self.source, self.code, self.message, self.hint)


@dataclass(frozen=True)
class Rejected:
    """A row that could not become an `Example`: where it was, why, and its raw text."""

    source: SourceRef
    reason: str
    raw: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "reason", printable(self.reason))
        object.__setattr__(self, "raw", printable(self.raw))

    def to_dict(self) -> dict[str, object]:
        return {"source": str(self.source), "reason": self.reason, "raw": self.raw}


class IssueViews:
    """`errors` / `warnings` views over a result's `issues` (load and check results share them)."""

    issues: list[Issue]

    @property
    def errors(self) -> list[Issue]:
        return [i for i in self.issues if i.severity == "error"]

    @property
    def warnings(self) -> list[Issue]:
        return [i for i in self.issues if i.severity == "warning"]

    @property
    def notes(self) -> list[Issue]:
        return [i for i in self.issues if i.severity == "note"]


@dataclass
class LoadResult(IssueViews):
    """Everything `load_examples` found: usable rows, problems, and rows it had to reject."""

    examples: list[Example] = field(default_factory=list)
    issues: list[Issue] = field(default_factory=list)
    rejected: list[Rejected] = field(default_factory=list)
    # Per file: the detected format ("seed", "messages", ...) and encoding.
    formats: dict[str, str] = field(default_factory=dict)
    encodings: dict[str, str] = field(default_factory=dict)

    @property
    def rows_read(self) -> int:
        return len(self.examples) + len(self.rejected)


def sort_issues(issues: list[Issue]) -> list[Issue]:
    """File order, then line, errors before warnings: the order a person fixes them in."""
    return sorted(
        issues,
        key=lambda i: (
            i.source.path,
            i.source.line,
            SEVERITIES.index(i.severity),
            i.code,
        ),
    )
