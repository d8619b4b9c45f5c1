"""Faster LoRA steps on CPU, through the libraries' own extension points.

After the matmuls, two costs dominated a CPU step (SmolLM2-135M, profiled in BENCHMARKS.md):

- TRL's fused LM head scores every position on devices without Triton, prompt tokens included,
  folding each vocabulary tile in several elementwise passes. `CompactLossSFTTrainer` asks the
  model for logits only where a label is (transformers' `logits_to_keep`) and lets the model's
  own loss function score them: the same loss, about a third of the LM-head work saved.
- A padding-free packed row attends through a block-diagonal mask over the whole row.
  `packed_sdpa`, registered with transformers' `AttentionInterface`, runs SDPA once per packed
  sequence (the collator's `cu_seq_lens_q`) with `is_causal=True`, in fp32: on CPU, bf16 SDPA
  is slower than fp32 at these lengths.

Imported only by a training run (torch, transformers and trl load here); used on CPU only.
"""

from __future__ import annotations

import inspect
from itertools import pairwise
from typing import Any

import torch
from transformers import AttentionInterface
from transformers.integrations.sdpa_attention import sdpa_attention_forward
from transformers.masking_utils import AttentionMaskInterface, sdpa_mask
from trl import SFTTrainer
from trl.trainer.utils import entropy_from_logits

PACKED_ATTENTION = "ollama_tune_packed_sdpa"
IGNORE = -100


def packed_sdpa(
    module: Any,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    dropout: float = 0.0,
    scaling: float | None = None,
    is_causal: bool | None = None,
    **kwargs: Any,
) -> tuple[torch.Tensor, None]:
    """SDPA per packed sequence; exactly transformers' SDPA for anything else (padded, cached)."""
    bounds = kwargs.get("cu_seq_lens_q")
    if bounds is None or query.shape[0] != 1 or key.shape[2] != query.shape[2]:
        return sdpa_attention_forward(  # type: ignore[no-any-return]
            module, query, key, value, attention_mask, dropout, scaling, is_causal, **kwargs
        )
    dtype = query.dtype
    q, k, v = query.float(), key.float(), value.float()
    cuts = [int(x) for x in bounds.tolist()]
    with torch.autocast(query.device.type, enabled=False):
        parts = [
            sdpa_attention_forward(
                module, q[:, :, s:e], k[:, :, s:e], v[:, :, s:e], None, dropout, scaling, True
            )[0]
            for s, e in pairwise(cuts)
            if e > s
        ]
    # sdpa_attention_forward returns (batch, seq, heads, dim): sequences join along dim 1.
    return torch.cat(parts, dim=1).to(dtype), None


def use_packed_attention(model: Any) -> bool:
    """Switch an SDPA model to `packed_sdpa`; other attention kernels are left alone."""
    if getattr(model.config, "_attn_implementation", None) != "sdpa":
        return False
    AttentionInterface.register(PACKED_ATTENTION, packed_sdpa)
    # Batches without `cu_seq_lens_q` fall back to SDPA, so they need SDPA's mask.
    AttentionMaskInterface.register(PACKED_ATTENTION, sdpa_mask)
    model.set_attn_implementation(PACKED_ATTENTION)
    return True


def supports_compact_loss(model: Any) -> bool:
    """Models whose forward takes `logits_to_keep` (transformers' causal LMs since 4.50)."""
    return "logits_to_keep" in inspect.signature(type(model).forward).parameters


class CompactLossSFTTrainer(SFTTrainer):  # type: ignore[misc]
    """`SFTTrainer` whose loss scores only labelled positions, as TRL does on Triton devices.

    Logs the same `mean_token_accuracy`, `entropy` and `num_tokens` as TRL's `compute_loss`.
    """

    def compute_loss(
        self,
        model: Any,
        inputs: dict[str, Any],
        return_outputs: bool = False,
        num_items_in_batch: Any = None,
    ) -> Any:
        labels = inputs["labels"]
        targets = torch.nn.functional.pad(labels[:, 1:], (0, 1), value=IGNORE)
        keep = (targets != IGNORE).any(dim=0).nonzero().flatten()
        empty = keep.numel() == 0
        if empty:
            # Still run the model so every DDP rank takes part in the backward pass.
            keep = torch.zeros(1, dtype=torch.long, device=labels.device)
        targets = targets[:, keep]
        feed = {k: v for k, v in inputs.items() if k != "labels"}
        outputs = model(
            **feed,
            labels=targets,
            shift_labels=targets,
            logits_to_keep=keep,
            num_items_in_batch=num_items_in_batch,
            use_cache=False,
        )
        loss = outputs.logits.sum() * 0.0 if empty else outputs.loss
        # Like TRL and Trainer: the token count spans all ranks and DDP averages the gradients.
        if self.args.average_tokens_across_devices and num_items_in_batch is not None:
            loss = loss * self.accelerator.num_processes
        mode = "train" if model.training else "eval"
        self._record_metrics(mode, outputs.logits.detach(), targets, inputs)
        return (loss, outputs) if return_outputs else loss

    def _record_metrics(
        self, mode: str, logits: torch.Tensor, targets: torch.Tensor, inputs: dict[str, Any]
    ) -> None:
        valid = targets != IGNORE
        with torch.no_grad():
            correct = ((logits.argmax(-1) == targets) & valid).sum()
            entropy = (entropy_from_logits(logits.float()) * valid).sum()
        gather = self.accelerator.gather_for_metrics
        n, correct, entropy = (gather(x).sum() for x in (valid.sum(), correct, entropy))
        count = max(int(n), 1)
        self._metrics[mode]["mean_token_accuracy"].append(float(correct) / count)
        self._metrics[mode]["entropy"].append(float(entropy) / count)
        if mode == "train":
            mask = inputs.get("attention_mask")
            local = mask.sum() if mask is not None else torch.tensor(inputs["input_ids"].numel())
            self._total_train_tokens += int(gather(local).sum())
        self._metrics[mode]["num_tokens"] = [self._total_train_tokens]
