"""Input hashes cover what each stage hands to its library: a recipe key re-runs exactly the
stages that read it (the stale-adapter bug: `customize.system` must re-run train)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from _plan_helpers import light_stages, run_previous, write_recipe

from _cli import run_cli
from ollama_tune.config import load_recipe
from ollama_tune.pipeline import PlanStep, plan_recipe, run_recipe


def _plan(recipe: Path, overrides: dict[str, Any] | None = None) -> dict[str, PlanStep]:
    return {s.name: s for s in plan_recipe(load_recipe(recipe, overrides))}


def _rerun(plan: dict[str, PlanStep]) -> set[str]:
    """Stages whose own inputs changed (not merely downstream of one that re-runs)."""
    return {n for n, s in plan.items() if s.action == "run" and not s.conditional}


def test_unchanged_recipe_plans_every_stage_as_skipped(tmp_path: Path) -> None:
    recipe = write_recipe(tmp_path)
    assert set(run_previous(recipe)) == {"ran"}
    plan = _plan(recipe)
    assert [s.action for s in plan.values()] == ["skip"] * 8
    assert all(s.reasons == ["inputs unchanged"] for s in plan.values())


@pytest.mark.parametrize(
    ("key", "value", "readers"),
    [
        ("customize.system", "短く答えてください。", {"customize", "train"}),
        ("customize.shots", 1, {"customize"}),
        ("customize.knowledge", True, {"customize"}),
        ("train.learning_rate", 1e-4, {"train"}),
        ("train.gradient_accumulation_steps", 2, {"train"}),
        ("train.save_steps", 10, {"train"}),
        ("train.seed", 7, {"train"}),
        ("data.seed", 7, {"split"}),
        ("data.test_ratio", 0.4, {"split"}),
        ("export.quants", "q4_k_m", {"export"}),
        ("export.keep_f16", True, {"export"}),
        ("export.guard_threshold", 0.2, {"export"}),
        ("eval.max_tokens", 64, {"export", "eval"}),  # the guard answers with it too
        ("eval.gates", ["fact_recall>=0.5"], {"eval"}),
        ("eval.max_questions", 2, {"eval"}),
        ("ollama.names.tuned", "shop-ft", {"export", "create"}),
        ("augment.n", 5, set()),  # augmentation is off: nothing reads it
    ],
)
def test_a_recipe_key_reruns_exactly_the_stages_that_read_it(
    tmp_path: Path, key: str, value: Any, readers: set[str]
) -> None:
    recipe = write_recipe(tmp_path)
    run_previous(recipe)
    plan = _plan(recipe, {key: value})
    assert _rerun(plan) == readers
    for name in readers:
        assert f"{key} changed since the last run" in plan[name].reasons
    # Every stage after a re-run one is planned to run (if its upstream outputs change).
    first = min((list(plan).index(n) for n in readers), default=len(plan))
    assert all(s.action == "skip" for s in list(plan.values())[:first])


def test_changing_only_the_system_prompt_retrains_before_exporting(tmp_path: Path) -> None:
    recipe = write_recipe(tmp_path)
    run_previous(recipe)
    change = {"customize.system": "短く答えてください。"}
    plan = _plan(recipe, change)
    assert plan["train"].action == "run" and not plan["train"].conditional
    assert plan["export"].reasons == ["train will re-run"] and plan["export"].conditional
    # The runner agrees with the plan: train really runs again.
    statuses = run_previous(recipe, change)
    assert dict(zip(plan, statuses, strict=True))["train"] == "ran"


def test_the_runner_does_what_the_plan_says(tmp_path: Path) -> None:
    recipe = write_recipe(tmp_path)
    run_previous(recipe)
    loaded = load_recipe(recipe, {"train.seed": 9, "eval.max_questions": 3})
    plan = plan_recipe(loaded)
    result = run_recipe(loaded, stages=light_stages(Path(loaded.workdir)))
    for step, done in zip(plan, result.stages, strict=True):
        if step.action == "skip":
            assert done.status == "skipped", step
        elif not step.conditional:
            assert done.status == "ran", step


def test_a_missing_output_file_and_no_previous_run_are_reasons(tmp_path: Path) -> None:
    recipe = write_recipe(tmp_path)
    plan = _plan(recipe)
    assert {s.action for s in plan.values()} == {"run"}
    assert plan["check"].reasons == ["no previous result"]
    run_previous(recipe)
    test_split = tmp_path / "runs" / "recipe" / "data" / "test.jsonl"
    test_split.unlink()
    plan = _plan(recipe)
    assert plan["split"].reasons == [f"output missing: {test_split}"]


def test_cli_plan_names_the_changed_key_and_runs_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    recipe = write_recipe(tmp_path)
    run_previous(recipe)
    state = tmp_path / "runs" / "recipe" / "state.json"
    before = state.read_bytes()
    text = recipe.read_text(encoding="utf-8")
    recipe.write_text(text.replace("丁寧なサポート担当", "簡潔なサポート担当"), encoding="utf-8")
    code, out, err = run_cli(capsys, "run", str(recipe), "--plan")
    assert code == 0, err
    lines = [line.split(None, 2) for line in out.splitlines()[1:9]]
    assert [(n, a) for n, a, _ in lines] == [
        ("check", "skip"),
        ("split", "skip"),
        ("customize", "run"),
        ("augment", "skip"),
        ("train", "run"),
        ("export", "run*"),
        ("create", "run*"),
        ("eval", "run*"),
    ]
    assert lines[4][2] == "customize.system changed since the last run"
    assert lines[5][2] == "train will re-run"
    assert state.read_bytes() == before  # a plan writes nothing
    assert not (tmp_path / "runs" / "recipe" / "train").exists()
    code, out, _ = run_cli(capsys, "run", str(recipe), "--plan", "--json")
    data = json.loads(out)
    train = next(s for s in data["stages"] if s["name"] == "train")
    assert train == {
        "name": "train",
        "action": "run",
        "reasons": ["customize.system changed since the last run"],
        "conditional": False,
    }


def test_cli_plan_without_a_previous_run_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    recipe = write_recipe(tmp_path)
    code, out, _ = run_cli(capsys, "run", str(recipe), "--plan", "--json")
    assert code == 0
    stages = json.loads(out)["stages"]
    assert [s["reasons"] for s in stages] == [["no previous result"]] * 8
    assert not (tmp_path / "runs" / "recipe" / "state.json").exists()


def test_two_changed_keys_are_each_named_only_for_the_stages_that_read_them(
    tmp_path: Path,
) -> None:
    recipe = write_recipe(tmp_path)
    run_previous(recipe)
    plan = _plan(recipe, {"customize.shots": 1, "train.seed": 3})
    assert plan["customize"].reasons == ["customize.shots changed since the last run"]
    assert plan["train"].reasons == ["train.seed changed since the last run"]
