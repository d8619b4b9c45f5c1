"""Everything that talks to an Ollama server, through the official `ollama` Python client.

`OllamaService` wraps `ollama.Client`: create a model from a Modelfile (uploading local GGUF /
adapter files as blobs first, skipping ones the server already has), pull, show, list, delete,
chat with timing figures, and locate a pulled model's GGUF on disk. Errors are translated once,
here, into `OllamaError` with what to do next; idempotent calls are retried with backoff.
This module is named like the official package; it imports it as `_ollama_client` (absolute
imports, so `import ollama` always means the official client).
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import ollama as _ollama_client
from ollama._client import _parse_host

from ollama_tune._util import ProgressFn, sha256_file
from ollama_tune.errors import ModelfileError, OllamaError
from ollama_tune.modelfile import Modelfile

T = TypeVar("T")
DEFAULT_HOST = "http://127.0.0.1:11434"
RETRY_STATUS = (502, 503, 504)
MODEL_MEDIA_TYPE = "application/vnd.ollama.image.model"

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


def resolve_host(host: str | None = None) -> str:
    """--host, else OLLAMA_HOST, else Ollama's default; normalised like the client does."""
    raw = host or os.environ.get("OLLAMA_HOST") or DEFAULT_HOST
    return str(_parse_host(raw))


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


