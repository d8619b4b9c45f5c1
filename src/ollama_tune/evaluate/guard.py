"""Quantization guard: does a quantized GGUF still know what the f16 one knows?

Small fine-tuned models are known to lose trained behaviour at 4–5 bits. After `export`, each
GGUF answers the test rows through the runtime; a quantization that loses more than
`threshold` fact recall against the reference (f16) gets a warning with the numbers and the
next larger type to try (q4_k_m → q5_k_m → q6_k → q8_0). `choose_quant` then names the type
the bundle should ship: the smallest one within the threshold, with the reason in words.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from ollama_tune._util import ProgressFn
from ollama_tune.errors import EvaluationError
from ollama_tune.evaluate.compare import EvalConfig, EvalResult, OpenModelFn, compare_models
from ollama_tune.evaluate.settings import DEFAULT_GUARD_THRESHOLD, DEFAULT_MAX_TOKENS

if TYPE_CHECKING:
    from ollama_tune.data.model import Example

# Next larger type per bit width: one step up is the cheapest fix worth trying.
_NEXT_BY_BITS = {2: "q3_k_m", 3: "q4_k_m", 4: "q5_k_m", 5: "q6_k", 6: "q8_0", 8: "f16"}


def next_larger_quant(quant: str) -> str | None:
    """The quantization to try when `quant` loses too much (None: already 16/32 bit)."""
    q = quant.lower()
    m = re.match(r"^(?:iq|q)(\d)", q)
    if not m:
        return None
    return _NEXT_BY_BITS.get(int(m.group(1)))


@dataclass(frozen=True)
class QuantWarning:
    quant: str
    metric: str
    value: float
    reference_value: float
    drop: float
    suggestion: str | None

    @property
    def message(self) -> str:
        text = (
            f"{self.quant} loses {self.drop:.1%} {self.metric} against the reference "
            f"({self.value:.1%} vs {self.reference_value:.1%})"
        )
        return text + (f"; try {self.suggestion}" if self.suggestion else "")


@dataclass(frozen=True)
class QuantChoice:
    """The type to ship and why, e.g. "q4_k_m+q8emb (96 MB) is the smallest type within…"."""

    quant: str
    reason: str
    within: tuple[str, ...]  # every candidate within the threshold, smallest first


@dataclass
class GuardResult:
    reference: str
    metric: str
    threshold: float
    scores: dict[str, float | None]
    warnings: list[QuantWarning] = field(default_factory=list)
    evaluation: EvalResult | None = None
    choice: QuantChoice | None = None

    @property
    def ok(self) -> bool:
        return not self.warnings


def guard_quantization(
    ggufs: dict[str, Path],
    examples: Sequence[Example],
    *,
    reference: str = "f16",
    threshold: float = DEFAULT_GUARD_THRESHOLD,
    max_tokens: int = DEFAULT_MAX_TOKENS,
    progress: ProgressFn | None = None,
    open_model: OpenModelFn | None = None,
    candidates: Sequence[str] | None = None,
) -> GuardResult:
    """Evaluate each GGUF (`{quant: path}`, including `reference`) on `examples` and warn
    where a quantization loses more than `threshold` (absolute) fact recall.

    Rows without facts fall back to chrF against the reference answer. `candidates` are the
    types the bundle may ship (default: every GGUF); `.choice` names the one to ship.
    """
    if reference not in ggufs:
        raise EvaluationError(
            f"the reference quantization {reference!r} is not among {sorted(ggufs)}",
            hint="export the f16 GGUF too (or pass reference= one of the exported types)",
        )
    ordered = {reference: str(ggufs[reference])}
    ordered.update({q: str(p) for q, p in ggufs.items() if q != reference})
    config = EvalConfig(models={_label(q): p for q, p in ordered.items()}, examples=examples)
    config.max_tokens = max_tokens
    result = compare_models(config, progress, open_model=open_model)
    labels = dict(zip(ordered, config.models, strict=True))
    ref_summary = result.summaries()[labels[reference]]
    metric = "fact_recall" if ref_summary.get("fact_recall") is not None else "chrf"
    scores = {q: result.summaries()[labels[q]].get(metric) for q in ordered}
    guard = GuardResult(reference, metric, threshold, scores, evaluation=result)
    ref_value = scores[reference]
    for quant, value in scores.items():
        if quant == reference or value is None or ref_value is None:
            continue
        if ref_value - value > threshold:
            guard.warnings.append(
                QuantWarning(
                    quant, metric, value, ref_value, ref_value - value, next_larger_quant(quant)
                )
            )
    sizes = {q: Path(p).stat().st_size for q, p in ggufs.items() if Path(p).is_file()}
    guard.choice = choose_quant(
        scores,
        reference=reference,
        threshold=threshold,
        sizes=sizes,
        candidates=list(candidates) if candidates is not None else list(ggufs),
        metric=metric,
    )
    return guard


def _size_key(quant: str, sizes: dict[str, int]) -> float:
    """Bytes on disk, else the approximate bits per weight (smaller first)."""
    from ollama_tune.export.convert import QUANT_BITS, split_quant

    if quant in sizes:
        return float(sizes[quant])
    # Unmeasured files sort after measured ones, by bits per weight.
    return QUANT_BITS.get(split_quant(quant)[0], 32.0) * 1e12


def choose_quant(
    scores: dict[str, float | None],
    *,
    reference: str,
    threshold: float,
    sizes: dict[str, int] | None = None,
    candidates: Sequence[str] | None = None,
    metric: str = "fact_recall",
) -> QuantChoice:
    """The smallest candidate whose score is within `threshold` (absolute) of the reference.

    When none is, the best-scoring candidate (the smaller on a tie), and the reason says so.
    """
    sizes = sizes or {}
    pool = sorted(
        candidates if candidates is not None else scores, key=lambda q: _size_key(q, sizes)
    )
    ref = scores.get(reference)
    if not pool:
        raise EvaluationError("no quantization to choose from", hint="export at least one type")
    if ref is None:
        return QuantChoice(pool[0], f"{pool[0]}: the smallest type; {metric} was not measured", ())
    drops = {q: ref - v for q in pool if (v := scores.get(q)) is not None}
    within = tuple(q for q in pool if q in drops and drops[q] <= threshold + 1e-9)
    if within:
        pick = within[0]
        verdict = (
            f"{pick}{_mb(pick, sizes)} is the smallest type within "
            f"{threshold * 100:.0f} points of {reference}"
        )
    else:
        pick = min(drops, key=lambda q: (drops[q], _size_key(q, sizes))) if drops else pool[0]
        verdict = (
            f"no type is within {threshold * 100:.0f} points of {reference}; "
            f"{pick}{_mb(pick, sizes)} keeps the most"
        )
    value = scores.get(pick)
    shown = "—" if value is None else f"{value:.0%}"
    parts = [f"{verdict}: {metric.replace('_', ' ')} {shown} vs {ref:.0%}"]
    parts += [
        f"{q} loses {drops[q] * 100:.0f} points"
        for q in pool
        if q in drops and q not in within and _size_key(q, sizes) < _size_key(pick, sizes)
    ]
    return QuantChoice(pick, "; ".join(parts), within)


def _mb(quant: str, sizes: dict[str, int]) -> str:
    return f" ({sizes[quant] / 1e6:.0f} MB)" if quant in sizes else ""


def _label(quant: str) -> str:
    return re.sub(r"[^A-Za-z0-9_\-]", "_", quant)[:40] or "model"
