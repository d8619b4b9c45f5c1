"""Modelfile parse time for one long value: the old quadratic parser vs the linear one.

"old" is the plain rune-by-rune transcription ollama-tune used before (kept as the tests'
reference, tests/unit/_modelfile_reference.py): it re-strips the whole value at every newline
and grows it one character at a time. "new" is `ollama_tune.modelfile.parse`. Both parse the
same `SYSTEM \"\"\"…\"\"\"` text (Japanese FAQ lines) in this process, one after the other,
and must read the same value. Times are wall-clock on a shared machine: read the ratio.

    python bench/bench_modelfile_parse.py            # 100k, 400k, 2M characters
    python bench/bench_modelfile_parse.py 10000000   # any sizes; old is skipped above 2M
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "unit"))
from _common import table
from _modelfile_reference import _parse_commands as old_parse

from ollama_tune.modelfile.parse import parse_commands

LINE = "Q: 返品はできますか？ A: 商品到着後14日以内なら、未開封に限り返品できます。\n"
OLD_LIMIT = 2_000_000  # the old parser needs minutes beyond this


def _text(chars: int) -> str:
    body = (LINE * (chars // len(LINE) + 1))[:chars]
    return f'FROM llama3.2:1b\nSYSTEM """{body}"""\n'


def _time(fn, text: str) -> tuple[float, str]:  # type: ignore[no-untyped-def]
    start = time.perf_counter()
    value = fn(text)
    return time.perf_counter() - start, value


def main(sizes: list[int]) -> None:
    rows = []
    for n in sizes:
        text = _text(n)
        new_s, new_value = _time(lambda t: parse_commands(t)[0][-1].args, text)
        if n <= OLD_LIMIT:
            old_s, old_value = _time(lambda t: old_parse(t)[-1].args, text)
            assert old_value == new_value, "the two parsers disagree"
            old, ratio = f"{old_s:.2f}", f"{old_s / new_s:.0f}x"
        else:
            old, ratio = "(skipped)", "-"
        rows.append((f"{n:,}", str(text.count(chr(10))), old, f"{new_s:.3f}", ratio))
    header = ("characters", "lines", "old s", "new s", "old/new")
    print(table("Modelfile parse, one long SYSTEM value", rows, header))


if __name__ == "__main__":
    main([int(a) for a in sys.argv[1:]] or [100_000, 400_000, 2_000_000])
