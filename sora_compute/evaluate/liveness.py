"""The liveness evaluator: the peak of live tensor bytes while a ledger runs without gradients, from the ledger's
own dataflow (``Flow`` records).

A tensor lives from the op that makes it to the last op that reads it (or a view of it); a view allocates nothing
and keeps its base alive; tensors the caller holds (a segment's inputs, by default) live to the segment's end;
scratch lives only during its op. Repeated blocks are one segment each: every instance of a block starts from the
same live set, so one instance gives the run's peak. Chunked and tiled execution are ledger structure (segments
and the tensors held between them), not special cases here.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from sora_compute.ledger.formulas import Number
from sora_compute.ledger.ops import Flow, Op

__all__ = ["Segment", "segment_peak", "peak_bytes", "ledger_peak", "attention_scratch"]


@dataclass(frozen=True)
class Segment:
    """Ops that run in order on top of ``inputs`` (name -> elements), which the caller holds throughout unless
    listed in ``released`` (then they are freed after their last read); ``base`` bytes are live underneath (tensors
    held across segments: text tokens read by every block, a position table)."""

    ops: Sequence[Op]
    inputs: Mapping[str, Number]
    released: frozenset[str] = frozenset()
    base: Number = 0


def attention_scratch(op: Op, kernel: str) -> Number:
    """Elements an attention core holds while it runs besides its output: none for a fused kernel. A materialised
    core holds, one moment after another, the scores beside contiguous copies of the strided per-head q and k
    (several heads, unless the op's dims say its inputs are ``contiguous``; with one head the views go to the matmul
    as they are), the scores and their scaled (then
    softmaxed) copy, and the probabilities beside the output: the largest of these, less the output, which the
    evaluator counts from the op's start."""
    if op.op != "sdpa" or kernel != "materialized":
        return 0
    g, h, q, k, hd = (op.dims[n] for n in ("groups", "heads", "q_len", "k_len", "head_dim"))
    scores, out = g * h * q * k, g * h * q * hd
    copies = g * h * (q + k) * hd if h > 1 and not op.dims.get("contiguous") else 0
    return scores + _max(_max(copies, scores), out) - out


def _steps(ops: Sequence[Op]) -> list[tuple[Op, Flow]]:
    """Every op's flows in order (an op may carry several steps), each with its op."""
    out: list[tuple[Op, Flow]] = []
    for op in ops:
        f = op.flow
        if isinstance(f, Flow):
            out.append((op, f))
        elif f is not None:
            out += [(op, step) for step in f]
    return out


def _nbytes(numel: Number, dtype: str, act_bytes: int) -> Number:
    return numel * {"act": act_bytes, "stat": 4, "int64": 8, "byte": 1}[dtype]


def segment_peak(seg: Segment, act_bytes: int = 2, kernel: str = "fused") -> Number:
    """Peak live bytes of one segment (its base included); attention cores run with ``kernel`` (fused or
    materialized, see ``attention_scratch``)."""
    steps = _steps(seg.ops)
    storage: dict[str, str] = {name: name for name in seg.inputs}  # tensor -> the storage it lives in
    size: dict[str, Number] = {name: _nbytes(n, "act", act_bytes) for name, n in seg.inputs.items()}
    last: dict[str, int] = {name: (-1 if name in seg.released else len(steps)) for name in seg.inputs}
    for k, (op, f) in enumerate(steps):
        for name in f.reads:
            if name not in storage:
                raise KeyError(f"{op.path} reads {name!r}, which no earlier op makes")
            last[storage[name]] = max(last[storage[name]], k)
        if f.out is not None:
            if f.view_of is not None:
                storage[f.out] = storage[f.view_of]
                last[storage[f.out]] = max(last[storage[f.out]], k)
            else:
                storage[f.out] = f.out
                size[f.out] = _nbytes(f.numel, f.dtype, act_bytes)
                last[f.out] = max(last.get(f.out, k), k)
    live: Number = sum(size[name] for name in seg.inputs) + seg.base
    peak: Number = live
    for k, (op, f) in enumerate(steps):
        if f.out is not None and f.view_of is None:
            live = live + size[f.out]
        peak = _max(peak, live + _nbytes(f.scratch, f.scratch_dtype or f.dtype, act_bytes)
                    + _nbytes(attention_scratch(op, kernel), f.dtype, act_bytes))
        for name in {storage[n] for n in (*f.reads, *((f.out,) if f.out else ()))}:
            if last[name] == k:
                live = live - size[name]
                last[name] = len(steps) + 1  # freed once
    return peak


