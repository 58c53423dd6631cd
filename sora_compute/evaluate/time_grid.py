"""The time model over a grid of shapes: seconds of a ledger whose shapes are numpy arrays (vectorised sweeps), in each
pass (forward, activation and weight gradients, recomputation) and for a training step, by the same rule as
``evaluate/time.py`` (which takes one shape per call and gives a row per op):

    seconds = instances x (max(FLOPs / (peak x efficiency), bytes / (bandwidth x memory efficiency)) + launch overhead)

with the same efficiency tables, interpolated elementwise (inverse-distance weighting over GEMM and convolution
points, piecewise-linear curves over attention lengths and memory-op sizes), and the same pass rules (GEMM shapes
transposed in the backward passes, the attention backward at 2.5x its forward FLOPs, norm and elementwise backward
at their read/written traffic). Ops doing no work cost nothing.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import cast

import numpy as np

from sora_compute.evaluate.eager import NONE, eager_extra
from sora_compute.evaluate.gather import Gather
from sora_compute.evaluate.kernels import IDW_NEIGHBOURS, Efficiencies, efficiencies, kernel_head_dim, uses_mkldnn
from sora_compute.evaluate.time import (
    ATTENTION_BWD_FACTOR,
    CONV_OPS,
    EAGER_PASSES,
    NO_WORK_OPS,
    PASSES,
    _setup,
    eager_floors,
    recomputed_ops,
)
from sora_compute.hardware.profiles import HardwareProfile
from sora_compute.ledger.ops import Op

__all__ = ["calls_seconds", "forward_seconds", "pass_seconds", "training_seconds"]


def _arr(x: object) -> np.ndarray:
    return np.asarray(x, dtype=np.float64)


def _idw(q: np.ndarray, pts: np.ndarray, vals: np.ndarray) -> np.ndarray:
    """Inverse-squared-distance weighting of ``vals`` over the nearest points, for each row of ``q`` (N x D)."""
    d2 = ((q[:, None, :] - pts[None, :, :]) ** 2).sum(axis=2)
    nearest = d2.argmin(axis=1)
    exact = d2[np.arange(len(q)), nearest] < 1e-12
    if pts.shape[0] > IDW_NEIGHBOURS:
        idx = np.argpartition(d2, IDW_NEIGHBOURS, axis=1)[:, :IDW_NEIGHBOURS]
        d2, v = np.take_along_axis(d2, idx, axis=1), vals[idx]
    else:
        v = np.broadcast_to(vals, d2.shape)
    with np.errstate(divide="ignore", invalid="ignore"):
        w = 1.0 / d2
        out = (w * v).sum(axis=1) / w.sum(axis=1)
    return np.where(exact, vals[nearest], out)


Memo = dict[tuple[int, bytes], np.ndarray]


def _idw_rows(q: np.ndarray, pts: np.ndarray, vals: np.ndarray, memo: Memo) -> np.ndarray:
    """``_idw`` of each row of ``q``, computed once per distinct row (a grid repeats shapes: a constant dim, the same
    GEMM in several ops and passes) and once per distinct query (``memo``, kept for one evaluation)."""
    key = (id(pts), q.tobytes())
    hit = memo.get(key)
    if hit is not None:
        return hit
    varies = np.flatnonzero((q != q[0]).any(axis=0))
    if len(varies) == 0:
        out = np.repeat(_idw(q[:1], pts, vals), len(q))
    elif len(varies) == 1:  # one dim varies (tokens): interpolate at each of its distinct values
        _, first, inverse = np.unique(q[:, varies[0]], return_index=True, return_inverse=True)
        out = _idw(q[first], pts, vals)[inverse.ravel()]
    else:
        out = _idw(q, pts, vals)
    memo[key] = out
    return out


def _log2(*xs: np.ndarray) -> np.ndarray:
    return np.stack([np.log2(np.maximum(x, 1.0)) for x in xs], axis=1)


def _gemm_eff(eff: Efficiencies, m: np.ndarray, n: np.ndarray, k: np.ndarray, memo: Memo) -> np.ndarray:
    if eff.gemm is None:
        return np.full(m.shape, eff.fallback)
    return np.exp(_idw_rows(_log2(m, n, k), *eff.gemm, memo))


def _conv_eff(eff: Efficiencies, macs: np.ndarray, elements: np.ndarray, dims: list[np.ndarray] | None,
              memo: Memo, op: Op | None = None) -> np.ndarray:
    if eff.conv is None or eff.conv_dims is None:
        side = np.maximum(macs, 1.0) ** (1 / 3)
        return _gemm_eff(eff, side, side, side, memo)
    if dims is not None:
        q = _log2(*dims)
        out = np.exp(_idw_rows(q, *eff.conv_dims, memo))
        if op is not None and eff.conv_algorithms and {"batch", "in_size", "kernel"} <= op.dims.keys():
            # the points of the algorithm each shape runs (``Efficiencies.conv_algorithm``, elementwise)
            n = len(q)
            d = {k: np.broadcast_to(_arr(op.dims[k]).ravel(), (n,)) for k in ("batch", "c_in", "voxels", "in_voxels")}
            s2, s3 = (np.broadcast_to(_arr(x).ravel(), (n,)) for x in op.dims["in_size"])
            mkl = uses_mkldnn(d["batch"], d["c_in"], s2, s3, tuple(op.dims["kernel"]), d["voxels"] < d["in_voxels"],
                              eff.threads)
            for algo, where in (("mkldnn", mkl), ("native", ~mkl)):
                family = eff.conv_algorithms.get(algo)
                if family is not None:
                    out = np.where(where, np.exp(_idw_rows(q, *family, memo)), out)
        return out
    q = np.stack([np.log2(np.maximum(2 * macs, 1.0)),
                  np.log2(np.maximum(macs / np.maximum(elements, 1.0), 1e-6))], axis=1)
    return np.exp(_idw_rows(q, *eff.conv, memo))


def _attention_eff(eff: Efficiencies, kernel: str, head_dim: float, seq: np.ndarray, pass_: str = "fwd"
                   ) -> np.ndarray:
    curves = eff.attention.get((kernel, pass_))
    if curves is None and pass_ == "bwd":
        curves = eff.attention.get((kernel, "fwd"))  # as the scalar model: the forward table stands in
    if curves is None:
        if {k for k, _ in eff.attention}:
            eff.attention_eff(kernel, pass_, head_dim, 1.0)  # raises the scalar model's error
        return np.full(seq.shape, eff.fallback)
    hd = min(curves, key=lambda h: (abs(np.log(h / max(head_dim, 1.0))), h))
    c = curves[hd]
    return np.exp(np.interp(np.log(np.maximum(seq, 1.0)), c.xs, c.ys))


def _memory_eff(eff: Efficiencies, keys: tuple[str, ...], nbytes: np.ndarray) -> np.ndarray:
    for op in keys:
        c = eff.memory.get(op)
        if c is not None:
            return np.exp(np.interp(np.log(np.maximum(nbytes, 1.0)), c.xs, c.ys))
    return np.full(nbytes.shape, eff.profile.memory_efficiency)


def _dims(op: Op, *names: str) -> list[np.ndarray] | None:
    if not all(n in op.dims for n in names):
        return None
    return [_arr(op.dims[n]).ravel() for n in names]


def forward_seconds(ops: Iterable[Op], profile: HardwareProfile | str, dtype: str = "bf16",
                    attention_kernel: str = "fa2", memo: Memo | None = None) -> np.ndarray:
    """Forward seconds of ``ops`` (all instances) at every point of their shapes: an array broadcast over the
    ledger's shape arrays (a 1-element array for scalar shapes). Equal to ``predict_seconds`` point by point.
    ``memo``: efficiencies already interpolated (share one dict across calls on the same profile and grid)."""
    return pass_seconds(ops, profile, dtype, attention_kernel, "fwd", memo)


def calls_seconds(calls: Iterable[tuple[Iterable[Op], object]], profile: HardwareProfile | str, dtype: str = "bf16",
                  attention_kernel: str = "fa2", pass_: str = "fwd", memo: Memo | None = None) -> np.ndarray:
    """Seconds of ledgers each called ``n`` times (``Count.timed_calls``) at every grid point: each ledger timed once
    at its own shapes (``pass_seconds``), times its calls: a number, or a ``Gather`` (a tiled pass over a grid: the
    ledger on the distinct tile shapes, gathered back to each point weighted by its calls, as the MACs are)."""
    memo = {} if memo is None else memo
    total: np.ndarray = np.zeros(1)
    for ops, n in calls:
        s = pass_seconds(ops, profile, dtype, attention_kernel, pass_, memo)
        part = n.total(s[:, None])[:, 0] if isinstance(n, Gather) else s * float(cast(float, n))
        total = total + part
    return total


def training_seconds(ops: Iterable[Op], profile: HardwareProfile | str, dtype: str = "bf16",
                     attention_kernel: str = "fa2", checkpointing: str = "none") -> dict[str, np.ndarray]:
    """Seconds of one training step of ``ops`` without the optimizer, by pass (``fwd``, ``bwd_activation``,
    ``bwd_weight``, ``recompute`` of what ``checkpointing`` drops), at every point of their shapes; the sum of each
    pass equals the ``seconds`` of that pass in ``evaluate/time.training_times`` point by point."""
    ops, memo = list(ops), cast(Memo, {})
    out = {p: pass_seconds(ops, profile, dtype, attention_kernel, p, memo) for p in PASSES[:3]}
    again = recomputed_ops(ops, checkpointing)
    out["recompute"] = (pass_seconds(again, profile, dtype, attention_kernel, "recompute", memo) if again
                        else np.zeros_like(out["fwd"]))
    return out


def _core_eff(eff: Efficiencies, kernel: str, head_dim: float, seq: np.ndarray, kpass: str, peak: float
              ) -> np.ndarray:
    """An attention core's compute efficiency by ``kernel`` (the padded head dim's table, scaled by the columns
    used; 16-bit attention in an FP8 run), as the scalar model."""
    kd = kernel_head_dim(kernel, head_dim)
    try:
        c_eff = _attention_eff(eff, kernel, kd, seq, kpass)
    except ValueError:
        if eff.dtype != "fp8":
            raise
        half = efficiencies(eff.profile, "bf16")  # 16-bit attention in an FP8 run, as the scalar model
        c_eff = _attention_eff(half, kernel, kd, seq, kpass) * (eff.profile.peak_flops("bf16") / peak)
    return c_eff * (head_dim / kd)


def pass_seconds(ops: Iterable[Op], profile: HardwareProfile | str, dtype: str = "bf16",
                 attention_kernel: str = "fa2", pass_: str = "fwd", memo: Memo | None = None) -> np.ndarray:
    """Seconds of ``ops`` (all instances) in ``pass_`` at every point of their shapes (see ``forward_seconds``);
    equal to ``predict_seconds(..., pass_=pass_)`` point by point."""
    if pass_ not in PASSES:
        raise ValueError(f"pass_: expected one of {', '.join(PASSES)}, got {pass_!r}")
    memo = {} if memo is None else memo
    ops = list(ops)
    p, eff, bpe, peak, bw, overhead = _setup(profile, dtype, ops)  # warm or cold GEMM points as the scalar model
    kernel_floor, view_floor = eager_floors(p)
    size = max((np.size(v) for op in ops for v in (op.macs, op.elements)), default=1)
    total = np.zeros(size)
    bwd = pass_ == "bwd_activation"
    for op in ops:
        cls = op.op
        if cls in NO_WORK_OPS:
            continue
        macs = np.broadcast_to(_arr(op.macs).ravel(), (size,))
        elements = np.broadcast_to(_arr(op.elements).ravel(), (size,)).copy()
        flops = np.zeros(size)
        c_eff = np.ones(size)
        keys: tuple[str, ...] = (f"{cls}.{op.kind}", cls, "copy")
        if cls == "linear":
            mkn = _dims(op, "tokens", "fan_out", "fan_in")
            m, n, k = ([np.broadcast_to(x, (size,)) for x in mkn] if mkn is not None
                       else [np.maximum(macs, 1.0) ** (1 / 3)] * 3)
            shape = {"bwd_activation": (m, k, n), "bwd_weight": (k, n, m)}.get(pass_, (m, n, k))
            flops, c_eff, keys = 2 * macs, _gemm_eff(eff, *shape, memo), ("copy",)
        elif cls in CONV_OPS:
            dims = _dims(op, "c_in", "c_out", "kernel_volume", "voxels") or _dims(op, "c_in", "c_out",
                                                                                  "kernel_volume", "tokens")
            dims = None if dims is None else [np.broadcast_to(x, (size,)) for x in dims]
            flops, c_eff, keys = 2 * macs, _conv_eff(eff, macs, elements, dims, memo, op), ("copy",)
        elif cls == "sdpa":
            if pass_ == "bwd_weight":
                continue
            g, h, q, k, d = (np.broadcast_to(x, (size,)) for x in (_dims(op, "groups", "heads", "q_len", "k_len",
                                                                           "head_dim") or [_arr([v]) for v in
                                                                                           (1, 1, 1, 1, 64)]))
            head_dim = float(d[0])
            flops = 2 * macs * (ATTENTION_BWD_FACTOR if bwd else 1.0)
            kpass = "bwd" if bwd else "fwd"
            c_eff = _core_eff(eff, attention_kernel, head_dim, np.sqrt(q * k), kpass, peak)
            # a core the code runs unfused (dims ``math``: 1, or 0/1 per shape), as the scalar model
            math_path = np.broadcast_to(_arr(op.dims.get("math", 0)).ravel(), (size,))
            if attention_kernel != "math" and math_path.any():
                try:
                    unfused = _core_eff(eff, "math", head_dim, np.sqrt(q * k), kpass, peak)
                except ValueError:  # no unfused-attention points: the plan's kernel stands for the matmuls
                    unfused = c_eff
                c_eff = np.where(math_path > 0, unfused, c_eff)
            if bwd:
                elements = elements * 2  # reads q, k, v, o, dO and writes dq, dk, dv
            unfused_scores = 1.0 if attention_kernel == "math" else math_path
            elements = elements + unfused_scores * 4 * g * h * q * k * (2 if bwd else 1)
            if bpe < 4:  # the fp32 softmax of such a core: its casts
                elements = elements + math_path * 8 * g * h * q * k
            keys = ("copy",)
        elif pass_ == "bwd_weight":
            if cls != "embedding" or not op.weights:
                continue  # norm and elementwise weight gradients come out of their input-gradient kernels
        elif bwd:
            if cls == "embedding":
                continue  # no input gradient for token ids
            rw = _dims(op, "read", "written") if cls == "elementwise" else None
            elements = (2 * np.broadcast_to(rw[0], (size,)) + np.broadcast_to(rw[1], (size,)) if rw is not None
                        else 1.5 * elements)
        nbytes = elements * bpe
        m_eff = _memory_eff(eff, keys, nbytes)
        with np.errstate(divide="ignore", invalid="ignore"):
            compute_s = np.where(flops > 0, flops / (peak * c_eff), 0.0)
            memory_s = np.where(nbytes > 0, nbytes / (bw * m_eff), 0.0)
        work = (flops > 0) | (nbytes > 0)
        extra = eager_extra(op, bpe) if pass_ in EAGER_PASSES else NONE  # the eager extras, as the scalar model
        if not isinstance(extra.elements, int) or extra.elements:
            extra_bytes = np.broadcast_to(_arr(extra.elements).ravel(), (size,)) * bpe
            with np.errstate(divide="ignore", invalid="ignore"):
                memory_s = memory_s + np.where(extra_bytes > 0, extra_bytes / (
                    bw * _memory_eff(eff, ("copy",), extra_bytes)), 0.0)
        host = overhead + extra.kernels * kernel_floor + extra.views * view_floor
        total += np.where(work, op.instances * (np.maximum(compute_s, memory_s) + host), 0.0)
    return total
