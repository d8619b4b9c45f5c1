"""Embedded llama.cpp generation through llama-cpp-python, with the GGUF's own chat template.

The prompt is rendered by llama-cpp-python's `Jinja2ChatFormatter` from the GGUF's
`tokenizer.chat_template` — the handler `Llama` itself registers as "chat_template.default" —
and generation stops on any end-of-generation token of the vocabulary (EOS, <|im_end|>,
<|eot_id|>…), exactly what Ollama does with the exported GGUF.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ollama_tune._native_log import captured_native_stderr, log_tail
from ollama_tune.errors import ModelError
from ollama_tune.runtime.base import (
    GenerateOptions,
    Generation,
    Messages,
    Timer,
    cut_at_stop,
    with_modelfile_context,
)

DEFAULT_CTX = 2048
# Set to 1 to keep llama.cpp's AMX weight repacking on a CPU where it works (see `amx_safe`).
AMX_ENV = "OLLAMA_TUNE_LLAMA_AMX"


def cpu_has_amx(cpuinfo: Path = Path("/proc/cpuinfo")) -> bool:
    try:
        return " amx_tile" in cpuinfo.read_text(errors="replace")
    except OSError:
        return False


@contextmanager
def amx_safe() -> Iterator[None]:
    """Models loaded inside get no extra buffer types (llama.cpp's AMX repacking) on AMX CPUs.

    On AMX CPUs whose kernel enables tile data per thread (XFD), llama.cpp's AMX matmul
    segfaults on the first decode: worker threads never request the permission
    (ggml-org/llama.cpp#20824, fix proposed in PR #26954). Seen on this project's 2-vCPU VMs:
    every generation crashed. Plain CPU buffers avoid the AMX kernels; `llama-cpp-python`'s
    `Llama` has no argument for it, so its default model params are amended while it loads.
    """
    import llama_cpp.llama_cpp as native

    real = native.llama_model_default_params
    if os.environ.get(AMX_ENV) == "1" or not cpu_has_amx():
        yield
        return

    def params() -> Any:
        p = real()
        if hasattr(p, "use_extra_bufts"):
            p.use_extra_bufts = False
        return p

    native.llama_model_default_params = params
    try:
        yield
    finally:
        native.llama_model_default_params = real


class LlamaCppGenerator:
    """A GGUF file run in-process; optional Modelfile context (SYSTEM, MESSAGEs, stops)."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        n_ctx: int | None = None,
        n_threads: int | None = None,
        system: str | None = None,
        few_shots: Sequence[tuple[str, str]] = (),
        stop: Sequence[str] = (),
        name: str | None = None,
    ) -> None:
        from llama_cpp import Llama
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        self.path = Path(path)
        self.name = name or self.path.name
        self.system, self.few_shots, self.stop = system, list(few_shots), list(stop)
        with captured_native_stderr() as log, amx_safe():
            try:
                self.llm = Llama(
                    model_path=str(self.path),
                    n_ctx=n_ctx or DEFAULT_CTX,
                    n_threads=n_threads or max(1, os.cpu_count() or 1),
                    seed=42,
                    verbose=False,
                )
            except (ValueError, RuntimeError) as exc:
                raise ModelError(
                    f"llama.cpp cannot load {self.path}: {exc}\n{log_tail(log)}".rstrip(),
                    hint="Check that the file is a complete GGUF (re-run ollama-tune export).",
                ) from None
        template = self.llm.metadata.get("tokenizer.chat_template")
        if not template:
            raise ModelError(
                f"{self.path} has no tokenizer.chat_template in its metadata.",
                hint="Export with ollama-tune (it writes the trained template into the GGUF).",
            )
        model = self.llm._model  # the vocabulary for EOG checks and special-token texts
        eos, bos = self.llm.token_eos(), self.llm.token_bos()
        self._formatter = Jinja2ChatFormatter(
            template=template,
            eos_token=model.token_get_text(eos) if eos != -1 else "",
            bos_token=model.token_get_text(bos) if bos != -1 else "",
            stop_token_ids=[eos],
        )

    def _is_eog(self, token: int) -> bool:
        import llama_cpp

        return bool(llama_cpp.llama_vocab_is_eog(self.llm._model.vocab, token))

    def prompt_tokens(self, messages: Messages) -> list[int]:
        """The token ids llama.cpp sees for `messages` (generation prompt included)."""
        full = with_modelfile_context(messages, self.system, self.few_shots)
        prompt = self._formatter(messages=full).prompt  # type: ignore[arg-type]
        # The template already wrote any BOS it wants (added_special), as in llama-cpp-python.
        return self.llm.tokenize(prompt.encode("utf-8"), add_bos=False, special=True)

    def generate(self, messages: Messages, options: GenerateOptions | None = None) -> Generation:
        opts = options or GenerateOptions()
        tokens = self.prompt_tokens(messages)
        n_ctx = self.llm.n_ctx()
        if len(tokens) >= n_ctx:
            raise ModelError(
                f"The prompt has {len(tokens)} tokens; the context holds {n_ctx}.",
                hint="Shorten the conversation or raise num_ctx.",
            )
        stops = [*self.stop, *(opts.stop or [])]
        timer = Timer()
        self.llm.set_seed(opts.seed)
        out: list[int] = []
        text, reason = "", "length"
        for token in self.llm.generate(tokens, **_sampling(opts)):
            timer.token()
            if self._is_eog(token):
                reason = "stop"
                break
            out.append(token)
            text, hit = cut_at_stop(self._decode(out), stops)
            if hit:
                reason = "stop"
                break
            if len(out) >= opts.max_tokens or len(tokens) + len(out) >= n_ctx:
                break
        return timer.finish(text, reason, len(tokens), len(out))  # type: ignore[arg-type]

    def _decode(self, tokens: list[int]) -> str:
        # A multi-byte character may be split across tokens until the next one arrives.
        return self.llm.detokenize(tokens).decode("utf-8", errors="ignore")

    def close(self) -> None:
        self.llm.close()


def _sampling(opts: GenerateOptions) -> dict[str, Any]:
    """llama-cpp-python sampling arguments; temperature 0 selects its greedy sampler."""
    return {
        "temp": opts.temperature,
        "top_p": opts.top_p if opts.top_p is not None else 1.0,
        "top_k": 40 if opts.temperature > 0 else 1,
        "min_p": 0.0,
        "repeat_penalty": 1.0,
        "reset": True,
    }


def from_modelfile(
    path: Path, *, n_ctx: int | None = None, n_threads: int | None = None
) -> LlamaCppGenerator:
    """Run a Modelfile embedded: its FROM GGUF (relative to the file), SYSTEM, MESSAGEs, stops."""
    from ollama_tune.modelfile import Modelfile

    mf = Modelfile.read(path)
    gguf = mf.local_file(mf.from_, path.parent)
    if gguf is None or not gguf.is_file():
        raise ModelError(
            f"{path}: FROM {mf.from_!r} is not a GGUF file next to the Modelfile, so it cannot "
            "run without Ollama.",
            hint="Point FROM at a .gguf path, or run it through Ollama with ollama:NAME.",
        )
    params: dict[str, list[str]] = {}
    for key, value in mf.parameters:
        params.setdefault(key, []).append(value)
    ctx = n_ctx or (int(params["num_ctx"][-1]) if "num_ctx" in params else None)
    return LlamaCppGenerator(
        gguf,
        n_ctx=ctx,
        n_threads=n_threads,
        system=mf.system,
        few_shots=mf.messages,
        stop=params.get("stop", []),
        name=str(path),
    )
