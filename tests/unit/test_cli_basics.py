"""The CLI's shape: help, version, exit codes, and no heavy imports on the fast paths."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from _data_helpers import seed_rows, write_jsonl

from ollama_tune.cli import main

HEAVY = ["torch", "transformers", "peft", "trl", "datasets", "llama_cpp", "matplotlib"]
PROBE = f"""
import sys, json
from ollama_tune.cli import main
try:
    main(sys.argv[1:])
except SystemExit as exc:
    code = exc.code
heavy = [m for m in {HEAVY!r} if m in sys.modules]
print(json.dumps({{"code": code, "heavy": heavy}}), file=sys.stderr)
"""


def probe(argv: list[str]) -> tuple[dict[str, object], float]:
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-c", PROBE, *argv],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    elapsed = time.perf_counter() - start
    return json.loads(proc.stderr.strip().splitlines()[-1]), elapsed


@pytest.mark.parametrize("argv", [["--help"], ["data", "--help"], ["data", "check", "{f}"]])
def test_fast_paths_do_not_import_heavy_modules(argv: list[str], tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "d.jsonl", seed_rows(60))
    result, elapsed = probe([a.replace("{f}", str(path)) for a in argv])
    assert result["code"] in (0, None)
    assert result["heavy"] == [], f"imported {result['heavy']} ({elapsed:.2f}s)"
    print(f"{' '.join(argv)}: {elapsed:.2f}s")  # timing shown with -s; not asserted


def test_python_dash_m_runs_data_check(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "d.jsonl", [*seed_rows(12), {"instruction": "x"}])
    proc = subprocess.run(
        [sys.executable, "-m", "ollama_tune", "data", "check", str(path), "--json"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 1
    assert json.loads(proc.stdout)["errors"] == 1


def test_version_and_no_args(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code in (0, None) and "ollama-tune" in capsys.readouterr().out


def test_unknown_option_is_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["data", "check", "--no-such-flag"])
    assert info.value.code == 2
    assert "No such option" in capsys.readouterr().err


def test_debug_env_reraises_library_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from ollama_tune.errors import DataError

    monkeypatch.setenv("OLLAMA_TUNE_DEBUG", "1")
    with pytest.raises(DataError):
        main(["data", "check", str(tmp_path / "missing.jsonl")])
