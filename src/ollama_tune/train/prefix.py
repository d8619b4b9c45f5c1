"""Shared-prefix batches: the tokens every row of a batch starts with are computed once.

Chat rows of one dataset begin alike — the system prompt and the template's opening, 38 % of
the demo's tokens (BENCHMARKS.md). Under causal attention those positions' hidden states are the
same in every row, so `SharedPrefixCollator` keeps them once at the head of the padding-free
batch and `prefix_sdpa` lets each row's remaining tokens attend to the prefix's keys and values
as well as to their own. Logits, loss and gradients are those of the full rows (tested); the
prefix's share of the gradient arrives once per row through its keys and values.

Only unlabelled tokens are shared (a prefix position's prediction is never scored), and each
row keeps at least one token of its own. Used by `train.speed` on CPU; torch loads here.
"""

from __future__ import annotations

from itertools import pairwise
from typing import Any

import torch
from transformers.integrations.sdpa_attention import sdpa_attention_forward

from ollama_tune.train.linear_ce import IGNORE

PREFIX = "shared_prefix"  # batch key and attention kwarg: tokens of the shared head segment
SAVED = "prefix_saved"  # batch key: tokens the sharing left out (tokens/s counts them)
MIN_PREFIX = 8  # shorter prefixes save less than the extra attention calls cost


def padding_free(batch: dict[str, Any]) -> bool:
    """Whether a collated batch is TRL's one flat padding-free row with sequence bounds."""
    return batch["input_ids"].shape[0] == 1 and "cu_seq_lens_q" in batch


def _spans(batch: dict[str, Any]) -> list[tuple[int, int]]:
    return list(pairwise(int(x) for x in batch["cu_seq_lens_q"].tolist()))


def common_prefix(batch: dict[str, Any]) -> int:
    """Tokens all sequences of a padding-free batch share, unlabelled and short of a whole row."""
    if not padding_free(batch) or "attention_mask" in batch:
        return 0
    ids, labels = batch["input_ids"][0], batch["labels"][0]
    spans = _spans(batch)
    if len(spans) < 2:
        return 0
    first_s = spans[0][0]
    limit = min(e - s for s, e in spans) - 1
    head = ids[first_s : first_s + limit]
    for s, _ in spans[1:]:
        same = (ids[s : s + limit] == head).int()
        limit = int(same.cumprod(0).sum())
        head = head[:limit]
    # Position p-1's prediction (labels[p]) must be unscored in every row.
    for s, e in spans:
        scored = (labels[s + 1 : e] != IGNORE).nonzero()
        if len(scored):
            limit = min(limit, int(scored[0]))
    return limit if limit >= MIN_PREFIX else 0


def share_prefix(batch: dict[str, Any], prefix: int) -> dict[str, Any]:
    """The batch with its first `prefix` tokens kept once, as the head segment."""
    spans = _spans(batch)
    keep = [(spans[0][0], spans[0][0] + prefix)] + [(s + prefix, e) for s, e in spans]
    index = torch.cat([torch.arange(s, e) for s, e in keep])
    out = dict(batch)
    for key in ("input_ids", "labels", "position_ids"):
        out[key] = batch[key][:, index]
    out["labels"][0, :prefix] = IGNORE
    sizes = torch.tensor([e - s for s, e in keep])
    cuts = torch.cat([torch.zeros(1, dtype=torch.long), sizes.cumsum(0)]).to(torch.int32)
    out["cu_seq_lens_q"] = out["cu_seq_lens_k"] = cuts
    out["max_length_q"] = out["max_length_k"] = int(sizes.max())
    if "seq_idx" in batch:
        out["seq_idx"] = torch.repeat_interleave(
            torch.arange(len(keep), dtype=batch["seq_idx"].dtype), sizes
        )[None]
    out[PREFIX] = prefix
    out[SAVED] = prefix * (len(spans) - 1)
    return out


class SharedPrefixCollator:
    """TRL's padding-free collator, its rows' common unlabelled head kept once."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def __call__(self, examples: list[dict[str, Any]]) -> dict[str, Any]:
        batch = self.inner(examples)
        prefix = common_prefix(batch)
        return share_prefix(batch, prefix) if prefix else batch


def prefix_sdpa(
    module: Any,
    pieces: list[tuple[torch.Tensor, ...]],
    dropout: float,
    scaling: float | None,
) -> list[torch.Tensor]:
    """Attention of `[head, row, row, …]` pieces of (query, key, value), all fp32.

    The head attends causally to itself; each row to the head and, causally, to itself.
    """
    (q0, k0, v0), rest = pieces[0], pieces[1:]
    parts = [sdpa_attention_forward(module, q0, k0, v0, None, dropout, scaling, True)[0]]
    head = k0.shape[2]
    for q, k, v in rest:
        n = q.shape[2]
        # Lower-right causal: row token i sees the head and its own tokens 0…i.
        mask = torch.ones(n, head + n, dtype=torch.bool, device=q.device).tril(head)
        keys, values = torch.cat([k0, k], dim=2), torch.cat([v0, v], dim=2)
        out = sdpa_attention_forward(module, q, keys, values, mask[None, None], dropout, scaling)
        parts.append(out[0])
    return parts


SHARE = True  # the bench's --shared-prefix off sets False for A/B runs


def share_prefixes(trainer: Any) -> bool:
    """Keep each padding-free batch's common head once (needs `speed.packed_sdpa`)."""
    if not SHARE or not getattr(trainer.args, "padding_free", False):
        return False
    trainer.data_collator = SharedPrefixCollator(trainer.data_collator)
    return True


def shares_prefixes(collator: Any) -> bool:
    """Whether a (possibly wrapped) collator keeps shared prefixes once: run.json records it."""
    while collator is not None:
        if isinstance(collator, SharedPrefixCollator):
            return True
        collator = getattr(collator, "inner", None)
    return False
