"""`ollama-tune run RECIPE --set KEY=VALUE`: any recipe key from the command line, through the
same dotted overrides as run's own flags (flag > recipe > default), with --check and --plan."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from _plan_helpers import run_previous, write_recipe

from _cli import run_cli


def _plan(capsys: pytest.CaptureFixture[str], recipe: Path, *args: str) -> dict[str, dict]:
    code, out, err = run_cli(capsys, "run", str(recipe), "--plan", "--json", *args)
    assert code == 0, err
    return {s["name"]: s for s in json.loads(out)["stages"]}


def test_set_reruns_the_stage_that_reads_the_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    recipe = write_recipe(tmp_path)
    run_previous(recipe)
    plan = _plan(capsys, recipe, "--set", "train.seed=7")
    assert plan["train"]["action"] == "run" and not plan["train"]["conditional"]
    assert plan["train"]["reasons"] == ["train.seed changed since the last run"]
    assert [plan[n]["action"] for n in ("check", "split", "customize")] == ["skip"] * 3
    # Repeatable, and each value is read as YAML: a float, a list.
    sets = ("--set", "train.learning_rate=1e-4", "--set", "eval.gates=[fact_recall>=0.5]")
    plan = _plan(capsys, recipe, *sets)
    assert plan["train"]["reasons"] == ["train.learning_rate changed since the last run"]
    assert plan["eval"]["reasons"] == ["eval.gates changed since the last run"]


def test_set_beats_the_recipe_value(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    recipe = write_recipe(tmp_path)  # export.quants: [q8_0]
    run_previous(recipe, {"export.quants": "q4_k_m"})
    plan = _plan(capsys, recipe, "--set", "export.quants=q4_k_m")
    assert plan["export"]["action"] == "skip"  # the same as the run that had the override
    plan = _plan(capsys, recipe)
    assert plan["export"]["reasons"] == ["export.quants changed since the last run"]


def test_set_works_with_check(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    recipe = write_recipe(tmp_path)
    code, out, _ = run_cli(capsys, "run", str(recipe), "--check", "--set", "train.seed=7")
    assert code == 0 and "no problems found" in out
    code, _, err = run_cli(capsys, "run", str(recipe), "--check", "--set", "train.seed=seven")
    assert code == 2
    assert "--set train.seed=seven:" in err


@pytest.mark.parametrize("bad", ["train.seed", "=7", "train..seed=7", "train.seed="])
def test_a_malformed_set_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], bad: str
) -> None:
    recipe = write_recipe(tmp_path)
    code, _, err = run_cli(capsys, "run", str(recipe), "--plan", "--set", bad)
    assert code == 2
    assert "--set" in err and "Hint:" in err


@pytest.mark.parametrize("mode", ["--plan", "--check"])
def test_a_typo_key_names_the_flag_and_suggests_the_right_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], mode: str
) -> None:
    recipe = write_recipe(tmp_path)
    code, out, err = run_cli(capsys, "run", str(recipe), mode, "--set", "train.learnig_rate=1e-4")
    assert code == 2, out
    text = " ".join(err.split())  # rich wraps long lines
    assert "--set train.learnig_rate=1e-4: unknown key `learnig_rate`" in text
    assert "did you mean `learning_rate`?" in text
    assert "recipe.yaml:" not in text  # not blamed on a recipe line
    code, _, err = run_cli(capsys, "run", str(recipe), mode, "--set", "trian.seed=7")
    assert code == 2 and "did you mean `train`?" in " ".join(err.split())


def test_a_key_set_by_both_set_and_its_own_flag_is_an_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    recipe = write_recipe(tmp_path)
    args = ("run", str(recipe), "--plan", "--max-steps", "5", "--set", "train.max_steps=10")
    code, _, err = run_cli(capsys, *args)
    assert code == 2 and "train.max_steps is set twice" in " ".join(err.split())
