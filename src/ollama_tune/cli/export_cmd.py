"""`ollama-tune export`: a run directory → GGUF files, the quantization guard, an Ollama bundle.

Attached to the root app by `register(app)`. Heavy imports stay inside the functions.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from ollama_tune.cli._options import JSON


def export_command(
    run_dir: Path = typer.Argument(..., help="Run directory written by `ollama-tune train`."),
    quant: str = typer.Option(
        "q4_k_m", "--quant", "-q", help="Comma-separated: q4_k_m,q5_k_m,q6_k,q8_0,f16."
    ),
    out: Path | None = typer.Option(None, "--out", "-o", help="Bundle directory (RUN_DIR/bundle)."),
    name: str | None = typer.Option(None, "--name", help="Model name for GGUF metadata/README."),
    num_ctx: int | None = typer.Option(
        None, "--num-ctx", help="PARAMETER num_ctx (default 2048+)."
    ),
    adapter_only: bool = typer.Option(
        False,
        "--adapter-only",
        help="Export the LoRA adapter as GGUF (needs convert_lora_to_gguf).",
    ),
    no_guard: bool = typer.Option(
        False, "--no-guard", help="Skip the quantization guard on the test split."
    ),
    threshold: float = typer.Option(0.05, "--guard-threshold", help="Allowed fact-recall drop."),
    as_json: bool = JSON,
) -> None:
    """Merge the LoRA adapter, convert to GGUF, quantize, and write an Ollama bundle."""
    from ollama_tune.cli._common import progress_bar
    from ollama_tune.export import ExportConfig, export_bundle, ship_quant
    from ollama_tune.export.convert import normalize_quant

    test_path = run_dir / "data" / "test.jsonl"
    guard = not no_guard and test_path.is_file()
    config = ExportConfig(
        run_dir=run_dir,
        quants=[q for q in quant.split(",") if q.strip()],
        out_dir=out,
        name=name,
        adapter_only=adapter_only,
        keep_f16=guard,
        num_ctx=num_ctx,
    )
    with progress_bar("export") as progress:
        result = export_bundle(config, progress)
    requested = [normalize_quant(q) for q in config.quants]
    guard_result = _run_guard(result.ggufs, test_path, threshold, requested) if guard else None
    if guard_result is not None and guard_result.choice is not None:
        choice = guard_result.choice
        result = ship_quant(
            result, choice.quant, choice.reason, scores=guard_result.scores, reference="f16"
        )
    if as_json:
        from ollama_tune.cli._common import print_json

        print_json(_result_dict(result, guard_result))
        return
    _render_export(result, guard_result)


def _run_guard(
    ggufs: dict[str, Path], test_path: Path, threshold: float, candidates: list[str]
) -> Any:
    from ollama_tune.cli._common import progress_bar
    from ollama_tune.data import read_examples
    from ollama_tune.evaluate import guard_quantization

    examples = read_examples(test_path)
    if len(ggufs) < 2 or not examples:
        return None
    with progress_bar("quantization guard") as progress:
        return guard_quantization(
            ggufs, examples, reference="f16", threshold=threshold, progress=progress,
            candidates=candidates,
        )  # fmt: skip


def _result_dict(result: Any, guard: Any) -> dict[str, Any]:
    return {
        "bundle": str(result.bundle_dir),
        "name": result.name,
        "ggufs": {q: str(p) for q, p in result.ggufs.items()},
        "sizes": result.sizes,
        "sha256": result.sha256,
        "timings_s": {k: round(v, 3) for k, v in result.timings.items()},
        "modelfile": str(result.modelfile),
        "template_family": result.template_family,
        "stop": result.stop,
        "parity_checked": result.parity_checked,
        "warnings": result.warnings,
        "shipped": {"quant": result.shipped, "reason": result.shipped_reason},
        "guard": None
        if guard is None
        else {
            "ok": guard.ok,
            "scores": guard.scores,
            "warnings": [w.message for w in guard.warnings],
        },
    }


def _render_export(result: Any, guard: Any) -> None:
    from rich.table import Table

    from ollama_tune.cli._common import console, err_console

    table = Table(title=f"Exported {result.name}")
    for col in ("quant", "file", "size", "sha256"):
        table.add_column(col)
    for q, path in result.ggufs.items():
        size = f"{result.sizes[q] / 1e6:.1f} MB"
        table.add_row(q, path.name, size, result.sha256[q][:12])
    console.print(table)
    times = ", ".join(f"{k.removesuffix('_s')} {v:.1f}s" for k, v in result.timings.items())
    console.print(f"Times: {times}")
    parity = "checked with Go text/template" if result.parity_checked else "not checked (no go)"
    console.print(f"TEMPLATE ({result.template_family}): parity {parity}")
    for warning in result.warnings:
        err_console.print(f"[yellow]Modelfile:[/yellow] {warning}", highlight=False)
    if guard is not None:
        for w in guard.warnings:
            err_console.print(f"[yellow]Quantization guard:[/yellow] {w.message}", highlight=False)
        if guard.ok:
            console.print("Quantization guard: no quantization lost more than the threshold.")
    console.print(f"Ships: {result.shipped} — {result.shipped_reason}", markup=False)
    console.print(f"Bundle: {result.bundle_dir}")
    console.print(f"Register: ollama-tune create {result.bundle_dir} --name {result.name}")


def register(app: typer.Typer) -> None:
    """Attach this module's commands to the root app."""
    app.command("export")(export_command)
