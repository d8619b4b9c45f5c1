"""Chat template families: detect a tokenizer's Jinja template, emit the Ollama Go TEMPLATE.

Detection first looks for an exact match among the reference templates (`_reference.py`), then
for robust markers; anything else fails closed with the `--template FILE` escape hatch. The
details that vary inside a family (default system prompt, Llama 3.1's date preamble, Mistral's
spacing and where it folds the system prompt) are read off renders of small probe conversations,
so the Go TEMPLATE follows what the Jinja template actually prints.

Go TEMPLATEs use only `.System`/`.Messages` as Ollama feeds them (see `gorender.py`) and never
print a BOS token: llama.cpp adds it when it tokenizes the prompt. A conversation that ends with
an assistant turn renders closed (with its end-of-turn token), exactly like the training text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from ollama_tune.errors import TemplateError
from ollama_tune.templates._reference import REFERENCE_TEMPLATES
from ollama_tune.templates.jinja import ChatTemplateRejected, render_jinja

FAMILIES: tuple[str, ...] = ("chatml", "llama3", "mistral", "gemma", "phi3", "zephyr")

TEMPLATE_FILE_HINT = (
    "Write the Ollama TEMPLATE yourself (Go text/template using .System and .Messages; see "
    "https://github.com/ollama/ollama/blob/main/docs/template.md) and pass it with "
    "`--template FILE`; ollama-tune still checks it byte for byte against the chat template."
)

STOP_TOKENS: dict[str, tuple[str, ...]] = {
    "chatml": ("<|im_start|>", "<|im_end|>"),
    "llama3": ("<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"),
    "mistral": ("[INST]", "[/INST]"),
    "gemma": ("<start_of_turn>", "<end_of_turn>"),
    "phi3": ("<|end|>", "<|system|>", "<|user|>", "<|assistant|>"),
    "zephyr": ("<|system|>", "</s>", "<|user|>", "<|assistant|>"),
}

_DEFAULT_EOS = {"mistral": "</s>", "phi3": "<|endoftext|>", "zephyr": "</s>"}

# `$last` is Ollama's own idiom: true on the final message of .Messages.
_LAST = "{{- $last := eq (len (slice $.Messages $i)) 1 }}"

_CHATML = (
    "{{- range $i, $_ := .Messages }}\n" + _LAST + "\n"
    '{{- "" }}<|im_start|>{{ .Role }}\n{{ .Content }}<|im_end|>\n'
    '{{ if and $last (ne .Role "assistant") }}<|im_start|>assistant\n{{ end }}\n'
    "{{- end }}"
)

_LLAMA3 = (
    "{{- range $i, $_ := .Messages }}\n" + _LAST + "\n"
    '{{- "" }}<|start_header_id|>{{ .Role }}<|end_header_id|>\n\n{{ .Content }}<|eot_id|>\n'
    '{{- if and $last (ne .Role "assistant") }}<|start_header_id|>assistant<|end_header_id|>\n\n'
    "{{ end }}\n{{- end }}"
)

# Llama 3.1+: a system header is always printed, with a fixed preamble (knowledge/today date).
_LLAMA31 = (
    "<|start_header_id|>system<|end_header_id|>\n\n@PREAMBLE@"
    '{{ if .Messages }}{{ with index .Messages 0 }}{{ if eq .Role "system" }}{{ .Content }}'
    "{{ end }}{{ end }}{{ end }}<|eot_id|>\n"
    "{{- range $i, $_ := .Messages }}\n" + _LAST + "\n"
    '{{- if not (and (eq $i 0) (eq .Role "system")) }}'
    "<|start_header_id|>{{ .Role }}<|end_header_id|>\n\n{{ .Content }}<|eot_id|>\n{{- end }}\n"
    '{{- if and $last (ne .Role "assistant") }}<|start_header_id|>assistant<|end_header_id|>\n\n'
    "{{ end }}\n{{- end }}"
)

# Mistral: only user/assistant turns; the leading system prompt is folded into one user turn.
_MISTRAL = (
    '{{- $fold := -1 }}{{ $sys := "" }}{{ $hasSys := false }}\n'
    '{{- range $i, $_ := .Messages }}{{ if eq .Role "user" }}@FOLD@{{ end }}{{ end }}\n'
    '{{- if .Messages }}{{ with index .Messages 0 }}{{ if eq .Role "system" }}'
    "{{ $sys = .Content }}{{ $hasSys = true }}{{ end }}{{ end }}{{ end }}\n"
    "{{- range $i, $_ := .Messages }}\n"
    '{{- if eq .Role "user" }}[INST] {{ if and $hasSys (eq $i $fold) }}{{ $sys }}\n\n{{ end }}'
    "{{ .Content }}@CLOSE@\n"
    '{{- else if eq .Role "assistant" }}@APRE@{{ .Content }}@EOS@@APOST@{{ end }}\n'
    "{{- end }}"
)
_FOLD_LAST = "{{ $fold = $i }}"
_FOLD_FIRST = "{{ if lt $fold 0 }}{{ $fold = $i }}{{ end }}"
# Mistral "v1" folds the system prompt only into a user turn that is the very last message.
_FOLD_LAST_MESSAGE = "{{ if eq (len (slice $.Messages $i)) 1 }}{{ $fold = $i }}{{ end }}"

# Gemma: no system role; the leading system prompt becomes a prefix of the first turn.
_GEMMA = (
    '{{- $prefix := "" }}\n'
    "{{- range $i, $_ := .Messages }}\n" + _LAST + "\n"
    '{{- if and (eq $i 0) (eq .Role "system") }}{{ $prefix = printf "%s\\n\\n" .Content }}\n'
    '{{- else }}<start_of_turn>{{ if eq .Role "assistant" }}model{{ else }}{{ .Role }}{{ end }}\n'
    '{{ $prefix }}{{ .Content }}<end_of_turn>\n{{ $prefix = "" }}\n{{- end }}\n'
    '{{- if and $last (ne .Role "assistant") }}<start_of_turn>model\n{{ end }}\n'
    "{{- end }}"
)

_PHI3 = (
    "{{- range $i, $_ := .Messages }}\n" + _LAST + "\n"
    '{{- if or (and (eq .Role "system") @SYSCOND@) (eq .Role "user") (eq .Role "assistant") }}'
    "<|{{ .Role }}|>\n{{ .Content }}<|end|>\n{{ end }}\n"
    '{{- if $last }}{{ if eq .Role "assistant" }}@EOS@{{ else }}<|assistant|>\n{{ end }}{{ end }}\n'
    "{{- end }}"
)

_ZEPHYR = (
    "{{- range $i, $_ := .Messages }}\n" + _LAST + "\n"
    '{{- if or (eq .Role "system") (eq .Role "user") (eq .Role "assistant") }}'
    "<|{{ .Role }}|>\n{{ .Content }}@EOS@\n{{ end }}\n"
    '{{- if and $last (ne .Role "assistant") }}<|assistant|>\n{{ end }}\n'
    "{{- end }}"
)


@dataclass(frozen=True)
class OllamaTemplate:
    """An Ollama TEMPLATE with its stop tokens and the SYSTEM the chat template defaults to."""

    family: str
    template: str
    stop: list[str]
    default_system: str | None = None
    variant: str | None = None
    matched: str = "markers"  # "exact" (a known reference template), "markers" or "file"
    notes: list[str] = field(default_factory=list)


def detect_family(chat_template: str) -> tuple[str, str | None, str]:
    """(family, variant, how) for a chat template; raises TemplateError when unknown."""
    text = chat_template.strip()
    for ref in REFERENCE_TEMPLATES:
        if ref.jinja.strip() == text:
            return ref.family, ref.variant, "exact"
    has = chat_template.__contains__
    if has("<<SYS>>"):
        family = None  # Llama 2: its per-turn BOS cannot be expressed without knowing the tokenizer
    elif has("<|im_start|>"):
        family = "chatml"
    elif has("<|start_header_id|>") and has("<|eot_id|>"):
        family = "llama3"
    elif has("[INST]") and has("[/INST]"):
        family = "mistral"
    elif has("<start_of_turn>"):
        family = "gemma"
    elif has("<|user|>") and has("<|end|>"):
        family = "phi3"
    elif has("<|user|>") and has("<|assistant|>") and has("eos_token"):
        family = "zephyr"
    else:
        family = None
    if family is None:
        head = " ".join(chat_template.split())[:100]
        raise TemplateError(
            f"chat template not recognised (starts with: {head!r}); supported families: "
            f"{', '.join(FAMILIES)}",
            hint=TEMPLATE_FILE_HINT,
        )
    return family, None, "markers"


def _probe(chat_template: str, roles_contents: list[tuple[str, str]], **kw: str) -> str | None:
    msgs = [{"role": r, "content": c} for r, c in roles_contents]
    try:
        return render_jinja(chat_template, msgs, add_generation_prompt=True, **kw)
    except ChatTemplateRejected:
        return None


def _mistral(chat_template: str, eos: str, notes: list[str]) -> str:
    one = _probe(chat_template, [("user", "PROBE")], eos_token=eos) or ""
    two = _probe(
        chat_template, [("user", "P"), ("assistant", "ANSWER"), ("user", "Q")], eos_token=eos
    )
    sys_probe = _probe(
        chat_template, [("system", "SYS"), ("user", "P"), ("assistant", "A"), ("user", "Q")]
    )
    two = two or ""
    close = " [/INST]" if "PROBE [/INST]" in one else "[/INST]"
    apre = " " if "[/INST] ANSWER" in two else ""
    apost = " " if f"ANSWER{eos} [INST]" in two else ""
    closed = _probe(chat_template, [("system", "SYS"), ("user", "P"), ("assistant", "A")])
    fold = _FOLD_LAST
    if sys_probe is not None and "SYS\n\nP" in sys_probe:
        fold = _FOLD_FIRST
    elif closed is not None and "SYS" not in closed:
        fold = _FOLD_LAST_MESSAGE
    if sys_probe is None:
        notes.append(
            "the chat template rejects system messages; the TEMPLATE folds SYSTEM into the last "
            "user turn as Mistral v0.3 does (not covered by the parity check)"
        )
    return (
        _MISTRAL.replace("@FOLD@", fold)
        .replace("@CLOSE@", close)
        .replace("@APRE@", apre)
        .replace("@APOST@", apost)
        .replace("@EOS@", eos)
    )


def _llama3(chat_template: str, bos: str | None, notes: list[str]) -> str:
    probe = _probe(chat_template, [("user", "PROBE")], bos_token=bos or "") or ""
    m = re.search(
        r"<\|start_header_id\|>system<\|end_header_id\|>\n\n(.*?)<\|eot_id\|>", probe, re.S
    )
    if m is None:
        return _LLAMA3
    notes.append(f"the chat template always prints a system header starting with {m.group(1)!r}")
    return _LLAMA31.replace("@PREAMBLE@", m.group(1))


def _default_system(chat_template: str) -> str | None:
    probe = _probe(chat_template, [("user", "PROBE")]) or ""
    m = re.search(
        r"<\|im_start\|>system\n(.*?)<\|im_end\|>\n<\|im_start\|>user\nPROBE", probe, re.S
    )
    return m.group(1) if m else None


def convert_chat_template(
    chat_template: str | None, *, bos_token: str | None = None, eos_token: str | None = None
) -> OllamaTemplate:
    """Turn a tokenizer's Jinja chat template into an Ollama TEMPLATE + stop tokens.

    Raises TemplateError (with the `--template FILE` hint) for unknown templates.
    """
    if not chat_template or not chat_template.strip():
        raise TemplateError(
            "the tokenizer has no chat template, so there is no prompt format to carry into Ollama",
            hint=TEMPLATE_FILE_HINT,
        )
    family, variant, how = detect_family(chat_template)
    eos = eos_token or _DEFAULT_EOS.get(family, "")
    notes: list[str] = []
    default_system = None
    if family == "chatml":
        template, default_system = _CHATML, _default_system(chat_template)
    elif family == "llama3":
        template = _llama3(chat_template, bos_token, notes)
    elif family == "mistral":
        template = _mistral(chat_template, eos, notes)
    elif family == "gemma":
        template = _GEMMA
        if _probe(chat_template, [("system", "S"), ("user", "P")]) is None:
            notes.append(
                "the chat template rejects system messages; the TEMPLATE prefixes SYSTEM to the "
                "first user turn as Gemma 3 does (not covered by the parity check)"
            )
    elif family == "phi3":
        skips_empty = "message['content'] %}" in chat_template and "'system' and" in chat_template
        template = _PHI3.replace("@SYSCOND@", ".Content" if skips_empty else "true")
        template = template.replace("@EOS@", eos)
    else:
        template = _ZEPHYR.replace("@EOS@", eos)
    if re.search(r"\|\s*trim\b", chat_template):
        notes.append(
            "the chat template strips whitespace around message content and Ollama does not: "
            "keep data free of leading/trailing whitespace"
        )
    stop = list(STOP_TOKENS[family])
    if family != "zephyr" and eos and eos not in stop and family in _DEFAULT_EOS:
        stop.append(eos)
    return OllamaTemplate(family, template, stop, default_system, variant, how, notes)
