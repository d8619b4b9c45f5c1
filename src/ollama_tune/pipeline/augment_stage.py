"""The `augment` stage of `ollama-tune run`: rewordings of the train split, before training.

Runs after `split`, so only training rows are reworded and the test questions are passed as
`exclude`: no rewording can copy one. Disabled (the default), it passes the split's train
file through unchanged. The train stage reads `train_data(ctx)`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ollama_tune._util import sha256_file
from ollama_tune.pipeline.runner import Context, Stage


def train_data(ctx: Context) -> Path:
    """The file the train stage trains on: the augmented train split when there is one."""
    augmented = ctx.outputs.get("augment", {}).get("train")
    return Path(augmented or ctx.outputs["split"]["train"])


def _inputs(ctx: Context) -> dict[str, Any]:
    return {"augment": ctx.recipe.augment.model_dump()}


def _run(ctx: Context) -> dict[str, Any]:
    a = ctx.recipe.augment
    if not a.enabled:
        return {"train": None, "added": 0, "paths": []}
    from ollama_tune.data.augment import AugmentConfig, augment_data

    split = ctx.outputs["split"]
    out = ctx.workdir / "data" / "train.augmented.jsonl"
    result = augment_data(
        AugmentConfig(
            inputs=[Path(split["train"])],
            output=out,
            n=a.n,
            seed=a.seed,
            teacher=a.teacher,
            exclude=[Path(split["test"])],
        ),
        progress=ctx.progress,
    )
    if result.teacher_unreadable:
        ctx.notes.append(
            f"augment: {result.teacher_unreadable} teacher replies were unreadable; "
            "rule-based rewordings were used for those rows"
        )
    return {
        "train": str(out),
        "added": result.added,
        "rows": result.written,
        "dropped": len(result.dropped),
        "method": result.method,
        "sha256": sha256_file(out),
        "paths": [str(out)],
    }


def augment_stage() -> Stage:
    return Stage("augment", "augment (rewordings)", _inputs, _run, ("split",))
