"""Render Ollama TEMPLATEs with Go's own `text/template`, fed the way an Ollama server feeds them.

The Go side is `render.go` (standard library only), built once into the cache directory with the
`go` toolchain and reused; many renders go to one process call as a JSON batch. `collate_messages`
is the same feeding rule in Python, used to give the Jinja side of a parity check the
conversation exactly as Ollama would see it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from ollama_tune._util import atomic_path, cache_dir, sha256_text
from ollama_tune.errors import ExternalServiceError, TemplateError

_GO_SOURCE = Path(__file__).with_name("render.go")
_GO_HINT = "Install Go (Debian/Ubuntu: `apt-get install golang-go`) or put `go` on PATH."

MessageLike = Mapping[str, str] | object


@dataclass(frozen=True)
class GoRender:
    """One rendering: `output` on success, else Go's own error text in `error`."""

    output: str
    error: str | None = None


def go_available() -> bool:
    """True when a `go` toolchain is on PATH (the parity check needs it)."""
    return shutil.which("go") is not None


def as_message_dicts(messages: Iterable[MessageLike]) -> list[dict[str, str]]:
    """Accept `data.model.Message` objects or {"role", "content"} dicts."""
    out: list[dict[str, str]] = []
    for m in messages:
        if isinstance(m, Mapping):
            out.append({"role": str(m["role"]), "content": str(m.get("content") or "")})
        else:
            out.append({"role": str(m.role), "content": str(m.content)})  # type: ignore[attr-defined]
    return out


def collate_messages(
    messages: Iterable[MessageLike], *, system: str | None = None
) -> list[dict[str, str]]:
    """The conversation as Ollama's chat handler hands it to a template.

    The Modelfile SYSTEM is prepended when the first message is not a system message, then
    consecutive same-role messages are merged with a blank line ("\\n\\n").
    """
    msgs = as_message_dicts(messages)
    if system and (not msgs or msgs[0]["role"] != "system"):
        msgs.insert(0, {"role": "system", "content": system})
    merged: list[dict[str, str]] = []
    for m in msgs:
        if merged and merged[-1]["role"] == m["role"] and m["role"] != "tool":
            merged[-1] = {**merged[-1], "content": merged[-1]["content"] + "\n\n" + m["content"]}
        else:
            merged.append(dict(m))
    return merged


def _go_env(root: Path) -> dict[str, str]:
    # Everything Go writes stays in our cache; GO111MODULE=off builds a lone file without go.mod.
    env = dict(os.environ)
    env.update(
        GO111MODULE="off",
        GOCACHE=str(root / "gocache"),
        GOPATH=str(root / "gopath"),
        GOFLAGS="",
        CGO_ENABLED="0",
    )
    return env


def renderer_binary() -> Path:
    """Build `render.go` once per source version into the cache dir and return the binary."""
    go = shutil.which("go")
    if go is None:
        raise ExternalServiceError("the `go` toolchain was not found on PATH", hint=_GO_HINT)
    source = _GO_SOURCE.read_text(encoding="utf-8")
    root = cache_dir() / "go-render"
    suffix = ".exe" if os.name == "nt" else ""
    binary = root / f"render-{sha256_text(source)[:16]}{suffix}"
    if binary.is_file():
        return binary
    build_dir = root / "src"
    build_dir.mkdir(parents=True, exist_ok=True)
    main_go = build_dir / f"main-{os.getpid()}.go"
    main_go.write_text(source, encoding="utf-8")
    try:
        # Built under a temporary name and renamed: concurrent builds never see a half binary.
        with atomic_path(binary) as tmp:
            proc = subprocess.run(
                [go, "build", "-o", str(tmp), str(main_go)],
                env=_go_env(root),
                capture_output=True,
                text=True,
                timeout=300,
            )
            if proc.returncode != 0:
                raise ExternalServiceError(
                    f"`go build` of the template renderer failed:\n{proc.stderr.strip()}",
                    hint="Check that `go version` works (Go 1.18 or newer is needed).",
                )
            tmp.chmod(0o755)
    finally:
        main_go.unlink(missing_ok=True)
    return binary


def render_go_many(
    template: str,
    conversations: Sequence[Iterable[MessageLike]],
    *,
    system: str | None = None,
    modelfile_messages: Iterable[MessageLike] = (),
) -> list[GoRender]:
    """Render many conversations with one Go process; errors are returned per conversation."""
    mf = as_message_dicts(modelfile_messages)
    jobs = [
        {
            "template": template,
            "messages": as_message_dicts(conv),
            "system": system,
            "modelfile_messages": mf,
        }
        for conv in conversations
    ]
    proc = subprocess.run(
        [str(renderer_binary())],
        input=json.dumps(jobs, ensure_ascii=False),
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=120,
    )
    if proc.returncode != 0:
        raise ExternalServiceError(
            f"the Go template renderer failed: {proc.stderr.strip()}",
            hint="Delete the cache folder go-render/ so the renderer is rebuilt.",
        )
    return [GoRender(r.get("output", ""), r.get("error") or None) for r in json.loads(proc.stdout)]


def render_go(
    template: str,
    messages: Iterable[MessageLike],
    *,
    system: str | None = None,
    modelfile_messages: Iterable[MessageLike] = (),
) -> str:
    """Render one conversation as Ollama would: `system` is the Modelfile SYSTEM.

    Raises TemplateError with Go's message when the template does not parse or execute.
    """
    (res,) = render_go_many(
        template, [list(messages)], system=system, modelfile_messages=modelfile_messages
    )
    if res.error is not None:
        raise TemplateError(
            f"the Ollama TEMPLATE failed in Go's text/template: {res.error}",
            hint="Go reports `template: :LINE:` positions counted from the TEMPLATE's first line.",
        )
    return res.output
