"""Base model resolution: local HF dirs, GGUF headers, clear errors for what we cannot use."""

from __future__ import annotations

from pathlib import Path

import pytest

from ollama_tune.errors import ModelError
from ollama_tune.models import (
    SUPPORTED_GGUF_ARCHITECTURES,
    gguf_architecture,
    load_causal_lm,
    resolve_base_model,
)


def write_gguf(path: Path, arch: str) -> Path:
    """A header-only GGUF (metadata, no tensors): enough to test architecture checks."""
    import gguf
    import numpy as np

    writer = gguf.GGUFWriter(str(path), arch)
    writer.add_block_count(1)
    writer.add_tensor("token_embd.weight", np.zeros((4, 4), dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def test_local_hf_directory_resolves_and_loads(tiny_model_dir: Path) -> None:
    ref = resolve_base_model(str(tiny_model_dir))
    assert ref.kind == "hf_dir" and ref.hf_dir == tiny_model_dir.resolve()
    assert ref.architecture == "llama"
    assert ref.sha256 and len(ref.sha256) == 64
    assert resolve_base_model(str(tiny_model_dir)).sha256 == ref.sha256
    assert set(ref.to_json()) == {"spec", "kind", "hf_dir", "source_path", "sha256"}
    model, tok = load_causal_lm(ref)
    assert model.config.model_type == "llama"
    assert "<|im_start|>" in tok.chat_template and tok.pad_token is not None


def test_missing_paths_and_non_gguf_files_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="does not exist"):
        resolve_base_model(str(tmp_path / "nope.gguf"))
    text = tmp_path / "weights.bin"
    text.write_text("x")
    with pytest.raises(ModelError, match=r"not a \.gguf") as err:
        resolve_base_model(str(text))
    assert "Ollama model name" in (err.value.hint or "")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ModelError, match=r"no config\.json"):
        resolve_base_model(str(empty))


def test_unsupported_gguf_architecture_lists_the_supported_ones(tmp_path: Path) -> None:
    path = write_gguf(tmp_path / "encoder.gguf", "bert")
    assert gguf_architecture(path) == "bert"
    with pytest.raises(ModelError, match="'bert'") as err:
        resolve_base_model(str(path))
    for arch in ("llama", "qwen2", "gemma3", "phi3"):
        assert arch in (err.value.hint or "")
    assert set(SUPPORTED_GGUF_ARCHITECTURES) >= {"llama", "mistral", "qwen3"}


def test_a_file_that_is_not_gguf_is_reported(tmp_path: Path) -> None:
    bad = tmp_path / "broken.gguf"
    bad.write_bytes(b"not a gguf at all")
    with pytest.raises(ModelError, match="not a readable GGUF"):
        resolve_base_model(str(bad))


def test_hf_repo_id_offline_is_a_clear_error() -> None:
    with pytest.raises(ModelError, match="offline") as err:
        resolve_base_model("HuggingFaceTB/SmolLM2-135M-Instruct")
    assert "smollm2-135m" in (err.value.hint or "")


def test_ollama_model_name_resolves_its_gguf_blob(fake_ollama, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    blob = write_gguf(tmp_path / ("sha256-" + "ab" * 32), "bert")
    fake_ollama.add_model("encoder:1b", gguf_path=str(blob))
    # The blob is found through /api/show; its architecture is then checked before any loading.
    with pytest.raises(ModelError, match=r"sha256-abab.*'bert'"):
        resolve_base_model("encoder:1b")
