"""A gated MLP's activation and down projection as one autograd node that keeps less for backward.

transformers' SwiGLU MLPs (Llama, Qwen, Mistral, SmolLM … — `down(silu(gate(x)) * up(x))`) keep
four (tokens × intermediate) tensors per layer for the backward pass: the gate output (for SiLU),
the SiLU output and the up output (for the product) and the product (for the down projection's
weight or LoRA gradient). At batch 4 × 512 tokens that is 48 MB per SmolLM2 layer, 1.4 GB of the
135M model's ~1.8 GB of saved activations in fp32 (BENCHMARKS.md, issue 16).

`_SwiGLUDownFn` keeps only the gate and up outputs and recomputes `silu(gate) * up` in backward,
as Unsloth's fused SwiGLU does on GPU: half the MLP's activation memory for two elementwise passes
over a tensor the GEMMs around it take ~100x longer to produce. The down projection is a plain
`nn.Linear` (full fine-tuning) or a plain PEFT LoRA layer (`fused_lora.FusedLoraLinear`); its
matmuls are `fused_lora.lora_matmul`'s, so outputs equal the module's own path.

Under autocast (bf16 on CPU) the node runs in bf16 with the down projection's ops in PEFT's
order, so outputs and gradients are the bits the unfused layers give. Anything else — another
activation, no gradients, LoRA variants or dropout on the down projection, mixed dtypes outside
autocast — runs the model's own forward unchanged.
"""

from __future__ import annotations

import inspect
from typing import Any

import torch
from torch import nn

from ollama_tune.train.fused_lora import FusedLoraLinear, lora_matmul, lora_matmul_grads

# The forward body `fuse_mlps` recognises (127 MLP classes of transformers 5.24 share it).
_BODY = (
    "down_proj = self.down_proj(self.act_fn(self.gate_proj(x)) * self.up_proj(x))",
    "return down_proj",
)


class _SwiGLUDownFn(torch.autograd.Function):
    @staticmethod
    def forward(  # type: ignore[override]
        ctx: Any,
        gate: torch.Tensor,
        up: torch.Tensor,
        weight: torch.Tensor,
        bias: torch.Tensor | None,
        lora_a: torch.Tensor | None,
        lora_b: torch.Tensor | None,
        scaling: float,
    ) -> torch.Tensor:
        shape = gate.shape
        g2, u2 = gate.reshape(-1, shape[-1]), up.reshape(-1, shape[-1])
        h = torch.nn.functional.silu(g2) * u2
        out, xa = _down(h, weight, bias, lora_a, lora_b, scaling)
        ctx.save_for_backward(g2, u2, xa, weight, lora_a, lora_b)
        ctx.scaling, ctx.shape, ctx.has_bias = scaling, shape, bias is not None
        return out.view(*shape[:-1], out.shape[-1])

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor | None, ...]:  # type: ignore[override]
        g2, u2, xa, weight, lora_a, lora_b = ctx.saved_tensors
        need = ctx.needs_input_grad
        silu = torch.nn.functional.silu(g2)
        h = silu * u2  # recomputed: the product was not kept
        saved = (h, xa, weight, lora_a, lora_b, ctx.has_bias)
        g = grad.reshape(-1, grad.shape[-1])
        dh, dw, db, da, dbb = _down_grads(g, saved, ctx.scaling, (True, *need[2:6]))
        del h
        assert dh is not None
        du = dh * silu if need[1] else None
        # autograd's own SiLU backward, on the product's gradient times `up`.
        dg = torch.ops.aten.silu_backward(dh.mul_(u2), g2) if need[0] else None
        view = ctx.shape
        return _view(dg, view), _view(du, view), dw, db, da, dbb, None


_LOW = (torch.bfloat16, torch.float16)


