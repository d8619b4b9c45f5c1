"""One definition per setting: the recipe section, the CLI flags and run.json share the
settings model's field names, and a flag left out falls back to the model's default."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import typer

from _cli import run_cli
from ollama_tune.cli import app
from ollama_tune.config import Recipe
from ollama_tune.settings import flag
from ollama_tune.train.config import TrainConfig
from ollama_tune.train.settings import TrainSettings


def _params(command: str) -> dict[str, Any]:
    # typer vendors its own click: the objects are click-shaped, not `click` classes.
    root: Any = typer.main.get_command(app)
    cmd = root.commands[command]
    return {p.name: p for p in cmd.params if p.name}


def test_every_training_setting_is_a_train_flag_named_after_it_with_no_default() -> None:
    params = _params("train")
    for name in TrainSettings.model_fields:
        assert name in params, f"train has no flag for the setting {name}"
        param = params[name]
        assert flag(name) in param.opts, (name, param.opts)
        # None means "not given": the settings model's default (or the recipe) applies.
        assert param.default is None, (name, param.default)
    inputs = set(TrainConfig.model_fields) - set(TrainSettings.model_fields)
    unknown = set(params) - set(TrainSettings.model_fields) - inputs - {"as_json"}
    assert not unknown, f"train flags that are neither a setting nor an input: {unknown}"


def test_the_recipe_train_section_is_the_training_settings_model() -> None:
    assert Recipe.model_fields["train"].annotation is TrainSettings
    # What the library takes is that model plus the run's inputs, not a copy of its fields.
    assert issubclass(TrainConfig, TrainSettings)


@pytest.mark.parametrize(
    ("old", "new", "value"),
    [
        ("grad_accum", "gradient_accumulation_steps", 3),
        ("max_eval_rows", "val_questions", 5),
        ("test_ratio", "val_ratio", 0.3),
    ],
)
def test_old_names_of_a_setting_still_load_into_its_one_field(
    old: str, new: str, value: Any
) -> None:
    assert getattr(TrainSettings.model_validate({old: value}), new) == value


def test_train_flags_reach_the_config_under_the_settings_names(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    seen: dict[str, TrainConfig] = {}

    def fake_train(config: TrainConfig, *_: Any) -> Any:
        seen["config"] = config
        raise typer.Exit(0)

    monkeypatch.setattr("ollama_tune.train.train_lora", fake_train)
    monkeypatch.setattr("ollama_tune.cli.train_cmd._in_child", fake_train)
    data = tmp_path / "d.jsonl"
    data.write_text('{"instruction": "q", "output": "a"}\n', encoding="utf-8")
    flags = ("--grad-accum", "3", "--bf16", "off", "--target-modules", "q_proj,v_proj")
    code, _out, err = run_cli(capsys, "train", "--data", str(data), *flags, "--json")
    assert code == 0, err
    config = seen["config"]
    assert config.gradient_accumulation_steps == 3 and config.bf16 is False
    assert config.target_modules == ["q_proj", "v_proj"]
    # Not given: the model's own defaults, not a second copy in the CLI.
    assert config.lora_r == TrainSettings().lora_r and config.learning_rate is None
    record = config.to_json()
    assert record["gradient_accumulation_steps"] == 3 and "grad_accum" not in record


def test_a_bad_flag_value_names_the_flag_and_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "d.jsonl"
    data.write_text('{"instruction": "q", "output": "a"}\n', encoding="utf-8")
    args = ("train", "--data", str(data), "--lora-r", "0", "--bf16", "maybe", "--method", "x")
    code, out, err = run_cli(capsys, *args)
    text = " ".join((out + err).split())
    assert code == 2, text
    for name in ("--lora-r", "--bf16", "--method"):
        assert name in text
    assert "Traceback" not in text


def test_the_customize_section_and_the_customize_library_share_one_settings_model() -> None:
    from ollama_tune.customize import CustomizeRunConfig
    from ollama_tune.prompt import CustomizeConfig, CustomizeSettings, PromptSettings

    for config in (CustomizeSettings, CustomizeConfig, CustomizeRunConfig):
        assert issubclass(config, PromptSettings), config
    # Inherited, not re-declared: each prompt setting has one definition (one default).
    for name in PromptSettings.model_fields:
        for config in (CustomizeSettings, CustomizeConfig, CustomizeRunConfig):
            assert repr(config.model_fields[name]) == repr(PromptSettings.model_fields[name])


@pytest.mark.parametrize(
    "section", ["data", "customize", "augment", "train", "export", "ollama", "eval"]
)
def test_each_recipe_section_is_owned_by_its_stage_module(section: str) -> None:
    owner = Recipe.model_fields[section].annotation
    assert isinstance(owner, type)
    assert owner.__module__ != "ollama_tune.config", f"{section}: {owner.__module__}"


@pytest.mark.parametrize(
    ("command", "model", "fields"),
    [
        ("customize", "prompt.CustomizeSettings", {"system", "shots", "temperature", "top_p",
                                                   "num_ctx", "knowledge"}),
        ("data augment", "data.augment.settings.AugmentSettings", {"n", "seed", "teacher"}),
    ],
)  # fmt: skip
def test_customize_and_augment_flags_are_their_sections_fields_with_no_default(
    command: str, model: str, fields: set[str]
) -> None:
    import importlib

    module, name = model.rsplit(".", 1)
    settings = getattr(importlib.import_module(f"ollama_tune.{module}"), name)
    root: Any = typer.main.get_command(app)
    for part in command.split():
        root = root.commands[part]
    params = {p.name: p for p in root.params}
    for field in fields:
        assert field in settings.model_fields, field
        assert flag(field) in params[field].opts and params[field].default is None, field


def test_a_customize_flag_out_of_range_is_a_usage_error_naming_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "d.jsonl"
    data.write_text('{"instruction": "q", "output": "a"}\n', encoding="utf-8")
    args = ("customize", "--data", str(data), "--base-model", "m", "--model-name", "x")
    code, out, err = run_cli(capsys, *args, "--temperature", "5", "--shots", "-1", "--no-create")
    text = " ".join((out + err).split())
    assert code == 2, text
    assert "--temperature" in text and "--shots" in text and "Traceback" not in text


def test_run_check_reports_a_cross_field_training_problem_before_any_model_loads(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from _plan_helpers import write_recipe

    monkeypatch.setenv("COLUMNS", "400")  # a long tmp path must not wrap inside the table cell
    recipe = write_recipe(tmp_path)
    text = recipe.read_text(encoding="utf-8")
    recipe.write_text(
        text + "train:\n  early_stopping_patience: 2\n  val_recall: false\n"
        "  eval_steps: 3\n  save_steps: 5\n",
        encoding="utf-8",
    )
    code, out, err = run_cli(capsys, "run", str(recipe), "--check")
    shown = " ".join((out + err).split())
    assert code != 0, shown
    assert "--save-steps 5 must be a multiple of --eval-steps 3" in shown
    assert "recipe.yaml:" in shown


def test_the_library_configs_extend_their_stages_settings_models() -> None:
    from ollama_tune.evaluate import EvalConfig
    from ollama_tune.evaluate.settings import EvalSettings
    from ollama_tune.export import ExportConfig
    from ollama_tune.export.settings import ExportSettings

    assert issubclass(EvalConfig, EvalSettings)
    assert issubclass(Recipe.model_fields["eval"].annotation, EvalSettings)  # type: ignore[arg-type]
    assert issubclass(ExportConfig, ExportSettings)
    assert Recipe.model_fields["export"].annotation is ExportSettings
