"""Shared types of the runtime: options in, a timed `Generation` out."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal, Protocol

Messages = Sequence[dict[str, str]]


@dataclass(frozen=True)
class GenerateOptions:
    """Sampling options; the defaults are deterministic (greedy, fixed seed)."""

    temperature: float = 0.0
    seed: int = 42
    max_tokens: int = 384
    top_p: float | None = None
    stop: list[str] | None = None


@dataclass(frozen=True)
class Generation:
    text: str
    done_reason: Literal["stop", "length"]
    prompt_tokens: int
    completion_tokens: int
    ttft_s: float  # time to the first generated token, prompt processing included
    total_s: float
    tokens_per_s: float  # decode speed: tokens after the first / time after the first

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class Generator(Protocol):
    name: str

    def generate(self, messages: Messages, options: GenerateOptions | None = None) -> Generation:
        """Answer the conversation `messages` (role/content dicts)."""
        ...

    def close(self) -> None: ...


class Timer:
    """Start, first-token and end times → ttft, total and decode tokens/s."""

    def __init__(self) -> None:
        self.start = time.perf_counter()
        self.first: float | None = None

    def token(self) -> None:
        if self.first is None:
            self.first = time.perf_counter()

    def finish(
        self,
        text: str,
        done_reason: Literal["stop", "length"],
        prompt_tokens: int,
        completion_tokens: int,
    ) -> Generation:
        end = time.perf_counter()
        first = self.first if self.first is not None else end
        decode_s = end - first
        if completion_tokens > 1 and decode_s > 0:
            rate = (completion_tokens - 1) / decode_s
        else:
            rate = completion_tokens / (end - self.start) if end > self.start else 0.0
        return Generation(
            text=text,
            done_reason=done_reason,
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            ttft_s=first - self.start,
            total_s=end - self.start,
            tokens_per_s=rate,
        )


def with_modelfile_context(
    messages: Messages, system: str | None, few_shots: Sequence[tuple[str, str]]
) -> list[dict[str, str]]:
    """Messages as Ollama builds them: SYSTEM (if the request has none), MESSAGEs, request."""
    out: list[dict[str, str]] = []
    if system and not (messages and messages[0].get("role") == "system"):
        out.append({"role": "system", "content": system})
    out += [{"role": r, "content": c} for r, c in few_shots]
    out += [{"role": m["role"], "content": m["content"]} for m in messages]
    return out


def cut_at_stop(text: str, stops: Sequence[str]) -> tuple[str, bool]:
    """`text` up to the first stop string, and whether one was found."""
    hits = [i for i in (text.find(s) for s in stops if s) if i >= 0]
    return (text[: min(hits)], True) if hits else (text, False)
