"""Recipes: the typed description of a whole `ollama-tune run`, loaded from YAML.

Precedence is CLI flag > recipe value > default (flags arrive as dotted `overrides`).
Paths inside a recipe are relative to the recipe file, so a recipe can be run from anywhere.
`check_recipe` reports every problem at once with its YAML line and a fix hint, the way
torchtune's `validate` does, instead of stopping at the first.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, Field, ValidationError

from ollama_tune.data.augment.settings import AugmentSettings
from ollama_tune.data.settings import DataSettings
from ollama_tune.errors import UsageError
from ollama_tune.evaluate.settings import MODEL_ROLES, RunEvalSettings
from ollama_tune.export.settings import QUANTS, ExportSettings
from ollama_tune.ollama_settings import OllamaSettings
from ollama_tune.prompt import CustomizeSettings
from ollama_tune.recipe_yaml import duplicate_keys, key_node, node_for, read_yaml
from ollama_tune.settings import Section
from ollama_tune.train.settings import TrainSettings


class Recipe(Section):
    """One pipeline run. Relative paths are already resolved against the recipe's folder."""

    name: str = "ollama-tune"
    data: DataSettings
    base_model: str = "smollm2-135m"
    customize: CustomizeSettings = Field(default_factory=lambda: CustomizeSettings())
    augment: AugmentSettings = Field(default_factory=lambda: AugmentSettings())
    train: TrainSettings = Field(default_factory=lambda: TrainSettings())
    export: ExportSettings = Field(default_factory=lambda: ExportSettings())
    ollama: OllamaSettings = Field(default_factory=lambda: OllamaSettings())
    eval: RunEvalSettings = Field(default_factory=lambda: RunEvalSettings())
    workdir: Path = Path("runs/ollama-tune")
    source: Path | None = Field(default=None, exclude=True)

    @property
    def customized_name(self) -> str:
        return self.ollama.names.customized or self.customize.model_name or f"{self.name}-custom"

    @property
    def tuned_name(self) -> str:
        return self.ollama.names.tuned or f"{self.name}-tuned"


@dataclass(frozen=True)
class RecipeIssue:
    """One problem in a recipe file, located by YAML line."""

    path: str
    line: int
    key: str
    message: str
    hint: str

    @property
    def where(self) -> str:
        return f"{self.path}:{self.line}"


def _model_for(loc: tuple[Any, ...]) -> type[BaseModel]:
    model: type[BaseModel] = Recipe
    for part in loc:
        field = model.model_fields.get(str(part))
        ann = getattr(field, "annotation", None)
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            model = ann
        else:
            break
    return model


def _hint_for(err: Any, loc: tuple[Any, ...]) -> str:
    kind = err["type"]
    if kind == "extra_forbidden":
        fields = list(_model_for(loc[:-1]).model_fields)
        close = difflib.get_close_matches(str(loc[-1]), fields, n=1)
        if close:
            return f"did you mean `{close[0]}`? Known keys: {', '.join(fields)}"
        return f"remove it; known keys here: {', '.join(fields)}"
    if kind == "missing":
        return f"add `{'.'.join(map(str, loc))}:` to the recipe"
    if "quantization" in err["msg"]:
        return f"use one or more of: {', '.join(QUANTS)}"
    if "gate" in err["msg"]:
        return _gate_hint(err.get("input"))
    return "fix the value; `ollama-tune run --help` lists every option"


def _gate_hint(value: Any) -> str:
    from ollama_tune.errors import EvaluationError
    from ollama_tune.evaluate.gates import parse_gate

    try:
        parse_gate(str(value))
    except EvaluationError as exc:
        return exc.hint or ""
    return f"prefix a model with one of: {', '.join(f'{m}.' for m in MODEL_ROLES)}"


def _issues_from_validation(
    exc: ValidationError, root: yaml.Node | None, path: Path
) -> list[RecipeIssue]:
    issues = []
    for err in exc.errors():
        loc = tuple(err["loc"])
        # A validator on a list reports at the list; point at the bad item when we can.
        node = key_node(root, loc) if err["type"] == "extra_forbidden" else node_for(root, loc)
        line = node.start_mark.line + 1 if node is not None else 1
        key = ".".join(str(p) for p in loc) or "(recipe)"
        msg = str(err["msg"]).removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = f"unknown key `{loc[-1]}`"
        issues.append(RecipeIssue(str(path), line, key, msg, _hint_for(err, loc)))
    return issues


def _set_dotted(raw: dict[str, Any], dotted: str, value: Any) -> None:
    parts = dotted.split(".")
    node = raw
    for part in parts[:-1]:
        child = node.get(part)
        if not isinstance(child, dict):
            child = {}
            node[part] = child
        node = child
    node[parts[-1]] = value


