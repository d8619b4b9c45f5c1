"""`data stats`: rows, turns, token lengths (with a histogram), languages, duplicate groups."""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from ollama_tune.data.model import Example
from ollama_tune.data.split import duplicate_groups
from ollama_tune.data.tokens import TokenCounter, estimate_counter
from ollama_tune.japanese import detect_language


@dataclass
class StatsResult:
    rows: int
    turns: dict[str, float]
    tokens: dict[str, float]
    histogram: list[tuple[int, int, int]]  # (from, to, rows)
    languages: dict[str, int]
    with_system: int
    with_facts: int
    duplicate_groups: list[list[str]] = field(default_factory=list)
    tokens_estimated: bool = True

    def to_dict(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "turns": self.turns,
            "tokens": self.tokens,
            "tokens_estimated": self.tokens_estimated,
            "histogram": [{"from": a, "to": b, "rows": n} for a, b, n in self.histogram],
            "languages": self.languages,
            "with_system": self.with_system,
            "with_facts": self.with_facts,
            "duplicate_groups": self.duplicate_groups,
        }


def _summary(values: Sequence[int]) -> dict[str, float]:
    if not values:
        return {"min": 0, "mean": 0.0, "median": 0.0, "p95": 0, "max": 0, "total": 0}
    ordered = sorted(values)
    return {
        "min": ordered[0],
        "mean": round(statistics.fmean(ordered), 1),
        "median": statistics.median(ordered),
        "p95": ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))],
        "max": ordered[-1],
        "total": sum(ordered),
    }


def histogram(values: Sequence[int], bins: int = 10) -> list[tuple[int, int, int]]:
    """Equal-width bins over [min, max]; each (from, to inclusive, count)."""
    if not values:
        return []
    lo, hi = min(values), max(values)
    width = max(1, -(-(hi - lo + 1) // bins))
    counts = Counter((v - lo) // width for v in values)
    return [
        (lo + b * width, lo + (b + 1) * width - 1, counts.get(b, 0))
        for b in range((hi - lo) // width + 1)
    ]


def dataset_stats(
    examples: Sequence[Example], counter: TokenCounter | None = None, top: int = 5
) -> StatsResult:
    tokens = [(counter or estimate_counter)(ex) for ex in examples]
    groups = [g for g in duplicate_groups(examples) if len(g) > 1]
    groups.sort(key=lambda g: (-len(g), g[0]))
    return StatsResult(
        rows=len(examples),
        turns=_summary([len(ex.messages) for ex in examples]),
        tokens=_summary(tokens),
        histogram=histogram(tokens),
        languages=dict(Counter(detect_language(ex.answer) for ex in examples).most_common()),
        with_system=sum(1 for ex in examples if ex.system is not None),
        with_facts=sum(1 for ex in examples if ex.facts is not None),
        duplicate_groups=[[str(examples[i].source) for i in g] for g in groups[:top]],
        tokens_estimated=counter is None,
    )
