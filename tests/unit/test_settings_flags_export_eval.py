"""One definition per setting: the `export` and `eval` flags are the settings models' fields
(same name, default None so the model's default applies), and the library defaults agree."""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any, get_origin

import pytest
import typer

from ollama_tune.cli import app
from ollama_tune.evaluate import EvalConfig, guard_quantization
from ollama_tune.evaluate.settings import DEFAULT_MAX_TOKENS, EvalSettings
from ollama_tune.export.settings import ExportSettings
from ollama_tune.settings import Section

# The settings each command takes as flags; the others are recipe-only (keep_f16: the export
# command keeps f16 exactly when its guard runs; models: `eval --model` names the models).
EXPOSED = {
    "export": (ExportSettings, {"quants", "guard_threshold", "guard_max_tokens"}),
    "eval": (
        EvalSettings,
        {"max_tokens", "gates", "judge", "concurrency", "max_questions", "train_sample"},
    ),
}


def _params(command: str) -> dict[str, Any]:
    group: Any = typer.main.get_command(app)
    return {str(p.name): p for p in group.commands[command].params}


def _is_list(model: type[Section], field: str) -> bool:
    return get_origin(model.model_fields[field].annotation) is list


@pytest.mark.parametrize("command", sorted(EXPOSED))
def test_each_setting_flag_has_the_field_name_and_no_default_of_its_own(command: str) -> None:
    model, exposed = EXPOSED[command]
    params = _params(command)
    shared = {name for name in params if name in model.model_fields}
    assert shared == exposed
    for field in exposed:
        opts = params[field].opts
        flag = "--" + field.replace("_", "-")
        # A repeatable flag names one item (`--gate` for `gates`).
        allowed = {flag, flag.removesuffix("s")} if _is_list(model, field) else {flag}
        assert allowed & set(opts), f"{command} {field}: flags {opts}, expected {flag}"
        assert params[field].default is None, f"{command} {flag} has its own default"


def test_a_flag_that_spells_a_field_is_that_field() -> None:
    # `--limit` stays as the old spelling of `--max-questions`, on the same option.
    params = _params("eval")
    assert {"--max-questions", "--limit"} <= set(params["max_questions"].opts)
    assert {"--quant", "--quants"} <= set(_params("export")["quants"].opts)


def _default(fn: Any, name: str) -> Any:
    return inspect.signature(fn).parameters[name].default


def test_the_library_defaults_are_the_settings_defaults() -> None:
    export, evaluation = ExportSettings(), EvalSettings()
    assert export.quants == ["q8_0"]  # what the example recipe and README recommend
    assert export.guard_threshold == 0.05 == _default(guard_quantization, "threshold")
    assert evaluation.max_tokens == DEFAULT_MAX_TOKENS == 384
    assert _default(guard_quantization, "max_tokens") == DEFAULT_MAX_TOKENS
    assert EvalConfig(models={}).max_tokens == DEFAULT_MAX_TOKENS


def test_guard_candidates_must_be_exported_types() -> None:
    assert ExportSettings(quants="q8_0,q4_k_m", guard_candidates="q4_k_m").guard_candidates == [
        "q4_k_m"
    ]
    kept = ExportSettings(quants=["q8_0"], keep_f16=True, guard_candidates=["f16"])
    assert kept.guard_candidates == ["f16"]
    with pytest.raises(ValueError, match="guard_candidates q4_k_m not exported"):
        ExportSettings(quants=["q8_0"], guard_candidates=["q4_k_m"])


def test_quant_names_are_normalised_like_the_exporter_does() -> None:
    assert ExportSettings(quants="Q4-K-M, q8_0+IMAT").quants == ["q4_k_m", "q8_0+imat"]
    with pytest.raises(ValueError, match="unknown quantization"):
        ExportSettings(quants=["f16+imat"])


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--quant", "q3_x"], "--quant: unknown quantization 'q3_x'"),
        (["--guard-threshold", "2"], "--guard-threshold: Input should be less than or equal to 1"),
    ],
)
def test_export_flags_are_checked_by_the_settings_model(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    from ollama_tune.cli import main

    with pytest.raises(SystemExit) as exit_info:
        main(["export", str(tmp_path), *argv])
    assert exit_info.value.code == 1
    assert message in capsys.readouterr().err
