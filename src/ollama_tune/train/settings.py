"""`TrainSettings`: every training setting, defined once.

The recipe's `train:` section is this model, `ollama-tune train`'s flags are checked against
its fields (tests/unit/test_settings_flags.py), `TrainConfig` extends it with the run's inputs
and run.json records it under these names. Torch-free, so recipes load instantly.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import AliasChoices, Field, field_validator, model_validator

from ollama_tune.settings import Section

Auto = Literal["auto"]
Method = Literal["lora", "full"]
_SWITCH: dict[str, bool | str] = {"auto": "auto", "on": True, "true": True, "off": False}
_SWITCH["false"] = False


class TrainSettings(Section):
    """How to train. Field descriptions are the `train --help` texts."""

    method: Method = Field(
        default="lora", description="lora (an adapter) or full (every weight; ≤1B)."
    )
    lora_r: int = Field(default=8, ge=1, description="LoRA rank.")
    lora_alpha: int = Field(default=16, ge=1, description="LoRA alpha (scale = alpha / r).")
    lora_dropout: float = Field(default=0.0, ge=0.0, lt=1.0, description="Dropout on LoRA inputs.")
    target_modules: str | list[str] = Field(
        default="all-linear", description="'all-linear' or comma-separated module names."
    )
    # None: chosen from the number of training rows (train.config.schedule_defaults).
    epochs: float | None = Field(default=None, gt=0.0, description="Passes over the rows.")
    max_steps: int | None = Field(default=None, ge=1, description="Stop after N steps.")
    learning_rate: float | None = Field(default=None, gt=0.0, description="Peak learning rate.")
    batch_size: int = Field(default=4, ge=1, description="Packed sequences per step and device.")
    gradient_accumulation_steps: int = Field(
        default=1,
        ge=1,
        validation_alias=AliasChoices("gradient_accumulation_steps", "grad_accum"),
        description="Gradient accumulation steps.",
    )
    max_seq_len: int = Field(default=512, ge=16, description="Longest row/pack in tokens.")
    seed: int = Field(default=42, description="Seed for the validation split, init and data order.")
    qlora: bool = Field(default=False, description="4-bit QLoRA (CUDA + bitsandbytes).")
    packing: bool = Field(default=True, description="Padding-free packing of rows.")
    bf16: bool | Auto = Field(default="auto", description="bf16 autocast: auto, on or off.")
    # "auto": on only when memory is short (it costs ~30% more compute).
    gradient_checkpointing: bool | Auto = Field(
        default="auto", description="Gradient checkpointing: auto (by free memory), on or off."
    )
    logging_steps: int = Field(default=1, ge=1, description="Log loss and speed every N steps.")
    save_steps: int = Field(default=50, ge=1, description="Checkpoint every N steps.")
    eval_steps: int | None = Field(
        default=None, ge=1, description="Validate every N steps (and at each epoch end)."
    )
    early_stopping_patience: int | None = Field(
        default=None, ge=1, description="Stop after N validations without improvement."
    )
    # Validation rows are carved from the training rows (never the test file); with rewordings
    # in the data only rewordings are (`data.validation_split`), so no FAQ answer leaves training.
    val_ratio: float = Field(
        default=0.15,
        gt=0.0,
        lt=1.0,
        validation_alias=AliasChoices("val_ratio", "test_ratio"),
        description="Share of the training rows held out for validation.",
    )
    val_questions: int = Field(
        default=24,
        ge=1,
        validation_alias=AliasChoices("val_questions", "max_eval_rows"),
        description="Validation rows used (loss and answers) each time.",
    )
    val_recall: bool = Field(
        default=True, description="Answer the validation questions while training; keep the best."
    )
    # The base model rarely stops, so its answers run to the budget: a minute on 2 CPU cores.
    val_at_start: bool = Field(
        default=True,
        description="Also answer them before the first step (the base model's point).",
    )
    # None: from the training answers' lengths (train.config.answer_token_budget), so a model
    # that answers like its data can stop inside the budget.
    val_max_tokens: int | None = Field(
        default=None, ge=1, description="Longest validation answer in tokens."
    )

    @model_validator(mode="after")
    def _consistent(self) -> TrainSettings:
        # Found here, a recipe's `run --check` and the train command both catch them before
        # any model loads (TrainConfig.validate re-checks configs built by model_copy).
        problems = cross_field_problems(self)
        if problems:
            raise ValueError("; ".join(problems))
        return self

    @field_validator("bf16", "gradient_checkpointing", mode="before")
    @classmethod
    def _switch(cls, value: Any) -> Any:
        # Flags arrive as text: `--bf16 off`.
        if isinstance(value, str):
            if value.lower() not in _SWITCH:
                raise ValueError("expected auto, on or off")
            return _SWITCH[value.lower()]
        return value

    @field_validator("target_modules", mode="before")
    @classmethod
    def _modules(cls, value: Any) -> Any:
        if isinstance(value, str) and value != "all-linear":
            return [t.strip() for t in value.split(",") if t.strip()]
        return value


def step_alignment_problem(settings: TrainSettings) -> str | None:
    """With loss-based early stopping the best checkpoint must have been saved: save steps
    fall on evaluation steps. None when they do (or the values are not positive yet)."""
    eval_steps = settings.eval_steps or settings.save_steps
    if settings.save_steps < 1 or eval_steps < 1 or settings.save_steps % eval_steps == 0:
        return None
    return (
        f"--save-steps {settings.save_steps} must be a multiple of --eval-steps {eval_steps} "
        "with --early-stopping-patience (the best checkpoint must have been saved)"
    )


def cross_field_problems(settings: TrainSettings) -> list[str]:
    """What no single field shows: full fine-tuning of 4-bit weights, and loss-based early
    stopping (without val_recall) whose best step may not have been saved."""
    problems = []
    if settings.method == "full" and settings.qlora:
        problems.append("--method full: cannot train 4-bit weights; drop --qlora")
    if settings.early_stopping_patience and not settings.val_recall:
        problems.extend(filter(None, [step_alignment_problem(settings)]))
    return problems
