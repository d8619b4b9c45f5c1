"""Generation with transformers from a Hugging Face directory (e.g. RUN_DIR/merged).

The reference the GGUF exports are compared with: same chat template, same greedy decoding.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from ollama_tune.errors import ModelError
from ollama_tune.runtime.base import GenerateOptions, Generation, Messages, Timer, cut_at_stop


class TransformersGenerator:
    def __init__(self, path: Path, *, name: str | None = None) -> None:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.path = path
        self.name = name or path.name
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(str(path))
            self.model = AutoModelForCausalLM.from_pretrained(str(path), dtype=torch.float32)
        except (OSError, ValueError) as exc:
            raise ModelError(f"transformers cannot load {path}: {exc}", hint="Re-export.") from None
        if not self.tokenizer.chat_template:
            raise ModelError(
                f"The tokenizer in {path} has no chat template.",
                hint="Use the merged directory export wrote, or a chat (instruct) model.",
            )
        self.model.eval()
        eos = self.model.generation_config.eos_token_id or self.tokenizer.eos_token_id
        self.eos_ids: list[int] = list(eos) if isinstance(eos, (list, tuple)) else [eos]

    def generate(self, messages: Messages, options: GenerateOptions | None = None) -> Generation:
        import torch

        opts = options or GenerateOptions()
        text = self.tokenizer.apply_chat_template(
            list(messages), tokenize=False, add_generation_prompt=True
        )
        enc = self.tokenizer(text, return_tensors="pt", add_special_tokens=False)
        n_prompt = int(enc["input_ids"].shape[1])
        timer = Timer()
        torch.manual_seed(opts.seed)
        kwargs: dict[str, Any] = {"max_new_tokens": opts.max_tokens, "eos_token_id": self.eos_ids}
        if opts.temperature > 0:
            kwargs.update(do_sample=True, temperature=opts.temperature, top_p=opts.top_p or 1.0)
        else:
            kwargs.update(do_sample=False)
        with torch.no_grad():
            out = self.model.generate(**enc, streamer=_FirstToken(timer), **kwargs)
        new = out[0, n_prompt:].tolist()
        stopped = bool(new) and new[-1] in self.eos_ids
        if stopped:
            new = new[:-1]
        answer = str(self.tokenizer.decode(new, skip_special_tokens=True))
        answer, hit = cut_at_stop(answer, opts.stop or [])
        reason: Literal["stop", "length"] = "stop" if stopped or hit else "length"
        return timer.finish(answer, reason, n_prompt, len(new))

    def close(self) -> None:
        del self.model


class _FirstToken:
    """A transformers streamer that only records when the first new token arrives."""

    def __init__(self, timer: Timer) -> None:
        self.timer = timer
        self.calls = 0

    def put(self, value: Any) -> None:
        self.calls += 1
        if self.calls > 1:  # the first call carries the prompt
            self.timer.token()

    def end(self) -> None:
        pass
