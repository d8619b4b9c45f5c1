"""`train_lora`: one LoRA (QLoRA, or full fine-tuning) run through TRL's SFTTrainer, into a
run directory.

Order: validate → pick device/precision → resolve + load the base → split + tokenize the data
→ fill epochs/learning rate from the data size → train (resumable from RUN_DIR/checkpoints;
fact-recall validations keep the best weights) → rank 0 writes adapter/ (or model/ for
`method="full"`), tokenizer/, run.json, metrics.jsonl and loss.png. Works unchanged under
`accelerate launch` / torchrun (DDP).
"""

from __future__ import annotations

import os
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ollama_tune._util import ProgressFn
from ollama_tune.errors import TrainingError
from ollama_tune.train.config import TrainConfig, TrainResult


@dataclass
class Plan:
    """Device and precision decisions, recorded in run.json."""

    cuda: bool
    bf16: bool
    fp16: bool
    gradient_checkpointing: bool
    unsloth: bool
    qlora: bool
    rank: int
    world_size: int

    @property
    def precision(self) -> str:
        base = "bf16" if self.bf16 else "fp16" if self.fp16 else "fp32"
        return f"qlora-4bit+{base}" if self.qlora else base


def train_lora(
    config: TrainConfig, progress: ProgressFn | None = None, on_log: Any = None
) -> TrainResult:
    """Train a LoRA adapter on `config.data`; see the module docstring for the outputs."""
    config.validate()
    started = time.monotonic()
    _quiet_libraries()
    plan = plan_device(config)
    run_dir = config.run_dir
    resume_from = _checkpoint_to_resume(run_dir, config.resume)
    from ollama_tune.models import resolve_base_model

    if progress and plan.rank == 0:
        # A GGUF base is dequantised on first use (a minute for 135M on a laptop): say so.
        progress("preparing base model", 0, None)
    ref = resolve_base_model(config.base_model)
    model, tokenizer = _load(ref, config, plan)
    from ollama_tune.train.data import encode_rows, prepare_split, spread_questions, with_system

    split = prepare_split(
        config.data,
        config.test_data,
        config.val_ratio,
        config.seed,
        run_dir,
        config.resume,
        write=plan.rank == 0,
    )
    from ollama_tune.templates.source import template_for_base
    from ollama_tune.train.config import resolve_val_budget, schedule_defaults

    config, schedule = schedule_defaults(config, len(split.train))
    # --template first; an Ollama base keeps its own TEMPLATE; else the chat template, converted.
    tmpl = template_for_base(ref, config.template)
    train_rows = encode_rows(
        tokenizer, with_system(split.train, config.system), config.max_seq_len, tmpl
    )
    config = resolve_val_budget(config, train_rows.rows, schedule)
    # Validation (loss and recall) on --val-questions rows of different answers: forward passes
    # cost time, and four rewordings of one answer would measure one fact.
    val = with_system(spread_questions(split.test, config.val_questions), config.system)
    test_rows = encode_rows(tokenizer, val, config.max_seq_len, tmpl)
    from ollama_tune.train.trainer import build_trainer

    trainer, report, recall = build_trainer(
        config,
        plan,
        model,
        tokenizer,
        train_rows,
        test_rows,
        progress,
        on_log,
        val_examples=val,
    )
    trainer.train(resume_from_checkpoint=resume_from)
    eval_loss = None
    if recall is not None and recall.restore_best(trainer.model):
        # The weights we save are the best validation's, so is the loss we report.
        eval_loss = recall.best.eval_loss
    if eval_loss is None and test_rows.rows:
        eval_loss = _final_eval_loss(trainer)
    from ollama_tune.train.finish import FinishedRun, write_outputs

    return write_outputs(
        FinishedRun(
            config, plan, ref, tokenizer, trainer, report, split, train_rows, test_rows,
            eval_loss=eval_loss, resumed_from=resume_from, started=started, recall=recall,
            schedule=schedule,
        )
    )  # fmt: skip


def _final_eval_loss(trainer: Any) -> float | None:
    """Validation loss of the weights we save; reuses the step's own evaluation if it ran.

    Decided from `state.log_history`, which every DDP rank holds: evaluation is collective,
    so all ranks must take the same branch or they wait on each other forever.
    """
    step = trainer.state.global_step
    history = trainer.state.log_history
    done = [r["eval_loss"] for r in history if r.get("step") == step and "eval_loss" in r]
    if done and not trainer.args.load_best_model_at_end:
        return float(done[-1])
    return trainer.evaluate().get("eval_loss")


def _quiet_libraries() -> None:
    """Progress goes through our callback; silence the libraries' own bars and chatter."""
    import datasets
    import transformers

    # trl still passes transformers' pre-v6 names (gradient_checkpointing); nothing for users to do.
    warnings.filterwarnings(
        "ignore", message=".*deprecated and will be removed in v6", category=FutureWarning
    )
    datasets.disable_progress_bars()
    transformers.utils.logging.disable_progress_bar()
    transformers.utils.logging.set_verbosity_error()


