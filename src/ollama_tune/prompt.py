"""The customize path: a system prompt plus diverse few-shot pairs, budgeted against the context.

`build_customization` turns examples into a `Modelfile` (FROM base, SYSTEM, PARAMETER
temperature/top_p/num_ctx, MESSAGE user/assistant pairs). Few-shot pairs are chosen to cover
different topics — greedy farthest-point selection on character n-gram TF-IDF of the questions —
rather than the first K rows. Tokens are counted with a tokenizer when one is given, else
estimated conservatively (Japanese ≈ 1 token per character, ASCII ≈ 1 per 4), and `num_ctx` is
set so that SYSTEM + examples + a long question + a long answer fit; when they cannot, the
build is refused with the numbers. `knowledge=True` also puts the whole FAQ into SYSTEM
(every row, unless `holdout` keeps some out to test with).
"""

from __future__ import annotations

import math
import os
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from pydantic import Field, SkipValidation, field_validator

from ollama_tune.data.model import Example
from ollama_tune.data.tokens import estimate_tokens
from ollama_tune.errors import UsageError
from ollama_tune.modelfile import Modelfile, value_problem
from ollama_tune.settings import Section, UserConfig

MESSAGE_OVERHEAD = 8  # template tokens around each message (role markers, separators)
# No tokenizer packs more characters than this into one token: a safe lower bound on tokens.
MAX_CHARS_PER_TOKEN = 16
MIN_CTX = 2048
DEFAULT_SYSTEM_JA = (
    "あなたは丁寧で正確なカスタマーサポート担当者です。"
    "例と同じ口調と長さで、質問と同じ言語で簡潔に答えてください。"
    "分からないことは推測せず、その旨を伝えてください。"
)
DEFAULT_SYSTEM_EN = (
    "You are a helpful, accurate support assistant. Answer in the language of the question, "
    "in the same tone and length as the examples. If you do not know, say so; never guess."
)


class PromptSettings(Section):
    """How a Modelfile is built from the data, defined once: the recipe's `customize:`
    section (`CustomizeSettings`), `CustomizeConfig` and the CLI's run all extend it."""

    system: str | None = None
    shots: int = Field(default=3, ge=0)
    # None leaves the PARAMETER out (Ollama's default applies).
    temperature: float | None = Field(default=0.7, ge=0.0, le=2.0)
    top_p: float | None = Field(default=0.9, gt=0.0, le=1.0)
    # Too small for the prompt is refused by build_customization, with the token figures.
    num_ctx: int | None = Field(default=None, ge=1)
    max_ctx: int = Field(default=32768, ge=MIN_CTX)
    knowledge: bool = False
    tokenizer: str | None = None  # an HF tokenizer folder, for exact token counts

    @field_validator("tokenizer", mode="before")
    @classmethod
    def _folder_as_text(cls, value: Any) -> Any:
        return os.fspath(value) if isinstance(value, os.PathLike) else value

    def prompt_settings(self) -> dict[str, Any]:
        """Just these fields, to hand on to another config."""
        return self.model_dump(include=set(PromptSettings.model_fields))


class CustomizeSettings(PromptSettings):
    """The recipe's `customize:` section: the prompt settings plus the Ollama name."""

    model_name: str | None = None


class CustomizeConfig(PromptSettings, UserConfig):
    """Inputs of the customize path (CLI flags mirror these names)."""

    examples: SkipValidation[Sequence[Example]]
    base_model: str
    # Rows kept out of the examples (and of the knowledge block) to test with; None: 3, or 0
    # with `knowledge` (the knowledge block should hold every row unless asked otherwise).
    holdout: int | None = None
    answer_tokens: int | None = None
    command: ClassVar[str] = "customize"


@dataclass(frozen=True)
class Budget:
    """Token figures behind `num_ctx` (all counts in tokens)."""

    system: int
    shots: int
    question: int
    answer: int
    total: int
    num_ctx: int
    counted_with: str  # "tokenizer:<dir>" or "estimate"


