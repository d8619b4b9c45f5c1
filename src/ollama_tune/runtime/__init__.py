"""One `generate(messages, options)` over every way ollama-tune runs a model.

`open_model(ref)` accepts `ollama:NAME` (an Ollama server, through `ollama.OllamaService`),
a bundle directory or Modelfile path (run embedded: FROM's GGUF + SYSTEM + MESSAGE few-shots +
stop/num_ctx, the way Ollama would feed them), a `.gguf` file (llama.cpp through
llama-cpp-python, with the chat template stored in the GGUF) or a Hugging Face directory
(transformers). Used by `ollama-tune chat` and by evaluation; deterministic by default.
"""

from __future__ import annotations

from pathlib import Path

from ollama_tune.errors import ModelError
from ollama_tune.runtime.base import GenerateOptions, Generation, Generator, Messages

__all__ = [
    "GenerateOptions",
    "Generation",
    "Generator",
    "Messages",
    "local_model_path",
    "open_model",
]

_FORMS = (
    "Use ollama:NAME, a bundle directory (with a Modelfile), a Modelfile, a .gguf file, "
    "or a Hugging Face model directory (with config.json)."
)


def open_model(
    ref: str, *, n_ctx: int | None = None, n_threads: int | None = None, host: str | None = None
) -> Generator:
    """Open `ref` for generation (see the module docstring for the accepted forms)."""
    if ref.startswith("ollama:"):
        from ollama_tune.runtime.ollama_gen import OllamaGenerator

        return OllamaGenerator(ref.removeprefix("ollama:"), host=host)
    path = local_model_path(ref)
    if path.is_dir():
        from ollama_tune.runtime.hf_gen import TransformersGenerator

        return TransformersGenerator(path)
    from ollama_tune.runtime.llama_gen import LlamaCppGenerator, from_modelfile

    if path.suffix.lower() == ".gguf":
        return LlamaCppGenerator(path, n_ctx=n_ctx, n_threads=n_threads)
    with path.open("rb") as fh:
        magic = fh.read(4)
    if magic == b"GGUF":
        return LlamaCppGenerator(path, n_ctx=n_ctx, n_threads=n_threads)
    return from_modelfile(path, n_ctx=n_ctx, n_threads=n_threads)


def local_model_path(ref: str) -> Path:
    """The file (GGUF or Modelfile) or Hugging Face directory a local `ref` names; raises
    ModelError when there is none. Cheap, so callers check every ref before any model runs."""
    path = Path(ref).expanduser()
    if path.is_dir():
        if (path / "Modelfile").is_file():
            return path / "Modelfile"
        if (path / "config.json").is_file():
            return path
        raise ModelError(f"{path} holds neither a Modelfile nor config.json.", hint=_FORMS)
    if not path.is_file():
        raise ModelError(
            f"Model not found: {ref!r} is not an existing file or folder.", hint=_FORMS
        )
    return path
