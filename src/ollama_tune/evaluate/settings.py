"""`EvalSettings`: the evaluation's settings, one definition for the recipe's `eval:` section
and the `ollama-tune eval` flags (whose defaults are None and fall back to these).

Gates are checked with the parser `eval` and the report use, so a typo in a recipe fails at
`run --check` and not after training. Imports nothing of the recipe (config.py imports this).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, Field

from ollama_tune.errors import EvaluationError
from ollama_tune.evaluate.gates import parse_gate
from ollama_tune.settings import Section

ModelRole = Literal["base", "customized", "tuned"]
MODEL_ROLES: tuple[ModelRole, ...] = ("base", "customized", "tuned")

# Longest answer, in tokens: `eval`, a run's eval stage and the quantization guard alike.
DEFAULT_MAX_TOKENS = 384
# Fact recall a quantization may lose against f16 (absolute) before the guard warns
# (`export.guard_threshold`, `export --guard-threshold`, `guard_quantization`).
DEFAULT_GUARD_THRESHOLD = 0.05


def check_gate(value: str) -> str:
    """A recipe gate: the `eval` parser's syntax, and a model prefix a run evaluates."""
    try:
        gate = parse_gate(value)
    except EvaluationError as exc:
        raise ValueError(exc.message) from None
    if gate.model is not None and gate.model not in MODEL_ROLES:
        raise ValueError(
            f"gate {value!r} names model {gate.model!r}, which a run does not evaluate"
        )
    return value


GateText = Annotated[str, AfterValidator(check_gate)]


class EvalSettings(Section):
    """How to evaluate: `EvalConfig` (the library's input, `eval`'s flags) extends it and so
    does the recipe's `eval:` section (`RunEvalSettings`)."""

    max_tokens: int = Field(default=DEFAULT_MAX_TOKENS, ge=1)
    # Checked by `compare_models` with did-you-mean hints (a recipe checks them on load).
    gates: list[str] = Field(default_factory=list)
    judge: str | None = None
    concurrency: int = Field(default=1, ge=1)
    # Evaluate on the first N test questions only (keeps the CPU quickstart short);
    # `eval --max-questions` (old name `--limit`).
    max_questions: int | None = Field(default=None, ge=1)
    # Also ask the last model N training questions: flags memorised-not-generalised.
    train_sample: int = Field(default=0, ge=0)


class RunEvalSettings(EvalSettings):
    """The recipe's `eval:` section: which of the run's models to compare; gates may only
    name those; a run has its train split, so it asks 8 training questions by default."""

    gates: list[GateText] = Field(default_factory=list)
    train_sample: int = Field(default=8, ge=0)
    models: list[ModelRole] = Field(default_factory=lambda: list(MODEL_ROLES))
