"""`ollama-tune run RECIPE.yaml` (the whole pipeline) and `ollama-tune recommend`."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.table import Table

from ollama_tune.cli._common import console, err_console, print_json, progress_bar
from ollama_tune.cli._options import HOST, JSON
from ollama_tune.cli._overrides import merge_overrides, parse_sets, reject_set_issues

if TYPE_CHECKING:
    from ollama_tune.pipeline.runner import StageEvent

# The metrics worth a glance in the terminal; the report has all of them.
HEADLINE = (
    "fact_recall",
    "chrf",
    "japanese_share",
    "politeness",
    "stop_rate",
    "p95_latency_s",
    "tokens_per_s",
)


def _render_issues(issues: list[Any]) -> None:
    table = Table(title="Recipe problems", show_lines=False)
    for col in ("where", "key", "problem", "fix"):
        table.add_column(col, overflow="fold")
    for i in issues:
        table.add_row(i.where, i.key, i.message, i.hint)
    console.print(table)


def _on_event(event: StageEvent) -> None:
    res = event.result
    if event.kind == "start":
        err_console.print(f"[bold cyan]▶ {event.title}[/bold cyan]")
    elif event.kind == "skip":
        err_console.print(f"[dim]↷ {event.title}: skipped (inputs unchanged)[/dim]")
    elif event.kind == "done" and res is not None:
        word = "resumed and finished" if res.status == "resumed" else "done"
        note = f" — {res.note}" if res.note else ""
        err_console.print(f"[green]✓ {event.title}: {word} in {res.seconds:.1f}s[/green]{note}")


def _render_plan(recipe: Path, workdir: Path, steps: list[Any]) -> None:
    console.print(f"Plan for {recipe} (workdir {workdir}); nothing is run:", highlight=False)
    width = max(len(s.name) for s in steps)
    for s in steps:
        action = s.action + ("*" if s.conditional else "")
        line = f"  {s.name:<{width}}  {action:<7} {'; '.join(s.reasons)}"
        console.print(line, highlight=False, markup=False, soft_wrap=True)
    if any(s.conditional for s in steps):
        console.print("* runs unless the stages before it produce the same outputs again")


def _render_result(result: Any) -> None:
    table = Table(title=f"ollama-tune run ({result.seconds:.0f}s)")
    for col in ("stage", "status", "seconds", "note"):
        table.add_column(col, overflow="fold")
    for s in result.stages:
        table.add_row(s.title, s.status, f"{s.seconds:.1f}", s.note)
    console.print(table)
    if result.summary:
        present = {k for m in result.summary.values() for k in m}
        metrics = [m for m in HEADLINE if m in present]
        summary = Table(title="Evaluation (see the report for every answer)")
        summary.add_column("model")
        for m in metrics:
            summary.add_column(m, justify="right")
        for name, values in result.summary.items():
            cells = (f"{values[m]:.3g}" if m in values else "—" for m in metrics)
            summary.add_row(name, *cells)
        console.print(summary)
    if result.report:
        console.print(f"Report: [bold]{result.report}[/bold]")
    if result.run_commands:
        console.print("Created in Ollama; try it with:")
        for cmd in result.run_commands:
            console.print(f"  {cmd}", highlight=False, soft_wrap=True)
    if result.create_commands:
        console.print("Import into Ollama with:")
        for cmd in result.create_commands:
            console.print(f"  {cmd}", highlight=False, soft_wrap=True)


def _result_json(result: Any) -> dict[str, Any]:
    return {
        "workdir": str(result.workdir),
        "seconds": result.seconds,
        "report": str(result.report) if result.report else None,
        "bundle": str(result.bundle) if result.bundle else None,
        "create_commands": result.create_commands,
        "run_commands": result.run_commands,
        "gates_passed": result.gates_passed,
        "stages": [
            {"name": s.name, "status": s.status, "seconds": s.seconds, "note": s.note}
            for s in result.stages
        ],
        "summary": result.summary,
    }


def run(
    recipe: Path = typer.Argument(..., help="Recipe YAML (examples/customer-support/recipe.yaml)."),
    check: bool = typer.Option(
        False, "--check", help="Only validate the recipe; exit 1 on problems."
    ),
    workdir: Path | None = typer.Option(None, help="Where runs, bundle and report go."),
    base_model: str | None = typer.Option(None, help="Override base_model (alias, .gguf, name)."),
    max_steps: int | None = typer.Option(None, help="Override train.max_steps."),
    epochs: float | None = typer.Option(None, help="Override train.epochs."),
    quant: str | None = typer.Option(None, help="Override export.quants, e.g. q4_k_m,q8_0."),
    max_tokens: int | None = typer.Option(None, help="Override eval.max_tokens."),
    max_questions: int | None = typer.Option(None, help="Evaluate the first N test questions."),
    host: str | None = HOST,
    sets: list[str] = typer.Option(
        [],
        "--set",
        help="Override any recipe key, e.g. --set train.learning_rate=1e-4 (repeatable; "
        "the value is read as YAML).",
        metavar="KEY=VALUE",
        show_default=False,
    ),
    force: bool = typer.Option(False, "--force", help="Re-run every stage, even unchanged ones."),
    plan: bool = typer.Option(
        False, "--plan", help="Say which stages would run, skip or resume, and why; run nothing."
    ),
    as_json: bool = JSON,
) -> None:
    """Run a recipe end to end: check → split → customize → train → export → create → eval.

    Re-running skips stages whose inputs did not change and resumes an interrupted training;
    `--plan` says which stages would run and why, without loading a model.
    Flags (and --set) override recipe values; recipe values override the defaults.
    """
    from ollama_tune.config import check_recipe, load_recipe

    named = {
        "workdir": str(workdir.resolve()) if workdir else None,
        "base_model": base_model,
        "train.max_steps": max_steps,
        "train.epochs": epochs,
        "export.quants": quant,
        "eval.max_tokens": max_tokens,
        "eval.max_questions": max_questions,
        "ollama.host": host,
    }
    given = parse_sets(sets)
    overrides = merge_overrides(given, named)
    issues = check_recipe(recipe, overrides) if check or given else []
    reject_set_issues(issues, given)
    if check:
        if issues:
            _render_issues(issues)
            raise typer.Exit(1)
        console.print(f"[green]✓ {recipe}: no problems found[/green]")
        return
    if plan:
        _plan(recipe, load_recipe(recipe, overrides), force=force, as_json=as_json)
        return
    import warnings

    from ollama_tune.pipeline import run_recipe

    # Library deprecation notices (transformers, trl) are not actionable for users of `run`.
    warnings.filterwarnings("ignore", category=FutureWarning)
    loaded = load_recipe(recipe, overrides)
    err_console.print(f"Running {recipe} in {loaded.workdir}")
    with progress_bar() as progress:
        result = run_recipe(loaded, progress, on_event=_on_event, force=force)
    if as_json:
        print_json(_result_json(result))
    else:
        _render_result(result)
    if not result.gates_passed:
        raise typer.Exit(1)


def _plan(recipe: Path, loaded: Any, *, force: bool, as_json: bool) -> None:
    from ollama_tune.pipeline import plan_recipe

    steps = plan_recipe(loaded, force=force)
    if as_json:
        print_json({"workdir": str(loaded.workdir), "stages": [s.to_dict() for s in steps]})
    else:
        _render_plan(recipe, Path(loaded.workdir), steps)


def recommend(
    data: Path | None = typer.Option(None, help="Training data, to estimate tokens and time."),
    as_json: bool = JSON,
) -> None:
    """Say which base models and training settings fit this machine (RAM, GPU) and data.

    Training times are estimates from measured throughput (see BENCHMARKS.md).
    """
    from ollama_tune.recommend import recommend as do_recommend

    result = do_recommend(data)
    if as_json:
        print_json(result.to_dict())
        return
    m = result.machine
    gpu = f"{m.gpu_name} ({m.gpu_gb} GB)" if m.gpu_name else "none"
    bf16 = ", bf16 on CPU" if m.cpu_bf16 and not m.gpu_name else ""
    console.print(f"Machine: {m.ram_gb} GB RAM, {m.cpu_count} CPU cores{bf16}, GPU: {gpu}")
    if result.data:
        d = result.data
        console.print(f"Data: {d.path}: {d.rows} rows, ≈{d.tokens} tokens per epoch")
    table = Table(title="Base models for fine-tuning on this machine")
    for col in ("--base-model", "fits", "method", "memory GB", "batch", "est. min/epoch", "note"):
        table.add_column(col, overflow="fold")
    for f in result.fits:
        minutes = "-" if f.est_minutes is None else f"{f.est_minutes:g}"
        table.add_row(
            f.name,
            "yes" if f.fits else "no",
            f.method,
            f"{f.memory_gb:g}",
            str(f.batch_size),
            minutes,
            f.note,
        )
    console.print(table)
    if result.recommended:
        console.print(f"Recommended: [bold]--base-model {result.recommended}[/bold]")
    console.print("[dim]Times are estimates from measured throughput; see BENCHMARKS.md.[/dim]")


def register(app: typer.Typer) -> None:
    """Attach this module's commands to the root app."""
    app.command("run")(run)
    app.command("recommend")(recommend)
