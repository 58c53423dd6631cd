"""The liveness evaluator: the peak of live tensor bytes while a ledger runs without gradients, from the ledger's
own dataflow (``Flow`` records), by one walk (``_walk``).

A tensor lives from the op that makes it to the last op that reads it (or a view of it); a view allocates nothing
and keeps its base alive; scratch (an op's own, in its dtype, and a materialised attention core's) lives only during
its op. Repeated blocks are runs: a tensor made before a run and read inside it lives to the run's end, and every
instance of a block starts from the same live set, so one instance gives the run's peak. ``ledger_peak`` walks a
whole ledger; a ``Segment`` is one instance of a run on top of the tensors its caller holds (made before it; the
ones it releases are dropped, so they live to their last read). Chunked and tiled execution are ledger structure
(segments and the tensors held between them), not special cases here: a module a VAE runs on several chunks or
micro-batches is one record per op carrying one call's dataflow, after a tensor standing for the earlier calls'
outputs (``ledger/vae/common.flows_of``); a module run frame by frame keeps the earlier frames' outputs the same way.
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


def attention_scratch(op: Op, kernel: str, act_bytes: int = 2) -> Number:
    """Elements (of ``act_bytes``) an attention core holds while it runs besides its output: none for a fused kernel.
    A materialised core holds, one moment after another, the scores beside contiguous copies of the strided per-head
    q and k (several heads, unless the op's dims say its inputs are ``contiguous``: 1, or 0/1 per shape of a sweep;
    with one head the views go to the matmul as they are), the scores and their scaled (then softmaxed) copy, and the
    probabilities beside the output: the largest of these, less the output, which the evaluator counts from the op's
    start. A core the code runs unfused whatever the kernel (dims ``math``: 1, or 0/1 per shape; STDiT3's Attention)
    scales q first (a copy, held to the end) and takes its softmax in fp32: the fp32 scores and fp32 probabilities
    live together, later the probabilities cast back beside v's contiguous copy."""
    if op.op != "sdpa":
        return 0
    g, h, q, k, hd = (op.dims[n] for n in ("groups", "heads", "q_len", "k_len", "head_dim"))
    scores, out = g * h * q * k, g * h * q * hd
    math = op.dims.get("math", 0)
    if kernel != "materialized":
        if isinstance(math, int) and not math:
            return 0
        return math * (_max(2 * scores * 4 // act_bytes, scores + g * h * k * hd) + out)
    copies = g * h * (q + k) * hd * (1 - op.dims.get("contiguous", 0)) if h > 1 else 0
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


def _max(a: Number, b: Number) -> Number:
    try:
        return max(a, b)
    except ValueError:  # numpy arrays: elementwise
        import numpy as np
        return np.maximum(a, b)


def _runs(steps: Sequence[tuple[Op, Flow]]) -> tuple[list[int], list[int]]:
    """The first and last step of the run each step belongs to: consecutive steps of ops with the same ``blocks``
    (a repeated block, one instance); any other step is a run of its own."""
    n = len(steps)
    start, end = list(range(n)), list(range(n))
    for k in range(1, n):
        blocks = steps[k][0].blocks
        if blocks is not None and blocks == steps[k - 1][0].blocks:
            start[k] = start[k - 1]
    for k in range(n - 2, -1, -1):
        if start[k + 1] == start[k]:
            end[k] = end[k + 1]
    return start, end


def _walk(steps: Sequence[tuple[Op, Flow]], run_start: Sequence[int], run_end: Sequence[int], act_bytes: int,
          kernel: str, held: Mapping[str, Number], released: frozenset[str], base: Number,
          streamed: int = 0) -> Number:
    """THE liveness walk (``ledger_peak`` and ``segment_peak`` are this): peak live bytes of ``steps``, on top of
    ``base`` bytes and of ``held`` tensors (name -> elements, made before the first step; those ``released`` are
    dropped by their holder, so they live to their last read).

    A name made again is a new tensor (reads name the latest one); a view shares its base's storage. A storage lives
    from the step that makes it to its last reader, except that one made before a run and read inside it lives to the
    run's end (every instance reads it); one a step ``drops`` lives to its last read instead. Scratch (the op's own,
    in its dtype, and a materialised attention core's, ``attention_scratch``) lives only during its step; so do the
    op's own weights when they are ``streamed`` (bytes per weight element; sequential CPU offload brings a module's
    parameters to the GPU for its forward only), during each of its steps."""
    current: dict[str, int] = {}  # name -> storage
    size: list[Number] = []
    born: list[int] = []
    death: list[int] = []
    last: list[int] = []  # the last step reading each storage (no run extension)
    dropped: dict[int, int] = {}

    def make(name: str, nbytes: Number, k: int) -> None:
        current[name] = len(size)
        size.append(nbytes)
        born.append(k)
        death.append(k)
        last.append(k)

    for name, numel in held.items():
        make(name, _nbytes(numel, "act", act_bytes), -1)
        if name in released:
            dropped[current[name]] = -1
    for k, (op, f) in enumerate(steps):
        for name in f.reads:
            if name not in current:
                raise KeyError(f"{op.path} reads {name!r}, which no earlier op makes")
            s = current[name]
            death[s] = max(death[s], run_end[k] if born[s] < run_start[k] else k)
            last[s] = max(last[s], k)
        for name in f.drops:
            dropped[current[name]] = k
        if f.out is not None:
            if f.view_of is not None:
                s = current[f.out] = current[f.view_of]
                death[s] = max(death[s], k)
                last[s] = max(last[s], k)
            else:
                make(f.out, _nbytes(f.numel, f.dtype, act_bytes), k)
    for s, k in dropped.items():  # let go when the step ends, unless read later
        death[s] = max(last[s], k)
    freed: dict[int, Number] = {}
    made: dict[int, Number] = {}
    live: Number = base
    for s, k in enumerate(death):
        freed[k] = freed.get(k, 0) + size[s]
        if born[s] < 0:
            live = live + size[s]
        else:
            made[born[s]] = size[s]
    peak: Number = live
    for k, (op, f) in enumerate(steps):
        if k in made:
            live = live + made[k]
        peak = _max(peak, live + _nbytes(f.scratch, f.scratch_dtype or f.dtype, act_bytes)
                    + _nbytes(attention_scratch(op, kernel, act_bytes), f.dtype, act_bytes) + op.weights * streamed)
        live = live - freed.get(k, 0)
    return peak


def segment_peak(seg: Segment, act_bytes: int = 2, kernel: str = "fused", streamed: int = 0) -> Number:
    """Peak live bytes of one segment (its base included): the segment's ops walked as one instance of a run whose
    inputs are held tensors made before it (``_walk``); attention cores run with ``kernel`` (fused or materialized,
    see ``attention_scratch``); ``streamed``: bytes per weight element of each op's weights, live while it runs."""
    steps = _steps(seg.ops)
    return _walk(steps, [0] * len(steps), [len(steps) - 1] * len(steps), act_bytes, kernel, seg.inputs, seg.released,
                 seg.base, streamed)


def peak_bytes(segments: Iterable[Segment], act_bytes: int = 2, kernel: str = "fused", streamed: int = 0) -> Number:
    """The largest segment peak: segments run one after another, each on top of its base."""
    peak: Number = 0
    for seg in segments:
        peak = _max(peak, segment_peak(seg, act_bytes, kernel, streamed))
    return peak


def ledger_peak(ops: Sequence[Op], act_bytes: int = 2, kernel: str = "fused", streamed: int = 0) -> Number:
    """Peak live bytes of a whole ledger run once without gradients, from its ops' dataflow (``_walk``).

    Runs are repeated blocks (consecutive ops with the same ``blocks``): a storage made before a run and read inside
    it lives to the run's end (a layer's input, which the caller's loop holds until the layer returns; a position
    table). One instance of each run is walked: every instance starts from the same live set; a storage a step
    ``drops`` (a run whose instance is a chain of calls: the input of the first, released when it returns) lives to
    its last read instead. Scratch lives only during its op (its step, for an op of several steps: a repeated
    block's ops and their steps run in order, one instance walked). ``streamed``: each op's weights live while it
    runs, at that many bytes per element (sequential CPU offload; 0: weights not counted)."""
    steps = _steps(ops)
    run_start, run_end = _runs(steps)
    return _walk(steps, run_start, run_end, act_bytes, kernel, {}, frozenset(), 0, streamed)
