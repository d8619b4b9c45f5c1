"""Quantization sizes and drift on the real SmolLM2-135M: f16 vs q8_0 vs q4_k_m vs
q4_k_m+q8emb (q4_k_m with the token embeddings and output tensor kept at q8_0).

The f16 GGUF is converted from the dequantised base (`models.resolve_base_model`); each type
is quantized from it with llama.cpp. Drift: the greedy answers of each type to the first N
customer-support test questions, scored with chrF against the f16 answers (1.0 = the same
text) — what a quantization changes of what the f16 model says, measured side by side.

    python bench/bench_quant.py [--questions 8] [--max-tokens 96]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import DATA, table

QUANTS = ("q8_0", "q4_k_m+q8emb", "q4_k_m")


def _answers(gguf: Path, questions: list[str], max_tokens: int) -> tuple[list[str], float]:
    from ollama_tune.runtime import GenerateOptions, open_model

    model = open_model(str(gguf), n_ctx=1024)
    t0 = time.perf_counter()
    try:
        opts = GenerateOptions(max_tokens=max_tokens)
        texts = [model.generate([{"role": "user", "content": q}], opts).text for q in questions]
    finally:
        model.close()
    return texts, time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--questions", type=int, default=8)
    parser.add_argument("--max-tokens", type=int, default=96)
    args = parser.parse_args()
    from gguf import GGUFReader

    from ollama_tune.evaluate import chrf
    from ollama_tune.export import convert_to_gguf, quantize_gguf
    from ollama_tune.models import resolve_base_model

    rows = [json.loads(x) for x in (DATA / "test.jsonl").read_text("utf-8").splitlines()]
    questions = [r["instruction"] for r in rows[: args.questions]]
    base = resolve_base_model("smollm2-135m")
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        ggufs = {"f16": convert_to_gguf(base.hf_dir, out / "model-f16.gguf", "f16")}
        for q in QUANTS:
            ggufs[q] = quantize_gguf(ggufs["f16"], out / f"model-{q}.gguf", q)
        ref, ref_secs = _answers(ggufs["f16"], questions, args.max_tokens)
        result = []
        for q, path in ggufs.items():
            texts, secs = (
                _answers(path, questions, args.max_tokens) if q != "f16" else (ref, ref_secs)
            )
            types = {t.name: t.tensor_type.name for t in GGUFReader(str(path)).tensors}
            drift = sum(chrf(a, b) for a, b in zip(texts, ref, strict=True)) / len(ref)
            result.append(
                (
                    q,
                    f"{path.stat().st_size / 1e6:.1f}",
                    f"{path.stat().st_size / ggufs['f16'].stat().st_size:.2f}",
                    types.get("token_embd.weight", "?"),
                    types.get("output.weight", "tied"),
                    f"{drift:.3f}",
                    f"{secs:.1f}",
                )
            )
    header = ("type", "MB", "× f16", "token_embd", "output", "chrF vs f16", "answer s")
    print(table(f"SmolLM2-135M quantizations ({len(questions)} questions)", result, header))


if __name__ == "__main__":
    main()
