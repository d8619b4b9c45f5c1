"""Stage hand-offs are typed: each stage's outputs are its `*Output` dataclass, kept in
state.json and read back, after a skip, as the same typed object."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from _plan_helpers import run_previous, write_recipe

from ollama_tune.config import load_recipe
from ollama_tune.pipeline import Context
from ollama_tune.pipeline.augment_stage import train_data
from ollama_tune.pipeline.outputs import AugmentOutput, SplitOutput, StageOutput


def test_split_and_augment_outputs_are_their_dataclasses_and_survive_a_skip(
    tmp_path: Path,
) -> None:
    recipe = write_recipe(tmp_path)
    assert set(run_previous(recipe)) == {"ran"}
    state = json.loads((tmp_path / "runs" / "recipe" / "state.json").read_text("utf-8"))
    outputs = {name: entry["outputs"] for name, entry in state["stages"].items()}
    for kind in (SplitOutput, AugmentOutput):
        assert set(outputs[kind.stage]) == {f.name for f in dataclasses.fields(kind)}
    ctx = Context(recipe=load_recipe(recipe), workdir=tmp_path, outputs=outputs)
    split = SplitOutput.of(ctx)
    assert Path(split.train).is_file() and Path(split.test).is_file()
    assert split.train_rows + split.test_rows == 8 and split.test_rows == 2
    # Augmentation is off: training reads the split's own train file.
    assert AugmentOutput.of(ctx).train is None and train_data(ctx) == Path(split.train)
    # A skipping re-run hands the same typed outputs on.
    assert set(run_previous(recipe)) == {"skipped"}
    again = json.loads((tmp_path / "runs" / "recipe" / "state.json").read_text("utf-8"))
    assert again["stages"]["split"]["outputs"] == outputs["split"]


def test_every_stage_output_names_its_stage_and_lists_paths() -> None:
    kinds = StageOutput.__subclasses__()
    stages = {k.stage for k in kinds}
    assert stages == {"split", "customize", "augment", "train", "export", "create", "eval"}
    for kind in kinds:
        assert kind().to_json()["paths"] == []
