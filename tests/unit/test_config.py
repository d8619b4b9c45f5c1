"""Recipes: precedence, relative paths, and `check_recipe` reporting every problem at once."""

from __future__ import annotations

from pathlib import Path

import pytest

from ollama_tune.cli import app
from ollama_tune.config import check_recipe, load_recipe
from ollama_tune.errors import UsageError

GOOD = """\
name: shop
data:
  train: data/train.jsonl
  test_ratio: 0.2
base_model: smollm2-135m
train:
  max_steps: 5
  lora_r: 4
export:
  quants: [q8_0]
eval:
  max_tokens: 32
  gates: ["fact_recall>=0.5"]
"""


def _write(tmp_path: Path, text: str) -> Path:
    (tmp_path / "data").mkdir(exist_ok=True)
    (tmp_path / "data" / "train.jsonl").write_text('{"instruction":"q","output":"a"}\n')
    path = tmp_path / "recipe.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_recipe_paths_are_relative_to_the_recipe_file(tmp_path: Path, monkeypatch) -> None:
    path = _write(tmp_path, GOOD)
    monkeypatch.chdir("/")
    recipe = load_recipe(path)
    assert recipe.data.train == (tmp_path / "data" / "train.jsonl").resolve()
    # Without `workdir:` the run goes next to the recipe, named after it.
    assert recipe.workdir == (tmp_path / "runs" / "recipe").resolve()
    assert recipe.source == path.resolve()


def test_flags_override_recipe_values_which_override_defaults(tmp_path: Path) -> None:
    flags = {"train.max_steps": 9, "export.quants": "q4_k_m,f16"}
    recipe = load_recipe(_write(tmp_path, GOOD), flags)
    assert recipe.train.max_steps == 9  # flag beats recipe (5)
    assert recipe.train.lora_r == 4  # recipe beats default (8)
    assert recipe.train.lora_alpha == 16  # default
    assert recipe.export.quants == ["q4_k_m", "f16"]
    # A None override means "flag not given": the recipe value stays.
    assert load_recipe(tmp_path / "recipe.yaml", {"train.max_steps": None}).train.max_steps == 5


def test_check_recipe_reports_every_problem_with_its_line(tmp_path: Path) -> None:
    bad = """\
data:
  train: missing.jsonl
  tset: other.jsonl
  test_ratio: 2
train:
  lora_rank: 8
  max_steps: ten
export:
  quants: [q4_k_m, q9_z]
eval:
  gates: ["fact_recall>=0.9", "recall is high"]
"""
    issues = check_recipe(_write(tmp_path, bad))
    by_key = {i.key: i for i in issues}
    assert set(by_key) == {
        "data.train",
        "data.tset",
        "data.test_ratio",
        "train.lora_rank",
        "train.max_steps",
        "export.quants.1",
        "eval.gates.1",
    }
    assert by_key["data.train"].line == 2 and "not found" in by_key["data.train"].message
    assert by_key["data.tset"].line == 3 and "`test`" in by_key["data.tset"].hint
    assert by_key["train.lora_rank"].line == 6 and "`lora_r`" in by_key["train.lora_rank"].hint
    assert by_key["train.max_steps"].line == 7
    assert by_key["export.quants.1"].line == 9 and "q4_k_m" in by_key["export.quants.1"].hint
    assert by_key["eval.gates.1"].line == 11
    assert [i.line for i in issues] == sorted(i.line for i in issues)


def test_load_recipe_raises_a_usage_error_listing_the_problems(tmp_path: Path) -> None:
    path = _write(tmp_path, GOOD.replace("lora_r: 4", "lora_rr: 4"))
    with pytest.raises(UsageError) as err:
        load_recipe(path)
    assert "recipe.yaml:8" in err.value.message and "lora_rr" in err.value.message
    assert "--check" in (err.value.hint or "")


def test_invalid_yaml_is_reported_with_its_line(tmp_path: Path) -> None:
    issues = check_recipe(_write(tmp_path, "data:\n  train: [unclosed\n"))
    assert len(issues) == 1 and "not valid YAML" in issues[0].message and issues[0].line >= 2


def test_cli_run_check_prints_a_table_and_exits_1(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    path = _write(tmp_path, GOOD.replace("lora_r: 4", "lora_rank: 4"))
    res = CliRunner().invoke(app, ["run", "--check", str(path)])
    assert res.exit_code == 1, res.output
    assert "lora_rank" in res.output and "did you mean `lora_r`" in res.output
    ok = CliRunner().invoke(app, ["run", "--check", str(_write(tmp_path, GOOD))])
    assert ok.exit_code == 0 and "no problems" in ok.output