@dataclass
class CustomizeResult:
    modelfile: Modelfile
    shots: list[Example]
    held_out: list[Example]
    budget: Budget
    warnings: list[str] = field(default_factory=list)
    knowledge: bool = False  # SYSTEM holds the FAQ (every row not in `held_out`)


def token_counter(tokenizer: str | os.PathLike[str] | None) -> tuple[Callable[[str], int], str]:
    """A counting function and a label saying how tokens were counted."""
    if tokenizer is None:
        return estimate_tokens, "estimate"
    from transformers import AutoTokenizer

    try:
        tok = AutoTokenizer.from_pretrained(str(tokenizer))
    except (OSError, ValueError) as exc:
        raise UsageError(
            f"cannot load tokenizer from {tokenizer}: {exc}",
            hint="--tokenizer takes a Hugging Face tokenizer folder (tokenizer.json …).",
        ) from None

    def count(text: str) -> int:
        return len(tok.encode(text, add_special_tokens=False))

    return count, f"tokenizer:{tokenizer}"


def _grams(text: str, n: tuple[int, ...] = (2, 3)) -> Counter[str]:
    t = " ".join(text.lower().split())
    return Counter(t[i : i + k] for k in n for i in range(max(len(t) - k + 1, 0)))


def _tfidf(texts: Sequence[str]) -> list[dict[str, float]]:
    grams = [_grams(t) for t in texts]
    df = Counter(g for gs in grams for g in gs)
    n = len(texts)
    vecs = []
    for gs in grams:
        v = {g: c * math.log((1 + n) / (1 + df[g]) + 1) for g, c in gs.items()}
        norm = math.sqrt(sum(x * x for x in v.values())) or 1.0
        vecs.append({g: x / norm for g, x in v.items()})
    return vecs


def _cos(a: dict[str, float], b: dict[str, float]) -> float:
    if len(a) > len(b):
        a, b = b, a
    return sum(x * b.get(g, 0.0) for g, x in a.items())


def select_diverse(texts: Sequence[str], k: int) -> list[int]:
    """Indices of `k` texts that cover different topics (greedy max-min cosine distance).

    Starts from the most typical text (closest to the centroid), then repeatedly adds the text
    farthest from everything chosen. Deterministic: ties go to the earlier row.
    """
    if k <= 0 or not texts:
        return []
    vecs = _tfidf(texts)
    centroid: dict[str, float] = {}
    for v in vecs:
        for g, x in v.items():
            centroid[g] = centroid.get(g, 0.0) + x
    chosen = [max(range(len(vecs)), key=lambda i: (_cos(vecs[i], centroid), -i))]
    nearest = [1.0 - _cos(v, vecs[chosen[0]]) for v in vecs]
    while len(chosen) < min(k, len(texts)):
        best = max((i for i in range(len(vecs)) if i not in chosen), key=lambda i: (nearest[i], -i))
        chosen.append(best)
        nearest = [min(d, 1.0 - _cos(v, vecs[best])) for d, v in zip(nearest, vecs, strict=True)]
    return chosen


def _turns(ex: Example) -> list[tuple[str, str]]:
    return [(m.role, m.content) for m in ex.messages if m.role != "system"]


def _row_problem(ex: Example) -> str | None:
    for role, content in _turns(ex):
        problem = value_problem(content)
        if problem:
            return f"{ex.source}: the {role} text {problem.removeprefix('value ')}"
    return None


def default_system(examples: Sequence[Example]) -> str:
    """The data's own system prompt when every row shares one, else a default in its language."""
    systems = {ex.system for ex in examples}
    if len(systems) == 1 and None not in systems:
        return str(next(iter(systems)))
    sample = "".join(ex.question for ex in examples[:20])
    non_ascii = sum(1 for c in sample if not c.isascii())
    return DEFAULT_SYSTEM_JA if non_ascii > len(sample) / 3 else DEFAULT_SYSTEM_EN


