"""An importance matrix from the training data, for llama.cpp's quantizer.

llama.cpp's `llama-imatrix` tool is not shipped by llama-cpp-python, but what it computes is
simple: for every weight matrix, the mean of the squared input activations per input column
over some text. We measure that on the merged HF model with PyTorch forward hooks, over the
training rows rendered with the chat template, and name each entry as the GGUF tensor it
belongs to (gguf-py's `TensorNameMap`, the converter's own name mapping). `quantize_gguf`
hands the result to `llama_model_quantize` through `llama_model_quantize_params.imatrix`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ollama_tune.errors import ExportError


def calibration_texts(train_file: Path, tokenizer_dir: Path, limit: int = 128) -> list[str]:
    """The first `limit` training conversations as the model saw them (chat template)."""
    from transformers import AutoTokenizer

    from ollama_tune.data import read_examples

    if not train_file.is_file():
        raise ExportError(
            f"no training data for the importance matrix: {train_file} is missing",
            hint="export a run directory written by `ollama-tune train` (it keeps data/)",
        )
    tok = AutoTokenizer.from_pretrained(str(tokenizer_dir))
    rows = read_examples(train_file)[:limit]
    return [str(tok.apply_chat_template(ex.to_messages_dicts(), tokenize=False)) for ex in rows]


def compute_imatrix(
    hf_dir: Path, texts: Sequence[str], *, max_tokens: int = 512
) -> dict[str, list[float]]:
    """{GGUF tensor name: mean squared input activation per input column} over `texts`."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(str(hf_dir), dtype=torch.float32).eval()
    tok = AutoTokenizer.from_pretrained(str(hf_dir))
    names = _name_map(model)
    sums: dict[str, Any] = {}
    counts: dict[str, int] = {}

    def hook(name: str) -> Any:
        def accumulate(_module: Any, inputs: tuple[Any, ...]) -> None:
            x = inputs[0].detach().reshape(-1, inputs[0].shape[-1]).double()
            sums[name] = sums.get(name, 0) + (x * x).sum(dim=0)
            counts[name] = counts.get(name, 0) + x.shape[0]

        return accumulate

    handles = [
        module.register_forward_pre_hook(hook(gguf_name))
        for hf_name, module in model.named_modules()
        if isinstance(module, torch.nn.Linear) and (gguf_name := names(hf_name))
    ]
    try:
        with torch.no_grad():
            for text in texts:
                ids = tok(text, return_tensors="pt", truncation=True, max_length=max_tokens)
                model(**ids)
    finally:
        for h in handles:
            h.remove()
    if not sums:
        raise ExportError("the importance matrix is empty", hint="check the training data")
    return {n: (sums[n] / counts[n]).float().tolist() for n in sums}


def _name_map(model: Any) -> Any:
    """HF module name → GGUF tensor name (None for modules llama.cpp has no tensor for)."""
    import gguf

    model_type = str(model.config.model_type)
    arch = {v: k for k, v in gguf.MODEL_ARCH_NAMES.items()}.get(model_type)
    if arch is None:
        raise ExportError(
            f"no GGUF tensor names known for model type {model_type!r}",
            hint="export without an importance matrix (drop +imat from --quant)",
        )
    tmap = gguf.get_tensor_name_map(arch, int(model.config.num_hidden_layers))

    def lookup(hf_name: str) -> str | None:
        found = tmap.get_name(f"{hf_name}.weight", try_suffixes=(".weight",))
        return str(found) if found else None

    return lookup
