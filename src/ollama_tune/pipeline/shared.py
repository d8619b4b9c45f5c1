"""Helpers every stage of `ollama-tune run` shares: the base's local files, and the JSON of
the settings a stage hands to its library (which is also what its input hash covers).

Which base runs where is `models.base_kind`: every kind but `ollama` runs here, no server."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from ollama_tune._util import sha256_file
from ollama_tune.models import local_gguf, resolve_base_model
from ollama_tune.pipeline.runner import Context


def file_hash(path: Path | str | None) -> str | None:
    return sha256_file(path) if path is not None and Path(path).is_file() else None


def settings_json(config: Any, *, exclude: tuple[str, ...] = ()) -> dict[str, Any]:
    """A stage's settings object as plain JSON: the input hash covers exactly what is passed.

    `exclude` names run-time fields that must not decide a re-run (`resume`).
    """
    if isinstance(config, BaseModel):
        data = config.model_dump(mode="json")
    elif dataclasses.is_dataclass(config) and not isinstance(config, type):
        data = dataclasses.asdict(config)
    else:
        data = dict(config)
    kept = {k: v for k, v in data.items() if k not in exclude}
    return json.loads(json.dumps(kept, sort_keys=True, ensure_ascii=False, default=str))  # type: ignore[no-any-return]


def base_gguf(ctx: Context) -> str | None:
    """The GGUF file of a local base (for FROM and the embedded runtime); None for Ollama.

    Found without converting the model, so planning a run (`run --plan`) loads nothing.
    """
    if "base_gguf" not in ctx.live:
        path = local_gguf(ctx.recipe.base_model)
        ctx.live["base_gguf"] = str(path) if path else None
    return ctx.live["base_gguf"]  # type: ignore[no-any-return]


def base_hf_dir(ctx: Context) -> str:
    """The HF folder of a local base without a GGUF (it runs through transformers)."""
    if "base_hf_dir" not in ctx.live:
        ctx.live["base_hf_dir"] = str(resolve_base_model(ctx.recipe.base_model).hf_dir)
    return ctx.live["base_hf_dir"]  # type: ignore[no-any-return]
