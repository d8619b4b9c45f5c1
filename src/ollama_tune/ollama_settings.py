"""`OllamaSettings`: which server, which names, whether to create (the recipe's `ollama:`
section). Apart from `ollama.py` so loading a recipe does not import the HTTP client."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from ollama_tune.settings import Host, Section


class OllamaNames(Section):
    customized: str | None = None
    tuned: str | None = None


class OllamaSettings(Section):
    host: Host = None
    names: OllamaNames = Field(default_factory=lambda: OllamaNames())
    create: Literal["auto", "always", "never"] = "auto"
