"""The augment run: read, reword, filter, write (see the package docstring)."""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ollama_tune._util import ProgressFn, atomic_path, noop_progress
from ollama_tune.data.augment.rules import mine_synonyms, rule_rewordings
from ollama_tune.data.augment.terms import Synonyms, missing_terms
from ollama_tune.data.dedup import NEAR_DUP_THRESHOLD, canonical, grams, jaccard
from ollama_tune.data.model import Example, Message
from ollama_tune.errors import UsageError

TeacherFn = Callable[[str, int, str], str]


@dataclass
class AugmentConfig:
    inputs: Sequence[Path]
    output: Path
    n: int = 3
    seed: int = 42
    teacher: str | None = None  # ollama:NAME, a bundle/Modelfile or a .gguf
    exclude: Sequence[Path] = ()  # test files whose questions must not be produced
    format: str | None = None


@dataclass(frozen=True)
class Dropped:
    source: str
    text: str
    reason: str


@dataclass
class AugmentResult:
    output: Path | None
    read: int
    added: int
    written: int
    method: str
    dropped: list[Dropped] = field(default_factory=list)
    # Rows not reworded: already augmented, or their question is in an --exclude file.
    skipped: list[Dropped] = field(default_factory=list)
    short: list[str] = field(default_factory=list)  # sources that got fewer than n rewordings
    teacher_unreadable: int = 0
    synonyms: list[list[str]] = field(default_factory=list)
    examples: list[Example] = field(default_factory=list, repr=False)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("examples")
        data["output"] = str(self.output) if self.output else None
        return data


def _check(config: AugmentConfig) -> None:
    problems = []
    if config.n < 1:
        problems.append(f"--n must be at least 1, got {config.n}")
    if any(Path(p).resolve() == Path(config.output).resolve() for p in config.inputs):
        problems.append(f"the output {config.output} is also an input")
    if problems:
        raise UsageError("; ".join(problems), hint="e.g. data augment train.jsonl aug.jsonl --n 3")


def augment_data(config: AugmentConfig, progress: ProgressFn | None = None) -> AugmentResult:
    """Read `inputs`, add up to `n` rewordings per row, write `output` atomically."""
    from ollama_tune.data.loader import read_examples

    _check(config)
    examples = read_examples(list(config.inputs), format=config.format)
    # Test files may hold rows with facts and no answer (eval accepts them): read them so.
    from ollama_tune.evaluate.testset import read_test_examples

    excluded = [ex for path in config.exclude for ex in read_test_examples(path)]
    teacher, close = (None, None)
    if config.teacher:
        from ollama_tune.data.augment.teacher import open_teacher

        teacher, close = open_teacher(config.teacher, seed=config.seed)
    try:
        result = augment_examples(
            examples, n=config.n, seed=config.seed, teacher=teacher, exclude=excluded,
            progress=progress,
        )  # fmt: skip
    finally:
        if close:
            close()
    result.output = Path(config.output)
    result.written = write_augmented(result.examples, config.output)
    return result


def augment_examples(
    examples: Sequence[Example],
    *,
    n: int = 3,
    seed: int = 42,
    teacher: TeacherFn | None = None,
    exclude: Sequence[Example] = (),
    progress: ProgressFn | None = None,
) -> AugmentResult:
    """Every row of `examples` followed by its kept rewordings (nothing is written)."""
    progress = progress or noop_progress
    rng = random.Random(seed)
    synonyms = mine_synonyms(examples)
    blocked = _Blocked(exclude)
    result = AugmentResult(None, len(examples), 0, 0, "teacher+rules" if teacher else "rules")
    result.synonyms = [list(g) for g in synonyms.groups]
    out: list[Example] = []
    for done, ex in enumerate(examples, start=1):
        out.append(ex)
        progress("augmenting", done - 1, len(examples))
        why = _skip_reason(ex, blocked)
        if why:
            result.skipped.append(Dropped(str(ex.source), _instruction(ex), why))
            continue
        kept = _reword(ex, n, rng, synonyms, teacher, blocked, result)
        out += [_with_question(ex, text) for text in kept]
        result.added += len(kept)
        if len(kept) < n:
            result.short.append(str(ex.source))
    progress("augmenting", len(examples), len(examples))
    result.examples = out
    return result