def plan_device(config: TrainConfig) -> Plan:
    """CUDA → bf16/fp16 (+QLoRA, Unsloth when installed); CPU → fp32 or bf16 autocast."""
    import importlib.util

    import torch

    cuda = torch.cuda.is_available()
    if config.qlora and not cuda:
        raise TrainingError(
            "--qlora needs a CUDA GPU (bitsandbytes 4-bit); none was found.",
            hint="Drop --qlora: on CPU LoRA trains in fp32 (or bf16 with --bf16).",
        )
    if config.qlora and importlib.util.find_spec("bitsandbytes") is None:
        raise TrainingError("--qlora needs bitsandbytes.", hint="pip install bitsandbytes")
    if config.bf16 == "auto":
        bf16 = torch.cuda.is_bf16_supported() if cuda else _cpu_has_native_bf16()
    else:
        bf16 = bool(config.bf16)
    fp16 = cuda and not bf16
    unsloth = cuda and importlib.util.find_spec("unsloth") is not None
    return Plan(
        cuda=cuda,
        bf16=bf16,
        fp16=fp16,
        gradient_checkpointing=False,
        unsloth=unsloth,
        qlora=config.qlora,
        rank=int(os.environ.get("RANK", "0")),
        world_size=int(os.environ.get("WORLD_SIZE", "1")),
    )


def _cpu_has_native_bf16() -> bool:
    # Emulated bf16 is slower than fp32 on CPUs without AVX512-BF16/AMX, so "auto" skips it.
    # torch's capability string says only "AVX512" on AVX512-BF16 CPUs: ask for the flags.
    import torch

    flags = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    return any(bool(getattr(torch.cpu, name, lambda: False)()) for name in flags)


def _wants_checkpointing(config: TrainConfig, model: Any) -> bool:
    """Trade compute for memory when the activations would not fit comfortably."""
    if config.gradient_checkpointing != "auto":
        return bool(config.gradient_checkpointing)
    import psutil

    cfg = model.config
    params = sum(p.numel() for p in model.parameters())
    layers = getattr(cfg, "num_hidden_layers", 24)
    hidden = getattr(cfg, "hidden_size", 2048)
    # ~34 floats of activations per token, layer and hidden unit (Korthikanti et al., 2022).
    activations = config.batch_size * config.max_seq_len * layers * hidden * 34 * 4
    need = params * 4 + activations
    return need > 0.5 * psutil.virtual_memory().available


def _load(ref: Any, config: TrainConfig, plan: Plan) -> tuple[Any, Any]:
    from ollama_tune.models import load_causal_lm

    if plan.unsloth:
        return _load_unsloth(ref, config)
    if config.qlora:
        model, tokenizer = _load_4bit(ref)
        plan.gradient_checkpointing = _wants_checkpointing(config, model)
        return model, tokenizer
    dtype = "float32"
    if plan.cuda:
        dtype = "bfloat16" if plan.bf16 else "float16"
    model, tokenizer = load_causal_lm(ref, dtype=dtype)
    plan.gradient_checkpointing = _wants_checkpointing(config, model)
    model.config.use_cache = False
    return model, tokenizer


def _load_4bit(ref: Any) -> tuple[Any, Any]:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, BitsAndBytesConfig

    quant = BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type="nf4",
        bnb_4bit_compute_dtype=torch.bfloat16,
        bnb_4bit_use_double_quant=True,
    )
    model = AutoModelForCausalLM.from_pretrained(str(ref.hf_dir), quantization_config=quant)
    tokenizer = AutoTokenizer.from_pretrained(str(ref.hf_dir))
    return model, tokenizer


def _load_unsloth(ref: Any, config: TrainConfig) -> tuple[Any, Any]:
    # Unsloth patches the model for speed; training and the output layout stay the same.
    from unsloth import FastLanguageModel

    model, tokenizer = FastLanguageModel.from_pretrained(
        str(ref.hf_dir), max_seq_length=config.max_seq_len, load_in_4bit=config.qlora
    )
    model = FastLanguageModel.get_peft_model(
        model,
        r=config.lora_r,
        lora_alpha=config.lora_alpha,
        lora_dropout=config.lora_dropout,
        target_modules=_unsloth_targets(config.target_modules),
        random_state=config.seed,
    )
    return model, tokenizer


def _unsloth_targets(target: str | list[str]) -> list[str]:
    if target != "all-linear":
        return [target] if isinstance(target, str) else list(target)
    return ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


def _checkpoint_to_resume(run_dir: Path, resume: bool) -> str | None:
    """The checkpoint `--resume` continues from; refuse to silently mix two runs in one dir."""
    latest = _latest_checkpoint(run_dir / "checkpoints")
    if latest and not resume:
        raise TrainingError(
            f"{run_dir} already holds checkpoints of an earlier run ({Path(latest).name}).",
            hint="Add --resume to continue it, or pick a new --output directory.",
        )
    return latest


def _latest_checkpoint(folder: Path) -> str | None:
    """The newest complete `checkpoint-N` (a kill mid-save leaves no trainer_state.json)."""
    found = [
        (int(p.name.split("-")[-1]), p)
        for p in folder.glob("checkpoint-*")
        if p.name.split("-")[-1].isdigit() and (p / "trainer_state.json").is_file()
    ]
    return str(max(found)[1]) if found else None
