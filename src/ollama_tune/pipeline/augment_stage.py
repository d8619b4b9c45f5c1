"""The `augment` stage of `ollama-tune run`: rewordings of the train split, before training.

Runs after `split`, so only training rows are reworded and the test questions are passed as
`exclude`: no rewording can copy one. Disabled (the default), it passes the split's train
file through unchanged. The train stage reads `train_data(ctx)`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ollama_tune._util import sha256_file
from ollama_tune.pipeline.outputs import AugmentOutput, SplitOutput
from ollama_tune.pipeline.runner import Context, Stage
from ollama_tune.pipeline.shared import settings_json


def train_data(ctx: Context) -> Path:
    """The file the train stage trains on: the augmented train split when there is one."""
    return Path(AugmentOutput.of(ctx).train or SplitOutput.of(ctx).train)


def _config(ctx: Context) -> Any:
    """The AugmentConfig this stage runs with; None when augmentation is off."""
    a = ctx.recipe.augment
    if not a.enabled:
        return None
    from ollama_tune.data.augment import AugmentConfig

    split = SplitOutput.of(ctx)
    return AugmentConfig(
        inputs=[Path(split.train)],
        output=ctx.workdir / "data" / "train.augmented.jsonl",
        **a.model_dump(exclude={"enabled"}),
        exclude=[Path(split.test)],
    )


def _inputs(ctx: Context) -> dict[str, Any]:
    config = _config(ctx)
    # Off, the other augment keys are not read: changing them re-runs nothing.
    return {"enabled": False} if config is None else settings_json(config)


def _run(ctx: Context) -> dict[str, Any]:
    config = _config(ctx)
    if config is None:
        return AugmentOutput().to_json()
    from ollama_tune.data.augment import augment_data

    out = Path(config.output)
    result = augment_data(config, progress=ctx.progress)
    if result.teacher_unreadable:
        ctx.notes.append(
            f"augment: {result.teacher_unreadable} teacher replies were unreadable; "
            "rule-based rewordings were used for those rows"
        )
    return AugmentOutput(
        train=str(out),
        added=result.added,
        rows=result.written,
        dropped=len(result.dropped),
        method=result.method,
        sha256=sha256_file(out),
        paths=[str(out)],
    ).to_json()


def augment_stage() -> Stage:
    return Stage("augment", "augment (rewordings)", _inputs, _run, ("split",))
