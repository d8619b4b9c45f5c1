"""Exact and near-duplicate detection on normalised text, fast enough for thousands of rows.

Texts are NFKC-normalised, lower-cased, with spaces and punctuation removed, then compared as
sets of character 3-grams (Jaccard). Candidate pairs come from prefix filtering (the rarest
grams of each set), so the work grows with the number of similar pairs, not rows squared.
"""

from __future__ import annotations

import math
import re
from collections import Counter, defaultdict
from collections.abc import Sequence

from ollama_tune.japanese import normalize_text

NEAR_DUP_THRESHOLD = 0.8
# Punctuation, symbols, spaces and controls (Unicode-aware); "_" counts as a word character.
_NON_WORD = re.compile(r"[\W_]+")


def canonical(text: str) -> str:
    """Normalised text with punctuation, symbols and spaces removed."""
    return _NON_WORD.sub("", normalize_text(text))


def grams(text: str, n: int = 3) -> frozenset[str]:
    if len(text) <= n:
        return frozenset([text]) if text else frozenset()
    return frozenset(text[i : i + n] for i in range(len(text) - n + 1))


def jaccard(a: frozenset[str], b: frozenset[str]) -> float:
    if not a and not b:
        return 1.0
    inter = len(a & b)
    return inter / (len(a) + len(b) - inter)


def similar_pairs(
    texts: Sequence[str], threshold: float = NEAR_DUP_THRESHOLD
) -> list[tuple[int, int, float]]:
    """All pairs (i < j) whose canonical 3-gram Jaccard similarity is >= threshold."""
    sets = [grams(canonical(t)) for t in texts]
    df: Counter[str] = Counter(g for s in sets for g in s)
    index: dict[str, list[int]] = defaultdict(list)
    prefix_len: list[int] = []
    pairs: list[tuple[int, int, float]] = []
    for j, s in enumerate(sets):
        ordered = sorted(s, key=lambda g: (df[g], g))
        # Two sets with Jaccard >= t share a gram among the first |s| - ceil(t*|s|) + 1 of each
        # (rarest first), so only those prefixes are indexed and probed.
        prefix = ordered[: len(ordered) - math.ceil(threshold * len(ordered)) + 1]
        prefix_len.append(len(prefix))
        shared = Counter(i for g in prefix for i in index[g])
        for i in sorted(shared):
            if _may_reach(len(sets[i]), prefix_len[i], len(s), len(prefix), shared[i], threshold):
                sim = jaccard(sets[i], s)
                if sim >= threshold:
                    pairs.append((i, j, sim))
        for g in prefix:
            index[g].append(j)
    return pairs


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
    uf = UnionFind(len(texts))
    for i, j, _ in similar_pairs(texts, threshold):
        uf.union(i, j)
    return uf.groups()
