"""Render a tokenizer's Jinja chat template exactly as Hugging Face transformers does.

This is the one renderer training and the parity check share: `train.py` builds its
prompt/completion pairs with `render_training_pair` (prompt = `add_generation_prompt=True`), and
the Ollama TEMPLATE is checked byte for byte against the same function. The environment mirrors
`transformers.utils.chat_template_utils` (sandbox, trim_blocks, lstrip_blocks, loopcontrols,
`raise_exception`, a `tojson` that keeps non-ASCII, `strftime_now`, `tools=None`). Any failure
inside a template (a `TypeError` from a tool-use branch included) becomes a TemplateError.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime
from functools import lru_cache
from typing import Any

from ollama_tune.errors import TemplateError
from ollama_tune.templates.gorender import MessageLike, as_message_dicts

_HINT = "Check the tokenizer's chat_template (tokenizer_config.json or chat_template.jinja)."


class ChatTemplateRejected(TemplateError):
    """The chat template itself refused a conversation (its `raise_exception(...)`)."""


def _raise_exception(message: str) -> None:
    import jinja2

    raise jinja2.exceptions.TemplateError(message)


def _tojson(
    x: Any,
    ensure_ascii: bool = False,
    indent: int | None = None,
    separators: tuple[str, str] | None = None,
    sort_keys: bool = False,
) -> str:
    return json.dumps(
        x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys
    )


@lru_cache(maxsize=64)
def _compile(chat_template: str) -> Any:
    import jinja2
    import jinja2.ext
    from jinja2 import nodes
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    class _Generation(jinja2.ext.Extension):
        # `{% generation %}` marks assistant text for HF's assistant masks; the text is unchanged.
        tags = {"generation"}  # noqa: RUF012

        def parse(self, parser: Any) -> Any:
            lineno = next(parser.stream).lineno
            body = parser.parse_statements(["name:endgeneration"], drop_needle=True)
            return nodes.Scope(body, lineno=lineno)

    env = ImmutableSandboxedEnvironment(
        trim_blocks=True, lstrip_blocks=True, extensions=[_Generation, jinja2.ext.loopcontrols]
    )
    env.filters["tojson"] = _tojson
    env.globals["raise_exception"] = _raise_exception
    # As transformers: today's date (Llama 3.2's "Today Date", Mistral Small's default system).
    env.globals["strftime_now"] = lambda fmt: datetime.now().strftime(fmt)
    try:
        return env.from_string(chat_template)
    except jinja2.TemplateSyntaxError as exc:
        raise TemplateError(
            f"the chat template is not valid Jinja (line {exc.lineno}): {exc.message}", hint=_HINT
        ) from None


def render_jinja(
    chat_template: str,
    messages: Iterable[MessageLike],
    *,
    add_generation_prompt: bool,
    bos_token: str | None = None,
    eos_token: str | None = None,
    **template_kwargs: Any,
) -> str:
    """Render `messages` with the Jinja chat template (what the model sees in training).

    Raises `ChatTemplateRejected` when the template's own `raise_exception` fires (e.g. Gemma 2
    and a system message) and `TemplateError` for any other template failure.
    """
    compiled = _compile(chat_template)
    context = {
        "messages": as_message_dicts(messages),
        "add_generation_prompt": add_generation_prompt,
        "bos_token": bos_token or "",
        "eos_token": eos_token or "",
        **template_kwargs,
    }
    try:
        return _render(compiled, {"tools": None, "documents": None, **context})
    except ChatTemplateRejected:
        raise
    except TemplateError:
        # Some tool-capable templates only work when `tools` is undefined (llama.cpp and
        # Ollama render them that way): their tool-free path is the one to serve.
        return _render(compiled, context)


def _render(compiled: Any, context: dict[str, Any]) -> str:
    import jinja2

    try:
        return str(compiled.render(**context))
    except jinja2.TemplateError as exc:
        if type(exc) is jinja2.exceptions.TemplateError:  # raised by raise_exception()
            raise ChatTemplateRejected(
                f"the chat template rejected the conversation: {exc}",
                hint="Reshape the conversation (roles, system message) the way this model expects.",
            ) from None
        raise TemplateError(f"the chat template failed to render: {exc}", hint=_HINT) from None
    except Exception as exc:  # a template bug (None iterated, bad index...) is a template error
        raise TemplateError(
            f"the chat template failed to render: {type(exc).__name__}: {exc}", hint=_HINT
        ) from None


def strip_bos(text: str, bos_token: str | None, chat_template: str) -> str:
    """Drop the BOS the chat template prints itself: llama.cpp adds it when it tokenizes.

    Only a BOS the template prints (`bos_token` in its text) is dropped: SmolLM2's GGUF calls
    `<|im_start|>` its BOS, and that one belongs to the text.
    """
    if bos_token and "bos_token" in chat_template and text.startswith(bos_token):
        return text[len(bos_token) :]
    return text


def render_training_pair(
    chat_template: str,
    prompt_messages: Iterable[MessageLike],
    answer: str,
    *,
    bos_token: str | None = None,
    eos_token: str | None = None,
) -> tuple[str, str]:
    """Split one training example into (prompt, completion) text with the chat template.

    The prompt is the render with the generation prompt; the completion is what the full
    conversation adds after it: the answer and its end-of-turn token(s), so the loss teaches the
    model to stop.
    """
    prompt_msgs = as_message_dicts(prompt_messages)
    prompt = render_jinja(
        chat_template,
        prompt_msgs,
        add_generation_prompt=True,
        bos_token=bos_token,
        eos_token=eos_token,
    )
    full = render_jinja(
        chat_template,
        [*prompt_msgs, {"role": "assistant", "content": answer}],
        add_generation_prompt=False,
        bos_token=bos_token,
        eos_token=eos_token,
    )
    if not full.startswith(prompt):
        raise TemplateError(
            "the chat template renders the prompt differently once the answer is added, so the "
            "conversation cannot be split into prompt and completion",
            hint="Use a chat template whose generation prompt prefixes the full conversation.",
        )
    return prompt, full[len(prompt) :]
