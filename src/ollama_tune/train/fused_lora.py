"""One autograd node per LoRA linear layer: `x Wᵀ + b + s·(x Aᵀ) Bᵀ` with the LoRA term
accumulated into the base GEMM's output (`addmm_`), as Unsloth's fast LoRA does on GPU.

PEFT computes `result + lora_B(lora_A(x)) * scaling` as four autograd ops: the scaling multiply
and the add each pass over the whole (tokens × out) output forward and backward, and the two
input gradients are summed in a third pass. On CPU those passes cost ~10 % of a step (profiled
in BENCHMARKS.md). Here the scaling is applied to the rank-r bottleneck (tokens × r) instead,
and the LoRA gradient into `x` is accumulated into the base one in place.

Under autocast the node is not used (its gradients rounded about twice as far from fp32 as
PEFT's ops in a unit test). There PEFT's own ops run, with one change: autocast casts a layer's
input to bf16 once for the base layer and again for `lora_A`, and q, k and v (gate and up) each
cast the same input again — six bf16 copies of the attention input kept for the backward pass.
Here consecutive layers reading the same tensor share one cast.

`FusedLoraLinear` is PEFT's own `lora.Linear` with a different `forward`: parameters,
state dict, saving and merging are PEFT's. Anything the fused path does not cover (dropout,
DoRA and other variants, several adapters, merged or disabled adapters, extra arguments,
non-`nn.Linear` bases, mixed dtypes) takes PEFT's forward unchanged.
"""

from __future__ import annotations

import weakref
from typing import Any

import torch
from peft.tuners.lora.layer import Linear as LoraLinear
from torch import nn


def lora_matmul(
    x2: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None,
    lora_a: torch.Tensor | None,
    lora_b: torch.Tensor | None,
    scaling: float,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """`(x2 Wᵀ + b + s·(x2 Aᵀ) Bᵀ, x2 Aᵀ)` for a 2-D input; no LoRA term where `lora_a` is None."""
    xa = x2 @ lora_a.t() if lora_a is not None else None
    out = torch.addmm(bias, x2, weight.t()) if bias is not None else x2 @ weight.t()
    if xa is not None and lora_b is not None:
        out.addmm_(xa, lora_b.t(), alpha=scaling)
    return out, xa


def lora_matmul_grads(
    g: torch.Tensor, saved: tuple[Any, ...], scaling: float, need: tuple[bool, ...]
) -> tuple[torch.Tensor | None, ...]:
    """Gradients `(dx, dW, db, dA, dB)` of `lora_matmul` for the output gradient `g` (2-D);
    `saved` is `(x2, xa, weight, lora_a, lora_b, has_bias)`, `need` the five inputs' flags."""
    x2, xa, weight, lora_a, lora_b, has_bias = saved
    # Gradient at the rank-r bottleneck, scaled there: (tokens × r), not (tokens × out).
    lora = lora_a is not None and (need[0] or need[3])
    g_mid = (g @ lora_b).mul_(scaling) if lora else None
    dx = None
    if need[0]:
        dx = g @ weight
        if g_mid is not None:
            dx.addmm_(g_mid, lora_a)
    dw = g.t() @ x2 if need[1] else None
    db = g.sum(0) if has_bias and need[2] else None
    da = g_mid.t() @ x2 if g_mid is not None and need[3] else None
    dbb = (g.t() @ xa).mul_(scaling) if xa is not None and need[4] else None
    return dx, dw, db, da, dbb


class _LoraLinearFn(torch.autograd.Function):
    @staticmethod
    def forward(  # type: ignore[override]
        ctx: Any,
        x: torch.Tensor,
        weight: torch.Tensor,
        bias: torch.Tensor | None,
        lora_a: torch.Tensor,
        lora_b: torch.Tensor,
        scaling: float,
    ) -> torch.Tensor:
        shape = x.shape
        x2 = x.reshape(-1, shape[-1])
        out, xa = lora_matmul(x2, weight, bias, lora_a, lora_b, scaling)
        ctx.save_for_backward(x2, xa, weight, lora_a, lora_b)
        ctx.scaling, ctx.shape, ctx.has_bias = scaling, shape, bias is not None
        return out.view(*shape[:-1], out.shape[-1])

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor | None, ...]:  # type: ignore[override]
        saved = (*ctx.saved_tensors, ctx.has_bias)
        g = grad.reshape(-1, grad.shape[-1])
        dx, dw, db, da, dbb = lora_matmul_grads(g, saved, ctx.scaling, ctx.needs_input_grad[:5])
        return dx.view(ctx.shape) if dx is not None else None, dw, db, da, dbb, None


