"""The comparison run: every model answers every test question, then metrics, judge and gates.

`compare_models(EvalConfig)` opens each model through the runtime layer (`ollama:NAME`, bundle
dir, Modelfile, `.gguf`, HF dir), generates with deterministic decoding, scores each answer
(`metrics.py`), optionally asks an Ollama judge (`judge.py`), aggregates per model and checks
the gates. The result feeds the CLI summary table and `report.write_report`.
"""

from __future__ import annotations

import contextlib
import json
import re
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Protocol

from pydantic import SkipValidation, ValidationError, field_validator

from ollama_tune._util import ProgressFn, noop_progress
from ollama_tune.data.model import Example
from ollama_tune.errors import EvaluationError, OllamaTuneError
from ollama_tune.evaluate.gates import LABEL_CHARS, GateResult, check_gates, parse_gates
from ollama_tune.evaluate.judge import JudgeScore, OllamaJudge
from ollama_tune.evaluate.metrics import AnswerMetrics, aggregate, check_facts, score_answer
from ollama_tune.evaluate.settings import DEFAULT_MAX_TOKENS, EvalSettings
from ollama_tune.settings import UserConfig, flag_problems

_LABEL = re.compile(rf"^[{LABEL_CHARS}]{{1,40}}$")


class GeneratorLike(Protocol):
    """What `runtime.open_model` returns (see docs/architecture.md, runtime)."""

    name: str

    def generate(self, messages: list[dict[str, str]], options: Any) -> Any: ...

    def close(self) -> None: ...


OpenModelFn = Callable[[str], GeneratorLike]


class EvalConfig(EvalSettings, UserConfig):
    """What to compare: `EvalSettings` plus the models and the questions. `models` maps a
    label (base/custom/tuned…) to a model reference, in the order the report shows them; the
    last one is the candidate that un-prefixed gates check. The train file of `train_sample`
    defaults to the model's training run's data/train.jsonl."""

    models: dict[str, str]
    test_path: Path | None = None
    examples: SkipValidation[Sequence[Example] | None] = None
    temperature: float = 0.0
    seed: int = 42
    train_path: Path | None = None

    @classmethod
    def user_error(cls, exc: ValidationError) -> Exception:
        # The evaluation's own error, as `validate_config` raises for what fields cannot show.
        return EvaluationError(
            "; ".join(flag_problems(exc)), hint="fix the eval options and run again"
        )

    @field_validator("models")
    @classmethod
    def _labels(cls, value: dict[str, str]) -> dict[str, str]:
        bad = [label for label in value if not _LABEL.match(label)]
        if bad:
            raise ValueError(
                "; ".join(
                    f"model label {b!r} must be 1–40 letters, digits, '_', '+' or '-'" for b in bad
                )
            )
        return value


@dataclass
class ModelAnswer:
    text: str
    done_reason: str
    prompt_tokens: int | None
    completion_tokens: int | None
    metrics: AnswerMetrics
    judge: JudgeScore | None = None


@dataclass
class QuestionResult:
    source: str
    question: str
    reference: str
    facts: list[list[str]]
    facts_derived: bool
    answers: dict[str, ModelAnswer] = field(default_factory=dict)


@dataclass
class ModelSummary:
    label: str
    ref: str
    name: str
    metrics: dict[str, float | None]
    run_dir: str | None = None


@dataclass
class EvalResult:
    models: list[ModelSummary]
    questions: list[QuestionResult]
    gates: list[GateResult]
    settings: dict[str, Any]
    started_at: str
    duration_s: float
    # label → {"rows", "source", "fact_recall", "stop_rate"} on a sample of training questions.
    train_check: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return all(g.passed for g in self.gates)

    def summaries(self) -> dict[str, dict[str, float | None]]:
        return {m.label: m.metrics for m in self.models}

    def to_dict(self) -> dict[str, Any]:
        return json.loads(json.dumps(asdict(self), default=str))


@dataclass(frozen=True)
class DecodingOptions:
    """Same fields as `runtime.GenerateOptions`; used only where the runtime is not installed
    (orchestration tests with an injected `open_model`)."""

    temperature: float = 0.0
    seed: int = 42
    max_tokens: int = DEFAULT_MAX_TOKENS
    top_p: float | None = None
    stop: list[str] | None = None


def _generate_options(config: EvalConfig) -> Any:
    try:
        from ollama_tune.runtime import GenerateOptions
    except ImportError:
        return DecodingOptions(config.temperature, config.seed, config.max_tokens)
    return GenerateOptions(
        temperature=config.temperature, seed=config.seed, max_tokens=config.max_tokens
    )


