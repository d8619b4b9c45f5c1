"""`run --set KEY=VALUE`: dotted recipe overrides typed on the command line.

They join the overrides built from `run`'s own flags, so config applies them all the same way
(flag > recipe > default); a problem they cause is reported against the flag, not a recipe line.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ollama_tune.errors import UsageError

if TYPE_CHECKING:
    from ollama_tune.config import RecipeIssue

Given = dict[str, tuple[str, Any]]  # KEY -> (the text as typed, the value read as YAML)


def parse_sets(sets: list[str]) -> Given:
    """`--set KEY=VALUE` → {KEY: (the text as typed, the value read as YAML)}; the last wins."""
    import yaml

    given: Given = {}
    for item in sets:
        key, eq, text = item.partition("=")
        key = key.strip()
        if not eq or not key or "" in key.split("."):
            raise UsageError(
                f"--set {item!r}: expected KEY=VALUE with a dotted recipe key",
                hint="e.g. --set train.learning_rate=1e-4 --set export.quants=q4_k_m",
            )
        try:
            value = yaml.safe_load(text)
        except yaml.YAMLError:
            value = text  # not YAML (an unbalanced quote, a stray ':'): the text as typed
        if value is None:
            # config skips None overrides, so the recipe value would silently stay.
            raise UsageError(
                f"--set {item!r}: no value (an empty value or null cannot unset a recipe key)",
                hint=f"give a value, e.g. --set {key}=VALUE, or remove the key from the recipe",
            )
        given[key] = (text, value)
    return given


def merge_overrides(given: Given, named: dict[str, Any]) -> dict[str, Any]:
    """The dotted overrides for `config`; a key set by both --set and its own flag is an error."""
    overrides = {key: value for key, (_text, value) in given.items()}
    for key, value in named.items():
        if value is None:
            continue
        if key in given:
            raise UsageError(
                f"{key} is set twice: by --set {key}={given[key][0]} and by its own flag",
                hint="keep one of the two",
            )
        overrides[key] = value
    return overrides


def _from_set(issue_key: str, set_key: str) -> bool:
    # An issue at the key itself, below it (a mapping given), or above it (an unknown section).
    issue, given = f"{issue_key}.", f"{set_key}."
    return issue.startswith(given) or given.startswith(issue)


def reject_set_issues(issues: list[RecipeIssue], given: Given) -> None:
    """A problem caused by `--set` is a usage error naming the flag, not a recipe line."""
    lines, hints = [], []
    for issue in issues:
        key = next((k for k in given if _from_set(issue.key, k)), None)
        if key is not None:
            lines.append(f"--set {key}={given[key][0]}: {issue.message}")
            hints.append(issue.hint)
    if lines:
        raise UsageError("; ".join(lines), hint="; ".join(dict.fromkeys(h for h in hints if h)))