def _knowledge_block(examples: Sequence[Example]) -> str:
    lines = ["", "", "## FAQ", ""]
    for ex in examples:
        lines += [f"Q: {ex.question}", f"A: {ex.answer}", ""]
    return "\n".join(lines).rstrip() + "\n"


def spread(examples: Sequence[Example], k: int) -> list[Example]:
    """`k` rows spread evenly over the data."""
    return _split(examples, k)[1]


def _split(examples: Sequence[Example], holdout: int) -> tuple[list[Example], list[Example]]:
    """Hold out `holdout` rows spread evenly over the data (never used as shots)."""
    n = len(examples)
    holdout = max(0, min(holdout, n - 1))
    picks = {round((i + 0.5) * n / holdout) for i in range(holdout)} if holdout else set()
    picks = {min(p, n - 1) for p in picks}
    return [e for i, e in enumerate(examples) if i not in picks], [examples[i] for i in picks]


def _where(examples: Sequence[Example]) -> str:
    lines = ", ".join(str(e.source) for e in examples[:10])
    return lines + (f" and {len(examples) - 10} more" if len(examples) > 10 else "")


def _fewer_shots(
    config: CustomizeConfig, held_out: Sequence[Example], unusable: Sequence[Example]
) -> str:
    """Why the Modelfile has fewer examples than --shots asked for, naming the rows."""
    why = [f"the data has {len(config.examples)} row(s)"]
    if held_out:
        why.append(f"{len(held_out)} held out as test questions ({_where(held_out)})")
    if unusable:
        why.append(f"{len(unusable)} cannot be written in a Modelfile ({_where(unusable)})")
    used = len(config.examples) - len(held_out) - len(unusable)
    return f"{min(used, config.shots)} of the {config.shots} example(s) asked for: " + "; ".join(
        why
    )


def build_customization(config: CustomizeConfig) -> CustomizeResult:
    """Choose the shots, budget the context and build the Modelfile; refuse when it cannot fit."""
    if not config.examples:
        raise UsageError("no examples to build from", hint="Check --data.")
    if config.shots < 0:
        raise UsageError(f"--shots {config.shots} must be ≥ 0", hint="Use e.g. --shots 3.")
    _refuse_rows_longer_than_context(config)
    warnings: list[str] = []
    if config.holdout is not None and config.holdout < 0:
        raise UsageError(
            f"--test-questions {config.holdout} must be ≥ 0", hint="Use e.g. --test-questions 3."
        )
    holdout = config.holdout if config.holdout is not None else (0 if config.knowledge else 3)
    pool, held_out = _split(config.examples, holdout)
    usable = []
    for ex in pool:
        problem = _row_problem(ex)
        if problem:
            warnings.append(f"not used as an example — {problem}")
        else:
            usable.append(ex)
    shots = [usable[i] for i in select_diverse([e.question for e in usable], config.shots)]
    if len(shots) < config.shots:
        warnings.append(_fewer_shots(config, held_out, [e for e in pool if e not in usable]))
    system = config.system if config.system is not None else default_system(config.examples)
    if config.knowledge:
        bad = [p for p in (_row_problem(e) for e in pool) if p]
        if bad:
            raise UsageError(
                "--knowledge cannot put these rows into SYSTEM: " + "; ".join(bad[:5]),
                hint="Fix those rows in the data file (or drop --knowledge).",
            )
        system += _knowledge_block(pool)
    problem = value_problem(system)
    if problem:
        raise UsageError(
            f"the system prompt {problem.removeprefix('value ')}", hint="Edit --system."
        )
    count, how = token_counter(config.tokenizer)
    budget = _budget(config, count, how, system, shots)
    mf = Modelfile(from_=config.base_model, system=system)
    if config.temperature is not None:
        mf.parameters.append(("temperature", _num(config.temperature)))
    if config.top_p is not None:
        mf.parameters.append(("top_p", _num(config.top_p)))
    mf.parameters.append(("num_ctx", str(budget.num_ctx)))
    for ex in shots:
        mf.messages += _turns(ex)
    return CustomizeResult(mf, shots, held_out, budget, warnings, config.knowledge)


