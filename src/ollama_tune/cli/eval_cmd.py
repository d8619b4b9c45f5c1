"""`ollama-tune eval`: compare models on the same test questions, write a report, check gates.

Thin: flags → `EvalConfig` → `evaluate.compare_models` → rich tables (+ `report.write_report`).
A failed gate exits 1 after the gate table is shown.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.markup import escape

from ollama_tune.errors import GateFailed, UsageError

if TYPE_CHECKING:
    from ollama_tune.evaluate import EvalResult


def parse_model_specs(specs: list[str]) -> dict[str, str]:
    """`LABEL=REF` pairs (or a bare REF, labelled by its last path/name part), in order."""
    from ollama_tune.evaluate.gates import LABEL_CHARS

    labelled = re.compile(rf"^(?P<label>[{LABEL_CHARS}]{{1,40}})=(?P<ref>.+)$")
    models: dict[str, str] = {}
    for spec in specs:
        m = labelled.match(spec.strip())
        if m:
            label, ref = m.group("label"), m.group("ref").strip()
        else:
            ref = spec.strip()
            stem = Path(ref.removeprefix("ollama:")).name or ref
            label = re.sub(rf"[^{LABEL_CHARS}]", "-", stem)[:40].strip("-") or "model"
        if not ref:
            raise UsageError(f"--model {spec!r} has no model reference", hint="use LABEL=REF")
        if label in models:
            raise UsageError(
                f"--model label {label!r} is used twice",
                hint="give each model its own label: --model base=REF --model tuned=REF",
            )
        models[label] = ref
    return models


def eval_command(
    test: Path = typer.Option(..., "--test", help="Test questions (JSONL/CSV/any data format)."),
    model: list[str] = typer.Option(
        ...,
        "--model",
        help="LABEL=REF, repeatable. REF: ollama:NAME, bundle dir, Modelfile, .gguf or HF dir.",
    ),
    judge: str | None = typer.Option(
        None, "--judge", help="Score answers 1–5 with an Ollama model, e.g. ollama:qwen2.5:7b."
    ),
    report: Path | None = typer.Option(
        None, "--report", help="Write report.md, report.html and report.json into this folder."
    ),
    gates: list[str] | None = typer.Option(
        None,
        "--gate",
        help="'METRIC>=N' or 'LABEL.METRIC<=N' (quote it: > is a shell redirect), repeatable; "
        "without LABEL it checks the last --model. A failure exits 1.",
    ),
    concurrency: int | None = typer.Option(
        None, "--concurrency", help="Parallel requests per model (default: 1)."
    ),
    max_tokens: int | None = typer.Option(
        None, "--max-tokens", help="Longest answer, in tokens (default: 384)."
    ),
    temperature: float = typer.Option(0.0, "--temperature", help="0 = deterministic."),
    seed: int = typer.Option(42, "--seed", help="Sampling seed."),
    max_questions: int | None = typer.Option(
        None, "--max-questions", "--limit", help="Only the first N test questions."
    ),
    train_sample: int | None = typer.Option(
        None,
        "--train-sample",
        help="Also ask the last --model N training questions, to flag memorised-not-"
        "generalised (train file: --train, else its run dir's data/train.jsonl; default 0).",
    ),
    train: Path | None = typer.Option(None, "--train", help="Training data for --train-sample."),
) -> None:
    """Compare models on the same questions: fact recall, chrF, language, politeness, latency.

    Example: ollama-tune eval --test test.jsonl --model base=ollama:llama3.2:1b
    --model tuned=runs/x/bundle --report report --gate 'fact_recall>=0.9'
    """
    from ollama_tune.cli._common import progress_bar
    from ollama_tune.evaluate import EvalConfig, compare_models

    # EvalConfig is EvalSettings plus the models: a flag left out (None) takes the settings'
    # default, and a bad value fails here, naming its flag, before any model loads.
    given: dict[str, Any] = {
        "judge": judge, "gates": list(gates) if gates else None, "concurrency": concurrency,
        "max_tokens": max_tokens, "max_questions": max_questions, "train_sample": train_sample,
    }  # fmt: skip
    config = EvalConfig(
        **{k: v for k, v in given.items() if v is not None},
        models=parse_model_specs(model),
        test_path=test,
        temperature=temperature,
        seed=seed,
        train_path=train,
    )
    with progress_bar("evaluating") as progress:
        result = compare_models(config, progress)
    render_summary(result)
    render_verdict(result)
    if report is not None:
        from ollama_tune.cli._common import console
        from ollama_tune.report import write_report

        written = write_report(result, report)
        console.print(
            f"Report: {written.html}  {written.markdown}  {written.json}",
            markup=False,
            highlight=False,
        )
    if result.gates:
        render_gates(result)
    failed = [g for g in result.gates if not g.passed]
    if failed:
        raise GateFailed(
            f"{len(failed)} of {len(result.gates)} gates failed: "
            + ", ".join(str(g.gate) for g in failed),
            hint="see the gate table above; the report shows the answers behind each metric",
        )


def render_summary(result: EvalResult) -> None:
    from rich.table import Table

    from ollama_tune.cli._common import console
    from ollama_tune.report.render import summary_rows

    table = Table(title=f"Evaluation on {result.settings['rows']} questions")
    table.add_column("metric")
    for m in result.models:
        table.add_column(m.label, justify="right")
    for row in summary_rows(result):
        cells = [f"[bold green]{c['text']}[/]" if c["best"] else c["text"] for c in row["cells"]]
        table.add_row(row["label"], *cells)
    console.print(table)


def render_verdict(result: EvalResult) -> None:
    from ollama_tune.cli._common import console
    from ollama_tune.report.verdict import build_verdict

    verdict = build_verdict(result)
    console.print(f"Verdict: {verdict.summary}", markup=False, highlight=False)
    for flag in verdict.flags:
        console.print(f"[yellow]⚠[/yellow] {escape(flag)}", highlight=False)


def render_gates(result: EvalResult) -> None:
    from rich.table import Table

    from ollama_tune.cli._common import console

    table = Table(title="Gates")
    for col in ("gate", "model", "value", "result"):
        table.add_column(col)
    for g in result.gates:
        actual = "—" if g.actual is None else f"{g.actual:.4g}"
        verdict = "[green]pass[/]" if g.passed else "[bold red]FAIL[/]"
        table.add_row(str(g.gate), g.model, actual, verdict)
    console.print(table)


def register(app: typer.Typer) -> None:
    """Attach `eval` to the root app."""
    app.command("eval")(eval_command)