def _max(a: Number, b: Number) -> Number:
    try:
        return max(a, b)
    except ValueError:  # numpy arrays: elementwise
        import numpy as np
        return np.maximum(a, b)


def peak_bytes(segments: Iterable[Segment], act_bytes: int = 2, kernel: str = "fused") -> Number:
    """The largest segment peak: segments run one after another, each on top of its base."""
    peak: Number = 0
    for seg in segments:
        peak = _max(peak, segment_peak(seg, act_bytes, kernel))
    return peak


def ledger_peak(ops: Sequence[Op], act_bytes: int = 2) -> Number:
    """Peak live bytes of a whole ledger run once without gradients, from its ops' dataflow.

    A name made again is a new tensor (reads name the latest one); a view shares its base's storage. A storage
    lives from the op that makes it to its last reader, except that one made before a run of repeated blocks (ops
    with the same ``blocks``) and read inside it lives to the run's end: every instance reads it (a layer's input,
    which the caller's loop holds until the layer returns; a position table). One instance of each run is walked:
    every instance starts from the same live set; a storage a step ``drops`` (a run whose instance is a chain of
    calls: the input of the first, released when it returns) lives to its last read instead. Scratch lives only during
    its op (its step, for an op of several steps: a repeated block's ops and their steps run in order, one instance
    walked)."""
    steps = _steps(ops)
    flows = [op for op, _ in steps]
    run_start: list[int] = []
    run_end: list[int] = []
    for k, op in enumerate(flows):
        same = k > 0 and op.blocks is not None and op.blocks == flows[k - 1].blocks
        run_start.append(run_start[k - 1] if same else k)
    for k in range(len(flows) - 1, -1, -1):
        op = flows[k]
        same = k + 1 < len(flows) and op.blocks is not None and op.blocks == flows[k + 1].blocks
        run_end.append(run_end[-1] if same else k)
    run_end.reverse()
    current: dict[str, int] = {}  # name -> storage
    size: list[Number] = []
    born: list[int] = []
    death: list[int] = []
    last: list[int] = []  # the last step reading each storage (no run extension)
    dropped: dict[int, int] = {}
    for k, (op, f) in enumerate(steps):
        for name in f.reads:
            if name not in current:
                raise KeyError(f"{op.path} reads {name!r}, which no earlier op makes")
            s = current[name]
            end = run_end[k] if op.blocks is not None and born[s] < run_start[k] else k
            death[s] = max(death[s], end)
            last[s] = max(last[s], k)
        for name in f.drops:
            dropped[current[name]] = k
        if f.out is not None:
            if f.view_of is not None:
                current[f.out] = current[f.view_of]
                death[current[f.out]] = max(death[current[f.out]], k)
                last[current[f.out]] = max(last[current[f.out]], k)
            else:
                current[f.out] = len(size)
                size.append(_nbytes(f.numel, f.dtype, act_bytes))
                born.append(k)
                death.append(k)
                last.append(k)
    for s, k in dropped.items():  # let go when the step ends, unless read later
        death[s] = max(last[s], k)
    freed: dict[int, Number] = {}
    for s, k in enumerate(death):
        freed[k] = freed.get(k, 0) + size[s]
    live: Number = 0
    peak: Number = 0
    made = {k: s for s, k in enumerate(born)}
    for k, (_, f) in enumerate(steps):
        if k in made:
            live = live + size[made[k]]
        peak = _max(peak, live + _nbytes(f.scratch, f.scratch_dtype or f.dtype, act_bytes))
        live = live - freed.get(k, 0)
    return peak
