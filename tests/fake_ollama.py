"""A local HTTP server that follows Ollama's documented REST API (ollama/ollama docs/api.md).

The Ollama server cannot be installed on CI, so this is the one fake in the project. It is a real
HTTP server (stdlib `http.server`, a thread, 127.0.0.1, a free port) that the official `ollama`
client talks to unchanged. Use it through the `fake_ollama` fixture (tests/conftest.py), which
starts it and points `OLLAMA_HOST` at it.

Endpoints: `GET /api/version`, `GET /api/tags`, `POST /api/show`, `DELETE /api/delete`,
`POST /api/pull` (NDJSON progress), `HEAD`/`POST /api/blobs/sha256:<hex>` (the digest is checked
against the bytes received: 400 on mismatch, 201 when stored; HEAD 200/404), `POST /api/create`
(400 when a `files`/`adapters` digest was never uploaded, 404 for an unknown `from`; NDJSON status
stream; the model is then listed), `POST /api/chat` and `POST /api/generate` (stream and
non-stream; final answers carry `done_reason`, `eval_count`, `eval_duration`,
`prompt_eval_count`, `prompt_eval_duration`, `total_duration`, `load_duration`).

How to use it in a test::

    def test_x(fake_ollama):
        fake_ollama.add_model("llama3.2:1b")                      # an already-pulled model
        fake_ollama.add_model("base", gguf_path="/x/model.gguf")  # show's FROM names that file
        fake_ollama.script("my-bot", {"返品できますか？": "30日以内なら可能です。"})
        fake_ollama.script("other", lambda messages: "always this")
        fake_ollama.fail("/api/tags", status=503, times=2)        # inject errors
        fake_ollama.fail("/api/tags", status=200, body=b"<html>")  # ... or any raw body
        fake_ollama.break_stream("/api/chat", after=2)            # cut the stream halfway
        fake_ollama.break_stream("/api/chat", error="oom")        # an error line inside it
        fake_ollama.delay("/api/tags", 30)                        # a server that hangs
        ... run the code under test (OLLAMA_HOST already points here) ...
        body = fake_ollama.last("/api/create").json               # the exact JSON sent
        [r.path for r in fake_ollama.requests]                     # every request, in order

Answers: a scripted dict maps the last user message to the answer (unknown questions fall back
to the echo); a callable gets the message list (`generate` passes one user message built from
`system`/`prompt`). Without a script the answer is a deterministic echo: `echo: <last user text>`.
An answer is streamed in pieces of 3 characters; each piece counts as one token (`eval_count`),
`options.num_predict` cuts the answer and sets `done_reason` to "length". A model created
through `/api/create` answers too (same rules).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

Answer = dict[str, str] | Callable[[list[dict[str, Any]]], str]
NS_PER_TOKEN = 20_000_000  # 50 tokens/s of simulated generation
PIECE = 3  # characters per streamed token


@dataclass
class Recorded:
    method: str
    path: str
    json: Any
    headers: dict[str, str]
    body_size: int = 0


@dataclass
class FakeModel:
    name: str
    digest: str
    size: int = 123_456_789
    modelfile: str = ""
    template: str = "{{ .Prompt }}"
    system: str | None = None
    parameters: dict[str, Any] = field(default_factory=dict)
    messages: list[dict[str, Any]] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)
    create_request: dict[str, Any] | None = None


def _full(name: str) -> str:
    return name if ":" in name else f"{name}:latest"


class FakeOllama:
    """The server state; see the module docstring for the API."""

    def __init__(self, version: str = "0.12.6") -> None:
        self.version = version
        self.models: dict[str, FakeModel] = {}
        self.blobs: dict[str, bytes] = {}
        self.requests: list[Recorded] = []
        self.answers: dict[str, Answer] = {}
        self.failures: dict[str, list[tuple[int, str, bytes | None]]] = {}
        self.breaks: dict[str, list[tuple[int, str | None]]] = {}
        self.delays: dict[str, float] = {}
        self.pull_sizes: dict[str, int] = {}
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _make_handler(self))
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self.host = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), daemon=True
        )

    # ---- test-facing API -------------------------------------------------------------------
    def start(self) -> FakeOllama:
        self._thread.start()
        return self

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def add_model(self, name: str, *, gguf_path: str | None = None, **kw: Any) -> FakeModel:
        """Register an already-pulled model; `gguf_path` goes into show's `FROM` line."""
        digest = hashlib.sha256(name.encode()).hexdigest()
        model = FakeModel(name=_full(name), digest=digest, **kw)
        blob = gguf_path or f"/root/.ollama/models/blobs/sha256-{digest}"
        if not model.modelfile:
            model.modelfile = f'# Modelfile generated by "ollama show"\nFROM {blob}\n'
        model.details = model.details or {
            "format": "gguf",
            "family": "llama",
            "families": ["llama"],
            "parameter_size": "1.2B",
            "quantization_level": "Q4_K_M",
        }
        self.models[model.name] = model
        return model

    def script(self, model: str, answers: Answer) -> None:
        self.answers[_full(model)] = answers

    def fail(
        self,
        path: str,
        status: int = 500,
        error: str = "boom",
        times: int = 1,
        body: bytes | None = None,
    ) -> None:
        """The next `times` requests to `path` answer `status` with `{"error": error}`.

        With `body`, they answer those raw bytes instead (garbage, HTML, wrong-shaped JSON).
        """
        self.failures.setdefault(path, []).extend([(status, error, body)] * times)

    def break_stream(self, path: str, after: int = 1, error: str | None = None) -> None:
        """The next stream from `path` sends `after` lines, then an `{"error": error}` line
        (as Ollama does when it fails mid-answer), or without `error` drops the connection."""
        self.breaks.setdefault(path, []).append((after, error))

    def delay(self, path: str, seconds: float) -> None:
        """Answer requests to `path` only after `seconds` (to provoke client timeouts)."""
        self.delays[path] = seconds

    def requests_to(self, path: str, method: str | None = None) -> list[Recorded]:
        return [r for r in self.requests if r.path == path and method in (None, r.method)]

    def last(self, path: str) -> Recorded:
        found = self.requests_to(path)
        assert found, f"no request to {path}; got {[r.path for r in self.requests]}"
        return found[-1]

    # ---- answers ----------------------------------------------------------------------------
    def answer(self, model: str, messages: list[dict[str, Any]]) -> str:
        script = self.answers.get(_full(model))
        last_user = next(
            (m.get("content", "") for m in reversed(messages) if m.get("role") == "user"), ""
        )
        if callable(script):
            return script(messages)
        if isinstance(script, dict) and last_user in script:
            return script[last_user]
        return f"echo: {last_user}"


