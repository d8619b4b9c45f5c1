"""Every field of every stage's settings model, changed in a recipe, re-runs exactly the
stages that read it: the table below must name each field (a new field fails until it does)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from _plan_helpers import run_previous, write_recipe
from pydantic import BaseModel

from ollama_tune.config import Recipe, load_recipe
from ollama_tune.pipeline import plan_recipe

# key: (a changed value, the stages whose own inputs change)
CHANGES: dict[str, tuple[Any, set[str]]] = {
    "data.format": ("jsonl", {"check", "split"}),
    "data.test_ratio": (0.4, {"split"}),
    "data.seed": (7, {"split"}),
    "customize.system": ("短く答えてください。", {"customize", "train"}),
    "customize.shots": (1, {"customize"}),
    "customize.temperature": (0.2, {"customize"}),
    "customize.top_p": (0.5, {"customize"}),
    "customize.num_ctx": (4096, {"customize"}),
    "customize.knowledge": (True, {"customize"}),
    "customize.max_ctx": (16384, {"customize"}),
    "customize.tokenizer": ("tok", {"customize"}),
    "customize.model_name": ("shop-prompted", {"create"}),
    "augment.enabled": (True, {"augment"}),
    # Augmentation is off in the recipe: nothing reads its other keys.
    "augment.n": (5, set()),
    "augment.teacher": ("ollama:teacher", set()),
    "augment.seed": (7, set()),
    "export.quants": (["q4_k_m"], {"export"}),
    "export.keep_f16": (True, {"export"}),
    "export.guard_threshold": (0.2, {"export"}),
    "export.guard_max_tokens": (64, {"export"}),
    "export.guard_candidates": (["q8_0"], {"export"}),
    "ollama.host": ("127.0.0.1:1", {"create"}),
    "ollama.names.customized": ("shop-c", {"create"}),
    "ollama.names.tuned": ("shop-t", {"export", "create"}),
    "ollama.create": ("auto", {"create"}),
    "eval.max_tokens": (64, {"export", "eval"}),  # the guard answers with it too
    "eval.gates": (["fact_recall>=0.5"], {"eval"}),
    "eval.judge": ("ollama:judge", {"eval"}),
    "eval.concurrency": (2, {"eval"}),
    "eval.max_questions": (2, {"eval"}),
    "eval.train_sample": (2, {"eval"}),
    "eval.models": (["base", "tuned"], {"eval"}),
}
TRAIN_VALUES: dict[str, Any] = {
    "method": "full", "lora_r": 4, "lora_alpha": 8, "lora_dropout": 0.1,
    "target_modules": ["q_proj"], "epochs": 2.0, "max_steps": 7, "learning_rate": 1e-4,
    "batch_size": 2, "gradient_accumulation_steps": 2, "max_seq_len": 256, "seed": 7,
    "qlora": True, "packing": False, "bf16": False, "gradient_checkpointing": True,
    "logging_steps": 5, "save_steps": 10, "eval_steps": 5, "early_stopping_patience": 2,
    "val_ratio": 0.3, "val_questions": 4, "val_recall": False, "val_at_start": False,
    "val_max_tokens": 32,
}  # fmt: skip
CHANGES |= {f"train.{k}": (v, {"train"}) for k, v in TRAIN_VALUES.items()}
# Not settings of one stage: the data files (their contents are hashed), the run's name and
# folder and the base model (every stage), and `source` (where the recipe was read from).
NOT_STAGE_SETTINGS = {"name", "data.train", "data.test", "base_model", "workdir", "source"}


def _leaves(model: type[BaseModel], prefix: str = "") -> list[str]:
    keys = []
    for name, info in model.model_fields.items():
        ann = info.annotation
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            keys += _leaves(ann, f"{prefix}{name}.")
        else:
            keys.append(prefix + name)
    return keys


def test_the_table_names_every_field_of_every_settings_model() -> None:
    fields = set(_leaves(Recipe)) - NOT_STAGE_SETTINGS
    assert fields == set(CHANGES), {"untested": fields - set(CHANGES)}


@pytest.mark.parametrize("key", sorted(CHANGES))
def test_changing_one_field_reruns_exactly_the_stages_that_read_it(
    tmp_path: Path, key: str
) -> None:
    value, readers = CHANGES[key]
    recipe = write_recipe(tmp_path)
    if key == "ollama.create":  # the recipe says `never`; any other value is a change
        assert "create: never" in recipe.read_text(encoding="utf-8")
    run_previous(recipe)
    loaded = load_recipe(recipe, {key: value})
    plan = {s.name: s for s in plan_recipe(loaded)}
    rerun = {n for n, s in plan.items() if s.action == "run" and not s.conditional}
    assert rerun == readers, [(n, s.reasons) for n, s in plan.items()]
    for name in readers:
        assert f"{key} changed since the last run" in plan[name].reasons
