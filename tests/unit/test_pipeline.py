"""The stage runner: input hashes in state.json, skipping unchanged stages, resuming after a kill.

Stages here are small real functions that write files, so the tests exercise the runner's
rules without the heavy stages (the quickstart integration test runs the real ones).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from ollama_tune.pipeline import Context, Stage, StageEvent, load_state, run_stages


class Interrupted(Exception):
    pass


def _stages(calls: list[str], settings: dict[str, Any]) -> list[Stage]:
    def prep_run(ctx: Context) -> dict[str, Any]:
        calls.append("prep")
        out = ctx.workdir / "prep.txt"
        out.write_text(str(settings["rows"]))
        return {"rows": settings["rows"], "paths": [str(out)]}

    def train_run(ctx: Context) -> dict[str, Any]:
        calls.append(f"train(resume={ctx.resume})")
        if settings.get("crash"):
            raise Interrupted
        out = ctx.workdir / "adapter.bin"
        out.write_text(f"{ctx.outputs['prep']['rows']}-{settings['lr']}")
        return {"adapter": str(out), "paths": [str(out)]}

    return [
        Stage("prep", "prepare", lambda ctx: {"rows": settings["rows"]}, prep_run),
        Stage("train", "train", lambda ctx: {"lr": settings["lr"]}, train_run, ("prep",)),
    ]


def _ctx(tmp_path: Path) -> Context:
    return Context(recipe=None, workdir=tmp_path / "work")


def test_second_run_skips_every_unchanged_stage(tmp_path: Path) -> None:
    calls: list[str] = []
    settings = {"rows": 10, "lr": 0.1}
    first = run_stages(_stages(calls, settings), _ctx(tmp_path))
    assert [r.status for r in first] == ["ran", "ran"]
    second = run_stages(_stages(calls, settings), _ctx(tmp_path))
    assert [r.status for r in second] == ["skipped", "skipped"]
    assert calls == ["prep", "train(resume=False)"]
    state = json.loads((tmp_path / "work" / "state.json").read_text())
    assert state["stages"]["train"]["status"] == "done"
    assert state["stages"]["train"]["inputs_hash"] == first[1].inputs_hash


def test_changed_input_reruns_that_stage_and_the_ones_depending_on_it(tmp_path: Path) -> None:
    calls: list[str] = []
    settings = {"rows": 10, "lr": 0.1}
    run_stages(_stages(calls, settings), _ctx(tmp_path))
    settings["lr"] = 0.2  # only train's own input
    again = run_stages(_stages(calls, settings), _ctx(tmp_path))
    assert [r.status for r in again] == ["skipped", "ran"]
    settings["rows"] = 11  # upstream change propagates through prep's outputs
    third = run_stages(_stages(calls, settings), _ctx(tmp_path))
    assert [r.status for r in third] == ["ran", "ran"]
    assert (tmp_path / "work" / "adapter.bin").read_text() == "11-0.2"


def test_missing_output_file_makes_the_stage_run_again(tmp_path: Path) -> None:
    calls: list[str] = []
    settings = {"rows": 3, "lr": 0.1}
    run_stages(_stages(calls, settings), _ctx(tmp_path))
    (tmp_path / "work" / "adapter.bin").unlink()
    again = run_stages(_stages(calls, settings), _ctx(tmp_path))
    assert [r.status for r in again] == ["skipped", "ran"]


def test_interrupted_stage_resumes_on_the_next_run(tmp_path: Path) -> None:
    calls: list[str] = []
    settings: dict[str, Any] = {"rows": 3, "lr": 0.1, "crash": True}
    with pytest.raises(Interrupted):
        run_stages(_stages(calls, settings), _ctx(tmp_path))
    assert load_state(tmp_path / "work")["stages"]["train"]["status"] == "running"
    settings["crash"] = False
    again = run_stages(_stages(calls, settings), _ctx(tmp_path))
    assert [r.status for r in again] == ["skipped", "resumed"]
    assert calls == ["prep", "train(resume=False)", "train(resume=True)"]


def test_force_reruns_everything(tmp_path: Path) -> None:
    calls: list[str] = []
    settings = {"rows": 3, "lr": 0.1}
    run_stages(_stages(calls, settings), _ctx(tmp_path))
    again = run_stages(_stages(calls, settings), _ctx(tmp_path), force=True)
    assert [r.status for r in again] == ["ran", "ran"]


def test_stage_events_reach_the_caller(tmp_path: Path) -> None:
    events: list[StageEvent] = []
    settings = {"rows": 3, "lr": 0.1}
    run_stages(_stages([], settings), _ctx(tmp_path), on_event=events.append)
    assert [(e.kind, e.stage, e.title) for e in events] == [
        ("start", "prep", "prepare"),
        ("done", "prep", "prepare"),
        ("start", "train", "train"),
        ("done", "train", "train"),
    ]
    assert events[0].result is None
    assert [e.result.status for e in events if e.result] == ["ran", "ran"]
    again: list[StageEvent] = []
    run_stages(_stages([], settings), _ctx(tmp_path), on_event=again.append)
    assert [(e.kind, e.stage) for e in again] == [("skip", "prep"), ("skip", "train")]
    assert [e.result.status for e in again if e.result] == ["skipped", "skipped"]


def test_cli_run_prints_stages_report_and_create_commands(tmp_path: Path, monkeypatch) -> None:
    """`ollama-tune run` end to end through the CLI, with light stages standing in for the
    heavy ones (the quickstart integration test runs the real stages)."""
    from typer.testing import CliRunner

    import ollama_tune.pipeline.stages as stages_mod
    from ollama_tune.cli import app

    (tmp_path / "train.jsonl").write_text('{"instruction": "q", "output": "a"}\n')
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(
        "name: shop\ndata:\n  train: train.jsonl\neval:\n  gates: ['fact_recall>=0.5']\n"
    )

    def fake(name: str, outputs: dict[str, Any]) -> Stage:
        return Stage(name, name, lambda ctx: {}, lambda ctx: dict(outputs))

    report = tmp_path / "report.md"
    report.write_text("# report\n")
    recall = {"value": 0.8}

    def evaluate(ctx: Context) -> dict[str, Any]:
        passed = recall["value"] >= 0.5
        return {
            "report_md": str(report),
            "gates_passed": passed,
            "summary": {"tuned": {"fact_recall": recall["value"]}},
            "paths": [str(report)],
        }

    monkeypatch.setattr(
        stages_mod,
        "build_stages",
        lambda: [
            fake("customize", {"modelfile": str(tmp_path / "Modelfile")}),
            fake("export", {"bundle": str(tmp_path / "bundle")}),
            Stage("eval", "eval + report", lambda ctx: dict(recall), evaluate),
        ],
    )
    res = CliRunner().invoke(app, ["run", str(recipe), "--workdir", str(tmp_path / "w")])
    assert res.exit_code == 0, res.output
    out = res.output.replace("\n", "")
    assert "▶ eval + report" in out and "✓ eval + report: done in " in out
    assert f"Report: {report}" in out
    assert f"ollama create shop-tuned -f {tmp_path / 'bundle' / 'Modelfile'}" in out
    assert "fact_recall" in out and "0.8" in out
    again = CliRunner().invoke(app, ["run", str(recipe), "--workdir", str(tmp_path / "w")])
    assert again.exit_code == 0 and "skipped (inputs unchanged)" in again.output
    recall["value"] = 0.2  # a failing gate is exit 1
    failed = CliRunner().invoke(app, ["run", str(recipe), "--workdir", str(tmp_path / "w")])
    assert failed.exit_code == 1, failed.output
