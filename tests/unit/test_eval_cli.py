"""`ollama-tune eval` through the public CLI entry point, with `ollama:` models served by the
documented-API fake (real data loader, real runtime, real Ollama client)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ollama_tune.cli import main

ROWS = [
    {
        "question": "返品はできますか？",
        "answer": "商品到着後30日以内なら返品できます。",
        "facts": [["30日"]],
    },
    {
        "question": "返金はいつ？",
        "answer": "返金は５～７営業日で処理いたします。",
        "facts": [["5-7営業日"]],
    },
    {"question": "送料は？", "answer": "5,000円以上のご注文は送料無料です。"},
]
GOOD = {
    "返品はできますか？": "はい、30日以内であれば返品を承ります。",
    "返金はいつ？": "返金は5から7営業日で処理いたします。",
    "送料は？": "5000円以上のご注文は送料無料でございます。",
}


def _run(argv: list[str]) -> int:
    with pytest.raises(SystemExit) as exc:
        main(argv)
    return int(exc.value.code or 0)


@pytest.fixture
def test_file(tmp_path: Path) -> Path:
    path = tmp_path / "test.jsonl"
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in ROWS), "utf-8")
    return path


@pytest.fixture
def models(fake_ollama):  # type: ignore[no-untyped-def]
    fake_ollama.add_model("llama3.2:1b")  # unscripted: echoes the question back
    fake_ollama.add_model("my-bot")
    fake_ollama.script("my-bot", GOOD)
    return fake_ollama


def test_eval_compares_models_writes_report_and_passes_gates(
    models,
    test_file: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],  # type: ignore[no-untyped-def]
) -> None:
    report = tmp_path / "rep"
    code = _run(
        [
            "eval", "--test", str(test_file),
            "--model", "base=ollama:llama3.2:1b", "--model", "custom=ollama:my-bot",
            "--report", str(report), "--gate", "fact_recall>=0.9", "--gate", "p95_latency_s<=3",
            "--max-tokens", "200",
        ]
    )  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0, out
    assert "Fact recall" in out and "custom" in out and "Gates" in out
    data = json.loads((report / "report.json").read_text("utf-8"))
    metrics = {m["label"]: m["metrics"] for m in data["models"]}
    assert metrics["custom"]["fact_recall"] == 1.0
    assert metrics["custom"]["politeness"] == 1.0
    assert metrics["base"]["fact_recall"] == 0.0
    assert data["settings"]["max_tokens"] == 200
    assert (report / "report.md").is_file() and (report / "report.html").is_file()
    sent = [r.json for r in models.requests_to("/api/chat")]
    assert {s["model"] for s in sent} == {"llama3.2:1b", "my-bot"}
    assert all(s["options"]["temperature"] == 0.0 and s["options"]["seed"] == 42 for s in sent)
    assert all(s["options"]["num_predict"] == 200 for s in sent)


def test_failed_gate_exits_1_with_the_gate_table(
    models,
    test_file: Path,
    capsys: pytest.CaptureFixture[str],  # type: ignore[no-untyped-def]
) -> None:
    code = _run(
        ["eval", "--test", str(test_file), "--model", "base=ollama:llama3.2:1b",
         "--gate", "fact_recall>=0.9"]
    )  # fmt: skip
    captured = capsys.readouterr()
    assert code == 1
    assert "FAIL" in captured.out
    assert "1 of 1 gates failed: fact_recall>=0.9" in captured.err


def test_length_limit_shows_up_as_cut_answers(models, test_file: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    report = tmp_path / "rep"
    code = _run(
        ["eval", "--test", str(test_file), "--model", "ollama:my-bot", "--max-tokens", "2",
         "--report", str(report)]
    )  # fmt: skip
    assert code == 0
    data = json.loads((report / "report.json").read_text("utf-8"))
    assert data["models"][0]["label"] == "my-bot"
    assert data["models"][0]["metrics"]["stop_rate"] == 0.0


@pytest.mark.parametrize("flag", ["--max-questions", "--limit"])
def test_max_questions_and_its_old_name_limit_ask_the_first_n(  # type: ignore[no-untyped-def]
    models, test_file: Path, tmp_path: Path, flag: str
) -> None:
    report = tmp_path / "rep"
    code = _run(
        ["eval", "--test", str(test_file), "--model", "ollama:my-bot", flag, "2",
         "--report", str(report)]
    )  # fmt: skip
    assert code == 0
    data = json.loads((report / "report.json").read_text("utf-8"))
    assert data["settings"]["rows"] == 2
    # Flags left out take the settings' defaults (EvalSettings: 384 tokens).
    sent = [r.json for r in models.requests_to("/api/chat")]
    assert len(sent) == 2 and all(s["options"]["num_predict"] == 384 for s in sent)


def test_unknown_gate_metric_is_a_clear_error(
    test_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = _run(["eval", "--test", str(test_file), "--model", "a=ollama:x", "--gate", "acc>=1"])
    err = capsys.readouterr().err
    assert code == 1
    assert "unknown metric 'acc'" in err and "fact_recall" in err


def test_duplicate_model_label_is_a_usage_error(
    test_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = _run(
        ["eval", "--test", str(test_file), "--model", "a=ollama:x", "--model", "a=ollama:y"]
    )
    assert code == 2
    assert "used twice" in capsys.readouterr().err


def test_unreachable_ollama_exits_3(test_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = _run(["eval", "--test", str(test_file), "--model", "a=ollama:x"])
    assert code == 3, capsys.readouterr()


def test_rows_with_facts_and_no_answer_score_recall_without_chrf(
    models,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],  # type: ignore[no-untyped-def]
) -> None:
    rows = [
        ROWS[0],
        {"question": "返金はいつ？", "facts": [["5-7営業日"]]},  # no reference answer
        {"messages": [{"role": "user", "content": "送料は？"}], "facts": [["5000円"]]},
    ]
    test = tmp_path / "test.jsonl"
    test.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), "utf-8")
    report = tmp_path / "rep"
    code = _run(
        ["eval", "--test", str(test), "--model", "c=ollama:my-bot", "--report", str(report)]
    )
    assert code == 0, capsys.readouterr()
    data = json.loads((report / "report.json").read_text("utf-8"))
    assert data["settings"]["no_reference_rows"] == 2
    assert data["models"][0]["metrics"]["fact_recall"] == 1.0
    per_row = [q["answers"]["c"]["metrics"] for q in data["questions"]]
    assert [m["chrf"] is None for m in per_row] == [False, True, True]
    assert [m["length_ratio"] is None for m in per_row] == [False, True, True]
    assert all(m["language_match"] for m in per_row)  # the question's language stands in
    md = (report / "report.md").read_text("utf-8")
    assert "2 of 3 questions have facts but no reference answer" in md
    assert "chrF and length ratio are left out" in md


def test_answerless_row_without_facts_is_still_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    test = tmp_path / "test.jsonl"
    test.write_text('{"question": "返金はいつ？"}\n', "utf-8")
    code = _run(["eval", "--test", str(test), "--model", "c=ollama:x"])
    err = capsys.readouterr().err
    assert code != 0
    assert "test.jsonl:1" in err and "no 'output'" in err


def test_a_missing_local_model_fails_before_any_model_answers(  # type: ignore[no-untyped-def]
    models, test_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "quants" / "q4_k_m+q8emb"
    argv = ["eval", "--test", str(test_file), "--model", "base=ollama:llama3.2:1b"]
    code = _run([*argv, "--model", f"q4_k_m+q8emb={missing}"])
    err = capsys.readouterr().err
    assert code != 0 and "Traceback" not in err
    assert "Model not found" in err and str(missing) in err.replace("\n", "")
    # Checked up front: the first model never started answering.
    assert not models.requests_to("/api/chat") and not models.requests_to("/api/generate")


def test_quant_names_with_plus_are_labels_and_gate_targets(  # type: ignore[no-untyped-def]
    models, test_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    report = tmp_path / "rep"
    argv = ["eval", "--test", str(test_file), "--model", "q4_k_m+imat=ollama:my-bot"]
    gate = ["--gate", "q4_k_m+imat.fact_recall>=0.9", "--report", str(report)]
    code = _run([*argv, *gate])
    out = capsys.readouterr().out
    assert code == 0, out
    data = json.loads((report / "report.json").read_text("utf-8"))
    assert [m["label"] for m in data["models"]] == ["q4_k_m+imat"]
    assert "q4_k_m+imat" in out
