"""write_report: report.md, self-contained report.html and report.json from a real EvalResult."""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path

import pytest
from test_eval_compare import ScriptedModel  # the shared in-test model

from ollama_tune.data.model import Example, Message, SourceRef
from ollama_tune.evaluate import EvalConfig, EvalResult, compare_models
from ollama_tune.report import write_report

EVIL = '<script>alert("x")</script> & | pipe'
ROWS = [
    ("返品はできますか？", "はい、30日以内なら返品できます。\n1. マイページ\n2. 申請", [["30日"]]),
    (f"質問 {EVIL}", "5,000円以上は送料無料です。", [["5000円"], ["送料無料"]]),
]


def _examples() -> list[Example]:
    return [
        Example(
            (Message("user", q), Message("assistant", a)),
            SourceRef("t.jsonl", i),
            tuple(tuple(g) for g in f),
        )
        for i, (q, a, f) in enumerate(ROWS, start=1)
    ]


@pytest.fixture
def result(tmp_path: Path) -> EvalResult:
    run = tmp_path / "runs" / "r1"
    (run / "bundle").mkdir(parents=True)
    lines = [json.dumps({"step": s, "loss": 3.0 / s}) for s in range(1, 20)]
    (run / "metrics.jsonl").write_text("\n".join(lines) + "\n")
    answers = {
        "base": {ROWS[0][0]: "Yes, returns are OK.", ROWS[1][0]: EVIL},
        str(run / "bundle"): {
            ROWS[0][0]: "３０日以内なら返品できます。\n1. マイページ\n2. 申請",
            ROWS[1][0]: "5,000円以上で送料無料です。",
        },
    }
    config = EvalConfig(
        models={"base": "base", "tuned": str(run / "bundle")},
        examples=_examples(),
        gates=["fact_recall>=0.9", "base.fact_recall>=0.9"],
    )
    return compare_models(config, open_model=lambda ref: ScriptedModel(ref, answers[ref]))


def test_report_files_hold_summary_gates_answers(result: EvalResult, tmp_path: Path) -> None:
    out = write_report(result, tmp_path / "report")
    assert {p.name for p in (out.markdown, out.html, out.json)} == {
        "report.md",
        "report.html",
        "report.json",
    }
    assert {p.name for p in out.charts} == {"quality.png", "latency.png", "loss-tuned.png"}
    for png in out.charts:
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    md = out.markdown.read_text("utf-8")
    assert "| Fact recall | 0.0% | **100.0%** |" in md
    assert "| `base.fact_recall>=0.9` | base | 0 | **FAIL** |" in md
    assert "![loss-tuned.png](charts/loss-tuned.png)" in md
    assert "✅ 30日" in md and "❌ 5000円" in md
    assert "<script>" not in md and "&lt;script&gt;" in md


def test_html_is_self_contained_escaped_and_highlights_facts(
    result: EvalResult, tmp_path: Path
) -> None:
    html = write_report(result, tmp_path / "r").html.read_text("utf-8")
    assert "<script" not in html.lower()  # model output never becomes markup
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in html
    assert 'src="http' not in html and "charts/" not in html  # nothing external
    uris = re.findall(r'src="data:image/png;base64,([^"]+)"', html)
    assert len(uris) == 3
    assert base64.b64decode(uris[0])[:4] == b"\x89PNG"
    assert '<td class="best">100.0%</td>' in html
    # Full-width "３０日" in the answer is marked as the fact "30日".
    assert "<mark>３０日</mark>" in html
    assert '<span class="missed">✘ 5000円</span>' in html


def test_report_json_has_every_answer_and_gate(result: EvalResult, tmp_path: Path) -> None:
    data = json.loads(write_report(result, tmp_path / "r").json.read_text("utf-8"))
    assert data["passed"] is False
    assert [m["label"] for m in data["models"]] == ["base", "tuned"]
    assert data["models"][1]["metrics"]["fact_recall"] == 1.0
    assert data["models"][1]["run_dir"].endswith("r1")
    assert data["questions"][1]["answers"]["base"]["text"] == EVIL
    assert [g["passed"] for g in data["gates"]] == [True, False]
    assert data["charts"] == ["charts/quality.png", "charts/latency.png", "charts/loss-tuned.png"]


def test_loss_png_of_the_run_is_used_when_there_is_no_metrics_file(tmp_path: Path) -> None:
    run = tmp_path / "run"
    run.mkdir()
    png = b"\x89PNG\r\n\x1a\nfake-but-embedded"
    (run / "loss.png").write_bytes(png)
    config = EvalConfig(models={"a": "a"}, examples=_examples()[:1])
    res = compare_models(config, open_model=lambda ref: ScriptedModel(ref, {}))
    out = write_report(res, tmp_path / "r", loss_curves={"a": run})
    assert (tmp_path / "r" / "charts" / "loss-a.png").read_bytes() == png
    assert base64.b64encode(png).decode() in out.html.read_text("utf-8")


def test_models_served_by_ollama_come_with_the_command_that_runs_them(tmp_path: Path) -> None:
    answers = {ROWS[0][0]: "30日以内です。", ROWS[1][0]: "送料無料です。"}
    config = EvalConfig(
        models={"base": "base.gguf", "tuned": "ollama:support-ft"}, examples=_examples()
    )
    result = compare_models(config, open_model=lambda ref: ScriptedModel(ref, answers))
    out = write_report(result, tmp_path / "report")
    md = out.markdown.read_text("utf-8")
    assert "- **tuned**: `ollama:support-ft` — try it: `ollama run support-ft`" in md
    assert "- **base**: `base.gguf`\n" in md  # a file is not an Ollama model: no command
    html_text = out.html.read_text("utf-8")
    assert "try it: <code>ollama run support-ft</code>" in html_text
    assert html_text.count("ollama run") == 1
