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
    quants: str | None = typer.Option(
        None,
        "--quant",
        "--quants",
        "-q",
        help="Comma-separated: q4_k_m,q5_k_m,q6_k,q8_0,f16; q4_k_m+q8emb keeps embeddings and "
        "output at q8_0; +imat (e.g. q4_k_m+imat) adds an importance matrix (default: q8_0).",
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
    guard_threshold: float | None = typer.Option(
        None, "--guard-threshold", help="Allowed fact-recall drop (default: 0.05)."
    ),
    guard_max_tokens: int | None = typer.Option(
        None, "--guard-max-tokens", help="Longest guard answer in tokens (default: 384)."
    ),
    as_json: bool = JSON,
) -> None:
    """Merge the LoRA adapter, convert to GGUF, quantize, and write an Ollama bundle.

    With RUN_DIR/data/test.jsonl, the f16 GGUF is kept and the quantization guard picks the
    smallest type within the threshold for the Modelfile (skip it with --no-guard).
    """
    from ollama_tune.cli._common import progress_bar
    from ollama_tune.export import export_bundle

    test_path = run_dir / "data" / "test.jsonl"
    guard = not no_guard and test_path.is_file()
    config = _export_config(
        run_dir=run_dir,
        quants=quants,
        out_dir=out,
        name=name,
        adapter_only=adapter_only,
        keep_f16=guard,
        num_ctx=num_ctx,
        guard_threshold=guard_threshold,
        guard_max_tokens=guard_max_tokens,
        guard_questions=test_path if guard else None,
    )
    with progress_bar("export") as progress:
        result = export_bundle(config, progress)
    if as_json:
        from ollama_tune.cli._common import print_json

        print_json(_result_dict(result, result.guard))
        return
    _render_export(result, result.guard)


def _export_config(**values: Any) -> Any:
    """Flags over `ExportSettings`' defaults (a flag left out is None); bad values exit 1."""
    from pydantic import ValidationError

    from ollama_tune.errors import ExportError
    from ollama_tune.export import QUANTS, ExportConfig

    try:
        return ExportConfig(**{k: v for k, v in values.items() if v is not None})
    except ValidationError as exc:
        err = exc.errors()[0]
        field = str(err["loc"][0]) if err["loc"] else ""
        flag = "--quant" if field == "quants" else "--" + field.replace("_", "-")
        raise ExportError(
            f"{flag}: {str(err['msg']).removeprefix('Value error, ')}",
            hint=f"use one or more of: {', '.join(QUANTS)}"
            if "quantization" in err["msg"]
            else "see `ollama-tune export --help`",
        ) from None


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
