"""A recipe and a finished previous run for the `run --plan` tests.

check, split and augment run for real (cheap); the stages that load a model are replaced by
stand-ins that return outputs of the same shape, so the state.json is the one the pipeline's own
runner writes and the plan reads it with the real stages' `inputs`.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from ollama_tune.config import load_recipe
from ollama_tune.pipeline import Context, Stage, run_recipe
from ollama_tune.pipeline.stages import build_stages

RECIPE = """\
name: shop
data:
  train: train.jsonl
  test_ratio: 0.25
customize:
  system: あなたは丁寧なサポート担当です。
export:
  quants: [q8_0]
ollama:
  create: never
eval:
  max_tokens: 128
"""


def write_recipe(tmp_path: Path) -> Path:
    rows = [
        f'{{"instruction": "質問{i}はどうすればいいですか？", "output": "回答{i}です。"}}'
        for i in range(8)
    ]
    (tmp_path / "train.jsonl").write_text("\n".join(rows) + "\n", encoding="utf-8")
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(RECIPE, encoding="utf-8")
    return recipe


def _stand_in(name: str, workdir: Path) -> Any:
    outputs: dict[str, dict[str, Any]] = {
        "customize": {"modelfile": str(workdir / "customize" / "Modelfile"), "paths": []},
        "train": {"run_dir": str(workdir / "train"), "steps": 4, "paths": []},
        "export": {"bundle": str(workdir / "bundle"), "paths": []},
        "create": {"created": []},
        "eval": {"gates_passed": True, "summary": {}, "paths": []},
    }

    def run(ctx: Context) -> dict[str, Any]:
        return dict(outputs[name])

    return run


def light_stages(workdir: Path) -> list[Stage]:
    """The real stages, with the model-loading `run`s replaced (their `inputs` stay real)."""
    heavy = {"customize", "train", "export", "create", "eval"}
    return [
        dataclasses.replace(s, run=_stand_in(s.name, workdir)) if s.name in heavy else s
        for s in build_stages()
    ]


def run_previous(recipe: Path, overrides: dict[str, Any] | None = None) -> list[str]:
    """Run the recipe through the real runner with light stages; the statuses, in order."""
    loaded = load_recipe(recipe, overrides)
    result = run_recipe(loaded, stages=light_stages(Path(loaded.workdir)))
    return [s.status for s in result.stages]
