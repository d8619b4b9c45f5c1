"""PNG charts for the report (matplotlib, Agg backend, imported only when a report is written).

Quality metrics as grouped bars per model, latency p50/p95 per model, and the training loss
curve of a model that came from a training run (`metrics.jsonl` of the run directory).
"""

from __future__ import annotations

import io
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ollama_tune.evaluate.metrics import METRICS

QUALITY_METRICS = (
    "fact_recall",
    "fact_accuracy",
    "chrf",
    "japanese_share",
    "language_match",
    "politeness",
    "structure",
    "stop_rate",
)
LATENCY_METRICS = ("p50_latency_s", "p95_latency_s", "p50_ttft_s", "p95_ttft_s")


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")  # no display on servers and CI
    import matplotlib.pyplot as plt

    return plt


def _png(fig: Any) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
    _pyplot().close(fig)
    return buf.getvalue()


def grouped_bars(
    summaries: dict[str, dict[str, float | None]],
    metrics: Sequence[str],
    *,
    title: str,
    ylabel: str,
    ylim: tuple[float, float] | None = None,
) -> bytes | None:
    """Grouped bar chart: one group per metric, one bar per model. None when nothing measured."""
    shown = [m for m in metrics if any(s.get(m) is not None for s in summaries.values())]
    if not shown or not summaries:
        return None
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(max(6.0, 1.3 * len(shown) + 2), 4))
    width = 0.8 / len(summaries)
    for i, (label, values) in enumerate(summaries.items()):
        xs = [j + (i - (len(summaries) - 1) / 2) * width for j in range(len(shown))]
        ys = [values.get(m) or 0.0 for m in shown]
        ax.bar(xs, ys, width=width, label=label)
    ax.set_xticks(range(len(shown)))
    ax.set_xticklabels([METRICS[m].label for m in shown], rotation=20, ha="right")
    ax.set_title(title)
    ax.set_ylabel(ylabel)
    if ylim:
        ax.set_ylim(*ylim)
    ax.legend()
    ax.grid(axis="y", alpha=0.3)
    return _png(fig)


def read_loss_curve(run_dir: str | Path) -> dict[str, list[tuple[float, float]]]:
    """`{"loss": [(step, value)…], "eval_loss": […]}` from a run's `metrics.jsonl`."""
    path = Path(run_dir) / "metrics.jsonl"
    curves: dict[str, list[tuple[float, float]]] = {}
    if not path.is_file():
        return curves
    for n, line in enumerate(path.read_text("utf-8").splitlines()):
        try:
            row = json.loads(line)
        except ValueError:
            continue
        if not isinstance(row, dict):
            continue
        step = row.get("step", row.get("global_step", n))
        for key in ("loss", "train_loss", "eval_loss"):
            value = row.get(key)
            if isinstance(value, (int, float)) and isinstance(step, (int, float)):
                curves.setdefault(key, []).append((float(step), float(value)))
    return curves


def loss_chart(label: str, run_dir: str | Path) -> bytes | None:
    """The loss curve of a training run: plotted from metrics.jsonl, else its loss.png."""
    curves = read_loss_curve(run_dir)
    if not curves:
        png = Path(run_dir) / "loss.png"
        return png.read_bytes() if png.is_file() else None
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 3.5))
    for key, points in curves.items():
        ax.plot([p[0] for p in points], [p[1] for p in points], label=key, marker=".")
    ax.set_title(f"Training loss — {label}")
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.legend()
    ax.grid(alpha=0.3)
    return _png(fig)


def build_charts(
    summaries: dict[str, dict[str, float | None]], run_dirs: dict[str, str]
) -> dict[str, bytes]:
    """Every chart of a report, `{file name: PNG bytes}`."""
    charts: dict[str, bytes] = {}
    quality = grouped_bars(
        summaries, QUALITY_METRICS, title="Answer quality", ylabel="share / score", ylim=(0, 1.05)
    )
    if quality:
        charts["quality.png"] = quality
    latency = grouped_bars(summaries, LATENCY_METRICS, title="Latency", ylabel="seconds")
    if latency:
        charts["latency.png"] = latency
    for label, run_dir in run_dirs.items():
        loss = loss_chart(label, run_dir)
        if loss:
            charts[f"loss-{label}.png"] = loss
    return charts
