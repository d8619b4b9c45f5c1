"""The quickstart (`make demo`'s recipe) end to end, stage by stage, then a second run.

Runs examples/customer-support/recipe.yaml into a fresh workdir with a fresh cache (so the
dequantised base model is rebuilt, as on a new machine), prints seconds per stage, then runs it
again to show that unchanged stages are skipped.

    python bench/bench_quickstart.py
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import ROOT, table


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["OLLAMA_TUNE_CACHE"] = str(Path(tmp) / "cache")
        os.environ.setdefault("OLLAMA_HOST", "http://127.0.0.1:9")  # no server: create skips
        from ollama_tune.config import load_recipe
        from ollama_tune.pipeline import run_recipe

        recipe = load_recipe(
            ROOT / "examples" / "customer-support" / "recipe.yaml",
            {"workdir": str(Path(tmp) / "work")},
        )
        t0 = time.perf_counter()
        first = run_recipe(recipe)
        first_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        second = run_recipe(recipe)
        second_s = time.perf_counter() - t0
    rows = [
        (a.title, f"{a.seconds:.1f}", b.status, a.note[:60])
        for a, b in zip(first.stages, second.stages, strict=True)
    ]
    rows.append(("**total**", f"{first_s:.1f}", f"{second_s:.1f}s", ""))
    print(
        table(
            "Quickstart, examples/customer-support/recipe.yaml",
            rows,
            ("stage", "first run s", "second run", "note"),
        )
    )
    for name, metrics in first.summary.items():
        shown = {
            k: round(v, 3)
            for k, v in metrics.items()
            if k in ("fact_recall", "chrf", "japanese_share", "stop_rate", "tokens_per_s")
        }
        print(f"{name}: {shown}")


if __name__ == "__main__":
    main()
