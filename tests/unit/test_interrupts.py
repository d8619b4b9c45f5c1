"""Ctrl-C, SIGTERM and SIGKILL sent to the real CLI (`python -m ollama_tune`) in a subprocess.

A signal exits 130/143 with a message naming the command and how to resume; the temporary file
being written is removed and the output is untouched; the hidden file a SIGKILL leaves behind
is removed by the next run of the same output (only files of processes that are gone).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SUPPORT = ROOT / "examples" / "customer-support" / "train.jsonl"


def _start(tmp_path: Path, *args: str, slow: bool = True) -> tuple[subprocess.Popen[str], Path]:
    marker = tmp_path / "writing"
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        [str(ROOT / "src"), str(Path(__file__).parent / "_slow_disk"), env.get("PYTHONPATH", "")]
    )
    if slow:
        env["OLLAMA_TUNE_TEST_SLOW_WRITE"] = str(marker)
    proc = subprocess.Popen(
        [sys.executable, "-m", "ollama_tune", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=tmp_path,
        # A CI job run in the background has SIGINT ignored, and a child would inherit that.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    return proc, marker


def _wait_for(marker: Path, proc: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 120
    while not marker.exists():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "the CLI never started writing"
        time.sleep(0.05)


def _temps(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


@pytest.mark.parametrize(("sig", "code", "words"), [
    (signal.SIGINT, 130, "Ctrl-C (SIGINT)"),
    (signal.SIGTERM, 143, "SIGTERM"),
])  # fmt: skip
def test_a_signal_mid_write_says_what_stopped_and_leaves_nothing(
    tmp_path: Path, sig: int, code: int, words: str
) -> None:
    out = tmp_path / "out.jsonl"
    out.write_text("the previous output\n", encoding="utf-8")
    proc, marker = _start(tmp_path, "data", "convert", str(SUPPORT), str(out))
    _wait_for(marker, proc)
    assert _temps(tmp_path)  # half a temporary file is on disk right now
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    text = " ".join(err.split())
    assert proc.returncode == code, err
    assert f"Interrupted: `ollama-tune data convert` was stopped by {words}" in text
    assert "run the same command again" in text and "Traceback" not in err
    assert _temps(tmp_path) == []
    assert out.read_text(encoding="utf-8") == "the previous output\n"


def test_the_temp_file_a_sigkill_leaves_is_removed_by_the_next_run(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    proc, marker = _start(tmp_path, "data", "convert", str(SUPPORT), str(out))
    _wait_for(marker, proc)
    proc.kill()
    proc.communicate(timeout=60)
    left = _temps(tmp_path)
    assert len(left) == 1 and left[0].startswith(f".out.jsonl.ollama-tune-{proc.pid}.")
    # A temporary file of a live process (this one) is someone's work in progress: kept.
    live = tmp_path / f".out.jsonl.ollama-tune-{os.getpid()}.abcd1234.tmp"
    live.write_text("busy", encoding="utf-8")
    proc, _ = _start(tmp_path, "data", "convert", str(SUPPORT), str(out), slow=False)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert _temps(tmp_path) == [live.name]
    assert out.read_text(encoding="utf-8").count("\n") == len(
        SUPPORT.read_text(encoding="utf-8").splitlines()
    )


def test_ctrl_c_of_run_and_train_says_how_to_resume() -> None:
    from ollama_tune.cli._interrupts import describe

    assert "finished stages are skipped" in describe(["run", "recipe.yaml"], signal.SIGINT)[1]
    assert "--resume" in describe(["train", "--data", "x"], signal.SIGTERM)[1]
    what, _ = describe(["data", "split", "x.jsonl", "--out", "d"], signal.SIGINT)
    assert what.startswith("`ollama-tune data split` was stopped")
