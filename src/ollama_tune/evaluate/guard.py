"""Quantization guard: does a quantized GGUF still know what the f16 one knows?

Small fine-tuned models are known to lose trained behaviour at 4–5 bits. After `export`, each
GGUF answers the test rows through the runtime; a quantization that loses more than
`threshold` fact recall against the reference (f16) gets a warning with the numbers and the
next larger type to try (q4_k_m → q5_k_m → q6_k → q8_0).
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


@dataclass
class GuardResult:
    reference: str
    metric: str
    threshold: float
    scores: dict[str, float | None]
    warnings: list[QuantWarning] = field(default_factory=list)
    evaluation: EvalResult | None = None

    @property
    def ok(self) -> bool:
        return not self.warnings


def guard_quantization(
    ggufs: dict[str, Path],
    examples: Sequence[Example],
    *,
    reference: str = "f16",
    threshold: float = 0.05,
    max_tokens: int = 256,
    progress: ProgressFn | None = None,
    open_model: OpenModelFn | None = None,
) -> GuardResult:
    """Evaluate each GGUF (`{quant: path}`, including `reference`) on `examples` and warn
    where a quantization loses more than `threshold` (absolute) fact recall.

    Rows without facts fall back to chrF against the reference answer.
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
    return guard


def _label(quant: str) -> str:
    return re.sub(r"[^A-Za-z0-9_\-]", "_", quant)[:40] or "model"
