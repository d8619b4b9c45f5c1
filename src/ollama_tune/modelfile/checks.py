"""Checks on what a Modelfile points at: the FROM/ADAPTER files and the Go TEMPLATE.

Used by `modelfile lint` (and so `create`, which refuses a Modelfile with lint errors) and by
`OllamaService.create` right before it uploads a blob, so that nothing but model weights is
ever sent. What counts as weights follows what `ollama create` accepts: a GGUF file (any name:
Ollama reads `.bin` GGUFs too — the first 4 bytes are `GGUF`), a `.safetensors` file, or a
folder holding safetensors / PyTorch / GGUF weights (Hugging Face layout).
The TEMPLATE is parsed with Go's own `text/template` when `go` is on PATH (the renderer in
`templates/gorender.py`); without it, a small check of `{{ }}` and block nesting stands in.
"""

from __future__ import annotations

import re
from pathlib import Path

from ollama_tune.errors import OllamaTuneError

# The module, not its names: tests switch Go off by patching `gorender.go_available`.
from ollama_tune.templates import gorender

GGUF_MAGIC = b"GGUF"
# Weights Ollama's client looks for in a model folder (parser.go filesForModel).
FOLDER_WEIGHTS = ("*.safetensors", "pytorch_model*.bin", "consolidated*.pth", "*.gguf", "*.bin")
_GO_PARSE_ERROR = re.compile(r"template: [^:]*:(\d+): (.*)", re.DOTALL)


def weights_problem(path: Path) -> str | None:
    """Why `path` is not model weights Ollama can import (None when it is)."""
    if path.is_dir():
        found = [p for pattern in FOLDER_WEIGHTS for p in path.glob(pattern) if p.is_file()]
        if not found:
            return (
                f"folder {path} holds no model weights (*.safetensors, pytorch_model*.bin, *.gguf)"
            )
        bad = [p for p in found if p.suffix == ".gguf" and _head(p, 4) != GGUF_MAGIC]
        return weights_problem(bad[0]) if bad else None
    head = _head(path, 9)
    if head is None:
        return f"{path} cannot be read"
    if path.suffix == ".safetensors":
        # safetensors: an 8-byte little-endian header length, then the JSON header.
        if len(head) == 9 and head[8:9] == b"{":
            return None
        return f"{path} is not a safetensors file (no JSON header after the first 8 bytes)"
    if head[:4] == GGUF_MAGIC:
        return None
    shown = repr(head[:4])[1:] if head else "nothing (empty file)"  # b'root' -> 'root'
    return f"{path} is not a GGUF file: it starts with {shown}, a GGUF file starts with 'GGUF'"


def _head(path: Path, n: int) -> bytes | None:
    try:
        with open(path, "rb") as fh:
            return fh.read(n)
    except OSError:
        return None


def outside(path: Path, folder: Path) -> bool:
    """True when `path` (symlinks followed) is not inside `folder`."""
    return not path.resolve().is_relative_to(folder.resolve())


def template_problem(template: str) -> tuple[int, str] | None:
    """(line within the template, Go's message) when the TEMPLATE does not parse."""
    if gorender.go_available():
        try:
            (res,) = gorender.render_go_many(template, [[{"role": "user", "content": "hi"}]])
        except OllamaTuneError:
            res = None  # the renderer could not be built: fall back to the local check
        if res is not None:
            m = _GO_PARSE_ERROR.match(res.error or "")
            # Parse errors carry `:LINE:` only; execution errors `:LINE:COL: executing`.
            if m and not m.group(2).startswith("executing"):
                return int(m.group(1)), m.group(2).strip()
            return None
    return _delimiter_problem(template)


_ACTION = re.compile(r"\{\{(.*?)\}\}", re.DOTALL)
_OPENERS = ("if", "range", "with", "define", "block")


def _delimiter_problem(template: str) -> tuple[int, str] | None:
    """Without Go: unclosed `{{` and unbalanced `{{ if/range/with … }}…{{ end }}`."""
    stack: list[tuple[str, int]] = []
    pos = 0
    for m in _ACTION.finditer(template):
        line = template.count("\n", 0, m.start()) + 1
        if "{{" in template[pos : m.start()] or "{{" in m.group(1):
            return line, "unclosed action"
        pos = m.end()
        body = m.group(1).strip("- \t\r\n")
        if body.startswith("/*"):
            continue
        word = body.split(None, 1)[0] if body else ""
        if word in _OPENERS:
            stack.append((word, line))
        elif word == "end":
            if not stack:
                return line, "unexpected {{end}}"
            stack.pop()
    if "{{" in template[pos:]:
        return template.count("\n", 0, template.index("{{", pos)) + 1, "unclosed action"
    if stack:
        word, line = stack[-1]
        return line, f"unexpected EOF: {{{{{word}}}}} has no {{{{end}}}}"
    return None
