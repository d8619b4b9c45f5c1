"""Gate expressions: safe parsing, clear errors, checking against per-model aggregates."""

from __future__ import annotations

import pytest

from ollama_tune.errors import EvaluationError
from ollama_tune.evaluate.gates import Gate, check_gates, parse_gate, parse_gates


@pytest.mark.parametrize(
    ("text", "gate"),
    [
        ("fact_recall>=0.9", Gate("fact_recall", ">=", 0.9)),
        (" p95_latency_s <= 3 ", Gate("p95_latency_s", "<=", 3.0)),
        ("tuned.stop_rate>0.95", Gate("stop_rate", ">", 0.95, "tuned")),
        ("fact_recall>=90%", Gate("fact_recall", ">=", 0.9)),
        ("chrf==1", Gate("chrf", "==", 1.0)),
        ("tokens_per_s>1e1", Gate("tokens_per_s", ">", 10.0)),
    ],
)
def test_parse_gate(text: str, gate: Gate) -> None:
    assert parse_gate(text) == gate


def test_unknown_metric_lists_valid_names() -> None:
    with pytest.raises(EvaluationError) as err:
        parse_gate("accuracy>=0.9")
    assert "unknown metric 'accuracy'" in err.value.message
    assert err.value.hint is not None and "fact_recall" in err.value.hint
    assert "p95_latency_s" in err.value.hint


@pytest.mark.parametrize(
    "text", ["fact_recall", "fact_recall>=", "__import__('os')>=1", "fact_recall>=0.9;rm", "a=>1"]
)
def test_malformed_gates_are_rejected_not_evaluated(text: str) -> None:
    with pytest.raises(EvaluationError, match="cannot read gate"):
        parse_gate(text)


def test_parse_gates_reports_every_bad_gate() -> None:
    with pytest.raises(EvaluationError) as err:
        parse_gates(["bogus>=1", "fact_recall>=0.5", "p95<=3"])
    assert "bogus" in err.value.message and "p95" in err.value.message


def test_check_gates_defaults_to_last_model_and_flags_missing_metrics() -> None:
    summaries = {
        "base": {"fact_recall": 0.2, "p95_latency_s": 1.0, "judge_score": None},
        "tuned": {"fact_recall": 0.95, "p95_latency_s": 4.0, "judge_score": None},
    }
    gates = parse_gates(
        ["fact_recall>=0.9", "p95_latency_s<=3", "base.fact_recall<0.5", "judge_score>=4"]
    )
    results = check_gates(gates, summaries)
    assert [(r.model, r.passed) for r in results] == [
        ("tuned", True),
        ("tuned", False),
        ("base", True),
        ("tuned", False),
    ]
    assert results[1].actual == 4.0
    assert results[3].actual is None and "not measured" in results[3].message


def test_gate_for_unknown_model_is_an_error() -> None:
    with pytest.raises(EvaluationError, match="'custom'"):
        check_gates([parse_gate("custom.fact_recall>=0.9")], {"base": {"fact_recall": 1.0}})
