"""Template fidelity: chat template → Ollama TEMPLATE + stop tokens, and the proof they match.

`convert_chat_template` probes the tokenizer's Jinja chat template and writes the Go TEMPLATE;
`render_go` renders a TEMPLATE with Go's own `text/template` exactly as an Ollama server feeds
it, and training renders its text through it (`training.py`); `render_jinja` is the model's own
format; `check_parity` requires both to print identical bytes for a battery of conversations.
"""

from __future__ import annotations

from ollama_tune.templates.gorender import (
    collate_messages,
    go_available,
    render_go,
    render_go_many,
)
from ollama_tune.templates.jinja import (
    ChatTemplateRejected,
    render_jinja,
    render_training_pair,
)
from ollama_tune.templates.layout import Layout, OllamaTemplate
from ollama_tune.templates.parity import (
    BATTERY,
    ParityCase,
    ParityResult,
    check_parity,
    check_template_file,
    first_difference,
    load_template_file,
)
from ollama_tune.templates.probe import TEMPLATE_FILE_HINT, convert_chat_template
from ollama_tune.templates.source import (
    ChatTemplateSource,
    TemplateResult,
    build_ollama_template,
    load_chat_template,
)

__all__ = [
    "BATTERY",
    "TEMPLATE_FILE_HINT",
    "ChatTemplateRejected",
    "ChatTemplateSource",
    "Layout",
    "OllamaTemplate",
    "ParityCase",
    "ParityResult",
    "TemplateResult",
    "build_ollama_template",
    "check_parity",
    "check_template_file",
    "collate_messages",
    "convert_chat_template",
    "first_difference",
    "go_available",
    "load_chat_template",
    "load_template_file",
    "render_go",
    "render_go_many",
    "render_jinja",
    "render_training_pair",
]