class OllamaService:
    """A connection to one Ollama server (`host`, else `OLLAMA_HOST`)."""

    def __init__(self, host: str | None = None, timeout: float = 300.0, retries: int = 3) -> None:
        self.host = resolve_host(host)
        self.retries = retries
        self.client = _ollama_client.Client(host=self.host, timeout=timeout)

    # ---- error translation -------------------------------------------------------------------
    def _call(self, what: str, fn: Callable[[], T], *, idempotent: bool, model: str = "") -> T:
        """Run `fn`, retrying idempotent calls on timeouts/5xx, translating every error."""
        import httpx

        attempts = self.retries if idempotent else 1
        for attempt in range(attempts):
            try:
                return fn()
            except (httpx.TimeoutException, _ollama_client.ResponseError) as exc:
                status = getattr(exc, "status_code", None)
                retry = isinstance(exc, httpx.TimeoutException) or status in RETRY_STATUS
                if retry and attempt + 1 < attempts:
                    time.sleep(0.2 * 2**attempt)
                    continue
                raise self._translate(what, exc, model, attempt + 1) from None
            except (ConnectionError, httpx.TransportError) as exc:
                raise self._translate(what, exc, model, attempt + 1) from None
        raise AssertionError("unreachable")

    def _translate(self, what: str, exc: Exception, model: str, tries: int) -> OllamaError:
        import httpx

        if isinstance(exc, httpx.TimeoutException):
            return OllamaError(
                f"Ollama at {self.host} did not answer {what} in time ({tries} tries)",
                hint="Is the machine busy loading a large model? Retry in a moment.",
            )
        if isinstance(exc, _ollama_client.ResponseError):
            if exc.status_code == 404 and model:
                return OllamaError(
                    f"model {model!r} not found on Ollama at {self.host}: {exc.error}",
                    hint=f"Run `ollama pull {model}` (or pass --pull).",
                )
            return OllamaError(
                f"Ollama at {self.host} refused {what} (HTTP {exc.status_code}): {exc.error}",
                hint="The message above is Ollama's own; fix the value it names.",
            )
        return OllamaError(
            f"cannot reach Ollama at {self.host} ({what})",
            hint="Start it with `ollama serve` (or the Ollama app), or point --host / "
            "OLLAMA_HOST at a running server.",
        )

    # ---- simple calls --------------------------------------------------------------------------
    def version(self) -> str:
        def get() -> str:
            data = self.client._request_raw("GET", "/api/version").json()
            return str(data.get("version", "0"))

        return self._call("/api/version", get, idempotent=True)

    def show(self, name: str) -> Any:
        return self._call("show", lambda: self.client.show(name), idempotent=True, model=name)

    def exists(self, name: str) -> bool:
        def probe() -> bool:
            try:
                self.client.show(name)
            except _ollama_client.ResponseError as exc:
                if exc.status_code == 404:
                    return False
                raise
            return True

        return self._call("show", probe, idempotent=True)

    def list(self) -> list[ModelInfo]:
        resp = self._call("list", self.client.list, idempotent=True)
        out = []
        for m in resp.models:
            d = m.details
            out.append(
                ModelInfo(
                    name=m.model or "",
                    size=int(m.size) if m.size is not None else None,
                    digest=m.digest,
                    modified_at=m.modified_at.isoformat() if m.modified_at else None,
                    family=d.family if d else None,
                    parameter_size=d.parameter_size if d else None,
                    quantization=d.quantization_level if d else None,
                )
            )
        return out

    def delete(self, name: str) -> None:
        self._call("delete", lambda: self.client.delete(name), idempotent=True, model=name)

    def pull(self, name: str, progress: ProgressFn | None = None) -> None:
        def run() -> None:
            for part in self.client.pull(name, stream=True):
                if progress and part.total:
                    progress(f"pull {name}", float(part.completed or 0), float(part.total))

        self._call("pull", run, idempotent=True, model=name)

    # ---- create --------------------------------------------------------------------------------
    def upload_blob(self, path: Path) -> tuple[str, bool]:
        """Upload `path` unless the server has it (HEAD first). Returns (digest, uploaded)."""
        digest = f"sha256:{sha256_file(path)}"

        def head() -> bool:
            try:
                self.client._request_raw("HEAD", f"/api/blobs/{digest}")
            except _ollama_client.ResponseError as exc:
                if exc.status_code == 404:
                    return False
                raise
            return True

        if self._call("blob check", head, idempotent=True):
            return digest, False
        self._call(f"upload of {path.name}", lambda: self.client.create_blob(path), idempotent=True)
        return digest, True

    def create(
        self,
        name: str,
        modelfile: Modelfile,
        base_dir: str | os.PathLike[str] | None = None,
        quantize: str | None = None,
        progress: ProgressFn | None = None,
    ) -> CreateResult:
        """Create `name` from `modelfile`; local FROM/ADAPTER files are uploaded as blobs."""
        base = Path(base_dir) if base_dir else Path(modelfile.path or ".").parent
        for adapter in modelfile.adapters:
            if modelfile.local_file(adapter, base) is None:
                raise ModelfileError(
                    f"ADAPTER file not found: {adapter}",
                    hint="ADAPTER paths are relative to the Modelfile's folder.",
                )
        # Raw names: deprecated ones are dropped from the request but still worth a warning.
        errors, warnings = version_warnings(self.version(), dict(modelfile.parameters))
        if errors:
            raise OllamaError(
                "; ".join(errors),
                hint="Remove those PARAMETER lines (`ollama-tune modelfile lint` lists them).",
            )
        digests: dict[str, str] = {}
        uploaded: list[str] = []
        reused: list[str] = []
        files = [modelfile.local_file(modelfile.from_, base)]
        files += [modelfile.local_file(a, base) for a in modelfile.adapters]
        for path in (p for p in files if p is not None):
            if progress:
                progress(f"upload {path.name}", 0.0, 1.0)
            digest, sent = self.upload_blob(path)
            digests[str(path)] = digest
            (uploaded if sent else reused).append(digest)
            if progress:
                progress(f"upload {path.name}", 1.0, 1.0)
        args = modelfile.to_create_args(base, digests=digests)
        if "from" in args and not self.exists(args["from"]):
            raise OllamaError(
                f"base model {args['from']!r} is not on Ollama at {self.host}",
                hint=f"Run `ollama pull {args['from']}` (or pass --pull).",
            )
        self._stream_create(name, args, quantize, progress)
        return CreateResult(name, uploaded, reused, {"model": name, **args}, warnings)

    def _stream_create(
        self, name: str, args: dict[str, Any], quantize: str | None, progress: ProgressFn | None
    ) -> None:
        def run() -> None:
            stream = self.client.create(
                model=name,
                quantize=quantize,
                from_=args.get("from"),
                files=args.get("files"),
                adapters=args.get("adapters"),
                template=args.get("template"),
                license=args.get("license"),
                system=args.get("system"),
                parameters=args.get("parameters"),
                messages=args.get("messages"),
                stream=True,
            )
            for step, part in enumerate(stream, 1):
                if progress:
                    done, total = (part.completed, part.total) if part.total else (step, None)
                    progress(f"create {name}", float(done or 0), total)

        self._call("create", run, idempotent=False, model=args.get("from") or "")

    # ---- chat ------------------------------------------------------------------------------------
    def chat(
        self,
        model: str,
        messages: Sequence[Mapping[str, Any]],
        options: Mapping[str, Any] | None = None,
    ) -> ChatReply:
        """Stream one answer; measures time to first token and total seconds here."""

        def run() -> ChatReply:
            start = time.perf_counter()
            ttft = None
            text: list[str] = []
            last: Any = None
            stream = self.client.chat(
                model=model, messages=list(messages), options=dict(options or {}), stream=True
            )
            for part in stream:
                piece = part.message.content if part.message else ""
                if piece and ttft is None:
                    ttft = time.perf_counter() - start
                text.append(piece or "")
                last = part
            return ChatReply(
                text="".join(text),
                done_reason=getattr(last, "done_reason", None),
                eval_count=getattr(last, "eval_count", None),
                eval_duration_s=(last.eval_duration / 1e9) if last and last.eval_duration else None,
                prompt_eval_count=getattr(last, "prompt_eval_count", None),
                ttft_s=ttft,
                total_s=time.perf_counter() - start,
            )

        return self._call("chat", run, idempotent=True, model=model)

    # ---- files on disk -----------------------------------------------------------------------
    def find_gguf(self, name: str) -> Path:
        """The GGUF blob of a pulled model: show's `FROM /…/blobs/sha256-…`, else the manifest."""
        found = gguf_from_show(self.show(name).modelfile or "")
        if found is not None:
            return found
        found = gguf_from_manifest(name)
        if found is not None:
            return found
        raise OllamaError(
            f"cannot find the GGUF file of {name!r} on this machine",
            hint="ollama-tune must run where Ollama stores its models; set OLLAMA_MODELS to "
            "that folder (default ~/.ollama/models).",
        )


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
