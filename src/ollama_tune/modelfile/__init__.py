"""Ollama Modelfiles: the `Modelfile` object and the modules it is built from.

- `model`: the `Modelfile` dataclass — parse, render, `to_create_args()`, `lint()`.
- `parse`: Ollama's parser (`parser/parser.go`), rune for rune, in linear time.
- `lint`: every problem Ollama would reject or silently ignore, with its line.
- `checks`: what FROM/ADAPTER point at (weights or not) and whether the TEMPLATE parses.
- `params`: Ollama's PARAMETER names, their JSON types, and conversion to them.

Submodules import each other directly, never this `__init__`, so the package has no cycle.
"""

from __future__ import annotations

from ollama_tune.modelfile.lint import LintIssue
from ollama_tune.modelfile.model import Modelfile, value_problem
from ollama_tune.modelfile.params import (
    DEPRECATED_PARAMETERS,
    PARAMETER_TYPES,
    convert_parameter,
    typed_parameters,
)

__all__ = [
    "DEPRECATED_PARAMETERS",
    "PARAMETER_TYPES",
    "LintIssue",
    "Modelfile",
    "convert_parameter",
    "typed_parameters",
    "value_problem",
]
