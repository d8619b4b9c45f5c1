"""The evaluation report people read: `report.md`, a self-contained `report.html`, `report.json`.

`write_report(EvalResult, out_dir)` draws the charts (quality and latency bars, the loss curve
of models that came from a training run), writes them as PNGs under `charts/` for the Markdown
and embeds them as data URIs in the HTML, so the page can be mailed as one file.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ollama_tune import __version__
from ollama_tune._util import atomic_write_bytes, atomic_write_json, atomic_write_text
from ollama_tune.evaluate.compare import EvalResult


@dataclass
class ReportResult:
    out_dir: Path
    markdown: Path
    html: Path
    json: Path
    charts: list[Path] = field(default_factory=list)


def write_report(
    result: EvalResult,
    out_dir: str | Path,
    *,
    loss_curves: dict[str, str | Path] | None = None,
    run_commands: dict[str, str] | None = None,
) -> ReportResult:
    """Write the three report files (and chart PNGs) into `out_dir`.

    `loss_curves` maps a model label to its training run directory; by default the run
    directories `compare_models` found for bundle/GGUF references are used.
    """
    from ollama_tune.report.charts import build_charts
    from ollama_tune.report.render import build_view, render_html, render_markdown

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    runs = {m.label: m.run_dir for m in result.models if m.run_dir}
    runs.update({k: str(v) for k, v in (loss_curves or {}).items()})
    charts = build_charts(result.summaries(), runs)
    chart_paths = [atomic_write_bytes(out / "charts" / name, png) for name, png in charts.items()]
    view = build_view(result, charts)
    # Models created in Ollama but evaluated from their files still get their `ollama run`.
    view["run_commands"].update(run_commands or {})
    md = atomic_write_text(out / "report.md", render_markdown(view))
    page = atomic_write_text(out / "report.html", render_html(view))
    data = atomic_write_json(out / "report.json", report_json(result, charts))
    return ReportResult(out, md, page, data, chart_paths)


def report_json(result: EvalResult, charts: dict[str, bytes]) -> dict[str, Any]:
    """The machine-readable report: settings, per-model aggregates, gates, every answer."""
    data = result.to_dict()
    data["ollama_tune_version"] = __version__
    data["passed"] = result.passed
    data["charts"] = [f"charts/{name}" for name in charts]
    from ollama_tune.report.verdict import build_verdict

    data["verdict"] = build_verdict(result).to_dict()
    return data


__all__ = ["ReportResult", "report_json", "write_report"]
