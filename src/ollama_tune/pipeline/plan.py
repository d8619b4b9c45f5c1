"""`ollama-tune run --plan`: which stages a run would run, skip or resume, and why.

The same rules as `runner.run_stages` (input hash, finished entry, output files present),
applied to `state.json` without running anything; a stage's `inputs` never loads a model.
A stage after one that re-runs is marked `conditional`: it re-runs unless the new outputs
come out identical (as `make -n` cannot know either).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from ollama_tune.pipeline.runner import (
    Context,
    Stage,
    hash_inputs,
    load_state,
    outputs_exist,
    own_inputs,
    recipe_snapshot,
)

PlanAction = Literal["run", "skip", "resume"]


@dataclass(frozen=True)
class PlanStep:
    name: str
    title: str
    action: PlanAction
    reasons: list[str] = field(default_factory=list)
    conditional: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "action": self.action,
            "reasons": list(self.reasons),
            "conditional": self.conditional,
        }


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for k, v in value.items():
            out.update(_flatten(v, f"{prefix}{k}."))
        return out
    return {prefix.rstrip("."): value}


def _unflatten_set(data: dict[str, Any], dotted: str, value: Any) -> None:
    *parents, last = dotted.split(".")
    for part in parents:
        data = data.setdefault(part, {})
    data[last] = value


def _changed_keys(old: dict[str, Any] | None, new: dict[str, Any] | None) -> list[str]:
    if old is None or new is None:
        return []
    a, b = _flatten(old), _flatten(new)
    return sorted(k for k in a.keys() | b.keys() if a.get(k) != b.get(k))


def _keys_read(stage: Stage, ctx: Context, entry: dict[str, Any], now: dict[str, Any]) -> list[str]:
    """The changed recipe keys this stage reads: putting one back changes its inputs."""
    old = entry.get("recipe")
    current = recipe_snapshot(ctx.recipe)
    if old is None or current is None:
        return []
    read = []
    flat_old = _flatten(old)
    for key in _changed_keys(old, current):
        reverted = copy.deepcopy(current)  # one key put back at a time
        _unflatten_set(reverted, key, flat_old.get(key))
        try:
            recipe = type(ctx.recipe).model_validate(reverted)
        except ValueError:  # the old value no longer validates alone; it was read if it mattered
            read.append(key)
            continue
        live = {k: v for k, v in ctx.live.items() if key != "base_model" or "base" not in k}
        probe = Context(recipe=recipe, workdir=ctx.workdir, outputs=ctx.outputs, live=live)
        if own_inputs(stage, probe) != now:
            read.append(key)
    return read


def _why_changed(
    stage: Stage, ctx: Context, entry: dict[str, Any], now: dict[str, Any]
) -> list[str]:
    keys = _keys_read(stage, ctx, entry, now)
    if keys:
        return [f"{k} changed since the last run" for k in keys]
    before = entry.get("inputs")
    if before is None:
        return ["its inputs changed since the last run"]
    fields = _changed_keys(before, now)
    if fields:
        return [f"{', '.join(fields)} changed since the last run"]
    return ["the outputs it reads from earlier stages changed"]


def _step(
    stage: Stage, ctx: Context, entry: dict[str, Any], rerun: list[str], force: bool
) -> PlanStep:
    name, title = stage.name, stage.title
    if not entry:
        return PlanStep(name, title, "run", ["no previous result"])
    if force:
        return PlanStep(name, title, "run", ["--force re-runs every stage"])
    try:
        now = own_inputs(stage, ctx)
    except KeyError:  # an earlier stage's outputs it needs do not exist yet
        return PlanStep(name, title, "run", ["an earlier stage has no result yet"])
    upstream = [d for d in stage.depends if d in rerun]
    if upstream:
        own = _why_changed(stage, ctx, entry, now) if entry.get("inputs") != now else []
        if own:
            return PlanStep(name, title, "run", own)
        return PlanStep(name, title, "run", [f"{d} will re-run" for d in upstream], True)
    same = entry.get("inputs_hash") == hash_inputs(stage, ctx, now)
    if same and entry.get("status") == "running":
        return PlanStep(
            name, title, "resume", ["interrupted last time; continues where it stopped"]
        )
    if same and entry.get("status") == "done":
        if outputs_exist(entry.get("outputs", {})):
            return PlanStep(name, title, "skip", ["inputs unchanged"])
        missing = [p for p in entry.get("outputs", {}).get("paths", []) if not Path(p).exists()]
        return PlanStep(name, title, "run", [f"output missing: {missing[0]}"])
    return PlanStep(name, title, "run", _why_changed(stage, ctx, entry, now))


def plan_stages(stages: list[Stage], ctx: Context, *, force: bool = False) -> list[PlanStep]:
    """What `run_stages(stages, ctx, force=force)` would do now, stage by stage, and why."""
    state = load_state(ctx.workdir)
    steps: list[PlanStep] = []
    rerun: list[str] = []
    for stage in stages:
        entry = state["stages"].get(stage.name, {})
        step = _step(stage, ctx, entry, rerun, force)
        steps.append(step)
        if step.action != "skip":
            rerun.append(stage.name)
        # Later stages read these outputs; a re-run stage's last ones are the best guess.
        if entry.get("outputs") is not None:
            ctx.outputs[stage.name] = entry["outputs"]
    return steps
