"""A real SmolLM2-135M bundle shared by the integration tests: a short LoRA on two Japanese
support answers (loss on the answer and its <|im_end|>), then `ollama-tune export`.

The model must both know the answers and stop, so tests through llama.cpp and through a real
Ollama server can assert on what it says. Built once per test session (see conftest.py).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from ollama_tune.cli import app

PAIRS = [
    ("返品はできますか？", "はい、14日以内なら返品できます。"),
    ("営業時間は？", "平日9時から18時です。"),
]


def _train_lora(run_dir: Path) -> dict[str, Any]:
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from ollama_tune.models import resolve_base_model

    ref = resolve_base_model("smollm2-135m")
    tok = AutoTokenizer.from_pretrained(str(ref.hf_dir))
    base = AutoModelForCausalLM.from_pretrained(str(ref.hf_dir), dtype=torch.float32)
    model = get_peft_model(base, LoraConfig(r=8, lora_alpha=16, target_modules="all-linear"))
    rows = []
    for question, answer in PAIRS:
        messages = [{"role": "user", "content": question}]
        prompt = tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        p = tok(prompt, add_special_tokens=False)["input_ids"]
        c = tok(answer + tok.eos_token, add_special_tokens=False)["input_ids"]
        rows.append((torch.tensor([p + c]), torch.tensor([[-100] * len(p) + c])))
    torch.manual_seed(0)
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=2e-3)
    model.train()
    losses = []
    for _ in range(6):
        total = 0.0
        for ids, labels in rows:
            loss = model(input_ids=ids, labels=labels).loss
            loss.backward()
            total += loss.item()
        opt.step()
        opt.zero_grad()
        losses.append(total / len(rows))
    model.save_pretrained(str(run_dir / "adapter"))
    tok.save_pretrained(str(run_dir / "tokenizer"))
    run = {
        "schema": 1,
        "base_model": ref.to_json(),
        "chat_template": tok.chat_template,
        "eos_token": tok.eos_token,
        "bos_token": tok.bos_token,
        "stop_tokens": [tok.eos_token],
        "config": {"max_seq_len": 256, "lora_r": 8, "steps": 6},
        "data": {},
        "versions": {},
        "metrics": {"losses": losses},
        "created": "2026-01-01T00:00:00Z",
    }
    (run_dir / "run.json").write_text(json.dumps(run, ensure_ascii=False), encoding="utf-8")
    return run


def build_bundle(run_dir: Path) -> dict[str, Any]:
    """Train, export q8_0 + q4_k_m into RUN_DIR/bundle; returns run_dir, export JSON, run.json."""
    t0 = time.perf_counter()
    run = _train_lora(run_dir)
    train_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    result = CliRunner().invoke(
        app,
        ["export", str(run_dir), "--quant", "q8_0,q4_k_m", "--name", "smol-support", "--json"],
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    print(
        f"\nLoRA 6 steps {train_s:.1f}s (loss {run['metrics']['losses'][0]:.2f} → "
        f"{run['metrics']['losses'][-1]:.3f}); export {time.perf_counter() - t0:.1f}s "
        f"{data['timings_s']}; sizes MB "
        f"{ {q: round(n / 1e6, 1) for q, n in data['sizes'].items()} }"
    )
    return {"run_dir": run_dir, "data": data, "run": run}
