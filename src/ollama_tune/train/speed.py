"""Faster LoRA steps on CPU, through the libraries' own extension points.

After the matmuls, two costs dominated a CPU step (SmolLM2-135M, profiled in BENCHMARKS.md):

- TRL's fused LM head scores every position on devices without Triton, prompt tokens included,
  folding each vocabulary tile in several elementwise passes. `CompactLossSFTTrainer` asks the
  model for logits only where a label is (transformers' `logits_to_keep`) and lets the model's
  own loss function score them: the same loss, about a third of the LM-head work saved.
  On training steps of plain-head decoders (Llama, Qwen, …) it goes further: `linear_ce`
  scores the decoder's output a chunk at a time, so the logits never exist all at once.
- A padding-free packed row attends through a block-diagonal mask over the whole row.
  `packed_sdpa`, registered with transformers' `AttentionInterface`, runs SDPA once per packed
  sequence (the collator's `cu_seq_lens_q`) with `is_causal=True`, in fp32: on CPU, bf16 SDPA
  is slower than fp32 at these lengths.
- Rows of a batch begin alike (system prompt, template): `train.prefix` computes their common
  unlabelled head once per batch and `packed_sdpa` lets every row attend to it.
- Every packed batch has its own length, so every step meets new matmul shapes: oneDNN builds
  and caches kernels for each and the heap fragments (BENCHMARKS.md, issue 16). `BucketCollator`
  pads each batch to a multiple of `BUCKET_TOKENS` with one unlabelled segment.

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
from transformers.modeling_outputs import CausalLMOutputWithPast
from trl import SFTTrainer

from ollama_tune.train import norm_recompute, prefix
from ollama_tune.train.linear_ce import IGNORE, head_parts, linear_cross_entropy

PACKED_ATTENTION = "ollama_tune_packed_sdpa"


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
    sizes = _packed_sizes(kwargs.get("cu_seq_lens_q"), query, key)
    if sizes is None:
        return sdpa_attention_forward(  # type: ignore[no-any-return]
            module, query, key, value, attention_mask, dropout, scaling, is_causal, **kwargs
        )
    dtype = query.dtype
    # split, not slices: its backward is one cat, where each slice's allocates a zeroed copy.
    pieces = [t.float().split(sizes, dim=2) for t in (query, key, value)]
    with torch.autocast(query.device.type, enabled=False):
        if kwargs.get(prefix.PREFIX):
            parts = prefix.prefix_sdpa(module, list(zip(*pieces, strict=True)), dropout, scaling)
        else:
            parts = [
                sdpa_attention_forward(module, q, k, v, None, dropout, scaling, True)[0]
                for q, k, v, n in zip(*pieces, sizes, strict=True)
                if n > 0
            ]
    # sdpa_attention_forward returns (batch, seq, heads, dim): sequences join along dim 1.
    return torch.cat(parts, dim=1).to(dtype), None


def _packed_sizes(bounds: Any, query: torch.Tensor, key: torch.Tensor) -> list[int] | None:
    """Lengths of the packed sequences, or None where the batch is not one whole packed row."""
    if bounds is None or query.shape[0] != 1 or key.shape[2] != query.shape[2]:
        return None
    cuts = [int(x) for x in bounds.tolist()]
    if cuts[0] != 0 or cuts[-1] != query.shape[2]:
        return None
    return [e - s for s, e in pairwise(cuts)]


def use_packed_attention(model: Any) -> bool:
    """Switch an SDPA model to `packed_sdpa`; other attention kernels are left alone."""
    if getattr(model.config, "_attn_implementation", None) != "sdpa":
        return False
    AttentionInterface.register(PACKED_ATTENTION, packed_sdpa)
    # Batches without `cu_seq_lens_q` fall back to SDPA, so they need SDPA's mask.
    AttentionMaskInterface.register(PACKED_ATTENTION, sdpa_mask)
    model.set_attn_implementation(PACKED_ATTENTION)
    return True


# Batches padded to a multiple of this many tokens (0: off); the bench's --bucket sets it.
BUCKET_TOKENS = 64
BUCKET_PAD = "bucket_pad"  # batch key: how many of its tokens are the padding segment


class BucketCollator:
    """TRL's padding-free collator, its flat batch padded to a multiple of `multiple`.

    The padding is one extra sequence (positions 0…k-1, no labels), not k one-token ones as
    TRL's own `pad_to_multiple_of` makes: `packed_sdpa` runs one more small SDPA, not k.
    """

    def __init__(self, inner: Any, multiple: int, pad_token_id: int) -> None:
        self.inner, self.multiple, self.pad_token_id = inner, multiple, pad_token_id

    def __call__(self, examples: list[dict[str, Any]]) -> dict[str, Any]:
        batch = self.inner(examples)
        if not prefix.padding_free(batch):
            return batch  # not a padding-free batch: nothing to bucket
        ids = batch["input_ids"]
        extra = -ids.shape[1] % self.multiple
        batch[BUCKET_PAD] = extra
        if not extra:
            return batch
        batch["input_ids"] = torch.nn.functional.pad(ids, (0, extra), value=self.pad_token_id)
        batch["labels"] = torch.nn.functional.pad(batch["labels"], (0, extra), value=IGNORE)
        tail = torch.arange(extra, dtype=batch["position_ids"].dtype)[None]
        batch["position_ids"] = torch.cat([batch["position_ids"], tail], dim=1)
        bounds = batch["cu_seq_lens_q"]
        cuts = torch.cat([bounds, bounds[-1:] + extra])
        batch["cu_seq_lens_q"] = batch["cu_seq_lens_k"] = cuts
        batch["max_length_q"] = batch["max_length_k"] = int(cuts.diff().max())
        if "seq_idx" in batch:
            last = batch["seq_idx"].new_full((1, extra), len(bounds) - 1)
            batch["seq_idx"] = torch.cat([batch["seq_idx"], last], dim=1)
        return batch


def bucket_batches(trainer: Any, multiple: int | None = None) -> bool:
    """Pad the trainer's padding-free batches to a multiple of `multiple` tokens."""
    multiple = BUCKET_TOKENS if multiple is None else multiple
    pad = getattr(trainer.processing_class, "pad_token_id", None)
    if not multiple or pad is None or not getattr(trainer.args, "padding_free", False):
        return False
    trainer.data_collator = BucketCollator(trainer.data_collator, multiple, pad)
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
        feed = {k: v for k, v in inputs.items() if k not in ("labels", BUCKET_PAD, prefix.SAVED)}
        parts = None if return_outputs else self._fused_head(model)
        with norm_recompute.recipes():  # RMSNorm outputs rebuilt in backward, not kept
            if parts is not None:
                loss, outputs = self._fused_loss(parts, feed, targets, num_items_in_batch, inputs)
            else:
                loss, outputs = self._logits_loss(model, feed, targets, num_items_in_batch, inputs)
        # Like TRL and Trainer: the token count spans all ranks and DDP averages the gradients.
        if self.args.average_tokens_across_devices and num_items_in_batch is not None:
            loss = loss * self.accelerator.num_processes
        outputs["loss"] = loss
        return (loss, outputs) if return_outputs else loss

    def _track_num_input_tokens(self, inputs: dict[str, Any]) -> None:
        # tokens/s counts the data's tokens: each row's shared prefix, not the bucket's padding.
        before = self.state.num_input_tokens_seen
        super()._track_num_input_tokens(inputs)
        # Every rank gathers (or none): a rank with nothing to change still takes part.
        if self.state.num_input_tokens_seen != before:
            delta = torch.as_tensor(_uncounted(inputs), device=self.args.device)
            self.state.num_input_tokens_seen += int(self.accelerator.gather(delta).sum())

    def _fused_head(self, model: Any) -> Any:
        """`(decoder, head)` for `linear_ce` on a single-process training step, else None."""
        if not (model.training and torch.is_grad_enabled()) or self.accelerator.num_processes > 1:
            return None
        return head_parts(model)

    def _fused_loss(
        self, parts: Any, feed: dict[str, Any], targets: Any, num_items: Any, inputs: Any
    ) -> tuple[torch.Tensor, dict[str, Any]]:
        decoder, head = parts
        # Accelerate puts mixed precision on the wrapped model's forward, which calling the
        # decoder directly bypasses: the same autocast is entered here.
        with self.accelerator.autocast():
            hidden = decoder(**feed, use_cache=False).last_hidden_state
            result = linear_cross_entropy(hidden, head, targets, num_items)
        self._log_metrics("train", result.count, result.correct, result.entropy, inputs)
        return result.loss, CausalLMOutputWithPast()

    def _logits_loss(
        self, model: Any, feed: dict[str, Any], targets: Any, num_items: Any, inputs: Any
    ) -> tuple[torch.Tensor, Any]:
        keep = (targets != IGNORE).any(dim=0).nonzero().flatten()
        empty = keep.numel() == 0
        if empty:
            # Still run the model so every DDP rank takes part in the backward pass.
            keep = torch.zeros(1, dtype=torch.long, device=targets.device)
        targets = targets[:, keep]
        outputs = model(**feed, logits_to_keep=keep, use_cache=False)
        # transformers' causal-LM loss (cross-entropy in fp32, summed / num_items_in_batch),
        # split in two so the entropy metric reuses the log-softmax instead of redoing it.
        logp = torch.log_softmax(outputs.logits.float(), dim=-1)
        loss = logp.sum() * 0.0 if empty else _nll(logp, targets, num_items)
        valid = targets != IGNORE
        with torch.no_grad():
            correct = ((logp.argmax(-1) == targets) & valid).sum()
            entropy = (_entropy(logp) * valid).sum()
        mode = "train" if model.training else "eval"
        self._log_metrics(mode, int(valid.sum()), int(correct), float(entropy), inputs)
        return loss, outputs

    def _log_metrics(
        self, mode: str, count: int, correct: int, entropy: float, inputs: dict[str, Any]
    ) -> None:
        gather = self.accelerator.gather_for_metrics
        n, right, ent = (float(gather(torch.tensor(x)).sum()) for x in (count, correct, entropy))
        self._metrics[mode]["mean_token_accuracy"].append(right / max(n, 1.0))
        self._metrics[mode]["entropy"].append(ent / max(n, 1.0))
        if mode == "train":
            mask = inputs.get("attention_mask")
            total = inputs["input_ids"].numel() + _uncounted(inputs)
            local = mask.sum() if mask is not None else torch.tensor(total)
            self._total_train_tokens += int(gather(local).sum())
        self._metrics[mode]["num_tokens"] = [self._total_train_tokens]


