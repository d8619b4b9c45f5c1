"""Find a model's chat template and special tokens, and build the checked Ollama TEMPLATE.

A source is a Hugging Face model/tokenizer folder (`tokenizer_config.json`, or
`chat_template.jinja` next to it), a `.gguf` file (its `tokenizer.chat_template` metadata) or a
bare `.jinja` file. `build_ollama_template` is the one call export and the CLI make: convert (or
load the user's `--template FILE`) and run the parity check when Go is available.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from ollama_tune.errors import TemplateError
from ollama_tune.templates.gorender import go_available
from ollama_tune.templates.layout import OllamaTemplate
from ollama_tune.templates.parity import (
    ParityResult,
    check_parity,
    check_template_file,
    load_template_file,
)
from ollama_tune.templates.probe import convert_chat_template

_SOURCE_HINT = "Point at a model folder with tokenizer_config.json, a .gguf file or a .jinja file."


@dataclass(frozen=True)
class ChatTemplateSource:
    chat_template: str
    bos_token: str | None
    eos_token: str | None
    origin: str  # where the template was read from, for messages


@dataclass(frozen=True)
class TemplateResult:
    """The TEMPLATE to ship and its parity proof (None when Go was not available)."""

    template: OllamaTemplate
    parity: ParityResult | None


def _token(value: Any) -> str | None:
    # tokenizer_config.json stores special tokens as strings or serialized AddedToken dicts.
    if isinstance(value, dict):
        value = value.get("content")
    return value if isinstance(value, str) and value else None


def _from_hf_dir(folder: Path) -> ChatTemplateSource:
    config_path = folder / "tokenizer_config.json"
    config: dict[str, Any] = {}
    if config_path.is_file():
        try:
            config = json.loads(config_path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise TemplateError(
                f"{config_path}: not readable JSON: {exc}", hint=_SOURCE_HINT
            ) from None
    template = config.get("chat_template")
    if isinstance(template, list):  # named templates: the "default" one is what HF uses
        named = {t.get("name"): t.get("template") for t in template if isinstance(t, dict)}
        template = named.get("default")
    jinja_file = folder / "chat_template.jinja"
    origin = str(config_path)
    if not template and jinja_file.is_file():
        template, origin = jinja_file.read_text(encoding="utf-8"), str(jinja_file)
    if not isinstance(template, str) or not template.strip():
        raise TemplateError(
            f"{folder}: no chat template found (neither tokenizer_config.json's chat_template nor "
            "chat_template.jinja)",
            hint="Use an instruct/chat model, or write the TEMPLATE yourself with --template FILE.",
        )
    return ChatTemplateSource(
        template, _token(config.get("bos_token")), _token(config.get("eos_token")), origin
    )


def _from_gguf(path: Path) -> ChatTemplateSource:
    from gguf import GGUFReader

    try:
        reader = GGUFReader(str(path), "r")
    except Exception as exc:  # the reader raises bare ValueError/OSError on bad files
        raise TemplateError(f"{path}: not a readable GGUF file: {exc}", hint=_SOURCE_HINT) from None

    def value(key: str) -> Any:
        field = reader.fields.get(key)
        return None if field is None else field.contents()

    template = value("tokenizer.chat_template")
    if not isinstance(template, str) or not template.strip():
        raise TemplateError(
            f"{path}: the GGUF has no tokenizer.chat_template",
            hint="Write the TEMPLATE yourself and pass it with --template FILE.",
        )
    tokens = reader.fields.get("tokenizer.ggml.tokens")

    def token(key: str) -> str | None:
        idx = value(key)
        if tokens is None or not isinstance(idx, int):
            return None
        return str(tokens.contents(idx))

    return ChatTemplateSource(
        template,
        token("tokenizer.ggml.bos_token_id"),
        token("tokenizer.ggml.eos_token_id"),
        f"{path} (tokenizer.chat_template)",
    )


def load_chat_template(source: str | Path) -> ChatTemplateSource:
    """Read the chat template and BOS/EOS tokens from a model folder, `.gguf` or `.jinja` file."""
    path = Path(source)
    if path.is_dir():
        return _from_hf_dir(path)
    if path.is_file() and path.suffix == ".gguf":
        return _from_gguf(path)
    if path.is_file():
        return ChatTemplateSource(path.read_text(encoding="utf-8"), None, None, str(path))
    raise TemplateError(f"{path}: no such file or folder", hint=_SOURCE_HINT)


def _with_family_stops(tmpl: OllamaTemplate, chat_template: str) -> OllamaTemplate:
    """A TEMPLATE file without stop tokens borrows the converted template's, so generation ends."""
    if tmpl.stop:
        return tmpl
    try:
        stop = convert_chat_template(chat_template).stop
    except TemplateError:
        return replace(tmpl, notes=[*tmpl.notes, "no stop tokens: add PARAMETER stop lines"])
    notes = [*tmpl.notes, "stop tokens taken from the converted chat template"]
    return replace(
        tmpl, stop=stop, end_of_turn=tmpl.end_of_turn or (stop[0] if stop else ""), notes=notes
    )


def build_ollama_template(
    chat_template: str,
    *,
    bos_token: str | None = None,
    eos_token: str | None = None,
    template_file: str | Path | None = None,
    system: str | None = None,
    require_parity: bool = False,
) -> TemplateResult:
    """Convert (or load `template_file`) and prove parity; raise TemplateError when it fails.

    Without Go the Go check cannot run: `parity` is None. A converted TEMPLATE is still accepted,
    because the conversion itself checks its layout against the chat template on the whole
    battery (`probe.py`); TEMPLATE files and `require_parity` fail closed.
    """
    if not go_available():
        if template_file is not None or require_parity:
            raise TemplateError(
                "the Ollama TEMPLATE cannot be proven to match the chat template: the parity "
                "check needs the Go toolchain, which is not installed",
                hint="Install Go (apt-get install golang-go) and run again.",
            )
        tmpl = convert_chat_template(chat_template, bos_token=bos_token, eos_token=eos_token)
        return TemplateResult(tmpl, None)
    if template_file is not None:
        tmpl, parity = check_template_file(
            template_file, chat_template, bos_token=bos_token, eos_token=eos_token, system=system
        )
        tmpl = _with_family_stops(tmpl, chat_template)
    else:
        tmpl = convert_chat_template(chat_template, bos_token=bos_token, eos_token=eos_token)
        parity = check_parity(
            chat_template, tmpl, bos_token=bos_token, eos_token=eos_token, system=system
        )
    parity.raise_for_failure()
    return TemplateResult(tmpl, parity)


def template_for_base(
    ref: Any, template: str | Path | None = None, service: Any = None
) -> OllamaTemplate | None:
    """The TEMPLATE training renders through, by where it comes from.

    `template` (`--template FILE` or `ollama:NAME`) when given; else an Ollama base model's own
    TEMPLATE and stop parameters (`/api/show`), so fine-tuning the model people already run
    keeps Ollama's exact format; else None: the tokenizer's chat template is converted.
    """
    from ollama_tune.templates.ollama_source import is_ollama_ref, load_ollama_template

    if template is not None and is_ollama_ref(str(template)):
        return load_ollama_template(str(template), service)[0]
    if template is not None:
        return load_template_file(template)
    if getattr(ref, "kind", None) == "ollama":
        return load_ollama_template(str(ref.spec), service)[0]
    return None
