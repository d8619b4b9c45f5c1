"""Near-duplicate detection in `data check`: the previous all-prefix search vs hash-then-search.

Generated Japanese-like FAQ rows (random kanji/kana words, "ですか？"/"です。" endings), in two
shapes: distinct rows with 2% near-duplicates, and a set where every row appears several times
with small edits (how real exports look after copy-and-paste, and what made the old search go
quadratic: copies share all their rarest grams). Both algorithms run in this process on the
same rows, one after the other; CPU seconds are `time.process_time()`. The new search must find
exactly the pairs the old one finds (checked here too).

    python bench/bench_data_check.py            # 100,000 and 5,000 rows
    python bench/bench_data_check.py --rows 20000 --old-limit 20000
"""

from __future__ import annotations

import argparse
import math
import random
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import table

from ollama_tune.data.dedup import (
    NEAR_DUP_THRESHOLD,
    _may_reach,
    canonical,
    grams,
    jaccard,
    similar_pairs,
)

Pairs = list[tuple[int, int, float]]


def old_similar_pairs(texts: Sequence[str], threshold: float = NEAR_DUP_THRESHOLD) -> Pairs:
    """The search as it was before issue 13 (prefix filtering over every row, copies included)."""
    sets = [grams(canonical(t)) for t in texts]
    df: Counter[str] = Counter(g for s in sets for g in s)
    index: dict[str, list[int]] = defaultdict(list)
    prefix_len: list[int] = []
    pairs: Pairs = []
    for j, s in enumerate(sets):
        ordered = sorted(s, key=lambda g: (df[g], g))
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


def _vocab(rnd: random.Random) -> list[str]:
    kana = [chr(c) for c in range(0x3041, 0x3094)]
    kanji = [chr(c) for c in range(0x4E00, 0x4E00 + 2000)]
    return [
        "".join(rnd.choice(kanji if rnd.random() < 0.6 else kana) for _ in range(rnd.randint(2, 4)))
        for _ in range(3000)
    ]


def distinct_rows(n: int, seed: int = 0) -> list[str]:
    rnd = random.Random(seed)
    vocab = _vocab(rnd)
    rows: list[str] = []
    for _ in range(n):
        if rows and rnd.random() < 0.02:
            rows.append(rows[rnd.randrange(len(rows))][:-1] + "か")  # a near-duplicate
            continue
        question = "".join(rnd.choice(vocab) for _ in range(rnd.randint(4, 8))) + "ですか？"
        answer = "".join(rnd.choice(vocab) for _ in range(rnd.randint(5, 12))) + "です。"
        rows.append(f"{question}\n{answer}")
    return rows


def copied_rows(n: int, copies: int = 20, seed: int = 1) -> list[str]:
    """n rows: n / copies distinct ones, each repeated, one in ten copies lightly edited."""
    rnd = random.Random(seed)
    base = distinct_rows(max(1, n // copies), seed)
    rows = []
    for i in range(n):
        text = base[i % len(base)]
        if rnd.random() < 0.1:
            pos = rnd.randrange(len(text))
            text = text[:pos] + "　" + text[pos:]  # a stray full-width space: the same row
        rows.append(text)
    rnd.shuffle(rows)
    return rows


def _time(
    fn: Callable[[Sequence[str]], Pairs], rows: Sequence[str]
) -> tuple[float, set[tuple[int, int]]]:
    start = time.process_time()
    pairs = fn(rows)
    return time.process_time() - start, {(i, j) for i, j, _ in pairs}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[100_000, 5_000])
    parser.add_argument(
        "--old-limit", type=int, default=100_000, help="skip the old search above this many rows"
    )
    args = parser.parse_args()
    results: list[list[str]] = []
    for n in args.rows:
        for shape, make in (("distinct", distinct_rows), ("copied x20", copied_rows)):
            rows = make(n)
            new_s, new_pairs = _time(similar_pairs, rows)
            if n <= args.old_limit:
                old_s, old_pairs = _time(old_similar_pairs, rows)
                same = "yes" if old_pairs == new_pairs else "NO"
                old, ratio = f"{old_s:.2f}", f"{old_s / max(new_s, 1e-9):.1f}x"
            else:
                old, ratio, same = "(skipped)", "-", "-"
            results.append(
                [f"{n:,}", shape, f"{len(new_pairs):,}", old, f"{new_s:.2f}", ratio, same]
            )
            print(results[-1], file=sys.stderr, flush=True)
    header = ("rows", "shape", "pairs", "old CPU s", "new CPU s", "speed-up", "same pairs")
    print(table("data check: near-duplicate search", [tuple(r) for r in results], header))


if __name__ == "__main__":
    main()
