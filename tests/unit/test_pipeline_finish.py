"""The create and eval-wiring stages: Ollama reachable (the documented-API fake) or not."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from ollama_tune.config import Recipe
from ollama_tune.errors import OllamaError
from ollama_tune.pipeline import Context
from ollama_tune.pipeline.finish import _create_inputs, _create_run, create_commands, model_refs


def _ctx(tmp_path: Path, **ollama: Any) -> Context:
    train = tmp_path / "train.jsonl"
    train.write_text('{"instruction": "q", "output": "a"}\n', encoding="utf-8")
    recipe = Recipe.model_validate(
        {
            "name": "shop",
            "data": {"train": str(train)},
            "ollama": {"names": {"customized": "shop-prompted"}, **ollama},
            "workdir": str(tmp_path / "work"),
        }
    )
    weights = tmp_path / "model.gguf"
    weights.write_bytes(b"GGUF" + bytes(range(256)) * 4)
    custom = tmp_path / "customize" / "Modelfile"
    custom.parent.mkdir()
    custom.write_text(f"FROM {weights}\nSYSTEM 丁寧に答えてください。\n", encoding="utf-8")
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    (bundle / "model-q8_0.gguf").write_bytes(weights.read_bytes())
    (bundle / "Modelfile").write_text("FROM ./model-q8_0.gguf\nPARAMETER stop <|im_end|>\n")
    ctx = Context(recipe=recipe, workdir=tmp_path / "work")
    ctx.outputs = {
        "customize": {"modelfile": str(custom)},
        "export": {"bundle": str(bundle)},
        "create": {"created": []},
    }
    ctx.live["base_gguf"] = str(weights)
    return ctx


def test_create_uploads_both_models_when_ollama_answers(tmp_path: Path, fake_ollama) -> None:
    ctx = _ctx(tmp_path)
    assert _create_inputs(ctx)["reachable"] is True
    out = _create_run(ctx)
    assert out["created"] == ["shop-prompted", "shop-tuned"]
    body = fake_ollama.last("/api/create").json
    assert body["model"] == "shop-tuned" and "model-q8_0.gguf" in body["files"]
    assert {m.split(":")[0] for m in fake_ollama.models} >= {"shop-prompted", "shop-tuned"}


def test_create_is_skipped_with_a_note_when_no_server_answers(tmp_path: Path) -> None:
    ctx = _ctx(tmp_path)  # OLLAMA_HOST points at a closed port (conftest)
    assert _create_inputs(ctx)["reachable"] is False
    assert _create_run(ctx) == {"created": [], "paths": []}
    assert "skipped" in ctx.notes[0]
    cmds = create_commands(ctx)
    assert cmds[0].startswith("ollama create shop-prompted -f ")
    assert cmds[1] == f"ollama create shop-tuned -f {tmp_path / 'bundle' / 'Modelfile'}"


def test_create_always_fails_clearly_without_a_server(tmp_path: Path) -> None:
    with pytest.raises(OllamaError) as err:
        _create_run(_ctx(tmp_path, create="always"))
    assert "ollama serve" in (err.value.hint or "")


def test_create_never_does_not_touch_ollama(tmp_path: Path, fake_ollama) -> None:
    ctx = _ctx(tmp_path, create="never")
    assert _create_run(ctx) == {"created": [], "paths": []}
    assert fake_ollama.requests == []


def test_embedded_models_all_run_locally(tmp_path: Path) -> None:
    refs = model_refs(_ctx(tmp_path))
    assert refs == {
        "base": str(tmp_path / "model.gguf"),
        "customized": str(tmp_path / "customize" / "Modelfile"),
        "tuned": str(tmp_path / "bundle"),
    }


def test_ollama_base_uses_created_models_and_falls_back_to_files(tmp_path: Path) -> None:
    ctx = _ctx(tmp_path)
    ctx.recipe.base_model = "llama3.2:1b"
    ctx.outputs["create"] = {"created": ["shop-tuned"]}
    refs = model_refs(ctx)
    assert refs["base"] == "ollama:llama3.2:1b"
    assert refs["tuned"] == "ollama:shop-tuned"
    assert refs["customized"] == str(tmp_path / "customize" / "Modelfile")


def test_a_namespaced_ollama_base_is_not_taken_for_a_local_path(tmp_path: Path) -> None:
    ctx = _ctx(tmp_path)
    ctx.recipe.base_model = "user/model:7b"
    assert model_refs(ctx)["base"] == "ollama:user/model:7b"


def test_an_alias_in_any_case_runs_locally(tmp_path: Path) -> None:
    ctx = _ctx(tmp_path)
    ctx.recipe.base_model = "SmolLM2"
    assert model_refs(ctx)["base"] == str(tmp_path / "model.gguf")
