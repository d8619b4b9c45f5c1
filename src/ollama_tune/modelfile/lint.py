"""Lint a Modelfile: every problem Ollama would reject or silently ignore, with its line.

Checked: missing or repeated FROM, FROM/ADAPTER paths that do not exist, point outside the
Modelfile's folder (unless allowed) or are not model weights (GGUF magic bytes, safetensors),
a TEMPLATE that Go's text/template cannot parse (with its line), unknown PARAMETER
names, removed ones that make `ollama create` fail (tfs_z), deprecated ones Ollama ignores
(mirostat*, penalize_newline, …), values of the wrong type or out of range (e.g. an inline
`# comment` after a number, which Ollama keeps as part of the value), and MESSAGE order.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ollama_tune.modelfile.checks import outside, template_problem, weights_problem
from ollama_tune.modelfile.params import (
    DEPRECATED_PARAMETERS,
    PARAMETER_TYPES,
    convert_parameter,
)

if TYPE_CHECKING:
    from ollama_tune.modelfile.model import Modelfile


@dataclass(frozen=True)
class LintIssue:
    severity: str  # "error" | "warning"
    line: int | None
    code: str
    message: str
    hint: str | None = None


# Removed from Ollama's options: `ollama create` answers 400 "unknown parameter".
REMOVED_PARAMETERS = ("tfs_z",)

# (min, max) inclusive; None = unbounded.
_RANGES: dict[str, tuple[float | None, float | None]] = {
    "num_ctx": (1, None),
    "num_batch": (1, None),
    "num_thread": (0, None),
    "num_gpu": (-1, None),
    "num_keep": (-1, None),
    "num_predict": (-2, None),
    "top_k": (0, None),
    "top_p": (0.0, 1.0),
    "min_p": (0.0, 1.0),
    "typical_p": (0.0, 1.0),
    "repeat_last_n": (-1, None),
    "temperature": (0.0, None),
    "repeat_penalty": (0.0, None),
}


def lint_modelfile(
    mf: Modelfile,
    base_dir: str | os.PathLike[str] | None = None,
    *,
    allow_outside: bool = False,
) -> list[LintIssue]:
    """All lint issues of `mf`, errors and warnings, in line order."""
    if base_dir is None and mf.path:
        base_dir = Path(mf.path).parent
    issues: list[LintIssue] = []
    issues += _check_from(mf, base_dir)
    issues += _check_files(mf, Path(base_dir or "."), allow_outside)
    issues += _check_template(mf)
    issues += _check_parameters(mf)
    issues += _check_messages(mf)
    for kw, line in mf.repeated:
        issues.append(
            LintIssue("warning", line, "repeated", f"{kw} appears more than once; the last wins")
        )
    if len(mf.adapters) > 1:
        issues.append(
            LintIssue(
                "warning",
                mf.lines.get(("adapter", 1)),
                "adapters",
                "more than one ADAPTER: Ollama keeps only the last",
            )
        )
    return sorted(issues, key=lambda i: (i.line or 0, i.code))


def _looks_like_path(value: str) -> bool:
    return value.startswith((".", "/", "~", "\\")) or value.lower().endswith(
        (".gguf", ".bin", ".safetensors")
    )


def _check_from(mf: Modelfile, base_dir: str | os.PathLike[str] | None) -> list[LintIssue]:
    issues: list[LintIssue] = []
    if not mf.from_:
        issues.append(
            LintIssue(
                "error",
                None,
                "missing-from",
                "no FROM line",
                "Add `FROM llama3.2:1b` (a model name) or `FROM ./model.gguf` (a file).",
            )
        )
    elif _looks_like_path(mf.from_) and mf.local_file(mf.from_, base_dir) is None:
        issues.append(
            LintIssue(
                "error",
                mf.lines.get(("from", 0)),
                "from-not-found",
                f"FROM file not found: {mf.from_}",
                "Relative paths are resolved from the Modelfile's folder.",
            )
        )
    for i, adapter in enumerate(mf.adapters):
        if mf.local_file(adapter, base_dir) is None:
            issues.append(
                LintIssue(
                    "error",
                    mf.lines.get(("adapter", i)),
                    "adapter-not-found",
                    f"ADAPTER file not found: {adapter}",
                    "Relative paths are resolved from the Modelfile's folder.",
                )
            )
    return issues


def _check_files(mf: Modelfile, base_dir: Path, allow_outside: bool) -> list[LintIssue]:
    """Local FROM/ADAPTER files: inside the Modelfile's folder, and model weights."""
    issues: list[LintIssue] = []
    named = [("FROM", "from", 0, mf.from_)] if mf.from_ else []
    named += [("ADAPTER", "adapter", i, a) for i, a in enumerate(mf.adapters)]
    for keyword, key, index, value in named:
        path = mf.local_file(value, base_dir)
        if path is None:
            continue
        line = mf.lines.get((key, index))
        if not allow_outside and outside(path, base_dir):
            issues.append(
                LintIssue(
                    "error",
                    line,
                    "outside-folder",
                    f"{keyword} {value} points outside the Modelfile's folder ({path})",
                    "Put the file next to the Modelfile, or pass --allow-outside if you mean it.",
                )
            )
        problem = weights_problem(path)
        if problem:
            issues.append(
                LintIssue(
                    "error",
                    line,
                    "not-weights",
                    f"{keyword} {problem}",
                    "Point it at a .gguf model (or a safetensors folder); nothing is uploaded.",
                )
            )
    return issues


