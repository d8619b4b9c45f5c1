"""Integration fixtures: one real `ollama serve` and one real SmolLM2 bundle per session."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ollama_server import OllamaServer, binary_version, ollama_binary


def pytest_report_header(config: pytest.Config) -> str:
    binary = ollama_binary()
    if binary is None:
        return "ollama: not built (run `make ollama`); tests marked `ollama` will fail"
    return f"ollama: {binary} (version {binary_version(binary)})"


@pytest.fixture(scope="session")
def ollama_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OllamaServer]:
    binary = ollama_binary()
    if binary is None:
        pytest.fail(
            "no Ollama binary: run `make ollama` (scripts/build-ollama.sh builds it from its Go "
            "module) or set OLLAMA_BIN to an installed `ollama`",
            pytrace=False,
        )
    server = OllamaServer(binary=binary, home=tmp_path_factory.mktemp("ollama-home"))
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def ollama(ollama_server: OllamaServer, monkeypatch: pytest.MonkeyPatch) -> OllamaServer:
    """The real server, with OLLAMA_HOST and OLLAMA_MODELS pointing at it for this test."""
    monkeypatch.setenv("OLLAMA_HOST", ollama_server.host)
    monkeypatch.setenv("OLLAMA_MODELS", str(ollama_server.models))
    return ollama_server


@pytest.fixture(scope="session")
def smol_bundle(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    from _smol_bundle import build_bundle

    return build_bundle(Path(tmp_path_factory.mktemp("smol-run")))
