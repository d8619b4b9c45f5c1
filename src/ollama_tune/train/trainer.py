"""Builds the TRL `SFTTrainer` for a run: LoRA config, SFTConfig, datasets, callbacks.

Rows arrive tokenized (`input_ids` + `labels`, see `train.data`), so TRL skips its own
tokenization and only packs them. Packing is padding-free (best-fit decreasing, position_ids
reset per row): no padding to max length and no cross-row attention. On CPU, `train.speed`
scores only labelled positions and runs attention per packed row (see that module).
"""

from __future__ import annotations

from typing import Any

from ollama_tune._util import ProgressFn
from ollama_tune.errors import UsageError
from ollama_tune.train.config import LEARNING_RATES, TrainConfig, step_alignment_problem


def build_trainer(
    config: TrainConfig,
    plan: Any,
    model: Any,
    tokenizer: Any,
    train_rows: Any,
    test_rows: Any,
    progress: ProgressFn | None,
    on_log: Any,
    val_examples: Any = (),
) -> tuple[Any, Any, Any]:
    """Return `(trainer, report_callback, recall_callback or None)` ready for `train()`.

    `val_examples` are the validation rows the recall validations answer (`train.recall`).
    """
    from datasets import Dataset
    from transformers import EarlyStoppingCallback
    from transformers.trainer_callback import PrinterCallback, ProgressCallback
    from trl import SFTTrainer

    from ollama_tune.train.callbacks import ReportCallback

    has_eval = bool(test_rows.rows)
    recall = _recall_callback(config, tokenizer, val_examples) if has_eval else None
    args = sft_args(config, plan, has_eval, recall=recall is not None)
    trainer_class: Any = SFTTrainer
    cpu_paths = not plan.cuda and not plan.unsloth
    packed = False
    if cpu_paths:
        from ollama_tune.train import prefix, speed

        packed = speed.use_packed_attention(model)
        if speed.supports_compact_loss(model):
            trainer_class = speed.CompactLossSFTTrainer
    report = ReportCallback(config.run_dir / "metrics.jsonl", progress, on_log)
    callbacks: list[Any] = [report]
    if recall is not None:
        recall.on_record = report.add_record
        callbacks.append(recall)
    elif has_eval and config.early_stopping_patience:
        callbacks.append(EarlyStoppingCallback(config.early_stopping_patience))
    trainer = trainer_class(
        model=model,
        args=args,
        train_dataset=Dataset.from_list(train_rows.rows),
        eval_dataset=Dataset.from_list(test_rows.rows) if has_eval else None,
        processing_class=tokenizer,
        peft_config=None if plan.unsloth or config.method == "full" else lora_config(config),
        callbacks=callbacks,
    )
    if packed:  # the shared prefix's attention is `speed.packed_sdpa`'s
        prefix.share_prefixes(trainer)
    if trainer_class is not SFTTrainer and config.packing:
        speed.bucket_batches(trainer)
    if cpu_paths:
        from ollama_tune.train.fused_lora import fuse_lora_layers, store_frozen_base
        from ollama_tune.train.fused_mlp import fuse_mlps
        from ollama_tune.train.norm_recompute import recompute_norms

        if config.method != "full":
            fuse_lora_layers(trainer.model)
            if plan.bf16 and plan.world_size == 1 and STORE_FROZEN_BF16:
                import torch

                store_frozen_base(trainer.model, torch.bfloat16)
        fuse_mlps(trainer.model)  # after the LoRA layers: it fuses their down projections too
        if trainer_class is not SFTTrainer:  # its forward enters norm_recompute.recipes()
            recompute_norms(trainer.model)
    # Library code never prints: our callback reports instead of the console printers.
    trainer.remove_callback(PrinterCallback)
    trainer.remove_callback(ProgressCallback)
    return trainer, report, recall


# The bench's --frozen-bf16 off sets False for A/B runs (train.fused_lora.store_frozen_base).
STORE_FROZEN_BF16 = True

