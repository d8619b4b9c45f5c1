"""Which GGUF the bundle ships: the quantization guard and `ship_quant`.

`export_bundle` calls `guard_and_ship` last: when the settings ask for the guard (a threshold,
the f16 reference next to at least one other type, test questions), every GGUF answers the
questions, and the Modelfile's FROM moves to the smallest type within the threshold.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

from ollama_tune._util import ProgressFn, noop_progress
from ollama_tune.errors import ExportError
from ollama_tune.export.bundle import write_bundle_files
from ollama_tune.export.settings import ExportConfig

if TYPE_CHECKING:
    from ollama_tune.evaluate.guard import GuardResult

NO_GUARD_REASON = "the first --quant given (no quantization guard ran)"


@dataclass
class ExportResult:
    run_dir: Path
    bundle_dir: Path
    merged_dir: Path
    name: str
    ggufs: dict[str, Path]
    sizes: dict[str, int]
    sha256: dict[str, str]
    timings: dict[str, float]
    modelfile: Path
    readme: Path
    template_family: str | None = None
    stop: list[str] = field(default_factory=list)
    parity_checked: bool = False
    warnings: list[str] = field(default_factory=list)  # the Modelfile's (lint, template)
    num_ctx: int | None = None
    # The type the Modelfile's FROM names, and why (set by `ship_quant` after the guard).
    shipped: str | None = None
    shipped_reason: str | None = None
    # The quantization guard's scores and warnings; None when it did not run.
    guard: GuardResult | None = None

    def guard_notes(self) -> list[str]:
        """The guard's warnings and "ships X: reason", for a run's notes."""
        if self.guard is None:
            return []
        notes = [w.message for w in self.guard.warnings]
        if self.guard.choice is not None:
            notes.append(f"ships {self.guard.choice.quant}: {self.guard.choice.reason}")
        return notes


def ship_quant(
    result: ExportResult,
    quant: str,
    reason: str,
    *,
    scores: dict[str, float | None] | None = None,
    reference: str | None = None,
) -> ExportResult:
    """Point the bundle's Modelfile at `model-<quant>.gguf` and record why in its run.json
    (with the guard's `scores` per type against `reference`, for the report's verdict)."""
    if quant not in result.ggufs:
        raise ExportError(
            f"cannot ship {quant}: the bundle has {', '.join(result.ggufs)}",
            hint="export that type too (--quant)",
        )
    run = json.loads((result.bundle_dir / "run.json").read_text("utf-8"))
    export = run.setdefault("export", {})
    export["shipped"] = {
        "quant": quant, "reason": reason, "scores": scores or {}, "reference": reference,
    }  # fmt: skip
    quants = [quant, *(q for q in export.get("quants", result.ggufs) if q != quant)]
    files = write_bundle_files(
        result.bundle_dir,
        run,
        name=result.name,
        quants=quants,
        sizes=result.sizes,
        num_ctx=result.num_ctx or 2048,
    )
    return replace(
        result, modelfile=files.modelfile, readme=files.readme, shipped=quant,
        shipped_reason=reason,
    )  # fmt: skip


def _guard_wanted(config: ExportConfig, ggufs: dict[str, Path]) -> bool:
    return (
        config.guard_threshold is not None
        and config.guard_questions is not None
        and Path(config.guard_questions).is_file()
        and "f16" in ggufs
        and len(ggufs) >= 2
    )


def guard_and_ship(
    result: ExportResult,
    config: ExportConfig,
    quants: list[str],
    progress: ProgressFn | None = None,
) -> ExportResult:
    """Run the quantization guard when `config` asks for it and ship the type it chooses;
    `quants` are the requested types (normalized), the default candidates."""
    if not _guard_wanted(config, result.ggufs) or config.guard_questions is None:
        return result
    from ollama_tune.evaluate.guard import guard_quantization
    from ollama_tune.evaluate.settings import DEFAULT_MAX_TOKENS
    from ollama_tune.evaluate.testset import read_test_examples

    examples = read_test_examples(Path(config.guard_questions))
    if not examples:
        return result
    guard = guard_quantization(
        result.ggufs,
        examples,
        reference="f16",
        threshold=float(config.guard_threshold or 0.0),
        max_tokens=config.guard_max_tokens or DEFAULT_MAX_TOKENS,
        progress=progress or noop_progress,
        candidates=config.guard_candidates or quants,
    )
    result = replace(result, guard=guard)
    if guard.choice is None:
        return result
    return ship_quant(
        result, guard.choice.quant, guard.choice.reason, scores=guard.scores,
        reference=guard.reference,
    )  # fmt: skip
