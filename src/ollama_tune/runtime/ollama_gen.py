"""Generation through an Ollama server (`ollama:NAME`), via the client layer in `ollama.py`."""

from __future__ import annotations

from typing import Any

from ollama_tune.runtime.base import GenerateOptions, Generation, Messages


def ollama_options(opts: GenerateOptions) -> dict[str, Any]:
    """GenerateOptions as Ollama's request `options` (num_predict is its max_tokens)."""
    payload: dict[str, Any] = {
        "temperature": opts.temperature,
        "seed": opts.seed,
        "num_predict": opts.max_tokens,
    }
    if opts.top_p is not None:
        payload["top_p"] = opts.top_p
    if opts.stop:
        payload["stop"] = list(opts.stop)
    return payload


class OllamaGenerator:
    def __init__(self, model: str, *, host: str | None = None) -> None:
        from ollama_tune.ollama import OllamaService

        self.name = f"ollama:{model}"
        self.model = model
        self.service = OllamaService(host=host)

    def generate(self, messages: Messages, options: GenerateOptions | None = None) -> Generation:
        opts = options or GenerateOptions()
        reply = self.service.chat(self.model, [dict(m) for m in messages], ollama_options(opts))
        completion = reply.eval_count or 0
        rate = reply.tokens_per_s
        if rate is None:
            rate = completion / reply.total_s if reply.total_s > 0 else 0.0
        return Generation(
            text=reply.text,
            # Ollama says "length" when num_predict or the context ran out.
            done_reason="length" if reply.done_reason == "length" else "stop",
            prompt_tokens=reply.prompt_eval_count or 0,
            completion_tokens=completion,
            ttft_s=reply.ttft_s if reply.ttft_s is not None else reply.total_s,
            total_s=reply.total_s,
            tokens_per_s=rate,
        )

    def close(self) -> None:
        pass
