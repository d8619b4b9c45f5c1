"""Two CPU processes (gloo DDP) through `accelerate launch` and `torchrun`, end to end."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "unit"))
from test_train import write_qa  # noqa: E402


def _train_args(data: Path, base: Path, out: Path) -> list[str]:
    return [
        "train", "--data", str(data), "--base-model", str(base), "--output", str(out),
        "--max-steps", "4", "--save-steps", "2", "--batch-size", "1", "--max-seq-len", "64",
        "--lr", "0.05",
    ]  # fmt: skip


def _launcher(name: str) -> list[str]:
    exe = shutil.which(name, path=str(Path(sys.executable).parent)) or shutil.which(name)
    if exe is None:
        pytest.fail(f"{name} is not installed next to {sys.executable}")
    if name == "accelerate":
        # `--cpu` makes accelerate start ONE process (multi-CPU needs mpirun); its multi-process
        # launcher (torchrun underneath) works on CPU-only machines, each rank then uses gloo.
        return [
            exe, "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
            "--mixed_precision", "no", "--dynamo_backend", "no", "-m", "ollama_tune",
        ]  # fmt: skip
    return [exe, "--standalone", "--nproc_per_node", "2", "-m", "ollama_tune"]


@pytest.mark.parametrize("launcher", ["accelerate", "torchrun"])
def test_two_cpu_processes_train_and_only_rank_0_writes(
    launcher: str, tiny_model_dir: Path, tmp_path: Path
) -> None:
    data = write_qa(tmp_path / "qa.jsonl", 16)
    out = tmp_path / "run"
    env = dict(os.environ, OMP_NUM_THREADS="1", COLUMNS="200")
    proc = subprocess.run(
        [*_launcher(launcher), *_train_args(data, tiny_model_dir, out)],
        capture_output=True, text=True, env=env, timeout=600, cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-4000:]
    doc = json.loads((out / "run.json").read_text("utf-8"))
    assert doc["config"]["world_size"] == 2
    assert doc["metrics"]["steps"] == 4
    assert (out / "adapter" / "adapter_model.safetensors").is_file()
    assert (out / "checkpoints" / "checkpoint-4").is_dir()
    # Only rank 0 talks to the user and writes: one summary, no stray temp dirs from rank 1.
    assert proc.stdout.count("Training finished") == 1, proc.stdout
    assert not [p for p in out.iterdir() if p.name.startswith(".")]
