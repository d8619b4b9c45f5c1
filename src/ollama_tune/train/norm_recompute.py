"""RMSNorm outputs recomputed in the backward pass instead of kept from the forward pass.

Each decoder layer's two RMSNorm outputs are kept for backward by the projections that read them
(q, k, v; gate, up: their input is needed for the LoRA A or weight gradient) — 9 MB per SmolLM2
layer at batch 4 × 512 tokens in fp32, 0.27 GB for the 135M model. The norm's input is kept
anyway (the norm's own backward needs it), and the norm is five elementwise passes over it, so
the output can be rebuilt from it when the backward pass asks, with the norm's own ops: the same
bits (BENCHMARKS.md, issue 16).

How: the norm (`recompute_norms` swaps in a subclass whose forward is the model's own) registers
each output it returns; inside `recipes()` — entered around a training forward — a
`saved_tensors_hooks` pack hook keeps, for a tensor that is a registered output (or a view of
it), the norm and its input instead; the unpack hook runs the norm again. A norm input changed in
place, another RMSNorm body, or a forward outside `recipes()` keeps the tensor as usual.
Gradient checkpointing's own hooks take precedence inside checkpointed layers.
"""

from __future__ import annotations

import contextlib
import inspect
import weakref
from collections.abc import Iterator
from typing import Any

import torch
from torch import nn

# The forward body `recompute_norms` recognises (142 RMSNorm classes of transformers 5.24).
_BODY = (
    "input_dtype = hidden_states.dtype",
    "hidden_states = hidden_states.to(torch.float32)",
    "variance = hidden_states.pow(2).mean(-1, keepdim=True)",
    "hidden_states = hidden_states * torch.rsqrt(variance + self.variance_epsilon)",
    "return self.weight * hidden_states.to(input_dtype)",
)

# While `recipes()` is active: output storage address -> _Entry of the norm that returned it.
_OUTPUTS: dict[int, _Entry] | None = None
_SWAPPED: dict[type, type] = {}
RECOMPUTE = True  # the bench's --norm-recompute off sets False for A/B runs


class _Entry:
    """A norm's output (weakly), the norm, its input and both tensors' versions at the time.

    The projections that read one output (q, k, v) each ask for it in backward, one after
    another: it is rebuilt once and handed to each, then dropped after the last one.
    """

    def __init__(self, out: torch.Tensor, norm: nn.Module, x: torch.Tensor) -> None:
        self.out, self.norm, self.x = weakref.ref(out), norm, x
        self.versions = (out._version, x._version)
        self.nbytes = out.untyped_storage().nbytes()
        self.pending = 0  # packed views not yet unpacked
        self.rebuilt: torch.Tensor | None = None

    def rebuild(self) -> torch.Tensor:
        if self.x._version != self.versions[1]:
            raise RuntimeError("an RMSNorm input was changed in place before backward")
        out = self.rebuilt
        if out is None:
            own: Any = super(type(self.norm), self.norm)  # the model's own norm forward
            with torch.no_grad():  # the same ops on the same input: the same bits
                out = own.forward(self.x)
        self.pending -= 1
        self.rebuilt = out if self.pending > 0 else None
        return out


class _Recipe:
    """What a packed norm output becomes: its norm's entry and the view the node kept."""

    def __init__(self, entry: _Entry, view: torch.Tensor) -> None:
        self.entry = entry
        self.view = (view.shape, view.stride(), view.storage_offset())
        entry.pending += 1

    def rebuild(self) -> torch.Tensor:
        return self.entry.rebuild().as_strided(*self.view)


def _pack(t: torch.Tensor) -> Any:
    entry = _OUTPUTS.get(t.untyped_storage().data_ptr()) if _OUTPUTS else None
    if entry is None or entry.out() is None or entry.nbytes != t.untyped_storage().nbytes():
        return t
    if (t._version, entry.x._version) != entry.versions:  # changed in place since: keep it
        return t
    return _Recipe(entry, t)


def _unpack(packed: Any) -> torch.Tensor:
    return packed.rebuild() if isinstance(packed, _Recipe) else packed


@contextlib.contextmanager
def recipes() -> Iterator[None]:
    """Training forwards inside keep recipes for RMSNorm outputs instead of the outputs."""
    global _OUTPUTS
    if not _SWAPPED or _OUTPUTS is not None or not torch.is_grad_enabled():
        yield
        return
    _OUTPUTS = {}
    try:
        with torch.autograd.graph.saved_tensors_hooks(_pack, _unpack):
            yield
    finally:
        _OUTPUTS = None


def _forward(self: Any, hidden_states: torch.Tensor) -> torch.Tensor:
    out: torch.Tensor = super(type(self), self).forward(hidden_states)
    if _OUTPUTS is not None and out.is_contiguous() and out.storage_offset() == 0:
        _OUTPUTS[out.untyped_storage().data_ptr()] = _Entry(out, self, hidden_states)
    return out


def _is_rmsnorm(module: nn.Module) -> bool:
    try:
        lines = inspect.getsource(type(module).forward).splitlines()[1:]
    except (OSError, TypeError):
        return False
    return tuple(line.strip() for line in lines if line.strip()) == _BODY


def recompute_norms(model: nn.Module) -> int:
    """Let every RMSNorm of `model` be recomputed in backward under `recipes()`; how many."""
    count = 0
    for module in model.modules() if RECOMPUTE else ():
        cls = type(module)
        if cls in _SWAPPED.values() or not _is_rmsnorm(module):
            continue
        if cls not in _SWAPPED:
            _SWAPPED[cls] = type(f"Recomputed{cls.__name__}", (cls,), {"forward": _forward})
        module.__class__ = _SWAPPED[cls]
        count += 1
    return count


def recomputed_norms(model: nn.Module) -> int:
    """How many norms of `model` are recomputed in backward (run.json records it)."""
    swapped = set(_SWAPPED.values())
    return sum(type(m) in swapped for m in model.modules())
