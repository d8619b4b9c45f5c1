"""A recipe run end to end, stage by stage, resumable (`ollama-tune run RECIPE.yaml`).

check data → split → customize → train → export (+ quantization guard) → create in Ollama →
eval base vs customized vs fine-tuned → report. See `runner` for the skip/resume rules and
`stages`/`finish` for what each stage calls.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from ollama_tune._util import ProgressFn, noop_progress
from ollama_tune.config import Recipe
from ollama_tune.pipeline.outputs import EvalOutput, ExportOutput
from ollama_tune.pipeline.plan import PlanStep, plan_stages
from ollama_tune.pipeline.runner import (
    Context,
    EventFn,
    Stage,
    StageEvent,
    StageResult,
    load_state,
    run_stages,
)

__all__ = [
    "Context",
    "EventFn",
    "PipelineResult",
    "PlanStep",
    "Stage",
    "StageEvent",
    "StageResult",
    "load_state",
    "plan_recipe",
    "run_recipe",
    "run_stages",
]


@dataclass(frozen=True)
class PipelineResult:
    workdir: Path
    stages: list[StageResult]
    seconds: float
    report: Path | None = None
    bundle: Path | None = None
    create_commands: list[str] = field(default_factory=list)
    run_commands: list[str] = field(default_factory=list)
    gates_passed: bool = True
    summary: dict[str, dict[str, float]] = field(default_factory=dict)


def run_recipe(
    recipe: Recipe,
    progress: ProgressFn | None = None,
    *,
    on_event: EventFn | None = None,
    force: bool = False,
    stages: list[Stage] | None = None,
) -> PipelineResult:
    """Run every stage of `recipe` in its workdir; stages with unchanged inputs are skipped."""
    from ollama_tune.pipeline.finish import create_commands, run_commands
    from ollama_tune.pipeline.stages import build_stages

    ctx = Context(recipe=recipe, workdir=Path(recipe.workdir), progress=progress or noop_progress)
    start = time.perf_counter()
    results = run_stages(stages or build_stages(), ctx, on_event=on_event, force=force)
    ev, bundle = EvalOutput.of(ctx), ExportOutput.of(ctx).bundle
    return PipelineResult(
        workdir=ctx.workdir,
        stages=results,
        seconds=round(time.perf_counter() - start, 2),
        report=Path(ev.report_md) if ev.report_md else None,
        bundle=Path(bundle) if bundle else None,
        create_commands=create_commands(ctx),
        run_commands=run_commands(ctx),
        gates_passed=ev.gates_passed,
        summary=ev.summary,
    )


def plan_recipe(
    recipe: Recipe, *, force: bool = False, stages: list[Stage] | None = None
) -> list[PlanStep]:
    """What `run_recipe` would run, skip or resume now, and why; runs nothing, loads no model."""
    from ollama_tune.pipeline.stages import build_stages

    ctx = Context(recipe=recipe, workdir=Path(recipe.workdir))
    return plan_stages(stages or build_stages(), ctx, force=force)
