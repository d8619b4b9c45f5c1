"""Read the test questions for `eval`: like `data.read_examples`, but a row may carry `facts`
and no reference answer.

Fact recall needs only the facts, so such a row is kept with an empty reference and marked
`extra["no_reference"]`; metrics that compare against the reference (chrF, length ratio) are
left out for it. Training never reads test files through here, so an answerless row can never
become a training target.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

from ollama_tune.data.issues import Issue, Rejected
from ollama_tune.data.model import Example, Message
from ollama_tune.errors import DataError

# The loader's errors for a row whose only fault is the missing answer.
_NO_ANSWER = ("no 'output'", "no assistant turn")
_PLACEHOLDER = "\x00no-reference\x00"


def read_test_examples(path: Path | str) -> list[Example]:
    """The test rows of `path`, answerless rows with facts included; `DataError` otherwise."""
    from ollama_tune.data import load_examples

    result = load_examples(path)
    by_row: dict[str, list[Issue]] = {}
    for issue in result.errors:
        by_row.setdefault(str(issue.source), []).append(issue)
    rescued = {
        str(r.source): ex for r in result.rejected if (ex := _facts_only(r, by_row)) is not None
    }
    errors = [i for i in result.errors if str(i.source) not in rescued]
    if errors:
        lines = "\n".join(f"  {i.source}: {i.message}" for i in errors[:50])
        more = f"\n  … and {len(errors) - 50} more" if len(errors) > 50 else ""
        raise DataError(
            f"{len(errors)} problem(s) in the test data:\n{lines}{more}",
            hint="run `ollama-tune data check FILE` for every problem with a fix hint; a test "
            "row needs a reference answer or `facts`",
        )
    rows = [*result.examples, *rescued.values()]
    return sorted(rows, key=lambda ex: (ex.source.path, ex.source.line))


def has_reference(example: Example) -> bool:
    return not example.extra.get("no_reference")


def _facts_only(rejected: Rejected, by_row: dict[str, list[Issue]]) -> Example | None:
    """The row as an answerless Example when its only error is the missing answer and it has
    facts; None otherwise (its errors are then reported as usual)."""
    issues = by_row.get(str(rejected.source), [])
    if not issues or not all(any(s in i.message for s in _NO_ANSWER) for i in issues):
        return None
    try:
        record = json.loads(rejected.raw)
    except ValueError:  # CSV rows: the raw text is not a JSON object
        return None
    if not isinstance(record, dict) or not record.get("facts"):
        return None
    from ollama_tune.data.formats import detect_schema, record_to_example

    schema = detect_schema(record)
    if schema == "messages" and isinstance(record.get("messages"), list):
        record = {**record, "messages": [*record["messages"], _assistant()]}
    else:
        record = {**record, "output": _PLACEHOLDER}
    outcome = record_to_example(record, rejected.source, schema, None)
    ex = outcome.example
    if ex is None or not ex.facts or any(p[0] == "error" for p in outcome.problems):
        return None
    messages: Iterable[Message] = (*ex.messages[: ex.answer_index], Message("assistant", ""))
    return Example(tuple(messages), ex.source, ex.facts, {**ex.extra, "no_reference": True})


def _assistant() -> dict[str, str]:
    return {"role": "assistant", "content": _PLACEHOLDER}