def _check_local_refs(refs: Iterable[str]) -> None:
    from ollama_tune.runtime import local_model_path

    for ref in refs:
        if not ref.startswith("ollama:"):
            local_model_path(ref)


def _default_open_model(ref: str) -> GeneratorLike:
    from ollama_tune.runtime import open_model

    return open_model(ref)


def load_test_examples(config: EvalConfig) -> list[Example]:
    if config.examples is not None:
        rows = list(config.examples)
    elif config.test_path is not None:
        from ollama_tune.evaluate.testset import read_test_examples

        rows = read_test_examples(config.test_path)
    else:
        raise EvaluationError("no test data given", hint="pass --test test.jsonl")
    if config.max_questions is not None:
        rows = rows[: config.max_questions]
    if not rows:
        raise EvaluationError(
            f"no test rows in {config.test_path or 'the given examples'}",
            hint="the test file needs at least one question with a reference answer or facts",
        )
    return rows


def validate_config(config: EvalConfig) -> None:
    """Every problem with the config at once, before any model is loaded."""
    problems = []
    if not config.models:
        problems.append("no models to evaluate (use --model LABEL=REF)")
    if config.judge is not None and not config.judge.startswith("ollama:"):
        problems.append(f"--judge {config.judge!r} must be an Ollama model: ollama:MODEL")
    if problems:
        raise EvaluationError("; ".join(problems), hint="fix the eval options and run again")


def compare_models(
    config: EvalConfig,
    progress: ProgressFn | None = None,
    *,
    open_model: OpenModelFn | None = None,
) -> EvalResult:
    """Run every model on every test row, score, judge (optional) and check gates."""
    progress = progress or noop_progress
    validate_config(config)
    gates = parse_gates(list(config.gates))  # fail on a typo before the slow part
    check_gates(gates, {label: {} for label in config.models})  # unknown model labels
    if open_model is None:  # a missing local model fails now, not after the others answered
        _check_local_refs(config.models.values())
    judge = OllamaJudge(config.judge, seed=config.seed) if config.judge else None
    if judge:
        judge.check()
    rows = load_test_examples(config)
    started, t0 = datetime.now(timezone.utc).isoformat(timespec="seconds"), time.perf_counter()
    questions = [_question(ex) for ex in rows]
    opener = open_model or _default_open_model
    options = _generate_options(config)
    models = []
    for label, ref in config.models.items():
        name = _answer_all(label, ref, rows, questions, opener, options, config, progress)
        models.append(ModelSummary(label, ref, name, {}, _training_run(ref)))
    if judge:
        _judge_all(judge, config.concurrency, questions, progress)
    for m in models:
        answers = [q.answers[m.label] for q in questions]
        m.metrics = aggregate(
            [a.metrics for a in answers],
            [a.judge.as_scores() if a.judge else None for a in answers],
        )
    summaries = {m.label: m.metrics for m in models}
    train_check = _train_check(config, models, opener, options, progress)
    return EvalResult(
        models=models,
        questions=questions,
        gates=check_gates(gates, summaries),
        settings=_settings(config, rows),
        started_at=started,
        duration_s=time.perf_counter() - t0,
        train_check=train_check,
    )


def _train_check(
    config: EvalConfig,
    models: list[ModelSummary],
    opener: OpenModelFn,
    options: Any,
    progress: ProgressFn,
) -> dict[str, dict[str, Any]]:
    """Fact recall of the candidate (last model) on `train_sample` training questions."""
    if config.train_sample <= 0 or not models:
        return {}
    import random

    from ollama_tune.evaluate.testset import read_test_examples

    out: dict[str, dict[str, Any]] = {}
    for m in models[-1:]:
        path = config.train_path or (
            Path(m.run_dir) / "data" / "train.jsonl" if m.run_dir else None
        )
        if path is None or not Path(path).is_file():
            continue
        rows = read_test_examples(path)
        rows = random.Random(config.seed).sample(rows, min(config.train_sample, len(rows)))
        qs = [_question(ex) for ex in rows]
        _answer_all(f"{m.label}", m.ref, rows, qs, opener, options, config, progress)
        metrics = aggregate([q.answers[m.label].metrics for q in qs])
        out[m.label] = {
            "rows": len(rows),
            "source": str(path),
            "fact_recall": metrics["fact_recall"],
            "stop_rate": metrics["stop_rate"],
        }
    return out


def _question(ex: Example) -> QuestionResult:
    fc = check_facts("", ex.answer, ex.facts)
    return QuestionResult(
        source=str(ex.source),
        question=ex.question,
        reference=ex.answer,
        facts=[list(g) for g in fc.groups],
        facts_derived=fc.derived,
    )