def _resolve_paths(raw: dict[str, Any], base: Path) -> None:
    data = raw.get("data")
    if isinstance(data, dict):
        for key in ("train", "test"):
            if isinstance(data.get(key), str):
                data[key] = str((base / data[key]).resolve())
    customize = raw.get("customize")
    if isinstance(customize, dict) and isinstance(customize.get("tokenizer"), str):
        customize["tokenizer"] = str((base / customize["tokenizer"]).resolve())
    if isinstance(raw.get("workdir"), str):
        raw["workdir"] = str((base / raw["workdir"]).resolve())
    # A base model that names an existing local file/dir is a path; anything else is an id.
    bm = raw.get("base_model")
    if isinstance(bm, str) and (bm.startswith((".", "/")) or bm.endswith(".gguf")):
        raw["base_model"] = str((base / bm).resolve())


def _prepare(
    path: Path, overrides: dict[str, Any] | None
) -> tuple[dict[str, Any], yaml.Node | None]:
    raw, root = read_yaml(path)
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise UsageError(
            f"{path}:1: a recipe must be a mapping of sections, found {type(raw).__name__}",
            hint="start from examples/customer-support/recipe.yaml",
        )
    _resolve_paths(raw, path.resolve().parent)
    # Flags are already relative to the current directory, so they are applied after.
    for dotted, value in (overrides or {}).items():
        if value is not None:
            _set_dotted(raw, dotted, value)
    raw.setdefault("workdir", str((path.resolve().parent / "runs" / path.stem).resolve()))
    return raw, root


def _duplicate_issues(root: yaml.Node | None, path: Path) -> list[RecipeIssue]:
    return [
        RecipeIssue(
            str(path),
            line,
            key,
            f"`{key}` appears twice (first at line {first}); YAML keeps only the last one",
            "merge the two into one (everything under the first one is lost otherwise)",
        )
        for key, first, line in duplicate_keys(root)
    ]


def _file_issues(raw: dict[str, Any], root: yaml.Node | None, path: Path) -> list[RecipeIssue]:
    """Missing data files, checked on the raw mapping so they show even when other keys fail."""
    from ollama_tune.data.paths import same_file

    data = raw.get("data")
    issues: list[RecipeIssue] = []
    if not isinstance(data, dict):
        return issues
    train, test = data.get("train"), data.get("test")
    if isinstance(train, str) and isinstance(test, str) and same_file(train, test):
        node = node_for(root, ("data", "test"))
        issues.append(
            RecipeIssue(
                str(path),
                node.start_mark.line + 1 if node is not None else 1,
                "data.test",
                f"data.test is the training file {train}: the evaluation would test on "
                "the rows the model learnt",
                "point data.test at held-out rows, or remove it to split data.train",
            )
        )
    for key in ("train", "test"):
        value = data.get(key)
        if isinstance(value, str) and not Path(value).is_file():
            node = node_for(root, ("data", key))
            line = node.start_mark.line + 1 if node is not None else 1
            issues.append(
                RecipeIssue(
                    str(path),
                    line,
                    f"data.{key}",
                    f"data file not found: {value}",
                    "paths in a recipe are relative to the recipe file's folder",
                )
            )
    return issues


def check_recipe(path: str | Path, overrides: dict[str, Any] | None = None) -> list[RecipeIssue]:
    """Every problem in the recipe at once (unknown keys, types, files, quants, gates)."""
    path = Path(path)
    try:
        raw, root = _prepare(path, overrides)
    except UsageError as exc:
        line = re.search(r":(\d+):", exc.message)
        return [
            RecipeIssue(
                str(path), int(line.group(1)) if line else 1, "(file)", exc.message, exc.hint or ""
            )
        ]
    issues = _duplicate_issues(root, path) + _file_issues(raw, root, path)
    try:
        Recipe.model_validate(raw)
    except ValidationError as exc:
        issues += _issues_from_validation(exc, root, path)
    return sorted(issues, key=lambda i: i.line)


def load_recipe(path: str | Path, overrides: dict[str, Any] | None = None) -> Recipe:
    """Load and validate a recipe; raises `UsageError` listing every problem with its line."""
    path = Path(path)
    issues = check_recipe(path, overrides)
    if issues:
        lines = "\n".join(f"  {i.where}: {i.key}: {i.message}" for i in issues)
        raise UsageError(
            f"the recipe has {len(issues)} problem(s):\n{lines}",
            hint=f"run `ollama-tune run --check {path}` for the fixes",
        )
    raw, _root = _prepare(path, overrides)
    recipe = Recipe.model_validate(raw)
    recipe.source = path.resolve()
    return recipe
