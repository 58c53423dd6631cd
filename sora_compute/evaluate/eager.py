"""What a ledger op runs as in eager PyTorch beyond its own kernel (``data/eager_ops.yaml``): extra kernels, view
ops and the extra traffic of the intermediates they write and read.

    extra seconds per instance = kernels x kernel floor + views x view floor   (host / launch time)
    extra elements per instance = passes x output elements of the op          (memory traffic)

The floors come from the hardware profile (``launch_overhead_us``, ``dispatch_overhead_us``; see
``evaluate/time.py``). Counts are read off the reference implementation and checked against the ATen ops its forward
dispatches; nothing here is fitted to a time.
"""

from __future__ import annotations

from functools import cache
from importlib import resources
from typing import NamedTuple

import yaml
from pydantic import BaseModel, Field

from sora_compute.finite import SPEC_CONFIG
from sora_compute.ledger.formulas import Number
from sora_compute.ledger.ops import NORM_OPS, Op

__all__ = ["EagerExtra", "eager_extra", "aten_calls", "output_elements", "NONE"]


class _Entry(BaseModel):
    model_config = SPEC_CONFIG

    op: str = Field(min_length=1)
    path: str | None = None
    kind: str | None = None
    what: str | None = None
    when: str | None = None  # a dims flag (1, or 0/1 per shape) the entry applies under; else the next match
    kernels: int = Field(default=0, ge=0)
    views: int = Field(default=0, ge=0)
    modules: int = Field(default=0, ge=0)
    passes: float = Field(default=0, ge=0)
    casts: int = Field(default=0, ge=0)  # extra kernels that run only with 16-bit activations (dtype casts)
    cast_passes: float = Field(default=0, ge=0)  # extra elements they (and fp32 steps between them) move
    source: str = Field(min_length=1)


class _File(BaseModel):
    model_config = SPEC_CONFIG

    ops: list[_Entry]


class EagerExtra(NamedTuple):
    """Per op instance: extra kernels, view ops and container-module calls (``views``: both, priced alike), and extra
    elements moved (a number or an array; so are the counts of an entry that applies under a per-shape flag)."""

    kernels: Number
    views: Number
    elements: Number


NONE = EagerExtra(0, 0, 0)


@cache
def _entries() -> tuple[_Entry, ...]:
    text = resources.files("sora_compute").joinpath("data/eager_ops.yaml").read_text()
    return tuple(_File.model_validate(yaml.safe_load(text)).ops)


def output_elements(op: Op) -> Number:
    """Elements an op writes, from its dims (numbers or numpy arrays, as the ledger's shapes): elementwise
    ``written``; attention core groups x heads x q_len x head_dim; a norm its elements; linear tokens x fan_out;
    convolution c_out x output positions; 0 when its dims do not say."""
    d = op.dims
    if op.op == "elementwise" and "written" in d:
        return d["written"]
    if op.op == "sdpa" and {"groups", "heads", "q_len", "head_dim"} <= d.keys():
        return d["groups"] * d["heads"] * d["q_len"] * d["head_dim"]
    if op.op in NORM_OPS and "numel" in d:
        return d["numel"]
    if op.op == "linear" and {"tokens", "fan_out"} <= d.keys():
        return d["tokens"] * d["fan_out"]
    if "c_out" in d and ("voxels" in d or "tokens" in d):  # a convolution (the DiT's patch embedding: tokens)
        return d["c_out"] * d.get("voxels", d.get("tokens"))
    return 0


@cache
def _entry(cls: str, path: str, kind: str, what: str | None, flags: frozenset[str] = frozenset()) -> _Entry | None:
    """The first entry matching an op of class ``cls`` at ``path`` of ``kind`` (``what``: an elementwise op's): one that
    applies under one of the op's dims ``flags`` first, else one that applies under none."""
    for flagged in (True, False):  # an entry under a flag the op has comes before the others
        for e in _entries():
            if (e.op == cls and e.path in (None, path) and e.kind in (None, kind) and e.what in (None, what)
                    and (e.when in flags if flagged else e.when is None)):
                return e
    return None


@cache
def _flag_keys() -> frozenset[str]:
    return frozenset(e.when for e in _entries() if e.when is not None)


def _match(op: Op, flags: bool = True) -> _Entry | None:
    keys = frozenset(k for k in _flag_keys() if k in op.dims) if flags else frozenset()
    return _entry(op.op, op.path, op.kind, op.dims.get("what") if op.op == "elementwise" else None, keys)


def _extra(e: _Entry | None, op: Op, bytes_per_element: int) -> EagerExtra:
    if e is None:
        return NONE
    kernels, passes = e.kernels, e.passes
    if bytes_per_element < 4:
        kernels, passes = kernels + e.casts, passes + e.cast_passes
    return EagerExtra(kernels, e.views + e.modules, passes * output_elements(op) if passes else 0)


def eager_extra(op: Op, bytes_per_element: int = 4) -> EagerExtra:
    """The first ``data/eager_ops.yaml`` entry matching ``op`` (its class, and path, kind and ``what`` where the
    entry names them), as extra kernels, views and elements per instance; ``NONE`` when none matches. With 16-bit
    activations (``bytes_per_element`` < 4) an entry's casts and their traffic (``casts``, ``cast_passes``: an fp32
    step inside a 16-bit model) are added; elements are counted in the activation dtype. An entry that applies under
    a dims flag (``when``) counts where the flag is 1 and the next matching entry where it is 0 (per shape)."""
    e = _match(op)
    extra = _extra(e, op, bytes_per_element)
    if e is None or e.when is None:
        return extra
    on = op.dims[e.when]
    off = _extra(_match(op, flags=False), op, bytes_per_element)
    return EagerExtra(*(on * a + (1 - on) * b for a, b in zip(extra, off, strict=True)))


def aten_calls(op: Op) -> int:
    """ATen calls one instance of ``op`` dispatches eagerly: its own kernel, the extra kernels and the view ops (not
    the module calls); what a TorchDispatchMode counts."""
    extra = eager_extra(op)
    return int(1 + extra.kernels + extra.views - _match_modules(op))


def _match_modules(op: Op) -> Number:
    """The container-module calls among ``eager_extra(op).views`` (no ATen call of their own)."""
    e = _match(op)
    if e is None or e.when is None:
        return 0 if e is None else e.modules
    on = op.dims[e.when]
    off = _match(op, flags=False)
    return on * e.modules + (1 - on) * (off.modules if off is not None else 0)
