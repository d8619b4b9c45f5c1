"""Training text rendered through the Ollama TEMPLATE itself: the one source of truth.

A training row is prompt + completion: the prompt is the TEMPLATE rendered by Go's
`text/template` for the conversation up to the answer (one Go process for all rows, fed as
Ollama feeds it), the completion is what the chat template prints before the answer (Qwen3's
empty `<think>` block, Llama 2's space), the answer, and the end-of-turn stop. What Ollama serves
is then what training showed the model, by construction. Without Go, a converted TEMPLATE's own
layout renders the same text in Python; a TEMPLATE file or Ollama model's falls back to the Jinja
chat template, with a warning.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from ollama_tune.errors import TemplateError
from ollama_tune.templates.gorender import (
    MessageLike,
    as_message_dicts,
    collate_messages,
    go_available,
    render_go_many,
)
from ollama_tune.templates.jinja import render_training_pair, strip_bos
from ollama_tune.templates.layout import OllamaTemplate


@dataclass
class TrainingTexts:
    """(prompt, completion) per row and which renderer printed the prompts."""

    pairs: list[tuple[str, str]]
    renderer: str  # "go", "layout" or "jinja"
    warnings: list[str] = field(default_factory=list)


def completion_text(tmpl: OllamaTemplate, answer: str) -> str:
    """What the model learns to write after the prompt: prefix, answer, end-of-turn."""
    return tmpl.answer_prefix + answer + tmpl.end_of_turn


def render_training_texts(
    tmpl: OllamaTemplate,
    prompts: Sequence[Sequence[MessageLike]],
    answers: Sequence[str],
    *,
    chat_template: str | None = None,
    bos_token: str | None = None,
    eos_token: str | None = None,
) -> TrainingTexts:
    """Render every row's prompt through the TEMPLATE (one Go process) and its completion."""
    convs = [as_message_dicts(p) for p in prompts]
    warnings: list[str] = []
    if not convs:  # an empty test split
        return TrainingTexts([], "go" if go_available() else "layout")
    if go_available():
        outs = render_go_many(tmpl.template, convs)
        failed = next((o.error for o in outs if o.error), None)
        if failed:
            raise TemplateError(
                f"the Ollama TEMPLATE failed in Go's text/template: {failed}",
                hint="Check the TEMPLATE with `ollama-tune template check`.",
            )
        texts, renderer = [o.output for o in outs], "go"
    elif tmpl.layout is not None:
        texts = [tmpl.layout.render(collate_messages(c)) for c in convs]
        renderer = "layout"
    elif chat_template:
        warnings.append(
            "Go is not installed: training text is rendered with the Jinja chat template, not "
            "through the Ollama TEMPLATE (install Go so both are the same by construction)"
        )
        pairs = []
        for conv, answer in zip(convs, answers, strict=True):
            prompt, completion = render_training_pair(
                chat_template, conv, answer, bos_token=bos_token, eos_token=eos_token
            )
            end = completion.find(tmpl.end_of_turn) if tmpl.end_of_turn else -1
            if end >= 0:  # what follows the end-of-turn token is never trained
                completion = completion[: end + len(tmpl.end_of_turn)]
            pairs.append((strip_bos(prompt, bos_token, chat_template), completion))
        return TrainingTexts(pairs, "jinja", warnings)
    else:
        raise TemplateError(
            "the Ollama TEMPLATE cannot be rendered: Go is not installed",
            hint="Install Go (apt-get install golang-go) and run again.",
        )
    pairs = [(t, completion_text(tmpl, a)) for t, a in zip(texts, answers, strict=True)]
    return TrainingTexts(pairs, renderer, warnings)
