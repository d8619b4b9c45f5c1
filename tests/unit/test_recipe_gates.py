"""One gate parser: a recipe's `eval.gates` is read by the same function as `eval --gate`, so a
typo fails `run --check` before any training, and `90%` means 0.9 in both."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from _cli import run_cli
from ollama_tune.config import load_recipe
from ollama_tune.evaluate import parse_gates
from ollama_tune.evaluate.metrics import METRICS


def _recipe(tmp_path: Path, gate: str) -> Path:
    (tmp_path / "train.jsonl").write_text('{"instruction": "q", "output": "a"}\n')
    path = tmp_path / "recipe.yaml"
    path.write_text(f"data:\n  train: train.jsonl\neval:\n  gates: ['{gate}']\n")
    return path


def _flat(text: str) -> str:
    # The problems table folds long cells; compare without the table's layout.
    return re.sub(r"[\s│┃|]+", "", text)


def test_a_misspelt_metric_fails_run_check_listing_the_valid_names(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run_cli(capsys, "run", "--check", str(_recipe(tmp_path, "fact_recal>=0.9")))
    assert code == 1
    flat = _flat(out)
    assert _flat("unknown metric 'fact_recal'") in flat and "recipe.yaml:4" in flat
    assert _flat("did you mean fact_recall?") in flat
    assert all(name in flat for name in METRICS)


def test_a_percent_threshold_works_in_a_recipe_as_in_eval(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _recipe(tmp_path, "fact_recall>=90%")
    code, out, _ = run_cli(capsys, "run", "--check", str(path))
    assert code == 0, out
    gates = parse_gates(load_recipe(path).eval.gates)  # what the eval stage hands on
    assert [(g.metric, g.op, g.value) for g in gates] == [("fact_recall", ">=", 0.9)]


def test_a_gate_on_a_model_the_run_does_not_evaluate_fails_run_check(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run_cli(capsys, "run", "--check", str(_recipe(tmp_path, "tunde.chrf>=40")))
    assert code == 1
    assert _flat("names model 'tunde'") in _flat(out) and "tuned." in out
