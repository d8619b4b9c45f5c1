"""`ollama-tune chat`: talk to any model reference (Ollama, bundle, Modelfile, GGUF, HF dir).

Attached to the root app by `register(app)`. Heavy imports stay inside the functions.
"""

from __future__ import annotations

import sys
from typing import Any

import typer

from ollama_tune.cli._options import JSON_ONCE
from ollama_tune.errors import UsageError


def chat_command(
    ref: str = typer.Argument(..., help="ollama:NAME, bundle dir, Modelfile, .gguf or HF dir."),
    once: str | None = typer.Option(None, "--once", help="Ask one question, print, exit."),
    system: str | None = typer.Option(None, "--system", help="System prompt for this chat."),
    max_tokens: int = typer.Option(384, "--max-tokens", help="Longest answer in tokens."),
    temperature: float = typer.Option(0.0, "--temperature", help="0 = deterministic."),
    seed: int = typer.Option(42, "--seed", help="Sampling seed."),
    num_ctx: int | None = typer.Option(None, "--num-ctx", help="Context size (embedded models)."),
    stats: bool = typer.Option(False, "--stats", help="Print tokens, TTFT and tokens/s."),
    as_json: bool = JSON_ONCE,
) -> None:
    """Talk to a model: reads questions from stdin (one per line), or --once for scripts."""
    from ollama_tune.runtime import GenerateOptions, open_model

    if as_json and once is None:
        raise UsageError("--json needs --once.", hint='ollama-tune chat REF --once "…" --json')
    options = GenerateOptions(temperature=temperature, seed=seed, max_tokens=max_tokens)
    model = open_model(ref, n_ctx=num_ctx)
    history: list[dict[str, str]] = [{"role": "system", "content": system}] if system else []
    try:
        questions = [once] if once is not None else _stdin_lines()
        for question in questions:
            history.append({"role": "user", "content": question})
            gen = model.generate(history, options)
            history.append({"role": "assistant", "content": gen.text})
            _render_answer(gen, stats=stats, as_json=as_json)
    finally:
        model.close()


def _stdin_lines() -> Any:
    from ollama_tune.cli._common import err_console

    if sys.stdin.isatty():
        err_console.print("Type a question and press Enter; Ctrl-D ends the chat.")
    for line in sys.stdin:
        if line.strip():
            yield line.rstrip("\n")


def _render_answer(gen: Any, *, stats: bool, as_json: bool) -> None:
    from ollama_tune.cli._common import console, err_console, print_json

    if as_json:
        print_json(gen.to_dict())
        return
    console.print(gen.text, markup=False, highlight=False)
    if stats:
        err_console.print(
            f"[dim]{gen.prompt_tokens} prompt + {gen.completion_tokens} tokens, "
            f"ttft {gen.ttft_s:.2f}s, {gen.tokens_per_s:.1f} tok/s, {gen.done_reason}[/dim]"
        )


def register(app: typer.Typer) -> None:
    """Attach this module's commands to the root app."""
    app.command("chat")(chat_command)
