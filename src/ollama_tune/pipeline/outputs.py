"""Typed stage outputs: what each stage of `ollama-tune run` hands to the stages after it.

A stage's `run` builds one of these and returns its `to_json()` (what state.json keeps, so a
skipped stage's outputs come back on the next run); a later stage reads it with
`SplitOutput.of(ctx)` instead of string keys. `paths` are the files that must still exist for
a skip to be valid.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, ClassVar, TypeVar

from ollama_tune.pipeline.runner import Context

T = TypeVar("T", bound="StageOutput")


@dataclass(frozen=True)
class StageOutput:
    stage: ClassVar[str]
    paths: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def of(cls: type[T], ctx: Context) -> T:
        """This stage's outputs in `ctx` (keys a newer version added are left out)."""
        names = {f.name for f in dataclasses.fields(cls)}
        saved = ctx.outputs.get(cls.stage, {})
        return cls(**{k: v for k, v in saved.items() if k in names})


@dataclass(frozen=True)
class SplitOutput(StageOutput):
    stage: ClassVar[str] = "split"
    train: str = ""
    test: str = ""
    train_rows: int = 0
    test_rows: int = 0
    train_sha256: str | None = None
    test_sha256: str | None = None


@dataclass(frozen=True)
class CustomizeOutput(StageOutput):
    stage: ClassVar[str] = "customize"
    modelfile: str = ""
    sha256: str | None = None


@dataclass(frozen=True)
class AugmentOutput(StageOutput):
    stage: ClassVar[str] = "augment"
    train: str | None = None  # None: augmentation off, train on the split's train file
    added: int = 0
    rows: int | None = None
    dropped: int | None = None
    method: str | None = None
    sha256: str | None = None


@dataclass(frozen=True)
class TrainOutput(StageOutput):
    stage: ClassVar[str] = "train"
    run_dir: str = ""
    train_loss: float | None = None
    eval_loss: float | None = None
    steps: int = 0
    best: dict[str, Any] | None = None
    tokens_per_s: float | None = None
    peak_rss_mb: float | None = None
    adapter_sha256: str | None = None


@dataclass(frozen=True)
class ExportOutput(StageOutput):
    stage: ClassVar[str] = "export"
    bundle: str = ""
    ggufs: list[str] = field(default_factory=list)
    sizes: dict[str, int] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    modelfile_sha256: str | None = None
    shipped: str | None = None
    shipped_reason: str | None = None


@dataclass(frozen=True)
class CreateOutput(StageOutput):
    stage: ClassVar[str] = "create"
    created: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class EvalOutput(StageOutput):
    stage: ClassVar[str] = "eval"
    report_md: str | None = None
    report_html: str | None = None
    report_json: str | None = None
    gates_passed: bool = True
    summary: dict[str, dict[str, float]] = field(default_factory=dict)
