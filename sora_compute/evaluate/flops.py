"""The FLOPs evaluator: a ledger's ops counted under a convention, with totals, per-kind sums and the per-module
DataFrame.

The terms of a ``Count`` are ledger ops (``ledger/ops.py``; ``Term`` is the same record) with the convention
applied. Repeated transformer blocks are one term with the block indices it applies to, so a whole-model total
costs a dozen multiplications whatever the depth; ``Count.breakdown()`` expands them into one row per concrete
module (``blocks.0.attn.qkv``, ``blocks.1.attn.qkv``, ...). Elementwise ops, which neither profiler counts, are
left out of the terms; a Count keeps them apart (``uncounted``) for the time and traffic evaluators, which read
``timed_ops``: the whole ledger in its order.

A pass that calls its ledger several times on a few shapes (a tiled VAE decode: every tile, overlaps recomputed) is
a Count of weighted calls (``count_calls``): each distinct ledger counted once and its terms scaled by its calls
(a number, or over a grid of clips a ``Gather`` of per-point calls), and the time model prices each distinct ledger
once, at its own shapes, weighted the same way (``Count.timed_calls``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from sora_compute._frames import FrameRepr
from sora_compute.evaluate.gather import Gather
from sora_compute.ledger.formulas import CountingConvention, Number
from sora_compute.ledger.ops import UNCOUNTED_OPS, Op, counted_macs, revise

__all__ = ["Term", "Count", "Calls", "count_ops", "count_calls"]

Term = Op  # a counted ledger op
#: ledgers and how many times each is called: a number, or (a grid of clips) a ``Gather`` of per-point calls
Calls = tuple[tuple[tuple[Op, ...], Number | Gather], ...]


def _int_or_float_column(values: list[Number]) -> pd.Series:
    """Exact Python ints while they fit int64, else object ints (exact) — never a silent overflow."""
    if all(isinstance(v, int) for v in values):
        if all(-(2**63) < v < 2**63 for v in values):
            return pd.Series(values, dtype="int64")
        return pd.Series(values, dtype=object)
    return pd.Series([float(v) for v in values], dtype="float64")


@dataclass(frozen=True, repr=False)
class Count(FrameRepr):
    """Operation count of one component (``dit_forward``, ``vae_encode``, ``vae_decode``, ``text_encode``).

    ``macs`` are multiply-accumulates (fvcore's "flops"); ``flops`` = 2 x ``macs``. Scalar inputs
    give exact Python ints; array inputs (vectorised sweeps) give float64 arrays.
    """

    component: str
    terms: tuple[Term, ...]
    convention: CountingConvention
    shape: dict[str, Number] = field(default_factory=dict)
    #: the ledger's ops the terms leave out (elementwise work: modulation, gates, residual adds, activations,
    #: copies; lookups) with their positions in the ledger, for the time model: they cost memory traffic and launches
    uncounted: tuple[tuple[int, Op], ...] = ()
    #: a Count of weighted calls (``count_calls``): each distinct ledger's timed ops and its calls; () for one ledger
    calls: Calls = ()

    @property
    def timed_calls(self) -> Calls:
        """The ledgers the time model prices, each with its calls: the distinct ledgers of a Count of weighted calls,
        else the one ledger (``timed_ops``) once."""
        return self.calls or ((self.timed_ops, 1),)

    @property
    def term_calls(self) -> Calls:
        """``timed_calls`` without the ops the count leaves out (each call's counted terms, unscaled), for evaluators
        that price the terms alone."""
        if not self.calls:
            return ((self.terms, 1),)
        return tuple((tuple(op for op in ops if op.op not in UNCOUNTED_OPS), n) for ops, n in self.calls)

    @property
    def timed_ops(self) -> tuple[Op, ...]:
        """Every op of the ledger the time model prices, in ledger order: the terms with the uncounted ops put back
        where they were (the terms alone when the Count was built from terms); for weighted calls each call's ledger
        in turn (over a grid of clips there is no one ledger: price ``timed_calls``)."""
        if self.calls:
            called: list[Op] = []
            for ledger, n in self.calls:
                if isinstance(n, Gather):
                    raise ValueError(f"{self.component}: calls on tiles of a grid of clips; time them per distinct "
                                     "shape (Count.timed_calls, evaluate/time_grid.calls_seconds)")
                called += list(ledger) * int(n)
            return tuple(called)
        if not self.uncounted:
            return self.terms
        ops = list(self.terms)
        for i, op in self.uncounted:  # positions ascending: each insert lands where the ledger had it
            ops.insert(i, op)
        return tuple(ops)

    @property
    def macs(self) -> Number:
        total: Number = 0
        for t in self.terms:
            total = total + t.total_macs
        return total

    @property
    def flops(self) -> Number:
        return 2 * self.macs

    @property
    def elements(self) -> Number:
        """Minimum memory traffic of all terms, in tensor elements (multiply by bytes per element)."""
        total: Number = 0
        for t in self.terms:
            total = total + t.elements * t.instances
        return total

    def by_kind(self) -> dict[str, Number]:
        """MACs summed per module kind (attention, mlp, ...)."""
        out: dict[str, Number] = {}
        for t in self.terms:
            out[t.kind] = out.get(t.kind, 0) + t.total_macs
        return out

    def module_macs(self) -> dict[str, Number]:
        """MACs per concrete module path, rolled up to every ancestor ('' is the whole component)."""
        out: dict[str, Number] = {}
        for t in self.terms:
            for path in t.paths():
                parts = path.split(".")
                for k in range(len(parts) + 1):
                    key = ".".join(parts[:k])
                    out[key] = out.get(key, 0) + t.macs
        return out

    def breakdown(self) -> pd.DataFrame:
        """One row per counted module: module path, kind, op, MACs, FLOPs (= 2 x MACs), share of total."""
        rows = [(path, t.kind, t.op, t.macs) for t in self.terms for path in t.paths()]
        if any(isinstance(r[3], np.ndarray) and r[3].ndim > 0 for r in rows):
            raise ValueError("breakdown() needs scalar shapes; use by_kind() or macs for vectorised counts")
        macs = [r[3] if isinstance(r[3], int) else float(r[3]) for r in rows]
        total = sum(macs)
        df = pd.DataFrame({
            "module": [r[0] for r in rows],
            "kind": [r[1] for r in rows],
            "op": [r[2] for r in rows],
            "macs": _int_or_float_column(macs),
            "flops": _int_or_float_column([2 * m for m in macs]),
            "share": [float(m) / float(total) if total else 0.0 for m in macs],
        })
        df.attrs.update(component=self.component, convention=self.convention.name, units="MACs; FLOPs = 2 x MACs")
        return df

    def to_frame(self) -> pd.DataFrame:
        """Per-module breakdown (scalar shapes) or per-kind MACs (vectorised counts)."""
        try:
            return self.breakdown()
        except ValueError:
            return pd.DataFrame({"kind": list(self.by_kind()), "macs": list(self.by_kind().values())})

    def __repr__(self) -> str:
        m = self.macs
        text = f"{float(m):.4g}" if np.ndim(m) == 0 else f"array{np.shape(m)}"
        return f"Count({self.component}: {text} MACs, {len(self.terms)} terms, convention={self.convention.name})"


def count_ops(component: str, ops: Iterable[Op], convention: CountingConvention,
              shape: dict[str, Number] | None = None) -> Count:
    """Count a ledger's ops under ``convention``: the ops either profiler counts (elementwise work left out), with
    norms and resampling zeroed when the convention drops them."""
    terms = []
    uncounted = []
    for i, op in enumerate(ops):
        if op.op in UNCOUNTED_OPS:
            uncounted.append((i, op))
            continue
        macs = counted_macs(op, convention)
        terms.append(op if macs is op.macs else  # a norm or resampling op the convention drops (no replace(): slow)
                     Op(op.path, op.kind, op.op, macs, op.blocks, op.elements, op.weights, op.dims, op.saved, op.flow))
    return Count(component, tuple(terms), convention, dict(shape or {}), tuple(uncounted))


def count_calls(component: str, calls: Iterable[tuple[Iterable[Op], Number | Gather]], convention: CountingConvention,
                shape: dict[str, Number] | None = None) -> Count:
    """Count ledgers each called ``n`` times: whole numbers of calls, each distinct ledger's terms with their MACs and
    traffic times ``n`` (exact ints); a ``Gather`` (one ledger evaluated on the distinct shapes of a grid), a term per
    op summed over each grid point's calls, so every point equals its single-shape count. The time model prices each
    ledger once, at its own shapes (``Count.timed_calls``; its terms alone: ``Count.term_calls``)."""
    counted = [(count_ops(component, ops, convention), n) for ops, n in calls]
    if len(counted) > 1 and any(isinstance(n, Gather) for _, n in counted):
        raise ValueError("count_calls: a Gather weighs the one ledger of a grid's distinct shapes, not one of several")
    timed = tuple((c.timed_ops, n) for c, n in counted)
    terms: list[Term] = []
    if len(counted) == 1 and isinstance(counted[0][1], Gather):
        c, g = counted[0]
        total = g.total(_per_shape(c.terms)).T
        terms = [revise(t, macs=total[2 * k].reshape(g.shape), elements=total[2 * k + 1].reshape(g.shape))
                 for k, t in enumerate(c.terms)]
    else:  # each distinct ledger's terms times its calls: a roofline per term stays the sum over its calls
        terms = [t if n == 1 else revise(t, macs=t.macs * n, elements=t.elements * n)
                 for c, n in counted for t in c.terms]
    return Count(component, tuple(terms), convention, dict(shape or {}), (), timed)


def _per_shape(terms: tuple[Term, ...]) -> np.ndarray:
    """(distinct shapes, 2 x terms): each term's MACs and traffic per instance at each shape of a ledger evaluated on
    arrays of distinct shapes."""
    size = max((np.size(v) for t in terms for v in (t.macs, t.elements)), default=1)
    return np.stack([np.broadcast_to(np.asarray(v, dtype=np.float64).ravel(), (size,))
                     for t in terms for v in (t.macs, t.elements)], axis=1)
