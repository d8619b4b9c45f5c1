"""What ollama-tune knows about an Ollama install without asking the server.

The host to talk to (`--host`, else `OLLAMA_HOST`, else Ollama's default, checked so that a
malformed address is a usage error naming where it came from), the request timeout override
(`OLLAMA_TUNE_TIMEOUT`), which parameters a server version rejects or ignores, and where a
pulled model's GGUF lies on this disk (`OLLAMA_MODELS`); and the plain result types
`OllamaService` returns.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ollama._client import _parse_host

from ollama_tune.errors import UsageError

DEFAULT_HOST = "http://127.0.0.1:11434"
MODEL_MEDIA_TYPE = "application/vnd.ollama.image.model"


@dataclass(frozen=True)
class ChatReply:
    """One answer: text plus Ollama's counters and wall-clock timings measured here."""

    text: str
    done_reason: str | None
    eval_count: int | None
    eval_duration_s: float | None
    prompt_eval_count: int | None
    ttft_s: float | None
    total_s: float

    @property
    def tokens_per_s(self) -> float | None:
        if self.eval_count and self.eval_duration_s:
            return self.eval_count / self.eval_duration_s
        return None


@dataclass(frozen=True)
class ModelInfo:
    name: str
    size: int | None
    digest: str | None
    modified_at: str | None
    family: str | None = None
    parameter_size: str | None = None
    quantization: str | None = None


@dataclass(frozen=True)
class CreateResult:
    name: str
    uploaded: list[str] = field(default_factory=list)  # digests sent as new blobs
    reused: list[str] = field(default_factory=list)  # digests the server already had
    request: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


def model_info(m: Any) -> ModelInfo:
    d = m.details
    return ModelInfo(
        name=m.model or "",
        size=int(m.size) if m.size is not None else None,
        digest=m.digest,
        modified_at=m.modified_at.isoformat() if m.modified_at else None,
        family=d.family if d else None,
        parameter_size=d.parameter_size if d else None,
        quantization=d.quantization_level if d else None,
    )


# Parameters an Ollama version no longer accepts (create fails) or ignores; checked before create.
# (name, first version affected, "rejected" | "ignored"). The versions are approximate: servers
# older than the table are assumed to accept everything.
VERSION_RULES: tuple[tuple[str, tuple[int, ...], str], ...] = (
    ("tfs_z", (0, 5, 0), "rejected"),
    ("mirostat", (0, 1, 0), "ignored"),
    ("mirostat_tau", (0, 1, 0), "ignored"),
    ("mirostat_eta", (0, 1, 0), "ignored"),
    ("penalize_newline", (0, 1, 0), "ignored"),
)


def resolve_host(host: str | None = None) -> str:
    """--host, else OLLAMA_HOST, else Ollama's default; normalised like the client does."""
    source = "--host" if host else "OLLAMA_HOST" if os.environ.get("OLLAMA_HOST") else None
    raw = host or os.environ.get("OLLAMA_HOST") or DEFAULT_HOST
    import httpx

    try:
        parsed = str(_parse_host(raw))
        httpx.URL(parsed)  # the client would fail on it later, with a traceback
    except (ValueError, TypeError, httpx.InvalidURL) as exc:
        raise UsageError(
            f"{source or 'the Ollama host'} {raw!r} is not a valid address ({exc})",
            hint="Use host:port or http://host:port, e.g. OLLAMA_HOST=127.0.0.1:11434 "
            "(IPv6: http://[::1]:11434).",
        ) from None
    return parsed


def parse_version(text: str) -> tuple[int, ...]:
    nums = re.findall(r"\d+", text.split("-")[0])
    return tuple(int(n) for n in nums[:3]) or (0,)


def version_warnings(version: str, parameters: Mapping[str, Any]) -> tuple[list[str], list[str]]:
    """(errors, warnings) for parameters the running Ollama version rejects or ignores."""
    errors: list[str] = []
    warnings: list[str] = []
    ver = parse_version(version)
    for name, since, effect in VERSION_RULES:
        if name in parameters and ver >= since:
            msg = f"PARAMETER {name} is {effect} by Ollama {version}"
            (errors if effect == "rejected" else warnings).append(msg)
    return errors, warnings


def env_timeout() -> float | None:
    raw = os.environ.get("OLLAMA_TUNE_TIMEOUT", "").strip()
    if not raw:
        return None
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not 0 < value < float("inf"):
        raise UsageError(
            f"OLLAMA_TUNE_TIMEOUT={raw!r} is not a number of seconds",
            hint="Unset it, or use e.g. OLLAMA_TUNE_TIMEOUT=600.",
        )
    return value


def gguf_from_show(modelfile_text: str) -> Path | None:
    for line in modelfile_text.splitlines():
        if line.upper().startswith("FROM "):
            path = Path(line[5:].strip())
            if path.is_absolute() and path.is_file():
                return path
    return None


def models_dir() -> Path:
    return Path(os.environ.get("OLLAMA_MODELS") or Path.home() / ".ollama" / "models")


def gguf_from_manifest(name: str) -> Path | None:
    """manifests/registry.ollama.ai/library/NAME/TAG → model layer → blobs/sha256-<hex>."""
    root = models_dir()
    base, _, tag = name.partition(":")
    parts = base.split("/")
    if len(parts) == 1:
        parts = ["registry.ollama.ai", "library", *parts]
    elif len(parts) == 2:
        parts = ["registry.ollama.ai", *parts]
    manifest = root.joinpath("manifests", *parts, tag or "latest")
    try:
        layers = json.loads(manifest.read_text(encoding="utf-8")).get("layers", [])
    except (OSError, ValueError):
        return None
    for layer in layers:
        if layer.get("mediaType") == MODEL_MEDIA_TYPE:
            blob = root / "blobs" / str(layer.get("digest", "")).replace(":", "-")
            if blob.is_file():
                return blob
    return None
