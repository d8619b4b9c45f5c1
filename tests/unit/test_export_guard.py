"""The quantization guard runs inside `export_bundle` (its last step, `ship.guard_and_ship`),
from the export settings alone: the CLI and a run's stage only build the config.

The GGUFs are stand-in files answered by scripted models (through the runtime's `open_model`);
the end-to-end path with real llama.cpp files is in test_export_bundle.py.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from _plan_helpers import write_recipe
from test_eval_compare import GOOD, ROWS, ScriptedModel

from ollama_tune.config import load_recipe
from ollama_tune.export import ExportConfig, ExportResult
from ollama_tune.export import ship as ship_module
from ollama_tune.pipeline import Context
from ollama_tune.pipeline.stages import _export_config, _export_inputs

SIZES = {"f16": 400, "q8_0": 200, "q4_k_m": 100}


@pytest.fixture
def exported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    ggufs = {}
    for quant, size in SIZES.items():
        ggufs[quant] = tmp_path / f"model-{quant}.gguf"
        ggufs[quant].write_bytes(b"\0" * size)
    questions = tmp_path / "test.jsonl"
    rows = [{"question": q, "answer": a, **({"facts": f} if f else {})} for q, a, f in ROWS]
    questions.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), "utf-8")
    answers = {"f16": GOOD, "q8_0": GOOD, "q4_k_m": {ROWS[0][0]: ROWS[0][1]}}
    opened: list[ScriptedModel] = []

    def open_model(ref: str, **_: Any) -> ScriptedModel:
        opened.append(ScriptedModel(ref, answers[Path(ref).stem.removeprefix("model-")]))
        return opened[-1]

    shipped: list[tuple[str, str]] = []

    def ship_quant(result: ExportResult, quant: str, reason: str, **_: Any) -> ExportResult:
        shipped.append((quant, reason))
        return replace(result, shipped=quant, shipped_reason=reason)

    monkeypatch.setattr("ollama_tune.runtime.open_model", open_model)
    monkeypatch.setattr(ship_module, "ship_quant", ship_quant)
    result = ExportResult(
        run_dir=tmp_path, bundle_dir=tmp_path, merged_dir=tmp_path, name="shop", ggufs=ggufs,
        sizes=SIZES, sha256={}, timings={}, modelfile=tmp_path / "Modelfile",
        readme=tmp_path / "README.md", shipped="q8_0", shipped_reason=ship_module.NO_GUARD_REASON,
    )  # fmt: skip
    return {
        "result": result,
        "questions": questions,
        "opened": opened,
        "shipped": shipped,
        "dir": tmp_path,
    }


def _config(ex: dict[str, Any], **values: Any) -> ExportConfig:
    settings = {"quants": ["q8_0", "q4_k_m"], "keep_f16": True, "guard_questions": ex["questions"]}
    return ExportConfig(run_dir=ex["dir"], **{**settings, **values})


def test_the_guard_ships_the_smallest_type_within_the_threshold(exported: dict[str, Any]) -> None:
    result = ship_module.guard_and_ship(exported["result"], _config(exported), ["q8_0", "q4_k_m"])
    assert result.guard is not None
    assert set(result.guard.scores) == {"f16", "q8_0", "q4_k_m"}
    assert result.shipped == "q8_0" and exported["shipped"][0][0] == "q8_0"
    assert "smallest type within 5 points of f16" in str(result.shipped_reason)
    notes = result.guard_notes()
    assert notes[0].startswith("q4_k_m loses") and notes[-1].startswith("ships q8_0: ")
    # Without guard_max_tokens the guard answers with the evaluation's default length.
    assert {o.options[0].max_tokens for o in exported["opened"]} == {384}


def test_the_settings_choose_the_candidates_and_the_answer_length(
    exported: dict[str, Any],
) -> None:
    config = _config(exported, guard_candidates=["q4_k_m"], guard_max_tokens=7)
    result = ship_module.guard_and_ship(exported["result"], config, ["q8_0", "q4_k_m"])
    # q4_k_m is the only candidate: nothing is within 5 points, it ships and says so.
    assert result.shipped == "q4_k_m" and "no type is within" in str(result.shipped_reason)
    assert {o.options[0].max_tokens for o in exported["opened"]} == {7}


@pytest.mark.parametrize(
    "change",
    [
        {"guard_threshold": None},
        {"guard_questions": None},
        {"guard_questions": Path("missing.jsonl")},
    ],
)
def test_no_guard_unless_the_settings_ask_for_it(
    exported: dict[str, Any], change: dict[str, Any]
) -> None:
    result = ship_module.guard_and_ship(exported["result"], _config(exported, **change), ["q8_0"])
    assert result is exported["result"] and result.guard is None
    assert exported["opened"] == [] and result.guard_notes() == []


def test_no_guard_without_the_f16_reference(exported: dict[str, Any]) -> None:
    base = exported["result"]
    no_f16 = replace(base, ggufs={q: p for q, p in base.ggufs.items() if q != "f16"})
    assert ship_module.guard_and_ship(no_f16, _config(exported), ["q8_0"]).guard is None
    only_f16 = replace(base, ggufs={"f16": base.ggufs["f16"]})
    assert ship_module.guard_and_ship(only_f16, _config(exported), ["f16"]).guard is None
    assert exported["opened"] == []


def test_the_export_stage_hashes_the_config_it_passes(tmp_path: Path) -> None:
    recipe = load_recipe(write_recipe(tmp_path), {"export.keep_f16": True})
    ctx = Context(
        recipe=recipe,
        workdir=tmp_path / "runs",
        outputs={"train": {"run_dir": str(tmp_path / "t")}, "split": {"test": "test.jsonl"}},
    )
    config = _export_config(ctx)
    assert _export_inputs(ctx) == {"export": config.model_dump(mode="json")}
    # The guard answers like the eval stage (eval.max_tokens: 128 in the recipe) and the test
    # split; the threshold is the one default.
    assert (config.guard_max_tokens, config.guard_questions) == (128, Path("test.jsonl"))
    assert (config.quants, config.keep_f16, config.guard_threshold) == (["q8_0"], True, 0.05)
    assert config.name == recipe.tuned_name and config.out_dir == ctx.workdir / "bundle"
