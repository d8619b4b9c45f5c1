"""Builds a real training run directory (PEFT adapter + tokenizer + run.json) for export tests.

Stands in for `train_lora`'s output with real weights: the tiny random llama from conftest,
wrapped in LoRA, with the LoRA B matrices moved off zero so the adapter changes the logits.
"""

from __future__ import annotations

import json
from pathlib import Path


def make_run_dir(base_dir: Path, run_dir: Path, *, seed: int = 1, scale: float = 0.5) -> Path:
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    base = AutoModelForCausalLM.from_pretrained(str(base_dir), dtype=torch.float32)
    model = get_peft_model(base, LoraConfig(r=4, lora_alpha=8, target_modules="all-linear"))
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "lora_B" in name:  # zero at init: a trained adapter has moved them
                param.copy_(torch.randn(param.shape, generator=gen) * scale)
    model.save_pretrained(str(run_dir / "adapter"))
    tok = AutoTokenizer.from_pretrained(str(base_dir))
    tok.save_pretrained(str(run_dir / "tokenizer"))
    run = {
        "schema": 1,
        "name": "tiny-support",
        "base_model": {
            "spec": str(base_dir),
            "kind": "hf_dir",
            "hf_dir": str(base_dir),
            "source_path": str(base_dir),
            "sha256": None,
        },
        "chat_template": tok.chat_template,
        "eos_token": tok.eos_token,
        "bos_token": tok.bos_token,
        "stop_tokens": [tok.eos_token],
        "config": {"max_seq_len": 256, "lora_r": 4},
        "data": {},
        "versions": {},
        "metrics": {},
        "created": "2026-01-01T00:00:00Z",
    }
    (run_dir / "run.json").write_text(json.dumps(run, ensure_ascii=False), encoding="utf-8")
    return run_dir
