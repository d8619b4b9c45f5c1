"""A real `ollama serve` for the integration tests, on a free 127.0.0.1 port.

The binary is `OLLAMA_BIN` when set (a user's own install), else the one
`scripts/build-ollama.sh` builds from Ollama's Go module into the user cache (`make ollama`,
part of `make test`). A missing binary fails the tests that need it: CI must prove every path
against the real server, so it is never a skip. Models live in a temp `OLLAMA_MODELS`; the
server runs with `OLLAMA_DEBUG=2` (trace) so tests can read the prompt Ollama rendered from its log.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

OLLAMA_VERSION = "0.24.0"  # keep in step with scripts/build-ollama.sh


def tools_dir() -> Path:
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(os.environ.get("OLLAMA_TUNE_TOOLS") or Path(cache) / "ollama-tune" / "tools")


def ollama_binary() -> Path | None:
    explicit = os.environ.get("OLLAMA_BIN")
    if explicit:
        return Path(explicit)
    built = tools_dir() / f"ollama-v{OLLAMA_VERSION}" / "ollama"
    return built if built.is_file() else None


def binary_version(binary: Path) -> str:
    out = subprocess.run(
        [str(binary), "--version"], capture_output=True, text=True, timeout=30, check=False
    )
    match = re.search(r"version is (\S+)", out.stdout + out.stderr)
    return match.group(1) if match else "unknown"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class OllamaServer:
    """One running server: its URL, models folder and log (the prompts it rendered)."""

    binary: Path
    home: Path
    proc: subprocess.Popen[bytes] | None = None
    port: int = 0

    @property
    def host(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def models(self) -> Path:
        return self.home / "models"

    @property
    def log_path(self) -> Path:
        return self.home / "serve.log"

    def start(self, timeout: float = 60.0) -> None:
        self.port = _free_port()
        self.models.mkdir(parents=True, exist_ok=True)
        env = {
            **os.environ,
            "HOME": str(self.home),  # its key pair and history stay out of the real home
            "OLLAMA_HOST": f"127.0.0.1:{self.port}",
            "OLLAMA_MODELS": str(self.models),
            "OLLAMA_NOPRUNE": "1",
            "OLLAMA_DEBUG": "2",  # 2 = trace: the rendered prompt of every request is logged
            "OLLAMA_NUM_PARALLEL": "1",
            "OLLAMA_MAX_LOADED_MODELS": "2",
            "OLLAMA_KEEP_ALIVE": "10m",
        }
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [str(self.binary), "serve"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # stop() signals the whole group: runners die with it
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"ollama serve exited early:\n{self.log_tail()}")
            try:
                self.version()
                return
            except OSError:
                time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"ollama serve did not answer in {timeout:.0f}s:\n{self.log_tail()}")

    def version(self) -> str:
        with urllib.request.urlopen(f"{self.host}/api/version", timeout=2) as resp:
            return str(json.load(resp)["version"])

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)

    def log_tail(self, chars: int = 4000) -> str:
        try:
            return self.log_path.read_text(encoding="utf-8", errors="replace")[-chars:]
        except OSError:
            return ""

    def log_offset(self) -> int:
        return self.log_path.stat().st_size if self.log_path.exists() else 0

    def log_since(self, offset: int) -> str:
        with self.log_path.open("rb") as fh:
            fh.seek(offset)
            return fh.read().decode("utf-8", errors="replace")