class FusedLoraLinear(LoraLinear):  # type: ignore[misc]
    """PEFT's LoRA linear layer with the single-node forward above where it applies."""

    def forward(self, x: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
        low: torch.dtype = self.base_layer.weight.dtype  # type: ignore[assignment]
        if low in _LOW and low != x.dtype and not torch.is_autocast_enabled(x.device.type):
            # A base kept in bf16 (`store_frozen_base`) outside autocast (validation answers,
            # the adapter switched off): computed as in training, back in the input's dtype.
            with torch.autocast(x.device.type, dtype=low):
                return self.forward(x, *args, **kwargs).to(x.dtype)  # type: ignore[no-any-return]
        name = self._plain_adapter(args, kwargs)
        if name is None:
            return super().forward(x, *args, **kwargs)  # type: ignore[no-any-return]
        base, lora_a, lora_b = self.base_layer, self.lora_A[name], self.lora_B[name]
        if torch.is_autocast_enabled(x.device.type):
            # PEFT's ops (autocast casts weights, cached per step), on a shared input cast.
            shared = _shared_cast(x, torch.get_autocast_dtype(x.device.type))
            return base(shared) + lora_b(lora_a(shared)) * self.scaling[name]  # type: ignore[no-any-return]
        if not all(w.dtype == x.dtype for w in (base.weight, lora_a.weight, lora_b.weight)):
            return super().forward(x, *args, **kwargs)  # type: ignore[no-any-return]
        return _LoraLinearFn.apply(  # type: ignore[no-any-return]
            x, base.weight, base.bias, lora_a.weight, lora_b.weight, self.scaling[name]
        )

    def _plain_adapter(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> str | None:
        """The one plain LoRA adapter this call would apply, or None for PEFT's own path."""
        if args or kwargs or self.disable_adapters or self.merged:
            return None
        active = [a for a in self.active_adapters if a in self.lora_A]
        if len(active) != 1 or type(self.base_layer) is not nn.Linear:
            return None
        name: str = active[0]
        if name in self.lora_variant or not isinstance(self.lora_dropout[name], nn.Identity):
            return None
        return None if getattr(self, "fan_in_fan_out", False) else name


_LOW = (torch.bfloat16, torch.float16)

# The last input cast: [weak ref to the source, (its version, dtype, grad mode), the cast].
# One slot is enough: the layers that read one tensor (q, k, v; gate, up) run one after another.
_LAST_CAST: list[Any] = []


def _shared_cast(x: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """`x.to(dtype)`, reusing the previous call's result when it cast this very tensor."""
    if x.dtype == dtype:
        return x
    key = (x._version, dtype, torch.is_grad_enabled())
    if _LAST_CAST and _LAST_CAST[0]() is x and _LAST_CAST[1] == key:
        return _LAST_CAST[2]  # type: ignore[no-any-return]
    cast = x.to(dtype)
    _LAST_CAST[:] = [weakref.ref(x), key, cast]
    return cast


def fuse_lora_layers(model: nn.Module) -> int:
    """Give every PEFT LoRA linear layer of `model` the fused forward; returns how many."""
    count = 0
    for module in model.modules():
        if type(module) is LoraLinear:
            module.__class__ = FusedLoraLinear
            count += 1
    return count


def store_frozen_base(model: nn.Module, dtype: torch.dtype) -> int:
    """Keep the frozen base weights of the fused LoRA layers in `dtype`; how many layers.

    For runs under `dtype` autocast (bf16 on CPU): autocast casts a frozen fp32 weight afresh
    in every forward (it caches only weights that train) and keeps that copy for backward.
    Stored in `dtype`, the weight is what autocast would have made of it, so every output and
    gradient is the same bits, without the fp32 copy or the casts. Training only: the export
    merges the adapter into the base loaded afresh from disk.
    """
    count = 0
    for module in model.modules():
        if not isinstance(module, FusedLoraLinear) or type(module.base_layer) is not nn.Linear:
            continue
        base = module.base_layer
        if base.weight.requires_grad or base.weight.dtype != torch.float32:
            continue
        base.weight = nn.Parameter(base.weight.detach().to(dtype), requires_grad=False)
        if base.bias is not None and not base.bias.requires_grad:
            base.bias = nn.Parameter(base.bias.detach().to(dtype), requires_grad=False)
        count += 1
    if count:
        _own_copies(model)
    return count


def _own_copies(model: nn.Module) -> None:
    """Give the other frozen fp32 weights (embeddings, norms) memory of their own.

    Weights loaded from safetensors share one mapping of the file; while the embeddings hold it,
    every page the replaced fp32 weights were read from stays mapped and counted (+0.3 GB RSS
    on SmolLM2-135M, BENCHMARKS.md).
    """
    for param in model.parameters():
        if param.dtype == torch.float32 and not param.requires_grad:
            param.data = param.data.clone()


def frozen_base_dtype(model: nn.Module) -> str | None:
    """The dtype the fused LoRA layers' base weights are kept in (run.json), None without any."""
    dtypes = {
        str(m.base_layer.weight.dtype).removeprefix("torch.")
        for m in model.modules()
        if isinstance(m, FusedLoraLinear)
    }
    return ",".join(sorted(dtypes)) or None
