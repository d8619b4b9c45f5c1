"""Exact and near-duplicate detection on normalised text, fast enough for thousands of rows.

Texts are NFKC-normalised, lower-cased, with spaces and punctuation removed, then compared as
sets of character 3-grams (Jaccard). Identical texts are grouped by hashing first; candidate
pairs among the distinct texts come from prefix filtering (the rarest grams of each set), so
the work grows with the number of similar pairs, not rows squared. The search is exact (a
property test compares it with brute force), which MinHash/LSH would not be.
"""

from __future__ import annotations

import math
import re
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from ollama_tune.data.normalize import nfkc

NEAR_DUP_THRESHOLD = 0.8
# Punctuation, symbols, spaces and controls (Unicode-aware); "_" counts as a word character.
_NON_WORD = re.compile(r"[\W_]+")


def canonical(text: str) -> str:
    """Normalised text with punctuation, symbols and spaces removed.

    The same as `_NON_WORD.sub("", normalize_text(text))`, without collapsing the spaces the
    substitution removes anyway (this runs once per row of every data set).
    """
    return _NON_WORD.sub("", nfkc(text).lower())


def grams(text: str, n: int = 3) -> frozenset[str]:
    if len(text) <= n:
        return frozenset([text]) if text else frozenset()
    return frozenset({text[i : i + n] for i in range(len(text) - n + 1)})


def jaccard(a: frozenset[str], b: frozenset[str]) -> float:
    if not a and not b:
        return 1.0
    inter = len(a & b)
    return inter / (len(a) + len(b) - inter)


@dataclass
class Duplicates:
    """Rows grouped by identical canonical text, and near-duplicate pairs between groups.

    `groups` lists every row once, each group in row order, groups ordered by their first row.
    `near` holds (first row of one group, first row of a later group, Jaccard similarity).
    """

    groups: list[list[int]]
    near: list[tuple[int, int, float]]

    def group_of(self) -> dict[int, list[int]]:
        return {g[0]: g for g in self.groups}


def find_duplicates(texts: Sequence[str], threshold: float = NEAR_DUP_THRESHOLD) -> Duplicates:
    """Exact duplicates by hashing, then near-duplicates among the distinct texts only.

    Hashing first matters: copies of a row share all their rarest grams, so each copy would
    otherwise be compared with every other (a data set of repeated rows went quadratic).
    """
    seen: dict[str, str] = {}
    keys: list[str] = []
    for text in texts:
        key = seen.get(text)
        if key is None:
            key = seen[text] = canonical(text)
        keys.append(key)
    return find_duplicate_keys(keys, threshold)


def find_duplicate_keys(
    canonical_texts: Sequence[str], threshold: float = NEAR_DUP_THRESHOLD
) -> Duplicates:
    """`find_duplicates` on texts already passed through `canonical`."""
    by_text: dict[str, list[int]] = {}
    for i, key in enumerate(canonical_texts):
        by_text.setdefault(key, []).append(i)
    from ollama_tune.data.prefix_join import similar_texts

    groups = list(by_text.values())
    firsts = [g[0] for g in groups]
    keys = list(by_text)
    sets: dict[int, frozenset[str]] = {}

    def verify(a: int, b: int) -> float:
        for k in (a, b):
            if k not in sets:
                sets[k] = grams(keys[k])
        return jaccard(sets[a], sets[b])

    near = [(firsts[a], firsts[b], sim) for a, b, sim in similar_texts(keys, threshold, verify)]
    return Duplicates(groups, near)


def similar_pairs(
    texts: Sequence[str], threshold: float = NEAR_DUP_THRESHOLD
) -> list[tuple[int, int, float]]:
    """All pairs (i < j) whose canonical 3-gram Jaccard similarity is >= threshold."""
    found = find_duplicates(texts, threshold)
    group_of = found.group_of()
    pairs = [(g[x], g[y], 1.0) for g in found.groups for x in range(len(g)) for y in range(x)]
    for a, b, sim in found.near:
        pairs += [(min(i, j), max(i, j), sim) for i in group_of[a] for j in group_of[b]]
    return sorted((min(i, j), max(i, j), sim) for i, j, sim in pairs)


def _may_reach(la: int, pa: int, lb: int, pb: int, shared: int, threshold: float) -> bool:
    """Cheap bounds before the exact Jaccard: sizes must be close, and since prefixes hold the
    rarest grams, a pair needing `need` common grams shares >= need - (grams outside a prefix)
    of them inside both prefixes."""
    if not threshold * lb <= la <= lb / threshold:
        return False
    need = math.ceil(threshold / (1 + threshold) * (la + lb) - 1e-9)
    return shared >= need - max(la - pa, lb - pb)


class UnionFind:
    def __init__(self, n: int) -> None:
        self.parent = list(range(n))

    def find(self, x: int) -> int:
        while self.parent[x] != x:
            self.parent[x] = self.parent[self.parent[x]]
            x = self.parent[x]
        return x

    def union(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)

    def groups(self) -> list[list[int]]:
        out: dict[int, list[int]] = defaultdict(list)
        for i in range(len(self.parent)):
            out[self.find(i)].append(i)
        return sorted(out.values(), key=lambda g: g[0])


def clusters(texts: Sequence[str], threshold: float = NEAR_DUP_THRESHOLD) -> list[list[int]]:
    """Groups of indices connected by near-duplicate pairs (singletons included)."""
    return union_duplicates(len(texts), find_duplicates(texts, threshold)).groups()


def union_duplicates(n: int, found: Duplicates) -> UnionFind:
    """A union-find over `n` rows with every exact and near duplicate joined."""
    uf = UnionFind(n)
    for group in found.groups:
        for i in group[1:]:
            uf.union(group[0], i)
    for a, b, _ in found.near:
        uf.union(a, b)
    return uf
