"""`AugmentSettings`: `data augment` applied to the train split before training (the
recipe's `augment:` section; `AugmentConfig` adds the files)."""

from __future__ import annotations

from pydantic import Field

from ollama_tune.settings import Section


class AugmentSettings(Section):
    enabled: bool = False
    n: int = Field(default=3, ge=1, le=20)
    teacher: str | None = None  # ollama:NAME, a bundle dir or a .gguf; None = offline rules
    seed: int = 42
