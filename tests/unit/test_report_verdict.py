"""The report's verdict in words and its flags: memorised-not-generalised, repetition loops,
language drift — each from scripted answers, through compare_models / write_report / the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_eval_compare import GOOD, ROWS, ScriptedModel, make_examples

from _cli import run_cli
from ollama_tune.evaluate import EvalConfig, EvalResult, compare_models
from ollama_tune.report.verdict import build_verdict, is_looping

LOOP = "返品は30日以内です。" + "ご不明な点はお問い合わせください。" * 4
ENGLISH = {q: "Returns are accepted within 30 days." for q, _, _ in ROWS}
BASE = {q: "申し訳ございませんが、わかりかねます。" for q, _, _ in ROWS}  # polite, no facts


def _compare(answers: dict[str, dict[str, str]], **kw: object) -> EvalResult:
    labels = {k: Path(k).name for k in answers}
    config = EvalConfig(models={labels[k]: k for k in answers}, examples=make_examples(), **kw)  # type: ignore[arg-type]
    return compare_models(config, open_model=lambda ref: ScriptedModel(ref, answers[ref]))


def test_verdict_says_recall_against_base_and_stop_rate() -> None:
    verdict = build_verdict(_compare({"base": BASE, "tuned": GOOD}))
    assert verdict.summary == "tuned: 100% of facts vs 0% for base; stops by itself 100%"
    assert verdict.flags == []


def test_repetition_loop_is_flagged_and_ordinary_answers_are_not() -> None:
    assert is_looping(LOOP) and is_looping("I can help. " * 6)
    assert not any(is_looping(a) for _, a, _ in ROWS)
    assert not is_looping("1. マイページを開きます。\n2. 注文履歴を開きます。\n3. 返品を選びます。")
    looping = {**GOOD, ROWS[0][0]: LOOP}
    flags = build_verdict(_compare({"base": BASE, "tuned": looping})).flags
    assert flags == [
        "repetition loops: tuned repeats itself in 1 of 3 answers (first: test.jsonl:1)"
    ]


def test_language_drift_is_flagged() -> None:
    flags = build_verdict(_compare({"base": BASE, "tuned": ENGLISH})).flags
    assert any(
        f.startswith("language drift: tuned answers 3 of 3 questions") and "en instead of ja" in f
        for f in flags
    )
    assert not any(f.startswith("language drift: base") for f in flags)


def test_shipped_quantization_loss_comes_from_the_bundle(tmp_path: Path) -> None:
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    shipped = {"quant": "q4_k_m", "reason": "…", "reference": "f16",
               "scores": {"f16": 0.50, "q4_k_m": 0.47}}  # fmt: skip
    (bundle / "run.json").write_text(json.dumps({"export": {"shipped": shipped}}), "utf-8")
    result = _compare({"base": BASE, str(bundle): GOOD})
    assert build_verdict(result).summary.endswith("; q4_k_m loses 3 points against f16")


def _write(path: Path, rows: list[dict[str, object]]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), "utf-8")
    return path


def test_memorised_not_generalised_through_eval_cli(
    fake_ollama,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],  # type: ignore[no-untyped-def]
) -> None:
    train = _write(tmp_path / "train.jsonl", [
        {"question": "返品できますか", "answer": "14日以内なら返品できます。", "facts": [["14日"]]},
        {"question": "送料はいくら", "answer": "全国一律550円です。", "facts": [["550円"]]},
    ])  # fmt: skip
    test = _write(tmp_path / "test.jsonl", [
        {"question": "届いてから何日まで返品を受け付けていますか？", "facts": [["14日"]]},
        {"question": "配送料金はおいくらでしょうか？", "facts": [["550円"]]},
    ])  # fmt: skip
    fake_ollama.add_model("parrot")  # knows the training questions word for word, nothing else
    fake_ollama.script(
        "parrot", {"返品できますか": "14日以内です。", "送料はいくら": "550円です。"}
    )
    report = tmp_path / "rep"
    code, out, err = run_cli(
        capsys, "eval", "--test", str(test), "--model", "tuned=ollama:parrot",
        "--train-sample", "2", "--train", str(train), "--report", str(report),
    )  # fmt: skip
    assert code == 0, err
    assert "Verdict: tuned: 0% of facts; stops by itself 100%" in out
    assert "memorised, not generalised: tuned recalls 100% of facts on 2 training" in out
    md = (report / "report.md").read_text("utf-8").splitlines()
    assert md[2] == "**Verdict:** tuned: 0% of facts; stops by itself 100%"
    assert md[3].startswith("- ⚠ memorised, not generalised")
    data = json.loads((report / "report.json").read_text("utf-8"))
    assert data["train_check"]["tuned"]["fact_recall"] == 1.0
    assert data["verdict"]["flags"][0].startswith("memorised")
    html = (report / "report.html").read_text("utf-8")
    assert html.index('id="verdict"') < html.index("<h2>Models</h2>")
