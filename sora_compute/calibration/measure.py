"""Measured memory of the reference models, the ground truth the analytic memory model is tested against.

- ``saved_activation_bytes``: bytes autograd keeps for backward during a forward, from
  ``torch.autograd.graph.saved_tensors_hooks``, counting each storage once (views of one tensor
  share it) and leaving out parameters.
- ``peak_live_bytes``: the peak of bytes held by tensors created during a call, from a
  ``TorchDispatchMode`` that registers every output storage and a finalizer that forgets it when
  the storage is freed. Kernel-internal workspaces are not seen (they are small on CPU).
Both run on CPU (or any device) at small sizes.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch.autograd.graph import saved_tensors_hooks
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves

__all__ = ["SavedTensors", "saved_activation_bytes", "peak_live_bytes", "LiveTracker"]


@dataclass
class SavedTensors:
    """Storages autograd saved: bytes per storage (first tensor seen: shape, dtype)."""

    storages: dict[int, tuple[int, tuple[int, ...], torch.dtype]] = field(default_factory=dict)

    @property
    def bytes(self) -> int:
        return sum(v[0] for v in self.storages.values())


def saved_activation_bytes(fn: Callable[[], Any], exclude: Iterable[torch.Tensor] = ()) -> tuple[SavedTensors, Any]:
    """Run ``fn()`` with grad enabled; return the storages saved for backward (less ``exclude``, e.g. the
    parameters) and fn's result (keep it alive: the saved tensors live as long as its graph)."""
    skip = {t.untyped_storage().data_ptr() for t in exclude}
    saved = SavedTensors()

    def pack(t: torch.Tensor) -> torch.Tensor:
        st = t.untyped_storage()
        key = st.data_ptr()
        if key not in skip and key not in saved.storages:
            saved.storages[key] = (st.nbytes(), tuple(t.shape), t.dtype)
        return t

    with torch.enable_grad(), saved_tensors_hooks(pack, lambda t: t):
        out = fn()
    return saved, out


class LiveTracker(TorchDispatchMode):
    """Tracks bytes of storages created under the mode; ``peak`` is the high-water mark."""

    def __init__(self) -> None:
        super().__init__()
        self.live = 0
        self.peak = 0
        self._tracked: set[int] = set()

    def _forget(self, key: int, nbytes: int) -> None:
        self._tracked.discard(key)
        self.live -= nbytes

    def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        out = func(*args, **(kwargs or {}))
        # a view (or in-place result) shares an input's storage: only storages no input has are new
        inputs = {id(t.untyped_storage()) for t in tree_leaves((args, kwargs)) if isinstance(t, torch.Tensor)}
        for t in tree_leaves(out):
            if isinstance(t, torch.Tensor) and t.device.type != "meta":
                st = t.untyped_storage()
                key = id(st)
                if key not in self._tracked and key not in inputs:
                    self._tracked.add(key)
                    self.live += st.nbytes()
                    weakref.finalize(st, self._forget, key, st.nbytes())
        self.peak = max(self.peak, self.live)
        return out


def peak_live_bytes(fn: Callable[[], Any]) -> tuple[int, Any]:
    """Peak bytes of tensors created while ``fn()`` runs (inputs and parameters made before are not counted)."""
    with LiveTracker() as tracker:
        out = fn()
    return tracker.peak, out
