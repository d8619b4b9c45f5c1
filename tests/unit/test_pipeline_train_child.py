"""`ollama-tune run`'s train stage runs in a child process: progress, results, Ctrl-C, resume."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_train import write_qa

from ollama_tune.config import load_recipe
from ollama_tune.pipeline import run_recipe
from ollama_tune.pipeline.stages import build_stages

RECIPE = """\
name: shop
data:
  train: qa.jsonl
  test_ratio: 0.2
base_model: {base}
train:
  method: lora
  max_steps: 6
  save_steps: 2
  batch_size: 2
  max_seq_len: 80
  learning_rate: 0.1
  lora_alpha: 64
  val_questions: 1
workdir: work
"""


def _recipe(tmp_path: Path, base: Path) -> Path:
    write_qa(tmp_path / "qa.jsonl")
    path = tmp_path / "recipe.yaml"
    path.write_text(RECIPE.format(base=base), encoding="utf-8")
    return path


def _up_to_train() -> list:  # type: ignore[type-arg]
    return [s for s in build_stages() if s.name in ("check", "split", "augment", "train")]


def test_train_stage_reports_progress_from_its_child_and_resumes_after_ctrl_c(
    tmp_path: Path, tiny_model_dir: Path
) -> None:
    recipe = load_recipe(_recipe(tmp_path, tiny_model_dir))
    seen: list[tuple[str, float, float | None]] = []

    def ctrl_c_at_step_3(description: str, done: float, total: float | None) -> None:
        seen.append((description, done, total))
        if description == "training" and done >= 3:  # checkpoint-2 is on disk by now
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_recipe(recipe, ctrl_c_at_step_3, stages=_up_to_train())
    assert ("training", 3, 6) in seen  # the child's steps reached the parent's callback
    work = tmp_path / "work"
    state = json.loads((work / "state.json").read_text(encoding="utf-8"))
    assert state["stages"]["train"]["status"] == "running"
    run_dir = work / "train"
    assert (run_dir / "checkpoints" / "checkpoint-2").is_dir()
    assert not (run_dir / "adapter").exists()

    later: list[tuple[str, float, float | None]] = []
    again = run_recipe(recipe, lambda *a: later.append(a), stages=_up_to_train())
    train = next(r for r in again.stages if r.name == "train")
    assert train.status == "resumed" and train.outputs["steps"] == 6
    doc = json.loads((run_dir / "run.json").read_text(encoding="utf-8"))
    assert doc["config"]["allocator"] == "jemalloc"  # the child was started with LD_PRELOAD
    # Resumed from checkpoint-2, not restarted: it starts at step 2, never trains step 1 again,
    # and each step's loss is logged once, in order.
    trained = [done for what, done, _ in later if what == "training" and done]
    assert trained[0] == 2 and 1 not in trained and trained[-1] == 6, trained
    rows = (run_dir / "metrics.jsonl").read_text(encoding="utf-8").splitlines()
    steps = [r["step"] for r in map(json.loads, rows) if "loss" in r]
    assert steps == [1, 2, 3, 4, 5, 6], steps
    assert (run_dir / "adapter" / "adapter_model.safetensors").is_file()
