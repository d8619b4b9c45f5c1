"""`ollama-tune data check FILE` end to end, as a user runs it: wall seconds of the whole CLI.

Side by side in one run, on the same generated file (bench_data_check.distinct_rows: random
Japanese-like FAQ rows, 2% near-duplicates): the CLI with its forked data-set-wide checks and
the same CLI in one process (OLLAMA_TUNE_NO_FORK=1), alternated A B B A, best of each. Also the
check time inside the process (`validate_dataset`, no start-up or printing) for 5,000 rows.

    python bench/bench_data_check_cli.py                 # 100,000 and 5,000 rows
    python bench/bench_data_check_cli.py --rows 20000
    git worktree add /tmp/before 83cda21 && \
        python bench/bench_data_check_cli.py --baseline /tmp/before   # adds the old code's time
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import table
from bench_data_check import distinct_rows


def write_rows(path: Path, n: int) -> Path:
    with path.open("w", encoding="utf-8") as f:
        for text in distinct_rows(n):
            question, answer = text.split("\n", 1)
            f.write(json.dumps({"instruction": question, "input": "", "output": answer}))
            f.write("\n")
    return path


def cli_seconds(path: Path, fork: bool, src: Path | None = None) -> float:
    env = {**os.environ, "COLUMNS": "120"}
    if src is not None:  # another checkout's package, e.g. the code before a change
        env["PYTHONPATH"] = str(src / "src")
    if fork:
        env.pop("OLLAMA_TUNE_NO_FORK", None)
    else:
        env["OLLAMA_TUNE_NO_FORK"] = "1"
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "ollama_tune", "data", "check", str(path)],
        env=env,
        stdout=subprocess.DEVNULL,
        check=True,
    )
    return time.perf_counter() - start


def check_seconds(path: Path) -> float:
    from ollama_tune.data import CheckConfig, validate_dataset

    start = time.perf_counter()
    validate_dataset(CheckConfig([path]))
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[100_000, 5_000])
    parser.add_argument("--baseline", type=Path, help="a checkout of the code to compare with")
    args = parser.parse_args()
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in args.rows:
            path = write_rows(Path(tmp) / f"rows{n}.jsonl", n)
            forked, plain = [], []
            for fork in (True, False, False, True):
                (forked if fork else plain).append(cli_seconds(path, fork))
            base = "-"
            if args.baseline:
                base = f"{min(cli_seconds(path, True, args.baseline) for _ in range(2)):.2f}"
            inside = check_seconds(path)
            f, p = min(forked), min(plain)
            row = (f"{n:,}", base, f"{p:.2f}", f"{f:.2f}", f"{p / f:.2f}x", f"{inside:.2f}")
            results.append(row)
            print(results[-1], file=sys.stderr, flush=True)
    header = ("rows", "baseline, wall s", "one process, wall s", "forked, wall s")
    header += ("speed-up", "check only, s")
    print(table("data check, whole CLI (best of 2 each, A B B A)", results, header))


if __name__ == "__main__":
    main()