def _refuse_rows_longer_than_context(config: CustomizeConfig) -> None:
    """A row that alone exceeds the context can never fit: refuse it before any heavy work.

    Without a tokenizer the count is the same estimate the budget uses; with one, a lower
    bound from the length (counting a 50 MB row with a real tokenizer would take minutes).
    """
    limit = config.num_ctx if config.num_ctx is not None else config.max_ctx
    flag = "--num-ctx" if config.num_ctx is not None else "--max-ctx"
    for ex in config.examples:
        chars = len(ex.question) + len(ex.answer)
        if config.tokenizer is None:
            tokens, how = estimate_tokens(ex.question) + estimate_tokens(ex.answer), "about"
        else:
            tokens, how = math.ceil(chars / MAX_CHARS_PER_TOKEN), "at least"
        if tokens > limit:
            size = f"{chars:,} characters ({how} {tokens:,} tokens)"
            raise UsageError(
                f"the prompt does not fit --num-ctx {limit}: {ex.source} alone is {size}"
                if config.num_ctx is not None
                else f"{ex.source}: this row is {size}, longer than the model's context "
                f"({flag} {limit:,} tokens)",
                hint="Shorten or split that row, or remove it from --data; raise "
                f"{flag} only if the model really takes that much.",
            )


def _num(x: float) -> str:
    return repr(float(x)) if not float(x).is_integer() else str(int(x))


def _budget(
    config: CustomizeConfig,
    count: Callable[[str], int],
    how: str,
    system: str,
    shots: Sequence[Example],
) -> Budget:
    sys_tokens = count(system) + MESSAGE_OVERHEAD
    shot_tokens = sum(count(c) + MESSAGE_OVERHEAD for ex in shots for _, c in _turns(ex))
    # The longest question and answer in the data: nothing a user asks gets truncated.
    question = max(count(ex.question) for ex in config.examples) + MESSAGE_OVERHEAD
    answer = config.answer_tokens or max(count(ex.answer) for ex in config.examples)
    answer += MESSAGE_OVERHEAD
    total = sys_tokens + shot_tokens + question + answer
    needed = max(MIN_CTX, 1 << math.ceil(math.log2(total * 1.1)))
    figures = (
        f"SYSTEM {sys_tokens} + {len(shots)} examples {shot_tokens} + question {question} + "
        f"answer {answer} = {total} tokens ({how})"
    )
    if config.num_ctx is not None:
        if total > config.num_ctx:
            raise UsageError(
                f"the prompt does not fit --num-ctx {config.num_ctx}: {figures}",
                hint=f"Use --num-ctx {needed}, fewer --shots, or a shorter --system.",
            )
        return Budget(sys_tokens, shot_tokens, question, answer, total, config.num_ctx, how)
    if needed > config.max_ctx:
        raise UsageError(
            f"the prompt needs num_ctx {needed}, above the limit {config.max_ctx}: {figures}",
            hint="Use fewer --shots, drop --knowledge, or raise --max-ctx if the model allows it.",
        )
    return Budget(sys_tokens, shot_tokens, question, answer, total, needed, how)


def load_questions(path: str | os.PathLike[str]) -> list[str]:
    """Questions for --test: a .txt with one per line, or any data file read_examples accepts."""
    p = Path(path)
    if p.suffix.lower() in (".txt", ""):
        try:
            lines = p.read_text(encoding="utf-8-sig").splitlines()
        except OSError as exc:
            raise UsageError(
                f"cannot read {p}: {exc.strerror}", hint="Check --questions."
            ) from None
        return [q.strip() for q in lines if q.strip()]
    from ollama_tune.data import read_examples

    return [ex.question for ex in read_examples(p)]