def _down(
    h: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None,
    lora_a: torch.Tensor | None,
    lora_b: torch.Tensor | None,
    scaling: float,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The down projection. In bf16 (autocast) PEFT's own ops in PEFT's order, so each
    rounding is the one the unfused layer makes; in fp32 `lora_matmul`'s single GEMM chain."""
    if h.dtype not in _LOW:
        return lora_matmul(h, weight, bias, lora_a, lora_b, scaling)
    linear = torch.nn.functional.linear
    out = linear(h, weight, bias)
    if lora_a is None or lora_b is None:
        return out, None
    xa = linear(h, lora_a)
    return out + linear(xa, lora_b) * scaling, xa


def _down_grads(
    g: torch.Tensor, saved: tuple[Any, ...], scaling: float, need: tuple[bool, ...]
) -> tuple[torch.Tensor | None, ...]:
    """Gradients `(dh, dW, db, dA, dB)` of `_down`, in the order autograd takes them."""
    h, xa, weight, lora_a, lora_b, has_bias = saved
    if g.dtype not in _LOW:
        return lora_matmul_grads(g, saved, scaling, need)
    dh = g @ weight
    dw = g.t() @ h if need[1] else None
    db = g.sum(0) if has_bias and need[2] else None
    da = dbb = None
    if xa is not None:
        gs = g * scaling
        dbb = gs.t() @ xa if need[4] else None
        dxa = gs @ lora_b
        da = dxa.t() @ h if need[3] else None
        dh = dh + dxa @ lora_a
    return dh, dw, db, da, dbb


def _view(t: torch.Tensor | None, shape: torch.Size) -> torch.Tensor | None:
    return None if t is None else t.view(shape)


def _down_parts(down: nn.Module, dtype: torch.dtype | None) -> tuple[Any, ...] | None:
    """`(weight, bias, lora_a, lora_b, scaling)` of a down projection the node covers, else None.

    `dtype`: the one every tensor must have; None under autocast, where they are cast to it.
    """
    if type(down) is nn.Linear:
        parts: tuple[Any, ...] = (down.weight, down.bias, None, None, 0.0)
    elif isinstance(down, FusedLoraLinear):
        name = down._plain_adapter((), {})
        if name is None:
            return None
        base = down.base_layer
        a, b = down.lora_A[name].weight, down.lora_B[name].weight
        parts = (base.weight, base.bias, a, b, down.scaling[name])
    else:
        return None
    if dtype is not None and any(isinstance(p, torch.Tensor) and p.dtype != dtype for p in parts):
        return None
    return parts


def _fused_forward(self: Any, x: torch.Tensor) -> torch.Tensor:
    device = x.device.type
    low = torch.get_autocast_dtype(device) if torch.is_autocast_enabled(device) else None
    parts = _down_parts(self.down_proj, None if low else x.dtype)
    if parts is None or not torch.is_grad_enabled():
        return super(type(self), self).forward(x)  # type: ignore[no-any-return]
    gate, up = self.gate_proj(x), self.up_proj(x)
    if gate.dtype != (low or x.dtype) or up.dtype != gate.dtype:
        return self.down_proj(self.act_fn(gate) * up)  # type: ignore[no-any-return]
    if low is None:
        return _SwiGLUDownFn.apply(gate, up, *parts)  # type: ignore[no-any-return]
    # Under autocast: the casts autocast would make (differentiable, so trained weights get
    # their fp32 gradients), and the node's ops in bf16 as the unfused layer runs them.
    *tensors, scaling = parts
    low_parts = [t.to(low) if isinstance(t, torch.Tensor) else t for t in tensors]
    with torch.autocast(device, enabled=False):
        return _SwiGLUDownFn.apply(gate, up, *low_parts, scaling)  # type: ignore[no-any-return]


_FUSED: dict[type, type] = {}
FUSE = True  # the bench's --fused-mlp off sets False for A/B runs


def _is_swiglu(module: nn.Module) -> bool:
    act = getattr(module, "act_fn", None)
    if type(act).__name__ not in ("SiLU", "SiLUActivation"):
        return False
    try:
        lines = inspect.getsource(type(module).forward).splitlines()[1:]
    except (OSError, TypeError):
        return False
    return tuple(line.strip() for line in lines if line.strip()) == _BODY


def fuse_mlps(model: nn.Module) -> int:
    """Give every SwiGLU MLP of `model` the fused activation/down node; returns how many.

    Call after `fused_lora.fuse_lora_layers` so LoRA down projections are recognised.
    """
    count = 0
    for module in model.modules() if FUSE else ():
        cls = type(module)
        if cls in _FUSED.values() or not _is_swiglu(module):
            continue
        if cls not in _FUSED:
            _FUSED[cls] = type(f"Fused{cls.__name__}", (cls,), {"forward": _fused_forward})
        module.__class__ = _FUSED[cls]
        count += 1
    return count


def fused_mlps(model: nn.Module) -> int:
    """How many MLPs of `model` run the fused node (run.json records it)."""
    fused = set(_FUSED.values())
    return sum(type(m) in fused for m in model.modules())
