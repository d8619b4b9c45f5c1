"""Ollama's PARAMETER names, their JSON types, and conversion of Modelfile strings to them.

The Modelfile stores every PARAMETER value as the text written; the create API wants typed JSON
(`num_ctx` an int, `use_mmap` a bool, `stop` a list). Used by `model` and `lint`.
"""

from __future__ import annotations

from typing import Any

# Ollama's option names and JSON types (api/types.go Options/Runner).
PARAMETER_TYPES: dict[str, type] = {
    "num_ctx": int,
    "num_batch": int,
    "num_gpu": int,
    "main_gpu": int,
    "use_mmap": bool,
    "num_thread": int,
    "num_keep": int,
    "seed": int,
    "num_predict": int,
    "top_k": int,
    "top_p": float,
    "min_p": float,
    "typical_p": float,
    "repeat_last_n": int,
    "temperature": float,
    "repeat_penalty": float,
    "presence_penalty": float,
    "frequency_penalty": float,
    "stop": list,
}
# Ollama drops these client-side with a warning (parser.go deprecatedParameters).
DEPRECATED_PARAMETERS = (
    "penalize_newline",
    "low_vram",
    "f16_kv",
    "logits_all",
    "vocab_only",
    "use_mlock",
    "mirostat",
    "mirostat_tau",
    "mirostat_eta",
)
_TRUE = ("1", "t", "T", "TRUE", "true", "True")
_FALSE = ("0", "f", "F", "FALSE", "false", "False")


def convert_parameter(name: str, value: str) -> Any:
    """A PARAMETER's string value as the JSON type Ollama expects; ValueError when it is not."""
    kind = PARAMETER_TYPES.get(name)
    if kind is bool:
        if value in _TRUE or value in _FALSE:
            return value in _TRUE
        raise ValueError(f"{value!r} is not true/false")
    if kind is int:
        return int(value)
    if kind is float:
        f = float(value)
        if f != f or f in (float("inf"), float("-inf")):
            raise ValueError(f"{value!r} is not a finite number")
        return f
    return value


def typed_parameters(params: list[tuple[str, str]]) -> dict[str, Any]:
    """PARAMETER lines as the create API's `parameters`; `stop` collects a list."""
    out: dict[str, Any] = {}
    for name, value in params:
        if name in DEPRECATED_PARAMETERS:
            continue  # what `ollama create` does: Ollama ignores them anyway
        if PARAMETER_TYPES.get(name) is list:
            out.setdefault(name, []).append(value)
            continue
        try:
            out[name] = convert_parameter(name, value)
        except ValueError:
            out[name] = value  # lint reports it; Ollama answers 400 with its own message
    return out