def _pieces(text: str) -> list[str]:
    return [text[i : i + PIECE] for i in range(0, len(text), PIECE)] or [""]


def _make_handler(state: FakeOllama) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            """Silence the default stderr logging."""

        # -- plumbing --
        def _read_body(self) -> bytes:
            if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                out = b""
                while True:
                    size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                    if size == 0:
                        self.rfile.readline()
                        return out
                    out += self.rfile.read(size)
                    self.rfile.readline()
            return self.rfile.read(int(self.headers.get("Content-Length") or 0))

        def _send(self, status: int, obj: Any = None) -> None:
            data = b"" if obj is None else json.dumps(obj, ensure_ascii=False).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)

        def _stream(self, parts: Iterator[dict[str, Any]]) -> None:
            # Chunked NDJSON, one line per chunk, as Ollama streams.
            self.send_response(200)
            self.send_header("Content-Type", "application/x-ndjson")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            with state._lock:
                pending = state.breaks.get(self.path.split("?")[0])
                cut = pending.pop(0) if pending else None
            for n, part in enumerate(parts):
                if cut is not None and n == cut[0]:
                    if cut[1] is None:  # drop the connection mid-body
                        self.close_connection = True
                        return
                    part = {"error": cut[1]}
                line = (json.dumps(part, ensure_ascii=False) + "\n").encode()
                self.wfile.write(f"{len(line):x}\r\n".encode() + line + b"\r\n")
                self.wfile.flush()
                if cut is not None and n == cut[0]:
                    break
            self.wfile.write(b"0\r\n\r\n")

        def _handle(self) -> None:
            raw = self._read_body()
            path = self.path.split("?")[0]
            try:
                body = json.loads(raw) if raw and not path.startswith("/api/blobs/") else None
            except json.JSONDecodeError:
                self._send(400, {"error": "invalid JSON"})
                return
            with state._lock:
                state.requests.append(
                    Recorded(self.command, path, body, dict(self.headers), len(raw))
                )
                pending = state.failures.get(path)
                failure = pending.pop(0) if pending else None
            if path in state.delays:
                time.sleep(state.delays[path])
            if failure and failure[2] is not None:
                self.send_response(failure[0])
                self.send_header("Content-Type", "text/html")
                self.send_header("Content-Length", str(len(failure[2])))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(failure[2])
                return
            if failure:
                self._send(failure[0], {"error": failure[1]})
                return
            # The client may have given up (a timeout test): nothing left to answer.
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                _route(state, self, path, body, raw)

        do_GET = do_POST = do_DELETE = do_HEAD = _handle

    return Handler


