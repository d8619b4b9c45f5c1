"""Real evaluation: the embedded default model (SmolLM2-135M-Instruct GGUF, llama.cpp through
the runtime layer) answers rows of the customer-support sample; all three report files are
written. Kept to a few rows and short answers: CI machines are small."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ollama_tune.cli import main

pytestmark = pytest.mark.integration

TEST_FILE = Path(__file__).resolve().parents[2] / "examples" / "customer-support" / "test.jsonl"


def test_eval_smollm2_on_customer_support_writes_all_reports(
    smollm2_gguf: Path, tmp_path: Path
) -> None:
    report = tmp_path / "report"
    argv = [
        "eval", "--test", str(TEST_FILE), "--model", f"base={smollm2_gguf}",
        "--limit", "2", "--max-tokens", "24", "--report", str(report),
        "--gate", "stop_rate<=1", "--gate", "tokens_per_s>0",
    ]  # fmt: skip
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 0

    data = json.loads((report / "report.json").read_text("utf-8"))
    assert data["passed"] is True
    assert data["settings"]["rows"] == 2 and data["settings"]["temperature"] == 0.0
    [model] = data["models"]
    assert model["name"] == smollm2_gguf.name
    m = model["metrics"]
    for key in ("fact_recall", "chrf", "japanese_share", "stop_rate", "language_match"):
        assert m[key] is not None and 0.0 <= m[key] <= 1.0, key
    assert m["p95_latency_s"] >= m["p50_latency_s"] > 0
    assert m["tokens_per_s"] > 0
    answers = [q["answers"]["base"] for q in data["questions"]]
    assert all(a["text"].strip() for a in answers)  # the model really generated text
    assert all(0 < a["completion_tokens"] <= 24 for a in answers)
    assert all(a["done_reason"] in ("stop", "length") for a in answers)
    # Fact groups of the sample file drive recall (not derived ones).
    from ollama_tune.data import read_examples

    first = read_examples(TEST_FILE)[0]
    assert first.facts, "the sample's rows carry facts"
    assert data["questions"][0]["facts"] == [list(g) for g in first.facts]
    assert not data["questions"][0]["facts_derived"]

    md = (report / "report.md").read_text("utf-8")
    html = (report / "report.html").read_text("utf-8")
    assert "| Fact recall |" in md and "返品" in md
    assert "data:image/png;base64," in html
    first_answer = answers[0]["text"].strip().splitlines()[0]
    import html as html_mod

    assert html_mod.escape(first_answer[:10], quote=True) in html


def test_quantization_guard_on_the_real_gguf(smollm2_gguf: Path) -> None:
    """The same GGUF as reference and candidate: deterministic decoding, so no loss, no warning."""
    from ollama_tune.data import read_examples
    from ollama_tune.evaluate import guard_quantization

    rows = read_examples(TEST_FILE)[:1]
    guard = guard_quantization({"f16": smollm2_gguf, "q4_1": smollm2_gguf}, rows, max_tokens=16)
    assert guard.metric == "fact_recall"
    assert guard.scores["f16"] == guard.scores["q4_1"]
    assert guard.ok and guard.warnings == []
    assert guard.evaluation is not None
    q = guard.evaluation.questions[0]
    assert q.answers["f16"].text == q.answers["q4_1"].text