# Early stopping on recall: this many validations without a better one end the run.
DEFAULT_PATIENCE = 3


def _recall_callback(config: TrainConfig, tokenizer: Any, val_examples: Any) -> Any:
    if not config.val_recall or not val_examples:
        return None
    from ollama_tune.train.recall import RecallCallback, hf_generate, prompt_ids

    # train_lora fills an unset budget from the data (config.resolve_val_budget) before this.
    budget = config.val_max_tokens
    if budget is None:
        raise ValueError("val_max_tokens is unset: call train.config.resolve_val_budget first")
    examples = list(val_examples)[: config.val_questions]
    return RecallCallback(
        examples,
        prompt_ids(tokenizer, examples, config.max_seq_len),
        hf_generate(tokenizer, budget),
        every=config.eval_steps,
        patience=config.early_stopping_patience or DEFAULT_PATIENCE,
        best_dir=config.run_dir / "checkpoints" / "best",
        answers_file=config.run_dir / "validation_answers.jsonl",
        at_start=config.val_at_start,
    )


def lora_config(config: TrainConfig) -> Any:
    from peft import LoraConfig

    return LoraConfig(
        r=config.lora_r,
        lora_alpha=config.lora_alpha,
        lora_dropout=config.lora_dropout,
        target_modules=config.target_modules,
        bias="none",
        task_type="CAUSAL_LM",
    )


def sft_args(config: TrainConfig, plan: Any, has_eval: bool, recall: bool = False) -> Any:
    """TRL's settings for this run. With `recall` the recall callback decides when to
    validate (every --eval-steps and each epoch end) and keeps the best weights itself."""
    from trl import SFTConfig

    eval_steps = config.eval_steps or config.save_steps
    early = has_eval and bool(config.early_stopping_patience) and not recall
    problem = step_alignment_problem(config) if early else None
    if problem:  # validate() catches it before the model loads; this guards direct calls
        raise UsageError(
            f"{problem}.", hint="Use equal values, e.g. --eval-steps 20 --save-steps 20."
        )
    return SFTConfig(
        output_dir=str(config.run_dir / "checkpoints"),
        per_device_train_batch_size=config.batch_size,
        per_device_eval_batch_size=config.batch_size,
        gradient_accumulation_steps=config.gradient_accumulation_steps,
        # Both are filled by schedule_defaults before a run; direct calls get the same rule.
        learning_rate=config.learning_rate or LEARNING_RATES[config.method],
        num_train_epochs=config.epochs or 1.0,
        max_steps=config.max_steps or -1,
        logging_steps=config.logging_steps,
        eval_strategy="steps" if has_eval and not recall else "no",
        # The base model's validation loss is the first point of the curve.
        eval_on_start=has_eval and not config.resume,
        eval_steps=eval_steps if has_eval and not recall else None,
        save_strategy="steps",
        save_steps=config.save_steps,
        load_best_model_at_end=early,
        metric_for_best_model="eval_loss" if early else None,
        greater_is_better=False if early else None,
        seed=config.seed,
        data_seed=config.seed,
        use_cpu=not plan.cuda,
        bf16=plan.bf16,
        fp16=plan.fp16,
        gradient_checkpointing=plan.gradient_checkpointing,
        gradient_checkpointing_kwargs={"use_reentrant": False},
        # Rows are pre-truncated; packing needs max_length, padding-free batches do not.
        max_length=config.max_seq_len if config.packing else None,
        packing=config.packing,
        packing_strategy="bfd",
        padding_free=True,
        include_num_input_tokens_seen="all",
        report_to="none",
        disable_tqdm=True,
        dataloader_pin_memory=plan.cuda,
        ddp_find_unused_parameters=False if plan.world_size > 1 else None,
        ddp_backend="gloo" if plan.world_size > 1 and not plan.cuda else None,
    )