class _Blocked:
    """Questions of the test files: a rewording equal or near-equal to one is a leak."""

    def __init__(self, exclude: Sequence[Example]) -> None:
        self.keys = {canonical(ex.question) for ex in exclude}
        self.grams = [grams(k) for k in self.keys if k]

    def hit(self, text: str) -> bool:
        key = canonical(text)
        if key in self.keys:
            return True
        g = grams(key)
        return any(jaccard(g, other) >= NEAR_DUP_THRESHOLD for other in self.grams)


def _skip_reason(ex: Example, blocked: _Blocked) -> str | None:
    if ex.extra.get("augmented_from"):
        return "already a rewording (augmented_from)"
    if blocked.hit(ex.question):
        return "the question is in an --exclude (test) file; not reworded"
    return None


def _instruction(ex: Example) -> str:
    """The part of the question a rewording replaces: `instruction` when the row had one."""
    value = ex.extra.get("instruction")
    return value if isinstance(value, str) and value.strip() else ex.question


def _reword(
    ex: Example,
    n: int,
    rng: random.Random,
    synonyms: Synonyms,
    teacher: TeacherFn | None,
    blocked: _Blocked,
    result: AugmentResult,
) -> list[str]:
    """Up to `n` rewordings that keep the key terms and are no test question."""
    question = _instruction(ex)
    candidates: list[str] = []
    if teacher is not None:
        from ollama_tune.data.augment.teacher import parse_rewordings
        from ollama_tune.japanese import detect_language

        got = parse_rewordings(teacher(question, n, detect_language(question)))
        if not got:
            result.teacher_unreadable += 1
        candidates += got
    candidates += rule_rewordings(question, synonyms, rng)
    kept: list[str] = []
    seen = {canonical(question)}
    for text in candidates:
        key = canonical(text)
        if len(kept) >= n or not key or key in seen:
            continue
        seen.add(key)
        lost = missing_terms(question, text, ex.answer, synonyms)
        if lost:
            result.dropped.append(Dropped(str(ex.source), text, "lost " + ", ".join(lost)))
        elif blocked.hit(text):
            result.dropped.append(Dropped(str(ex.source), text, "matches a test question"))
        else:
            kept.append(text)
    return kept


def _with_question(ex: Example, text: str) -> Example:
    """A copy of `ex` asking `text` instead; answer, system and facts unchanged."""
    extra = dict(ex.extra)
    extra["augmented_from"] = f"{Path(ex.source.path).name}:{ex.source.line}"
    user = text
    original = ex.extra.get("instruction")
    if isinstance(original, str) and original.strip():
        extra["instruction"] = text
        input_ = ex.extra.get("input")
        if isinstance(input_, str) and input_.strip():
            user = f"{text}\n\n{input_}"
    messages = list(ex.messages)
    q_index = max(i for i, m in enumerate(ex.prompt_messages) if m.role == "user")
    messages[q_index] = Message("user", user)
    return Example(tuple(messages), ex.source, ex.facts, extra)


def write_augmented(examples: Sequence[Example], path: Path | str) -> int:
    """Originals and rewordings as JSONL, atomically, in the style the data was read in.

    Not `write_jsonl`: that raises for unwritable rows, here the style is chosen to fit all."""
    from ollama_tune.data.writer import auto_style, dumps, to_record

    # Rows read from chat ("messages") files carry no `instruction`: keep them in that form.
    chat = any(not isinstance(ex.extra.get("instruction"), str) for ex in examples)
    style = "messages" if chat else auto_style(examples)
    lines = [dumps(to_record(ex, style)) for ex in examples]  # keeps augmented_from
    with atomic_path(path) as tmp:
        tmp.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return len(lines)
