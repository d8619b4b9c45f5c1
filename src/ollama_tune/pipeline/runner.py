"""The resumable stage runner behind `ollama-tune run`.

Each stage declares its inputs (config values plus the outputs of the stages it depends on);
their hash is written to `<workdir>/state.json` (atomically) before and after the stage runs.
A stage whose inputs hash matches a finished entry, and whose output files still exist, is
skipped. A stage that was `running` when the process died is re-run with `resume=True`, which
the train stage turns into "continue from the last checkpoint".
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from ollama_tune._util import ProgressFn, atomic_write_json, noop_progress, sha256_text
from ollama_tune.errors import UsageError

if TYPE_CHECKING:  # for the annotation only: the runner works with any recipe-like object
    from ollama_tune.config import Recipe

StageStatus = Literal["ran", "skipped", "resumed", "failed"]
STATE_FILE = "state.json"


@dataclass
class Context:
    """What stages share: the recipe, the workdir, upstream outputs, notes for the user."""

    recipe: Recipe
    workdir: Path
    progress: ProgressFn = noop_progress
    outputs: dict[str, dict[str, Any]] = field(default_factory=dict)
    resume: bool = False
    notes: list[str] = field(default_factory=list)
    # Live objects a later stage may use in the same process (not persisted).
    live: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Stage:
    """`inputs(ctx)` → JSON-able dict that decides re-runs; `run(ctx)` → JSON-able outputs.

    Outputs may list `paths`: files/dirs that must still exist for a skip to be valid.
    """

    name: str
    title: str
    inputs: Callable[[Context], dict[str, Any]]
    run: Callable[[Context], dict[str, Any]]
    depends: tuple[str, ...] = ()


@dataclass(frozen=True)
class StageResult:
    name: str
    title: str
    status: StageStatus
    seconds: float
    inputs_hash: str
    outputs: dict[str, Any]
    note: str = ""


@dataclass(frozen=True)
class StageEvent:
    """What the runner tells its caller: a stage starts, was skipped, or is done.

    `result` is None for "start" (nothing has run yet) and set for "skip" and "done".
    """

    kind: Literal["start", "skip", "done"]
    stage: str
    title: str
    result: StageResult | None = None


EventFn = Callable[[StageEvent], None]


def load_state(workdir: Path) -> dict[str, Any]:
    path = workdir / STATE_FILE
    if not path.is_file():
        return {"stages": {}}
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        raise UsageError(
            f"{path} is not readable JSON",
            hint="delete it to re-run every stage from the start",
        ) from None
    state.setdefault("stages", {})
    return state


def own_inputs(stage: Stage, ctx: Context) -> dict[str, Any]:
    """The stage's inputs as JSON (what state.json records, so a plan can say what changed)."""
    text = json.dumps(stage.inputs(ctx), sort_keys=True, ensure_ascii=False, default=str)
    return json.loads(text)  # type: ignore[no-any-return]


def hash_inputs(stage: Stage, ctx: Context, inputs: dict[str, Any] | None = None) -> str:
    payload = {
        "inputs": own_inputs(stage, ctx) if inputs is None else inputs,
        "upstream": {d: ctx.outputs.get(d, {}) for d in stage.depends},
    }
    return sha256_text(json.dumps(payload, sort_keys=True, ensure_ascii=False, default=str))


def recipe_snapshot(recipe: Any) -> dict[str, Any] | None:
    """The recipe as JSON, kept with each finished stage so a plan can name the changed key."""
    dump = getattr(recipe, "model_dump", None)
    return dump(mode="json") if dump is not None else None  # type: ignore[no-any-return]


def outputs_exist(outputs: dict[str, Any]) -> bool:
    return all(Path(p).exists() for p in outputs.get("paths", []))


def _save(workdir: Path, state: dict[str, Any]) -> None:
    atomic_write_json(workdir / STATE_FILE, state)


def _run_one(
    stage: Stage, ctx: Context, state: dict[str, Any], digest: str, inputs: dict[str, Any]
) -> StageResult:
    """Run one stage, with `running` recorded first so a kill leaves a resumable mark."""
    entry = state["stages"].get(stage.name, {})
    # Same inputs but never finished: the previous run was interrupted here.
    ctx.resume = entry.get("inputs_hash") == digest and entry.get("status") == "running"
    state["stages"][stage.name] = {"status": "running", "inputs_hash": digest}
    _save(ctx.workdir, state)
    notes_before = len(ctx.notes)
    start = time.perf_counter()
    try:
        outputs = stage.run(ctx)
    except BaseException:
        # "running" stays, so the next run resumes; the time says when it stopped.
        state["stages"][stage.name]["failed_at"] = time.time()
        _save(ctx.workdir, state)
        raise
    seconds = round(time.perf_counter() - start, 2)
    ctx.outputs[stage.name] = outputs
    state["stages"][stage.name] = {
        "status": "done",
        "inputs_hash": digest,
        "inputs": inputs,
        "recipe": recipe_snapshot(ctx.recipe),
        "outputs": outputs,
        "seconds": seconds,
        "finished_at": time.time(),
    }
    _save(ctx.workdir, state)
    status: StageStatus = "resumed" if ctx.resume else "ran"
    note = "; ".join(ctx.notes[notes_before:])
    return StageResult(stage.name, stage.title, status, seconds, digest, outputs, note)


def run_stages(
    stages: list[Stage], ctx: Context, *, on_event: EventFn | None = None, force: bool = False
) -> list[StageResult]:
    """Run (or skip) each stage in order, recording state after every step."""
    ctx.workdir.mkdir(parents=True, exist_ok=True)
    state = load_state(ctx.workdir)
    results: list[StageResult] = []
    for stage in stages:
        inputs = own_inputs(stage, ctx)
        digest = hash_inputs(stage, ctx, inputs)
        entry = state["stages"].get(stage.name, {})
        done = entry.get("inputs_hash") == digest and entry.get("status") == "done"
        if done and not force and outputs_exist(entry.get("outputs", {})):
            ctx.outputs[stage.name] = entry["outputs"]
            res = StageResult(
                stage.name,
                stage.title,
                "skipped",
                0.0,
                digest,
                entry["outputs"],
                "inputs unchanged",
            )
            results.append(res)
            if on_event:
                on_event(StageEvent("skip", stage.name, stage.title, res))
            continue
        if on_event:
            on_event(StageEvent("start", stage.name, stage.title))
        results.append(_run_one(stage, ctx, state, digest, inputs))
        if on_event:
            on_event(StageEvent("done", stage.name, stage.title, results[-1]))
    return results
