"""`data check`: every problem in a data set, with file:line, severity and a fix hint.

Structural errors come from the loader; this module adds the data-set-wide checks
(duplicates, conflicting answers, repeated outputs, size, length) and the per-row text checks
in `row_checks.py`. `--strict` promotes every warning to an error.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ollama_tune.data.dedup import canonical, find_duplicate_keys, grams, jaccard
from ollama_tune.data.issues import Issue, IssueViews, LoadResult, sort_issues
from ollama_tune.data.loader import load_examples
from ollama_tune.data.model import Example
from ollama_tune.data.row_checks import (
    answer_languages,
    business_phones,
    language_mismatches,
    personal_data,
    text_problems,
)
from ollama_tune.data.tokens import TokenCounter, estimate_counter, tokenizer_counter

MIN_ROWS_ERROR = 10
MIN_ROWS_WARNING = 50  # the seed guide's minimum
REPEATED_OUTPUT_ROWS = 5


@dataclass
class CheckConfig:
    paths: Sequence[str | Path]
    format: str | None = None
    encoding: str | None = None
    mapping: dict[str, str] | None = None
    max_tokens: int = 2048
    tokenizer: str | Path | None = None
    strict: bool = False


@dataclass
class CheckResult(IssueViews):
    load: LoadResult
    issues: list[Issue] = field(default_factory=list)
    token_counts: list[int] = field(default_factory=list)
    tokens_estimated: bool = True

    @property
    def ok(self) -> bool:
        return not self.errors

    def to_dict(self) -> dict[str, object]:
        return {
            "ok": self.ok,
            "rows_read": self.load.rows_read,
            "usable_rows": len(self.load.examples),
            "errors": len(self.errors),
            "warnings": len(self.warnings),
            "notes": len(self.notes),
            "formats": self.load.formats,
            "encodings": self.load.encodings,
            "issues": [i.to_dict() for i in self.issues],
        }


def _lines(examples: Sequence[Example], idx: Sequence[int]) -> str:
    return ", ".join(str(examples[i].source) for i in idx[:8]) + (" …" if len(idx) > 8 else "")


@dataclass
class CanonicalKeys:
    """`canonical` text of each row (its non-system turns), prompt and answer."""

    row: list[str]
    prompt: list[str]
    answer: list[str]


def canonical_keys(examples: Sequence[Example]) -> CanonicalKeys:
    """Each turn normalised once for all three keys: `canonical` drops the newlines that join
    turns, so the key of joined turns is the keys of the turns joined."""
    keys = CanonicalKeys([], [], [])
    for ex in examples:
        turns = [canonical(m.content) for m in ex.messages]
        last = ex.answer_index
        keys.row.append(
            "".join(t for t, m in zip(turns, ex.messages, strict=True) if m.role != "system")
        )
        keys.prompt.append("".join(turns[:last]))
        keys.answer.append(turns[last])
    return keys


def duplicate_issues(examples: Sequence[Example], keys: CanonicalKeys | None = None) -> list[Issue]:
    """Each copy of a row points at its first; each row of a near-duplicate group at the
    first row of the group it resembles."""
    out: list[Issue] = []
    found = find_duplicate_keys((keys or canonical_keys(examples)).row)
    for group in found.groups:
        out += [
            Issue(
                "warning",
                examples[j].source,
                "duplicate",
                f"same row as {examples[group[0]].source} (after normalisation)",
                "delete one of them: duplicates over-weight a row in training",
            )
            for j in group[1:]
        ]
    group_of = found.group_of()
    for a, b, sim in found.near:
        out += [
            Issue(
                "warning",
                examples[j].source,
                "near-duplicate",
                f"{sim:.0%} similar to {examples[a].source}",
                "merge them or make them clearly different; split keeps them together",
            )
            for j in group_of[b]
        ]
    return out


def conflict_issues(examples: Sequence[Example], keys: CanonicalKeys | None = None) -> list[Issue]:
    """Same question, answers that disagree; and one answer given to many questions."""
    keys = keys or canonical_keys(examples)
    out: list[Issue] = []
    by_question: dict[str, list[int]] = defaultdict(list)
    by_answer: dict[str, list[int]] = defaultdict(list)
    for i, (prompt, answer) in enumerate(zip(keys.prompt, keys.answer, strict=True)):
        by_question[prompt].append(i)
        by_answer[answer].append(i)
    for idx in by_question.values():
        if len(idx) < 2:
            continue
        first = grams(keys.answer[idx[0]])
        for j in idx[1:]:
            if jaccard(first, grams(keys.answer[j])) < 0.8:
                out.append(
                    Issue(
                        "warning",
                        examples[j].source,
                        "conflicting-answers",
                        f"same question as {examples[idx[0]].source} but a different answer",
                        "keep the one correct answer; conflicting answers teach the model to guess",
                    )
                )
    for key, idx in by_answer.items():
        if key and len(idx) >= REPEATED_OUTPUT_ROWS:
            out.append(
                Issue(
                    "warning",
                    examples[idx[0]].source,
                    "repeated-output",
                    f"{len(idx)} rows have the same answer: {_lines(examples, idx)}",
                    "write an answer specific to each question, or drop most of them",
                )
            )
    return out


def size_issues(load: LoadResult, paths: Sequence[str | Path]) -> list[Issue]:
    from ollama_tune.data.model import SourceRef

    n = len(load.examples)
    where = SourceRef(str(paths[0]) if paths else "-", 1)
    if n < MIN_ROWS_ERROR:
        return [
            Issue(
                "error",
                where,
                "too-few-rows",
                f"only {n} usable row(s); at least {MIN_ROWS_ERROR} are needed",
                f"add rows; {MIN_ROWS_WARNING}-100 is the minimum "
                "for fine-tuning, 200-500 recommended",
            )
        ]
    if n < MIN_ROWS_WARNING:
        return [
            Issue(
                "warning",
                where,
                "few-rows",
                f"{n} usable rows; fine-tuning wants at least {MIN_ROWS_WARNING}",
                "add rows (200-500 recommended), or use the customize "
                "path (few-shot Modelfile) which works with fewer",
            )
        ]
    return []


def validate_dataset(config: CheckConfig) -> CheckResult:
    """Load every file and run every check; never stops at the first problem."""
    from ollama_tune.data import forked

    counter: TokenCounter = (
        tokenizer_counter(config.tokenizer) if config.tokenizer else estimate_counter
    )

    def load() -> LoadResult:
        return load_examples(
            config.paths, format=config.format, encoding=config.encoding, mapping=config.mapping
        )

    with forked.gc_paused():
        # Large files: a forked child loads them too and runs the data-set-wide checks beside
        # the per-row ones here. Each process builds its own rows: sharing them would make
        # both copy every page they touch (measured slower than loading twice).
        run = forked.start if _large(config.paths) else (lambda fn: fn)
        set_wide = run(lambda: _set_issues(load().examples))
        loaded = load()
        issues = list(loaded.issues) + size_issues(loaded, config.paths)
        rows, counts = _row_issues(loaded.examples, counter, config)
        issues += set_wide() + rows
    if config.strict:
        issues = [i.as_error() if i.severity == "warning" else i for i in issues]
    return CheckResult(loaded, sort_issues(issues), counts, tokens_estimated=not config.tokenizer)


# Below this size (≈20,000 short rows) a second process costs more than it saves.
FORK_BYTES = 4_000_000


def _large(paths: Sequence[str | Path]) -> bool:
    """Regular files only: a FIFO or device read by two processes would be split between them."""
    import stat

    total = 0
    for p in paths:
        try:
            st = Path(p).stat()
        except OSError:
            return False  # the loader says what is wrong with it
        if not stat.S_ISREG(st.st_mode):
            return False
        total += st.st_size
    return total >= FORK_BYTES


def _set_issues(examples: Sequence[Example]) -> list[Issue]:
    keys = canonical_keys(examples)
    return duplicate_issues(examples, keys) + conflict_issues(examples, keys)


def _row_issues(
    examples: Sequence[Example], counter: TokenCounter, config: CheckConfig
) -> tuple[list[Issue], list[int]]:
    langs = answer_languages(examples)
    issues = language_mismatches(examples, langs)
    business = business_phones(examples)
    counts = []
    for ex, lang in zip(examples, langs, strict=True):
        issues += personal_data(ex, business)
        issues += text_problems(ex, lang)
        counts.append(counter(ex))
        if counts[-1] > config.max_tokens:
            how = "counted" if config.tokenizer else "estimated"
            issues.append(
                Issue(
                    "warning",
                    ex.source,
                    "too-long",
                    f"{counts[-1]} tokens ({how}), more than --max-tokens {config.max_tokens}",
                    "shorten the row or raise --max-tokens (training truncates it)",
                )
            )
    return issues, counts
