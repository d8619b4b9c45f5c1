"""Gates: turn aggregate metrics into pass/fail and the exit code of `ollama-tune eval`.

A gate reads `[MODEL.]METRIC OP NUMBER`, e.g. `fact_recall>=0.9`, `tuned.p95_latency_s<=3`.
Without a model label the gate applies to the last `--model` (the candidate being proven).
Parsed with a regular expression, never evaluated as code.
"""

from __future__ import annotations

import difflib
import math
import operator
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from ollama_tune.errors import EvaluationError
from ollama_tune.evaluate.metrics import METRICS

_OPS: dict[str, Callable[[float, float], bool]] = {
    ">=": operator.ge,
    "<=": operator.le,
    ">": operator.gt,
    "<": operator.lt,
    "==": operator.eq,
    "=": operator.eq,
}
# What a model label may hold (`--model LABEL=REF`, `LABEL.METRIC` gates): quant names such as
# q4_k_m+imat fit; "." cannot, it ends the label in a gate.
LABEL_CHARS = r"A-Za-z0-9_+\-"
_GATE = re.compile(
    rf"^\s*(?:(?P<model>[{LABEL_CHARS}]+)\.)?(?P<metric>[A-Za-z0-9_]+)\s*"
    r"(?P<op>>=|<=|==|=|>|<)\s*(?P<value>[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*(?P<pct>%)?\s*$"
)


@dataclass(frozen=True)
class Gate:
    metric: str
    op: str
    value: float
    model: str | None = None

    def __str__(self) -> str:
        prefix = f"{self.model}." if self.model else ""
        return f"{prefix}{self.metric}{self.op}{self.value:g}"


@dataclass(frozen=True)
class GateResult:
    gate: Gate
    model: str
    actual: float | None
    passed: bool
    message: str


def parse_gate(text: str) -> Gate:
    """Parse one `--gate` expression; raises EvaluationError saying what is wrong."""
    m = _GATE.match(text)
    if not m:
        raise EvaluationError(
            f"cannot read gate {text!r}: expected METRIC OP NUMBER",
            hint="write it like fact_recall>=0.9 or tuned.p95_latency_s<=3 "
            "(operators: >= <= > < ==; quote it in the shell)",
        )
    metric = m.group("metric")
    if metric not in METRICS:
        close = difflib.get_close_matches(metric, list(METRICS), n=1)
        guess = f"did you mean {close[0]}? " if close else ""
        raise EvaluationError(
            f"unknown metric {metric!r} in gate {text!r}",
            hint=f"{guess}valid metrics: " + ", ".join(METRICS),
        )
    value = float(m.group("value"))
    if m.group("pct"):
        value /= 100.0
    if not math.isfinite(value):
        raise EvaluationError(f"gate {text!r} has a non-finite threshold", hint="use a number")
    return Gate(metric=metric, op=m.group("op"), value=value, model=m.group("model"))


def parse_gates(texts: list[str] | tuple[str, ...]) -> list[Gate]:
    """Parse every gate, reporting all bad ones at once."""
    gates, errors = [], []
    for t in texts:
        try:
            gates.append(parse_gate(t))
        except EvaluationError as exc:
            errors.append(exc)
    if errors:
        raise EvaluationError("; ".join(e.message for e in errors), hint=errors[0].hint) from None
    return gates


def check_gates(
    gates: list[Gate], summaries: Mapping[str, Mapping[str, float | None]]
) -> list[GateResult]:
    """Check gates against per-model aggregates (`{label: {metric: value}}`, ordered)."""
    labels = list(summaries)
    results = []
    for gate in gates:
        label = gate.model or (labels[-1] if labels else "")
        if label not in summaries:
            raise EvaluationError(
                f"gate {gate} names model {label!r}, which was not evaluated",
                hint="models in this run: " + ", ".join(labels),
            )
        actual = summaries[label].get(gate.metric)
        if actual is None:
            results.append(GateResult(gate, label, None, False, f"{gate.metric} was not measured"))
            continue
        ok = _OPS[gate.op](actual, gate.value)
        verdict = "pass" if ok else "FAIL"
        results.append(
            GateResult(gate, label, actual, ok, f"{verdict}: {actual:.4g} {gate.op} {gate.value:g}")
        )
    return results
