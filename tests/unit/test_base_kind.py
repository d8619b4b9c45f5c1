"""`models.base_kind`: the one rule for what kind of base a `--base-model` string names.

Pure string and file-system tests: nothing is loaded, hashed or converted.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from ollama_tune.config import Recipe
from ollama_tune.errors import ModelError
from ollama_tune.models import base_kind, local_gguf
from ollama_tune.pipeline import Context
from ollama_tune.pipeline.stages import _customize_settings


def _gguf(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"GGUF" + bytes(16))
    return path


@pytest.mark.parametrize("spec", [None, "", "smollm2-135m", "SmolLM2", " smollm2-135m "])
def test_aliases_and_the_default_are_alias(spec: str | None) -> None:
    assert base_kind(spec) == "alias"


def test_a_gguf_file_and_a_folder_with_one_gguf_are_gguf(tmp_path: Path) -> None:
    file = _gguf(tmp_path / "m.GGUF")
    assert base_kind(str(file)) == "gguf"
    assert local_gguf(str(file)) == file.resolve()
    folder = tmp_path / "one"
    inside = _gguf(folder / "weights.gguf")
    assert base_kind(str(folder)) == "gguf"
    assert local_gguf(str(folder)) == inside.resolve()


def test_a_folder_with_config_json_is_hf_dir_even_with_a_gguf(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text("{}")
    _gguf(tmp_path / "extra.gguf")
    assert base_kind(str(tmp_path)) == "hf_dir"
    assert local_gguf(str(tmp_path)) is None


def test_unusable_paths_are_errors_and_have_no_gguf(tmp_path: Path) -> None:
    text = tmp_path / "weights.bin"
    text.write_text("x")
    two = tmp_path / "two"
    _gguf(two / "a.gguf")
    _gguf(two / "b.gguf")
    cases = {
        str(tmp_path / "nope.gguf"): "does not exist",
        "./missing-folder": "does not exist",
        "~/no-such-base-model-here": "does not exist",
        str(text): r"not a \.gguf",
        str(two): r"no config\.json",
    }
    for spec, message in cases.items():
        with pytest.raises(ModelError, match=message):
            base_kind(spec)
        assert local_gguf(spec) is None


def test_org_slash_name_is_a_repo_id_not_a_local_path_unless_the_folder_exists(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert base_kind("HuggingFaceTB/SmolLM2-135M-Instruct") == "hf_repo"
    assert base_kind("user/model") == "hf_repo"
    assert local_gguf("user/model") is None
    (tmp_path / "user" / "model").mkdir(parents=True)
    (tmp_path / "user" / "model" / "config.json").write_text("{}")
    assert base_kind("user/model") == "hf_dir"


@pytest.mark.parametrize(
    "spec",
    [
        "qwen2.5:0.5b",
        "llama3.2",
        "user/model:7b",
        "user/model:latest",
        "hf.co/bartowski/Llama-3.2-1B-Instruct-GGUF:Q4_K_M",
        "registry.ollama.ai/library/llama3",
    ],
)
def test_everything_else_is_an_ollama_name(
    spec: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert base_kind(spec) == "ollama"
    assert local_gguf(spec) is None


def _recipe_ctx(tmp_path: Path, base_model: str) -> Context:
    train = tmp_path / "train.jsonl"
    train.write_text('{"instruction": "q", "output": "a"}\n', encoding="utf-8")
    recipe = Recipe.model_validate(
        {"name": "shop", "data": {"train": str(train)}, "workdir": str(tmp_path / "w")}
    )
    recipe.base_model = base_model
    ctx = Context(recipe=recipe, workdir=tmp_path / "w")
    ctx.outputs = {"split": {"train": str(train)}}
    return ctx


def test_customize_uses_the_base_gguf_for_local_bases_and_the_name_for_ollama(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    weights = _gguf(tmp_path / "m.gguf")
    assert _customize_settings(_recipe_ctx(tmp_path, str(weights)))["base_model"] == str(
        weights.resolve()
    )
    # A namespaced Ollama name has a "/" but is no local path: FROM keeps the name.
    ollama = _customize_settings(_recipe_ctx(tmp_path, "user/model:7b"))
    assert ollama["base_model"] == "user/model:7b"
    # An HF folder has no GGUF: FROM names the folder, not "None".
    hf = tmp_path / "hf"
    hf.mkdir()
    (hf / "config.json").write_text("{}")
    assert _customize_settings(_recipe_ctx(tmp_path, str(hf)))["base_model"] == str(hf)
