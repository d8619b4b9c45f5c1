"""Everything that talks to an Ollama server, through the official `ollama` Python client.

`OllamaService` wraps `ollama.Client`: create a model from a Modelfile (uploading local GGUF /
adapter files as blobs first, skipping ones the server already has), pull, show, list, delete,
chat with timing figures, and locate a pulled model's GGUF on disk. Each call has a timeout
that fits it and a live "waiting" note; errors are translated once (`ollama_call`) into
`OllamaError` with what to do next; idempotent calls are retried with backoff. Host, version
rules and on-disk paths are in `ollama_local` (re-exported here).
This module is named like the official package; it imports it as `_ollama_client` (absolute
imports, so `import ollama` always means the official client).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import ollama as _ollama_client

from ollama_tune._util import ProgressFn, sha256_file
from ollama_tune.errors import ModelfileError, OllamaError
from ollama_tune.modelfile import Modelfile
from ollama_tune.modelfile.checks import weights_problem
from ollama_tune.ollama_call import (
    CONNECT_TIMEOUT_S,
    QUICK_TIMEOUT_S,
    STREAM_TIMEOUT_S,
    Call,
    Watch,
    run_call,
    upload_timeout,
)
from ollama_tune.ollama_local import (
    DEFAULT_HOST,
    MODEL_MEDIA_TYPE,
    VERSION_RULES,
    ChatReply,
    CreateResult,
    ModelInfo,
    env_timeout,
    gguf_from_manifest,
    gguf_from_show,
    model_info,
    models_dir,
    parse_version,
    resolve_host,
    version_warnings,
)

T = TypeVar("T")
__all__ = [
    "DEFAULT_HOST",
    "MODEL_MEDIA_TYPE",
    "VERSION_RULES",
    "ChatReply",
    "CreateResult",
    "ModelInfo",
    "OllamaService",
    "gguf_from_manifest",
    "gguf_from_show",
    "models_dir",
    "parse_version",
    "resolve_host",
    "version_warnings",
]


class OllamaService:
    """A connection to one Ollama server (`host`, else `OLLAMA_HOST`).

    `timeout` (else the `OLLAMA_TUNE_TIMEOUT` environment variable, in seconds) overrides every
    read timeout; otherwise each call gets its own (`ollama_call`). `progress` receives the
    "waiting for Ollama" notes of calls that have no progress callback of their own.
    """

    def __init__(
        self,
        host: str | None = None,
        timeout: float | None = None,
        retries: int = 3,
        progress: ProgressFn | None = None,
    ) -> None:
        self.host = resolve_host(host)
        self.retries = retries
        self.timeout = timeout if timeout is not None else env_timeout()
        self.progress = progress
        self._clients: dict[float, Any] = {}
        self.client = self._client(QUICK_TIMEOUT_S)

    def _client(self, read_s: float) -> Any:
        """An official client whose reads time out after `read_s` (one per timeout)."""
        import httpx

        read_s = self.timeout if self.timeout is not None else read_s
        if read_s not in self._clients:
            limits = httpx.Timeout(read_s, connect=min(CONNECT_TIMEOUT_S, read_s))
            self._clients[read_s] = _ollama_client.Client(host=self.host, timeout=limits)
        return self._clients[read_s]

    # ---- error translation -------------------------------------------------------------------
    def _call(
        self,
        what: str,
        fn: Callable[[], T],
        *,
        idempotent: bool,
        model: str = "",
        timeout_s: float = QUICK_TIMEOUT_S,
        missing: str = "pull",
        watch: bool = True,
    ) -> T:
        """Run `fn` with a live "waiting" note, retrying idempotent calls, translating errors.

        Streaming calls pass `watch=False` and keep their own `Watch`, touched on each line.
        """
        quick = timeout_s <= QUICK_TIMEOUT_S
        timeout_s = self.timeout if self.timeout is not None else timeout_s
        call = Call(self.host, what, model, timeout_s, missing, retry_timeouts=quick)
        with Watch(self.progress if watch else None, self._waiting(what)):
            return run_call(call, fn, attempts=self.retries if idempotent else 1)

    def _waiting(self, what: str) -> str:
        return f"waiting for Ollama at {self.host} ({what})"

    # ---- simple calls --------------------------------------------------------------------------
    def version(self) -> str:
        def get() -> str:
            data = self.client._request_raw("GET", "/api/version").json()
            if not isinstance(data, dict) or not isinstance(data.get("version"), str):
                raise ValueError(f"/api/version answered {str(data)[:80]!r}")
            return data["version"]

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
        def get() -> list[ModelInfo]:
            return [model_info(m) for m in self.client.list().models]

        return self._call("list", get, idempotent=True)

    def delete(self, name: str) -> None:
        """Delete `name`; a model the server does not have is an error saying so."""
        if not self.exists(name):  # also proves the server speaks Ollama's API
            raise OllamaError(
                f"model {name!r} not found: it does not exist on Ollama at {self.host}",
                hint="`ollama-tune list` shows the models it has.",
            )

        def run() -> None:
            self.client.delete(name)

        self._call("delete", run, idempotent=True, model=name, missing="absent")

    def pull(self, name: str, progress: ProgressFn | None = None) -> None:
        client = self._client(STREAM_TIMEOUT_S)

        def run() -> None:
            last = None
            with Watch(progress or self.progress, self._waiting(f"pull {name}")) as watch:
                for part in client.pull(name, stream=True):
                    watch.touch()
                    last = part
                    if progress and part.total:
                        progress(f"pull {name}", float(part.completed or 0), float(part.total))
            if last is None or last.status != "success":
                raise ValueError(f"the pull stream ended without 'success' ({last!r:.80})")

        self._call(
            "pull", run, idempotent=True, model=name, timeout_s=STREAM_TIMEOUT_S, watch=False
        )

    # ---- create --------------------------------------------------------------------------------
    def upload_blob(self, path: Path, progress: ProgressFn | None = None) -> tuple[str, bool]:
        """Upload `path` unless the server has it (HEAD first). Returns (digest, uploaded)."""
        problem = weights_problem(path)
        if problem:  # never send anything but model weights (e.g. FROM ../../etc/passwd)
            raise ModelfileError(problem, hint="FROM/ADAPTER must name a .gguf model file.")
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
        size = path.stat().st_size
        client = self._client(upload_timeout(size))

        what = f"upload of {path.name}"

        def send() -> None:
            with Watch(progress or self.progress, self._waiting(what)) as watch:

                def chunks() -> Iterator[bytes]:
                    done = 0
                    with open(path, "rb") as fh:
                        while block := fh.read(1 << 20):
                            done += len(block)
                            watch.touch()
                            if progress:
                                progress(f"upload {path.name}", float(done), float(size))
                            yield block

                client._request_raw("POST", f"/api/blobs/{digest}", content=chunks())

        timeout_s = upload_timeout(size)
        self._call(what, send, idempotent=True, timeout_s=timeout_s, watch=False)
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
        local = [p for p in files if p is not None]
        for path in local:  # every file is checked before the first byte is sent
            if problem := weights_problem(path):
                raise ModelfileError(problem, hint="FROM/ADAPTER must name a .gguf model file.")
        for path in local:
            if path.is_dir():
                raise ModelfileError(
                    f"{path} is a folder: ollama-tune create uploads single GGUF files",
                    hint=f"Use `ollama create {name} -f Modelfile` for a safetensors folder.",
                )
            digest, sent = self.upload_blob(path, progress)
            digests[str(path)] = digest
            (uploaded if sent else reused).append(digest)
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
        client = self._client(STREAM_TIMEOUT_S)

        def run() -> None:
            last = None
            watch = Watch(progress or self.progress, self._waiting(f"create {name}"))
            with watch:
                for step, part in enumerate(_create_stream(client, name, args, quantize), 1):
                    watch.touch()
                    last = part
                    if progress:
                        done, total = (part.completed, part.total) if part.total else (step, None)
                        progress(f"create {name}", float(done or 0), total)
            if last is None or last.status != "success":
                raise ValueError(f"the create stream ended without 'success' ({last!r:.80})")

        self._call(
            "create",
            run,
            idempotent=False,
            model=args.get("from") or "",
            timeout_s=STREAM_TIMEOUT_S,
            watch=False,
        )

    # ---- chat ------------------------------------------------------------------------------------
    def chat(
        self,
        model: str,
        messages: Sequence[Mapping[str, Any]],
        options: Mapping[str, Any] | None = None,
    ) -> ChatReply:
        """Stream one answer; measures time to first token and total seconds here."""

        client = self._client(STREAM_TIMEOUT_S)

        def run() -> ChatReply:
            start = time.perf_counter()
            ttft = None
            text: list[str] = []
            last: Any = None
            stream = client.chat(
                model=model, messages=list(messages), options=dict(options or {}), stream=True
            )
            with Watch(self.progress, self._waiting(f"chat with {model}")) as watch:
                for part in stream:
                    watch.touch()
                    piece = part.message.content if part.message else ""
                    if piece and ttft is None:
                        ttft = time.perf_counter() - start
                    text.append(piece or "")
                    last = part
            if last is None or not last.done:
                raise ValueError("the answer stream ended before its final `done` line")
            return ChatReply(
                text="".join(text),
                done_reason=getattr(last, "done_reason", None),
                eval_count=getattr(last, "eval_count", None),
                eval_duration_s=(last.eval_duration / 1e9) if last and last.eval_duration else None,
                prompt_eval_count=getattr(last, "prompt_eval_count", None),
                ttft_s=ttft,
                total_s=time.perf_counter() - start,
            )

        return self._call(
            "chat", run, idempotent=True, model=model, timeout_s=STREAM_TIMEOUT_S, watch=False
        )

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


def _create_stream(client: Any, name: str, args: dict[str, Any], quantize: str | None) -> Any:
    return client.create(
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
