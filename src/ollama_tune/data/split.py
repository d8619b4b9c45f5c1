"""Deterministic train/test split that keeps near-duplicates on the same side.

Rows are first grouped: near-duplicate rows, rows asking the same question, and a
`data augment` rewording with its original form one group. Whole groups are then shuffled
with `seed` and dealt to the test set until it holds `test_ratio` of the rows, so a
paraphrase of a training row never leaks into the test set.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
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
    # "rows": whole groups left training; "rewordings": only rewordings did (`validation_split`).
    kind: str = "rows"


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
    return _deal(examples, test_ratio, seed, lambda group: group, "rows")


def validation_split(
    examples: Sequence[Example], *, ratio: float = 0.05, seed: int = 42
) -> SplitResult:
    """Validation rows for training a FAQ into a model.

    Where the rows hold rewordings (`data augment`), validation is rewordings of some answers
    while the rows they reword stay in training: it then asks what customers ask — another
    wording of a question the model was taught — and no FAQ answer is kept from the model.
    A whole-group split (`split_examples`) would leave ~`ratio` of the FAQ untrained and
    measure recall of answers never shown. Without rewordings that split is all there is.
    """
    if not any(ex.extra.get("augmented_from") for ex in examples):
        return split_examples(examples, test_ratio=ratio, seed=seed)
    return _deal(
        examples, ratio, seed, lambda group: _rewordings_of_kept(examples, group), "rewordings"
    )


def _deal(
    examples: Sequence[Example],
    ratio: float,
    seed: int,
    take: Callable[[list[int]], list[int]],
    kind: str,
) -> SplitResult:
    """Shuffle the duplicate groups with `seed` and move `take(group)` of each to the held-out
    side until it holds `ratio` of the rows."""
    if not 0.0 <= ratio < 1.0:
        raise UsageError(f"test ratio {ratio} is outside [0, 1)", hint="use e.g. --test-ratio 0.15")
    groups = duplicate_groups(examples)
    random.Random(seed).shuffle(groups)
    n = len(examples)
    target = round(n * ratio)
    if ratio > 0 and n >= 2:
        target = max(1, min(target, n - 1))
    held: set[int] = set()
    for group in groups:
        if len(held) >= target:
            break
        moved = take(group)
        if moved and len(held) + len(moved) <= target:
            held.update(moved)
    train = [ex for i, ex in enumerate(examples) if i not in held]
    test = [ex for i, ex in enumerate(examples) if i in held]
    return SplitResult(train, test, sum(1 for g in groups if len(g) > 1), kind)


def _rewordings_of_kept(examples: Sequence[Example], group: list[int]) -> list[int]:
    """The group's rewordings whose answer a row staying in training still teaches."""
    reworded = [i for i in group if examples[i].extra.get("augmented_from")]
    kept = set(group) - set(reworded)
    taught = {(examples[i].system, examples[i].answer) for i in kept}
    return [i for i in reworded if (examples[i].system, examples[i].answer) in taught]