def _route(state: FakeOllama, h: Any, path: str, body: Any, raw: bytes) -> None:
    method = h.command
    if path.startswith("/api/blobs/"):
        _blobs(state, h, path.removeprefix("/api/blobs/"), raw)
    elif (method, path) == ("GET", "/api/version"):
        h._send(200, {"version": state.version})
    elif (method, path) == ("GET", "/api/tags"):
        h._send(200, {"models": [_tag(m) for m in state.models.values()]})
    elif method == "POST" and path in ("/api/chat", "/api/generate"):
        _chat(state, h, path, body or {})
    elif (method, path) == ("POST", "/api/show"):
        _show(state, h, (body or {}).get("model", ""))
    elif (method, path) == ("DELETE", "/api/delete"):
        name = _full((body or {}).get("model", ""))
        if state.models.pop(name, None) is None:
            h._send(404, {"error": f"model '{name}' not found"})
        else:
            h._send(200)
    elif (method, path) == ("POST", "/api/pull"):
        _pull(state, h, body or {})
    elif (method, path) == ("POST", "/api/create"):
        _create(state, h, body or {})
    else:
        h._send(404, {"error": f"404 page not found: {method} {path}"})


def _tag(m: FakeModel) -> dict[str, Any]:
    return {
        "name": m.name,
        "model": m.name,
        "modified_at": "2026-01-01T00:00:00Z",
        "size": m.size,
        "digest": m.digest,
        "details": m.details,
    }


def _blobs(state: FakeOllama, h: Any, digest: str, raw: bytes) -> None:
    if not digest.startswith("sha256:") or len(digest) != 71:
        h._send(400, {"error": f"invalid digest format {digest!r}"})
    elif h.command == "HEAD":
        h._send(200 if digest in state.blobs else 404)
    elif h.command == "POST":
        actual = "sha256:" + hashlib.sha256(raw).hexdigest()
        if actual != digest:
            h._send(400, {"error": f"digest mismatch, expected {digest!r}, got {actual!r}"})
            return
        state.blobs[digest] = raw
        h._send(201)
    else:
        h._send(405, {"error": "method not allowed"})


def _show(state: FakeOllama, h: Any, name: str) -> None:
    m = state.models.get(_full(name))
    if m is None:
        h._send(404, {"error": f"model '{name}' not found"})
        return
    params = "\n".join(
        f"{k} {json.dumps(x, ensure_ascii=False)}"
        for k, v in m.parameters.items()
        for x in (v if isinstance(v, list) else [v])
    )
    h._send(
        200,
        {
            "modelfile": m.modelfile,
            "parameters": params,
            "template": m.template,
            "system": m.system,
            "details": m.details,
            "model_info": {"general.architecture": "llama"},
            "capabilities": ["completion"],
            "modified_at": "2026-01-01T00:00:00Z",
        },
    )


