"""LM head and cross-entropy in one autograd node, a chunk of positions at a time.

A training step otherwise holds the (labelled positions × vocabulary) logits three or four
times at once — logits, log-softmax, their gradients — in fp32: for SmolLM2's 49k vocabulary
at batch 4 × 512 that is about 1 GB of the step's peak, for a head whose weight is frozen.
Here each chunk's logits live only while that chunk is scored: the loss, its gradient into the
hidden states (and into the head's weight when that trains) and the logged metrics are computed
in the forward pass; the backward pass only scales the stored gradient. Liger Kernel's
`LigerFusedLinearCrossEntropy` does the same on GPU with Triton, which CPUs lack.

Numbers match transformers' `ForCausalLMLoss`: fp32 log-softmax, sum over labelled positions
divided by `num_items_in_batch` (or their count). Under autocast the two matmuls run in the
autocast dtype, as `nn.Linear` would.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

IGNORE = -100
CHUNK = 256
# Decoders whose causal-LM forward is exactly `lm_head(hidden)` then the loss: no logit scaling
# or soft-capping (Gemma, Granite and Cohere scale their logits, so they keep the plain path).
PLAIN_HEAD_TYPES = frozenset({"llama", "mistral", "qwen2", "qwen3", "phi3", "olmo2", "smollm3"})


@dataclass(frozen=True)
class HeadLoss:
    """What the fused node returns: the loss (differentiable) and the logged metric sums."""

    loss: torch.Tensor
    correct: int
    entropy: float
    count: int


class _LinearCrossEntropyFn(torch.autograd.Function):
    @staticmethod
    def forward(  # type: ignore[override]
        ctx: Any,
        hidden: torch.Tensor,
        weight: torch.Tensor,
        targets: torch.Tensor,
        scale: float,
        need_grad: bool,
        dtype: torch.dtype,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        w = weight.to(dtype)
        total = hidden.new_zeros((), dtype=torch.float32)
        correct = torch.zeros((), dtype=torch.long)
        entropy = torch.zeros((), dtype=torch.float32)
        dh = torch.empty_like(hidden) if need_grad and ctx.needs_input_grad[0] else None
        dw = None
        if need_grad and ctx.needs_input_grad[1]:
            dw = torch.zeros_like(weight, dtype=torch.float32)
        for start in range(0, hidden.shape[0], CHUNK):
            h = hidden[start : start + CHUNK]
            t = targets[start : start + CHUNK]
            logp = torch.log_softmax((h.to(dtype) @ w.t()).float(), dim=-1)
            total -= logp.gather(1, t[:, None]).sum()
            correct += int((logp.argmax(-1) == t).sum())
            probs = logp.exp()
            entropy -= (probs * logp).sum()
            del logp
            if dh is None and dw is None:
                continue
            # d(loss)/d(logits) = (softmax − one-hot) · scale
            probs[torch.arange(len(t)), t] -= 1.0
            g = probs.mul_(scale).to(dtype)
            if dh is not None:
                dh[start : start + CHUNK] = g @ w
            if dw is not None:
                dw.addmm_(g.t().float(), h.float())
        ctx.save_for_backward(dh, dw)
        ctx.weight_dtype = weight.dtype
        ctx.mark_non_differentiable(correct, entropy)
        return total * scale, correct, entropy

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor, *_: Any) -> tuple[Any, ...]:  # type: ignore[override]
        dh, dw = ctx.saved_tensors
        dh = dh * grad if dh is not None else None
        dw = (dw * grad).to(ctx.weight_dtype) if dw is not None else None
        return dh, dw, None, None, None, None


def head_parts(model: Any) -> tuple[nn.Module, nn.Linear] | None:
    """`(decoder, lm_head)` of a causal LM (PEFT-wrapped or not) whose logits are a plain
    bias-free `nn.Linear` over the decoder's output; None for anything else."""
    inner = model.get_base_model() if hasattr(model, "get_base_model") else model
    config = getattr(inner, "config", None)
    if getattr(config, "model_type", None) not in PLAIN_HEAD_TYPES:
        return None
    get_head = getattr(inner, "get_output_embeddings", None)
    get_decoder = getattr(inner, "get_decoder", None)
    if get_head is None or get_decoder is None:
        return None
    head, decoder = get_head(), get_decoder()
    if type(head) is not nn.Linear or head.bias is not None or decoder is None:
        return None
    return decoder, head


def linear_cross_entropy(
    hidden: torch.Tensor, head: nn.Linear, targets: torch.Tensor, num_items: Any = None
) -> HeadLoss:
    """Causal-LM loss of `head(hidden)` against already shifted `targets` (IGNORE = unlabelled)."""
    flat = hidden.reshape(-1, hidden.shape[-1])
    labels = targets.reshape(-1)
    keep = labels != IGNORE
    count = int(keep.sum())
    h, t = flat[keep], labels[keep]
    denominator = num_items if num_items is not None else max(count, 1)
    scale = 1.0 / float(denominator)
    device = hidden.device.type
    dtype = torch.get_autocast_dtype(device) if torch.is_autocast_enabled(device) else hidden.dtype
    need = torch.is_grad_enabled() and (hidden.requires_grad or head.weight.requires_grad)
    with torch.autocast(device, enabled=False):
        loss, correct, entropy = _LinearCrossEntropyFn.apply(h, head.weight, t, scale, need, dtype)
    return HeadLoss(loss, int(correct), float(entropy), count)
