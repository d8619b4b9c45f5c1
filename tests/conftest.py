"""Test isolation shared by unit and integration suites.

Every test gets its own user directory, no hub access, and an OLLAMA_HOST that points nowhere
(tests that talk to Ollama start the documented-API fake and point OLLAMA_HOST at it).
"""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def _isolated_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "_home"
    home.mkdir()
    monkeypatch.setenv("OLLAMA_TUNE_HOME", str(home))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(home / "hf"))
    monkeypatch.setenv("MPLBACKEND", "Agg")
    # Port 9 (discard) on loopback: nothing answers, so a stray real call fails fast.
    monkeypatch.setenv("OLLAMA_HOST", "http://127.0.0.1:9")
    monkeypatch.delenv("OLLAMA_TUNE_DEBUG", raising=False)
    monkeypatch.setenv("COLUMNS", "200")