def _check_template(mf: Modelfile) -> list[LintIssue]:
    if mf.template is None:
        return []
    found = template_problem(mf.template)
    if found is None:
        return []
    offset, message = found
    start = mf.lines.get(("template", 0))
    line = start + offset - 1 if start else None
    return [
        LintIssue(
            "error",
            line,
            "bad-template",
            f"TEMPLATE does not parse (Go text/template, line {offset} of the template): "
            + message,
            "Fix the {{ … }} action on that line; Ollama refuses the whole model otherwise.",
        )
    ]


def _check_parameters(mf: Modelfile) -> list[LintIssue]:
    issues: list[LintIssue] = []
    for i, (name, value) in enumerate(mf.parameters):
        line = mf.lines.get(("parameter", i))
        issue = _check_parameter(name, value, line)
        if issue is not None:
            issues.append(issue)
    return issues


def _check_parameter(name: str, value: str, line: int | None) -> LintIssue | None:
    if name in REMOVED_PARAMETERS:
        return LintIssue(
            "error",
            line,
            "removed-parameter",
            f"PARAMETER {name} was removed from Ollama; `ollama create` fails with it",
            "Delete this line.",
        )
    if name in DEPRECATED_PARAMETERS:
        return LintIssue(
            "warning",
            line,
            "ignored-parameter",
            f"PARAMETER {name} is deprecated and ignored by Ollama",
            "Delete this line; it has no effect.",
        )
    kind = PARAMETER_TYPES.get(name)
    if kind is None:
        return LintIssue(
            "error",
            line,
            "unknown-parameter",
            f"unknown PARAMETER {name!r}",
            "Known: " + ", ".join(PARAMETER_TYPES) + ".",
        )
    try:
        typed = convert_parameter(name, value)
    except ValueError:
        extra = " (Ollama has no inline comments: `#` belongs to the value)" if "#" in value else ""
        return LintIssue(
            "error",
            line,
            "bad-value",
            f"PARAMETER {name} {value!r} is not {kind.__name__}{extra}",
            f"Write e.g. `PARAMETER {name} {_EXAMPLES[kind]}`.",
        )
    low, high = _RANGES.get(name, (None, None))
    is_number = isinstance(typed, (int, float)) and not isinstance(typed, bool)
    if is_number and ((low is not None and typed < low) or (high is not None and typed > high)):
        bounds = f"{low if low is not None else '-∞'}..{high if high is not None else '∞'}"
        return LintIssue(
            "error",
            line,
            "out-of-range",
            f"PARAMETER {name} {value} is outside {bounds}",
            f"Use a value in {bounds}.",
        )
    return None


_EXAMPLES: dict[type, str] = {int: "4096", float: "0.7", bool: "true", list: "</s>"}


def _check_messages(mf: Modelfile) -> list[LintIssue]:
    issues: list[LintIssue] = []
    prev = None
    for i, (role, content) in enumerate(mf.messages):
        line = mf.lines.get(("message", i))
        if role == "system" and i > 0:
            issues.append(
                LintIssue(
                    "warning",
                    line,
                    "message-order",
                    "MESSAGE system after other messages",
                    "Use SYSTEM for the system prompt, or put it first.",
                )
            )
        if role == prev == "user":
            issues.append(
                LintIssue(
                    "warning",
                    line,
                    "message-order",
                    "two MESSAGE user in a row: the first question has no answer",
                    "Follow each MESSAGE user with a MESSAGE assistant.",
                )
            )
        if not content.strip():
            issues.append(LintIssue("warning", line, "empty-message", f"empty MESSAGE {role}"))
        prev = role
    if mf.messages and mf.messages[-1][0] == "user":
        issues.append(
            LintIssue(
                "warning",
                mf.lines.get(("message", len(mf.messages) - 1)),
                "message-order",
                "the last MESSAGE is a user turn without an answer",
                "End the few-shot examples with a MESSAGE assistant.",
            )
        )
    return issues