def _uncounted(inputs: dict[str, Any]) -> int:
    """Data tokens a batch's `input_ids` do not show: shared prefixes in, bucket padding out."""
    return int(inputs.get(prefix.SAVED, 0)) - int(inputs.get(BUCKET_PAD, 0))


def _nll(logp: torch.Tensor, targets: torch.Tensor, num_items: Any) -> torch.Tensor:
    """`ForCausalLMLoss` on already shifted targets, from log-probabilities."""
    flat = logp.reshape(-1, logp.shape[-1])
    if num_items is None:
        return torch.nn.functional.nll_loss(flat, targets.reshape(-1), ignore_index=IGNORE)
    total = torch.nn.functional.nll_loss(
        flat, targets.reshape(-1), ignore_index=IGNORE, reduction="sum"
    )
    return total / (num_items.to(total.device) if torch.is_tensor(num_items) else num_items)


def _entropy(logp: torch.Tensor, chunk: int = 128) -> torch.Tensor:
    """Per-position entropy from log-probabilities, in chunks as TRL's `entropy_from_logits`."""
    flat = logp.reshape(-1, logp.shape[-1])
    rows = [-(c.exp() * c).sum(-1) for c in flat.split(chunk, dim=0)]
    return torch.cat(rows).reshape(logp.shape[:-1])
