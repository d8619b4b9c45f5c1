"""The TEMPLATE, stop parameters and SYSTEM of a model an Ollama server already has.

Fine-tuning a model people already run in Ollama keeps Ollama's exact prompt format: its
TEMPLATE and `stop` parameters come from `/api/show` (through `ollama.OllamaService.show`), and
the GGUF's own Jinja chat template (`tokenizer.chat_template`, when the server reports it) is
what the parity check compares against. `ollama:NAME` names such a model on the command line.
"""

from __future__ import annotations

import json
import shlex
from typing import Any

from ollama_tune.errors import TemplateError
from ollama_tune.templates.layout import OllamaTemplate, first_special

PREFIX = "ollama:"


def is_ollama_ref(source: object) -> bool:
    return isinstance(source, str) and source.startswith(PREFIX)


def _field(obj: Any, name: str) -> Any:
    return obj.get(name) if isinstance(obj, dict) else getattr(obj, name, None)


def parse_stops(parameters: str | None) -> list[str]:
    """`stop` values of `/api/show`'s parameters text (lines like `stop "<|im_end|>"`)."""
    stops: list[str] = []
    for line in (parameters or "").splitlines():
        key, _, value = line.strip().partition(" ")
        value = value.strip()
        if key != "stop" or not value:
            continue
        try:
            stop = json.loads(value) if value.startswith('"') else shlex.split(value)[0]
        except ValueError:
            stop = value
        if isinstance(stop, str) and stop and stop not in stops:
            stops.append(stop)
    return stops


def template_from_show(name: str, shown: Any) -> tuple[OllamaTemplate, str | None]:
    """(the model's TEMPLATE as an OllamaTemplate, its GGUF chat template or None)."""
    text = _field(shown, "template")
    if not isinstance(text, str) or not text.strip():
        raise TemplateError(
            f"ollama:{name} has no TEMPLATE, so there is no prompt format to keep",
            hint="Pick a chat/instruct model, or pass --template FILE.",
        )
    stops = parse_stops(_field(shown, "parameters"))
    system = _field(shown, "system") or None
    info = _field(shown, "modelinfo") or _field(shown, "model_info") or {}
    chat = info.get("tokenizer.chat_template") if isinstance(info, dict) else None
    prefix, eot = answer_frame(text, stops)
    tmpl = OllamaTemplate(
        "ollama",
        text,
        stops,
        default_system=system,
        matched="ollama",
        notes=[f"TEMPLATE and stop parameters of the Ollama model {name}"],
        answer_prefix=prefix,
        end_of_turn=eot,
    )
    return tmpl, chat if isinstance(chat, str) and chat.strip() else None


def answer_frame(template: str, stops: list[str]) -> tuple[str, str]:
    """(text between the generation prompt and an answer, end-of-turn after it) for a TEMPLATE.

    Read off Go renderings of a conversation with and without an answer in it; without Go the
    first stop parameter is the end-of-turn.
    """
    from ollama_tune.templates.gorender import go_available, render_go_many

    fallback = ("", stops[0] if stops else "")
    if not go_available():
        return fallback
    q1, answer, q2 = {"role": "user", "content": "Q1"}, "ANSWERQZ", {"role": "user", "content": "Q"}
    gen, hist = render_go_many(template, [[q1], [q1, {"role": "assistant", "content": answer}, q2]])
    if gen.error or hist.error or answer not in hist.output:
        return fallback
    at = hist.output.index(answer)
    prefix = hist.output[len(gen.output) : at] if hist.output.startswith(gen.output) else ""
    after = hist.output[at + len(answer) :]
    # Up to the first stop or special token after the answer (`<|im_end|>`, `</s>`).
    ends = [after.find(s) + len(s) for s in stops if s in after] + [first_special(after, "")]
    cut = min((e for e in ends if e > 0), default=0)
    return prefix, after[:cut] if cut else fallback[1]


def load_ollama_template(ref: str, service: Any = None) -> tuple[OllamaTemplate, str | None]:
    """`ollama:NAME` → its TEMPLATE (+ chat template) from the server (`OllamaService`)."""
    name = ref[len(PREFIX) :] if ref.startswith(PREFIX) else ref
    if service is None:
        from ollama_tune.ollama import OllamaService

        service = OllamaService()
    return template_from_show(name, service.show(name))
