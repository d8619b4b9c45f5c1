"""`DataSettings`: where the rows are and how they are split (the recipe's `data:` section)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import AfterValidator, Field

from ollama_tune.settings import Section


def _check_format(value: str | None) -> str | None:
    from ollama_tune.data.loader import FORMATS

    if value is not None and value not in FORMATS:
        raise ValueError(f"unknown data format {value!r}; use one of: {', '.join(FORMATS)}")
    return value


class DataSettings(Section):
    train: Path
    test: Path | None = None
    format: Annotated[str | None, AfterValidator(_check_format)] = None
    test_ratio: float = Field(default=0.15, gt=0.0, lt=1.0)
    seed: int = 42
