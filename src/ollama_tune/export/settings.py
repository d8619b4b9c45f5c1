"""`ExportSettings`: the export's settings (the recipe's `export:` section and the
`ollama-tune export` flags, whose defaults are None and fall back to these), and
`ExportConfig`, what `export_bundle` takes: the settings plus the run-time inputs.

The quantization guard's settings live here too: `export_bundle` runs the guard itself, so a
run's stage and the CLI cannot guard with two thresholds again.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from pydantic import AfterValidator, Field, field_validator, model_validator

from ollama_tune.evaluate.settings import DEFAULT_GUARD_THRESHOLD
from ollama_tune.settings import Section

# Types llama.cpp's quantizer (through llama-cpp-python) and the converter produce.
QUANTS: tuple[str, ...] = (
    "f16",
    "bf16",
    "f32",
    "q8_0",
    "q6_k",
    "q5_k_m",
    "q5_k_s",
    "q5_0",
    "q4_k_m",
    "q4_k_m+q8emb",
    "q4_k_s",
    "q4_0",
    "q3_k_m",
    "q2_k",
)
# What the example recipe and the README recommend: 135M–1B fine-tunes lose what they learnt
# at 4 bits, q8_0 keeps it.
DEFAULT_QUANT = "q8_0"


def check_quant(value: str) -> str:
    """`Q4_K_M`, `q4-k-m` → `q4_k_m`; any type but f16/bf16/f32 may end in "+imat" (an
    importance matrix from the training data)."""
    key = value.strip().lower().replace("-", "_")
    base = key.removesuffix("+imat")
    if base not in QUANTS or (base != key and base in ("f16", "bf16", "f32")):
        raise ValueError(f"unknown quantization {value!r}")
    return key


Quant = Annotated[str, AfterValidator(check_quant)]


def _split(value: Any) -> Any:
    # `--quant q4_k_m,q8_0` arrives as one string.
    if isinstance(value, str):
        return [q.strip() for q in value.split(",") if q.strip()]
    return value


class ExportSettings(Section):
    quants: list[Quant] = Field(default_factory=lambda: [DEFAULT_QUANT])
    # Keep model-f16.gguf: the quantization guard's reference (the guard runs only with it).
    keep_f16: bool = False
    # Warn when a quantization loses more than this much fact recall against f16, and ship
    # the smallest type within it; None: no guard.
    guard_threshold: float | None = Field(default=DEFAULT_GUARD_THRESHOLD, ge=0.0, le=1.0)
    # Longest guard answer in tokens; None: the evaluation's (a run: eval.max_tokens).
    guard_max_tokens: int | None = Field(default=None, ge=1)
    # The types the guard may ship; None: every type in `quants`.
    guard_candidates: list[Quant] | None = None

    @field_validator("quants", mode="before")
    @classmethod
    def _split_quants(cls, value: Any) -> Any:
        value = _split(value)
        if isinstance(value, list) and not value:
            raise ValueError("at least one quantization is needed")
        return value

    @field_validator("guard_candidates", mode="before")
    @classmethod
    def _split_candidates(cls, value: Any) -> Any:
        return _split(value)

    @model_validator(mode="after")
    def _candidates_are_exported(self) -> ExportSettings:
        exported = {*self.quants, *(("f16",) if self.keep_f16 else ())}
        extra = [q for q in self.guard_candidates or () if q not in exported]
        if extra:
            raise ValueError(
                f"guard_candidates {', '.join(extra)} not exported (quants: "
                f"{', '.join(self.quants)})"
            )
        return self


class ExportConfig(ExportSettings):
    """`export_bundle`'s input: the settings plus where from, where to, and what to ask."""

    run_dir: Path
    out_dir: Path | None = None
    name: str | None = None
    adapter_only: bool = False
    num_ctx: int | None = None
    threads: int | None = None
    # Test questions the guard answers (rows with facts or a reference); None: no guard.
    guard_questions: Path | None = None
