"""What a run leaves behind for later stages: run.json, loss.png, versions, peak memory."""

from __future__ import annotations

import resource
import sys
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

from ollama_tune import __version__
from ollama_tune._util import atomic_path, atomic_write_json


def versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {"ollama_tune": __version__}
    for pkg in ("torch", "transformers", "peft", "trl"):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            out[pkg] = None
    return out


def peak_rss_mb() -> float:
    """Peak resident memory of this process (Linux reports KiB, macOS bytes)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return round(peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024, 1)


def write_run_json(path: Path, **fields: Any) -> Path:
    """run.json, schema 1 — the contract export and evaluate read (keys as documented)."""
    doc = {"schema": 1, **fields, "created": datetime.now(timezone.utc).isoformat()}
    return atomic_write_json(path, doc)


def plot_loss(records: list[dict[str, Any]], path: Path, title: str) -> Path | None:
    """Training and validation loss against step, as a PNG (matplotlib, no display); the
    validation fact recall and stop rate, when measured, on a second axis beside them."""
    train = [(r["step"], r["loss"]) for r in records if "loss" in r]
    evals = [(r["step"], r["eval_loss"]) for r in records if "eval_loss" in r]
    if not train and not evals:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4), dpi=100)
    if train:
        ax.plot(*zip(*train, strict=True), label="train loss")
    if evals:
        ax.plot(*zip(*evals, strict=True), "o-", label="validation loss")
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    handles, labels = ax.get_legend_handles_labels()
    recall_axis = _plot_recall(ax, records)
    if recall_axis is not None:
        more = recall_axis.get_legend_handles_labels()
        handles, labels = handles + more[0], labels + more[1]
    ax.legend(handles, labels, loc="center right")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)
    return path


def _plot_recall(ax: Any, records: list[dict[str, Any]]) -> Any:
    """Validation recall and stop rate (0–100 %) on the right-hand axis, if any were taken."""
    series = {
        "val_fact_recall": ("validation fact recall", "s-"),
        "val_stop_rate": ("validation stop rate", "^--"),
    }
    found = {k: [(r["step"], r[k]) for r in records if r.get(k) is not None] for k in series}
    if not any(found.values()):
        return None
    right = ax.twinx()
    for key, points in found.items():
        if points:
            label, style = series[key]
            steps, values = zip(*points, strict=True)
            right.plot(steps, [v * 100 for v in values], style, color=_COLORS[key], label=label)
    right.set_ylim(-2, 102)
    right.set_ylabel("% of validation questions")
    return right


_COLORS = {"val_fact_recall": "tab:green", "val_stop_rate": "tab:red"}
