"""Deterministic train/test split that keeps near-duplicates on the same side.

Rows are first grouped: near-duplicate rows, rows asking the same question, and a
`data augment` rewording with its original form one group. Whole groups are then shuffled
with `seed` and dealt to the test set until it holds `test_ratio` of the rows, so a
paraphrase of a training row never leaks into the test set.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

from ollama_tune.data.dedup import (
    NEAR_DUP_THRESHOLD,
    UnionFind,
    canonical,
    find_duplicates,
    union_duplicates,
)
from ollama_tune.data.model import Example
from ollama_tune.errors import UsageError


@dataclass
class SplitResult:
    train: list[Example]
    test: list[Example]
    # How many groups of 2+ near-duplicate / same-question rows were kept on one side.
    groups: int = 0


def row_text(example: Example) -> str:
    """The text two rows are compared on: every non-system turn."""
    return "\n".join(m.content for m in example.messages if m.role != "system")


def duplicate_groups(
    examples: Sequence[Example], threshold: float = NEAR_DUP_THRESHOLD
) -> list[list[int]]:
    """Indices grouped by near-duplicate rows and identical (normalised) questions."""
    uf = union_duplicates(
        len(examples), find_duplicates([row_text(e) for e in examples], threshold)
    )
    first_with: dict[str, int] = {}
    for i, ex in enumerate(examples):
        key = canonical(ex.question)
        if key:
            uf.union(first_with.setdefault(key, i), i)
    _join_rewordings(examples, uf)
    return uf.groups()


def _join_rewordings(examples: Sequence[Example], uf: UnionFind) -> None:
    """A rewording (`augmented_from`) joins its siblings and the original, which has the
    same answer, so `data augment` output never puts a paraphrase of a train row in test."""
    originals: dict[tuple[str | None, str], int] = {}
    for i, ex in enumerate(examples):
        if not ex.extra.get("augmented_from"):
            originals.setdefault((ex.system, ex.answer), i)
    family: dict[object, int] = {}
    for i, ex in enumerate(examples):
        origin = ex.extra.get("augmented_from")
        if origin:
            uf.union(family.setdefault(origin, i), i)
            if (o := originals.get((ex.system, ex.answer))) is not None:
                uf.union(o, i)


def split_examples(
    examples: Sequence[Example], *, test_ratio: float = 0.15, seed: int = 42
) -> SplitResult:
    if not 0.0 <= test_ratio < 1.0:
        raise UsageError(
            f"test ratio {test_ratio} is outside [0, 1)", hint="use e.g. --test-ratio 0.15"
        )
    groups = duplicate_groups(examples)
    random.Random(seed).shuffle(groups)
    n = len(examples)
    target = round(n * test_ratio)
    if test_ratio > 0 and n >= 2:
        target = max(1, min(target, n - 1))
    test_idx: set[int] = set()
    for group in groups:
        if len(test_idx) >= target:
            break
        if len(test_idx) + len(group) <= target:
            test_idx.update(group)
    train = [ex for i, ex in enumerate(examples) if i not in test_idx]
    test = [ex for i, ex in enumerate(examples) if i in test_idx]
    return SplitResult(train, test, sum(1 for g in groups if len(g) > 1))