def _pull(state: FakeOllama, h: Any, body: dict[str, Any]) -> None:
    name = _full(body.get("model", ""))
    total = state.pull_sizes.get(name, 3_000)
    digest = "sha256:" + hashlib.sha256(name.encode()).hexdigest()

    def parts() -> Iterator[dict[str, Any]]:
        yield {"status": "pulling manifest"}
        for done in (0, total // 3, total):
            yield {"status": f"pulling {digest[7:19]}", "digest": digest, "total": total,
                   "completed": done}  # fmt: skip
        yield {"status": "verifying sha256 digest"}
        yield {"status": "writing manifest"}
        yield {"status": "success"}

    state.add_model(name)
    if body.get("stream") is False:
        h._send(200, {"status": "success"})
    else:
        h._stream(parts())


def _create(state: FakeOllama, h: Any, body: dict[str, Any]) -> None:
    name = body.get("model") or ""
    for key in ("files", "adapters"):
        for fname, digest in (body.get(key) or {}).items():
            if digest not in state.blobs:
                h._send(400, {"error": f"missing blob {digest} for {fname}"})
                return
    base = body.get("from")
    if not base and not body.get("files"):
        h._send(400, {"error": "neither 'from' or 'files' was specified"})
        return
    if base and _full(base) not in state.models:
        h._send(404, {"error": f"model '{base}' not found"})
        return
    bad = sorted(set(body.get("parameters") or {}) & {"tfs_z"})
    if bad:
        h._send(400, {"error": f"invalid option provided: {bad[0]}"})
        return
    inherited = state.models.get(_full(base)) if base else None
    model = state.add_model(
        name,
        template=body.get("template") or (inherited.template if inherited else "{{ .Prompt }}"),
        system=body.get("system"),
        parameters=dict(body.get("parameters") or {}),
        messages=list(body.get("messages") or []),
    )
    model.create_request = body

    def parts() -> Iterator[dict[str, Any]]:
        yield {"status": "reading model metadata"}
        if body.get("quantize"):
            yield {"status": f"quantizing F16 model to {body['quantize']}", "total": 10,
                   "completed": 10}  # fmt: skip
        yield {"status": "using existing layer sha256:" + model.digest}
        yield {"status": "writing manifest"}
        yield {"status": "success"}

    if body.get("stream") is False:
        h._send(200, {"status": "success"})
    else:
        h._stream(parts())


def _chat(state: FakeOllama, h: Any, path: str, body: dict[str, Any]) -> None:
    name = body.get("model", "")
    model = state.models.get(_full(name))
    if model is None:
        h._send(404, {"error": f"model '{name}' not found, try pulling it first"})
        return
    if path == "/api/chat":
        messages = list(body.get("messages") or [])
    else:
        messages = [{"role": "user", "content": body.get("prompt", "")}]
    pieces = _pieces(state.answer(model.name, messages))
    limit = (body.get("options") or {}).get("num_predict")
    reason = "stop"
    if isinstance(limit, int) and 0 <= limit < len(pieces):
        pieces, reason = pieces[:limit], "length"
    prompt_tokens = sum(len(str(m.get("content", ""))) for m in messages) // PIECE + 1
    final = {
        "done": True,
        "done_reason": reason,
        "total_duration": (len(pieces) + 5) * NS_PER_TOKEN,
        "load_duration": 1_000_000,
        "prompt_eval_count": prompt_tokens,
        "prompt_eval_duration": 2 * NS_PER_TOKEN,
        "eval_count": len(pieces),
        "eval_duration": len(pieces) * NS_PER_TOKEN,
    }

    def part(text: str, done: bool) -> dict[str, Any]:
        head: dict[str, Any] = {"model": name, "created_at": "2026-01-01T00:00:00Z"}
        if path == "/api/chat":
            head["message"] = {"role": "assistant", "content": text}
        else:
            head["response"] = text
        return {**head, **(final if done else {"done": False})}

    if body.get("stream") is False:
        h._send(200, part("".join(pieces), True))
    else:
        h._stream(iter([*(part(p, False) for p in pieces), part("", True)]))
