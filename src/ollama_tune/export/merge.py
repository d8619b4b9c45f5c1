"""Merge a PEFT LoRA adapter into its full-precision base and save an HF directory
(`copy_full_model` instead for a full fine-tuning run, which has no adapter to merge).

Always merges into the unquantised base (`run.json` → `base_model.hf_dir`) loaded in fp32,
also after QLoRA: merging into 4-bit weights would bake quantisation error into the export.
The merged directory is written next to the run under a temporary name and renamed.
"""

from __future__ import annotations

import json
import os
import shutil
import warnings
from pathlib import Path
from typing import Any

from ollama_tune._util import new_temp_dir
from ollama_tune.errors import ExportError


def _torch_dtype_name(config_path: Path) -> str:
    """The dtype the base was stored in, so the merged copy is no larger than the base."""
    config = json.loads(config_path.read_text(encoding="utf-8"))
    name = config.get("dtype") or config.get("torch_dtype") or "float32"
    return name if name in ("float32", "float16", "bfloat16") else "float32"


def merge_adapter(
    adapter_dir: str | os.PathLike[str],
    base_dir: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    *,
    tokenizer_dir: str | os.PathLike[str] | None = None,
    chat_template: str | None = None,
) -> Path:
    """Load `base_dir` in fp32, apply the adapter, merge, save safetensors + tokenizer."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    adapter_dir, base_dir, out_dir = Path(adapter_dir), Path(base_dir), Path(out_dir)
    if not (adapter_dir / "adapter_config.json").is_file():
        raise ExportError(
            f"No LoRA adapter in {adapter_dir} (adapter_config.json missing).",
            hint="Run `ollama-tune train` first, or point at the run directory it wrote.",
        )
    if not (base_dir / "config.json").is_file():
        raise ExportError(
            f"The base model directory {base_dir} (run.json base_model.hf_dir) is missing.",
            hint="Re-run training, or restore the dequantised base it recorded.",
        )
    save_dtype = getattr(torch, _torch_dtype_name(base_dir / "config.json"))
    # Library code stays quiet: no weight-loading bars or deprecation notices on the terminal.
    hf_logging.disable_progress_bar()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        base = AutoModelForCausalLM.from_pretrained(str(base_dir), dtype=torch.float32)
        try:
            merged = PeftModel.from_pretrained(base, str(adapter_dir)).merge_and_unload()
        except (ValueError, RuntimeError, KeyError) as exc:
            raise ExportError(
                f"The adapter in {adapter_dir} does not fit the base {base_dir}: {exc}",
                hint="Export with the base model the adapter was trained on.",
            ) from None
    tokenizer = AutoTokenizer.from_pretrained(str(tokenizer_dir or base_dir))
    if chat_template:
        # The template training used is the one the GGUF (and so llama.cpp) must carry.
        tokenizer.chat_template = chat_template
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        _save_atomically(merged.to(save_dtype), tokenizer, out_dir)
    return out_dir


def copy_full_model(
    model_dir: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    *,
    tokenizer_dir: str | os.PathLike[str] | None = None,
    chat_template: str | None = None,
) -> Path:
    """A full fine-tuning run's model/ is already merged: copy it with the run's tokenizer."""
    from transformers import AutoTokenizer

    model_dir, out_dir = Path(model_dir), Path(out_dir)
    if not (model_dir / "config.json").is_file():
        raise ExportError(
            f"No fine-tuned model in {model_dir} (config.json missing).",
            hint="Re-run `ollama-tune train --method full`, or restore the run's model/ folder.",
        )
    tokenizer = AutoTokenizer.from_pretrained(str(tokenizer_dir or model_dir))
    if chat_template:
        tokenizer.chat_template = chat_template
    tmp = new_temp_dir(out_dir)
    try:
        for item in model_dir.iterdir():
            if item.is_file():
                shutil.copy2(item, tmp / item.name)
        tokenizer.save_pretrained(str(tmp))
        if out_dir.exists():
            shutil.rmtree(out_dir)
        os.replace(tmp, out_dir)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return out_dir


def _save_atomically(model: Any, tokenizer: Any, out_dir: Path) -> None:
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = new_temp_dir(out_dir)  # .NAME.ollama-tune-PID.*.tmp; a killed run's is cleaned next time
    try:
        model.save_pretrained(str(tmp), safe_serialization=True)
        tokenizer.save_pretrained(str(tmp))
        if out_dir.exists():
            shutil.rmtree(out_dir)
        os.replace(tmp, out_dir)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
