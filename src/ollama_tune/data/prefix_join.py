"""Exact set-similarity join (3-gram Jaccard >= t) by prefix filtering, vectorised with numpy.

The textbook prefix filter (Chaudhuri et al. 2006; Bayardo et al. 2007): order grams rarest
first; two sets with Jaccard >= t share a gram among the first |s| - ceil(t·|s|) + 1 of each.
Candidates are the row pairs sharing a prefix gram, pruned by size and overlap bounds, then
verified exactly. Each step runs over whole arrays instead of row by row in Python, which is
what keeps 100,000 rows to seconds; the result is the same set of pairs (property-tested
against brute force in tests/unit/test_data_properties.py).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    Ints = npt.NDArray[np.int64]

# Candidate pairs materialised at once, at most (memory stays bounded on repetitive data).
_CHUNK = 1 << 23


def _row_grams(texts: Sequence[str]) -> tuple[Ints, Ints, int]:
    """(row, dense gram id) for each distinct gram of each text, and the number of grams."""
    import numpy as np

    lengths = np.fromiter((len(t) for t in texts), dtype=np.int64, count=len(texts))
    # Canonical texts hold no U+0000, so it separates them; a gram is 3 code points in 63 bits.
    codes = np.frombuffer("\0".join(texts).encode("utf-32-le"), dtype=np.uint32).astype(np.int64)
    padded = np.concatenate((codes, np.zeros(2, dtype=np.int64)))
    gram = (padded[:-2] << 42) | (padded[1:-1] << 21) | padded[2:]
    starts = np.concatenate(([0], np.cumsum(lengths + 1)[:-1]))
    row = np.repeat(np.arange(len(texts), dtype=np.int64), lengths + 1)[: len(codes)]
    pos = np.arange(len(codes), dtype=np.int64) - starts[row]
    length = lengths[row]
    # A text of 1-2 characters is one gram: itself, the rest of the 63 bits zeroed.
    keep = (pos + 3 <= length) | ((pos == 0) & (length > 0) & (length < 3))
    row, gram, length = row[keep], gram[keep], length[keep]
    gram = np.where(length == 1, gram & ~((1 << 42) - 1), gram)
    gram = np.where(length == 2, gram & ~((1 << 21) - 1), gram)
    gid, n_grams = _dense_ids(gram)
    key = np.sort(row * n_grams + gid)
    key = key[np.r_[True, key[1:] != key[:-1]]]  # one entry per distinct gram of a row
    return key // n_grams, key % n_grams, n_grams


def _dense_ids(values: Ints) -> tuple[Ints, int]:
    """0..k-1 ids in sorted order of the distinct values (np.unique's inverse, by sorting:
    numpy 2's hash-based unique is several times slower on these arrays)."""
    import numpy as np

    # Any sort order gives the same ids; numpy's default (SIMD) sort is several times faster.
    order = np.argsort(values)
    ordered = values[order]
    new = np.r_[True, ordered[1:] != ordered[:-1]] if len(ordered) else np.zeros(0, bool)
    ids = np.empty(len(values), dtype=np.int64)
    ids[order] = np.cumsum(new) - 1
    return ids, int(new.sum())


def _group_pairs(members: Ints, bounds: Ints) -> Iterator[Ints]:
    """Codes left*BIG+right of every pair inside each group, `_CHUNK` pairs at a time.

    `members` are row ids, grouped (groups start at `bounds`) and ascending within a group.
    """
    import numpy as np

    big = int(members.max(initial=0)) + 1
    ends = np.repeat(np.append(bounds[1:], len(members)), np.diff(np.append(bounds, len(members))))
    partners = ends - np.arange(len(members)) - 1  # later members of the same group
    cum = np.cumsum(partners)
    start = 0
    while start < len(members):
        stop = int(np.searchsorted(cum, (cum[start - 1] if start else 0) + _CHUNK, "right"))
        stop = max(stop, start + 1)
        counts = partners[start:stop]
        left = np.repeat(np.arange(start, stop), counts)
        offset = np.arange(len(left)) - np.repeat(np.cumsum(counts) - counts, counts)
        right = left + 1 + offset
        yield members[left] * big + members[right]
        start = stop


def similar_texts(
    texts: Sequence[str],
    threshold: float,
    verify: Callable[[int, int], float],
) -> list[tuple[int, int, float]]:
    """Pairs (i < j, similarity) of `texts` (distinct canonical strings) at or above
    `threshold`; `verify(i, j)` gives the exact Jaccard of a candidate pair."""
    import numpy as np

    if len(texts) < 2:
        return []
    row, gid, n_grams = _row_grams(texts)
    df = np.bincount(gid, minlength=n_grams)
    rank = np.empty(n_grams, dtype=np.int64)
    rank[np.lexsort((np.arange(n_grams), df))] = np.arange(n_grams)  # rarest first, then id
    order = np.argsort(row * n_grams + rank[gid])  # keys are distinct: stability is moot
    row, gid = row[order], gid[order]
    size = np.bincount(row, minlength=len(texts))
    prefix = size - np.ceil(threshold * size).astype(np.int64) + 1
    pos = np.arange(len(row)) - np.repeat(np.cumsum(size) - size, size)
    in_prefix = pos < prefix[row]
    prow, pgid = row[in_prefix], gid[in_prefix]
    by_gram = np.lexsort((prow, pgid))
    prow, pgid = prow[by_gram], pgid[by_gram]
    bounds = np.flatnonzero(np.r_[True, pgid[1:] != pgid[:-1]])
    codes, shared = _count(_group_pairs(prow, bounds))
    big = int(prow.max(initial=0)) + 1
    i, j = codes // big, codes % big
    la, lb, pa, pb = size[i], size[j], prefix[i], prefix[j]
    need = np.ceil(threshold / (1 + threshold) * (la + lb) - 1e-9)
    ok = (threshold * lb <= la) & (la <= lb / threshold)
    ok &= shared >= need - np.maximum(la - pa, lb - pb)
    pairs = []
    for a, b in zip(i[ok].tolist(), j[ok].tolist(), strict=True):
        sim = verify(a, b)
        if sim >= threshold:
            pairs.append((a, b, sim))
    return pairs


def _count(chunks: Iterator[Ints]) -> tuple[Ints, Ints]:
    """Distinct codes and how often each occurred, over all chunks."""
    import numpy as np

    codes = np.empty(0, dtype=np.int64)
    counts = np.empty(0, dtype=np.int64)
    for chunk in chunks:
        merged = np.concatenate((codes, chunk))
        weights = np.concatenate((counts, np.ones(len(chunk), dtype=np.int64)))
        ids, n = _dense_ids(merged)
        counts = np.bincount(ids, weights=weights, minlength=n).astype(np.int64)
        codes = np.empty(n, dtype=np.int64)
        codes[ids] = merged
    return codes, counts