def _answer_all(
    label: str,
    ref: str,
    rows: list[Example],
    questions: list[QuestionResult],
    opener: OpenModelFn,
    options: Any,
    config: EvalConfig,
    progress: ProgressFn,
) -> str:
    """Generate and score every row with one model; returns the model's display name."""
    desc = f"{label}: answering"
    progress(desc, 0, len(rows))
    model = opener(ref)
    try:
        # Parallel requests only for a server (Ollama; latency then includes queueing): an
        # in-process llama.cpp/transformers model is not thread-safe and has no spare cores.
        workers = config.concurrency if ref.startswith("ollama:") else 1
        with ThreadPoolExecutor(max_workers=workers) as pool:
            futures = {pool.submit(_answer_one, model, ex, options): i for i, ex in enumerate(rows)}
            for done, fut in enumerate(as_completed(futures), start=1):
                questions[futures[fut]].answers[label] = fut.result()
                progress(desc, done, len(rows))
        return str(getattr(model, "name", ref))
    finally:
        model.close()


def _answer_one(model: GeneratorLike, ex: Example, options: Any) -> ModelAnswer:
    messages = [m.to_dict() for m in ex.prompt_messages]
    try:
        gen = model.generate(messages, options)
    except OllamaTuneError:
        raise
    except Exception as exc:  # a runtime bug should still say which row and model
        raise EvaluationError(
            f"{ex.source}: generation with {getattr(model, 'name', model)} failed: {exc}",
            hint="run with OLLAMA_TUNE_DEBUG=1 for the traceback",
        ) from exc
    text = gen.text or ""
    return ModelAnswer(
        text=text,
        done_reason=gen.done_reason,
        prompt_tokens=gen.prompt_tokens,
        completion_tokens=gen.completion_tokens,
        metrics=score_answer(
            text,
            ex.answer,
            facts=ex.facts,
            question=ex.question,
            done_reason=gen.done_reason,
            ttft_s=gen.ttft_s,
            total_s=gen.total_s,
            tokens_per_s=gen.tokens_per_s,
            completion_tokens=gen.completion_tokens,
        ),
    )


def _judge_all(
    judge: OllamaJudge, concurrency: int, questions: list[QuestionResult], progress: ProgressFn
) -> None:
    jobs = [(q, a) for q in questions for a in q.answers.values()]
    desc = f"judge {judge.name}"
    progress(desc, 0, len(jobs))
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        futures = {pool.submit(judge.score, q.question, q.reference, a.text): a for q, a in jobs}
        for done, fut in enumerate(as_completed(futures), start=1):
            futures[fut].judge = fut.result()
            progress(desc, done, len(jobs))


def _settings(config: EvalConfig, rows: list[Example]) -> dict[str, Any]:
    return {
        "test": str(config.test_path) if config.test_path else None,
        "rows": len(rows),
        # Rows with facts but no reference answer: fact recall only, no chrF/length ratio.
        "no_reference_rows": sum(1 for ex in rows if ex.extra.get("no_reference")),
        "models": dict(config.models),
        "judge": config.judge,
        "gates": list(config.gates),
        "temperature": config.temperature,
        "seed": config.seed,
        "max_tokens": config.max_tokens,
        "concurrency": config.concurrency,
        "train_sample": config.train_sample,
    }


def _training_run(ref: str) -> str | None:
    """The training run a model came from (for its loss curve), or None.

    A bundle lives in or next to its run (`runs/x/bundle`), and its `run.json` may name the
    run directory; a run directory is one holding `metrics.jsonl` or `loss.png`.
    """
    if ref.startswith("ollama:"):
        return None
    path = Path(ref)
    base = path.parent if path.is_file() else path
    if not base.is_dir():
        return None
    candidates = [base, base.parent]
    run_json = base / "run.json"
    if run_json.is_file():
        with contextlib.suppress(OSError, ValueError):  # a broken run.json just means "no run"
            candidates += [Path(v) for v in _strings(json.loads(run_json.read_text("utf-8")))]
    for c in [*candidates, *(base / c for c in candidates if not c.is_absolute())]:
        try:
            if (c / "metrics.jsonl").is_file() or (c / "loss.png").is_file():
                return str(c.resolve())
        except OSError:
            continue
    return None


def _strings(obj: Any) -> list[str]:
    if isinstance(obj, str):
        ok = obj.strip() not in ("", ".", "..") and len(obj) < 500 and "\n" not in obj
        return [obj] if ok else []
    if isinstance(obj, dict):
        return [s for v in obj.values() for s in _strings(v)]
    if isinstance(obj, list):
        return [s for v in obj for s in _strings(v)]
    return []
