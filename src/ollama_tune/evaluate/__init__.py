"""Evaluation: base vs customized vs fine-tuned models on the same test questions.

`compare_models` runs the comparison (metrics in `metrics.py`, gates in `gates.py`, the
optional LLM judge in `judge.py`); `guard_quantization` checks exported GGUFs against f16.
Nothing heavy is imported here: models load through the runtime layer only when a run starts.
"""

from ollama_tune.evaluate.compare import (
    EvalConfig,
    EvalResult,
    ModelAnswer,
    ModelSummary,
    QuestionResult,
    compare_models,
)
from ollama_tune.evaluate.gates import Gate, GateResult, check_gates, parse_gate, parse_gates
from ollama_tune.evaluate.guard import (
    GuardResult,
    QuantChoice,
    QuantWarning,
    choose_quant,
    guard_quantization,
)
from ollama_tune.evaluate.judge import JudgeScore, parse_judgement
from ollama_tune.evaluate.metrics import (
    METRICS,
    AnswerMetrics,
    FactCheck,
    aggregate,
    check_facts,
    chrf,
    derive_facts,
    score_answer,
)

__all__ = [
    "METRICS",
    "AnswerMetrics",
    "EvalConfig",
    "EvalResult",
    "FactCheck",
    "Gate",
    "GateResult",
    "GuardResult",
    "JudgeScore",
    "ModelAnswer",
    "ModelSummary",
    "QuantChoice",
    "QuantWarning",
    "QuestionResult",
    "aggregate",
    "check_facts",
    "check_gates",
    "choose_quant",
    "chrf",
    "compare_models",
    "derive_facts",
    "guard_quantization",
    "parse_gate",
    "parse_gates",
    "parse_judgement",
    "score_answer",
]
