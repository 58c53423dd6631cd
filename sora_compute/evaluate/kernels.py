"""Kernel efficiencies for the time model, interpolated from a profile's kernel tables (hardware/kernels/*.yaml and
tables carried inline by measured profiles).

Every table point is an achieved throughput measured at one shape on one device (``measured_on``); its efficiency
is that throughput over the device's peak (TFLOP/s over peak TFLOP/s; TB/s over the memory bandwidth), so a table
measured on an H100 applies to an H200 through the same efficiencies. For a shape between points:

- GEMM (linear): inverse-distance weighting of log-efficiency over (log2 M, log2 N, log2 K), the 4 nearest points
  (an exact shape returns its point);
- attention core: the points of the kernel and pass (fwd / bwd) at the nearest head dim (non-causal points; causal
  ones only for a kernel measured with a mask alone: the ledger counts causal cores in full), piecewise linear in log
  sequence length (per-sequence tokens; sqrt(q_len x k_len) for cross-attention), clamped at the ends;
- convolution: inverse-distance weighting over (log2 c_in, log2 c_out, log2 kernel volume, log2 voxels) when the
  op carries those dims (``c_in``, ``c_out``, ``kernel_volume``, ``voxels`` = batch x output positions), else over
  (log2 FLOPs, log2 arithmetic intensity = MACs / minimum elements), so legacy VAE terms without dims are matched
  too (less well: a library's algorithm choice can depend on channels and sizes apart);
- memory-bound op classes: piecewise linear in log bytes moved per call of that op class and kind
  (``elementwise.activation``), else of the op class, else of ``copy``,
  clamped; without memory points, the profile's ``memory_efficiency``.

Without any point for an op class, the efficiency is the profile's ``default_mfu`` (the former assumption; 1.0 if
it has none) and the row's basis says so.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from dataclasses import dataclass, field

import numpy as np

from sora_compute.hardware.profiles import HardwareProfile, KernelTable, load_profile, profile_tables

__all__ = ["Efficiencies", "efficiencies"]

IDW_NEIGHBOURS = 4


def _piecewise(x: float, xs: list[float], ys: list[float]) -> float:
    """Linear interpolation of ys over sorted xs, clamped at both ends."""
    if x <= xs[0]:
        return ys[0]
    if x >= xs[-1]:
        return ys[-1]
    i = bisect_left(xs, x)
    x0, x1, y0, y1 = xs[i - 1], xs[i], ys[i - 1], ys[i]
    return y0 + (y1 - y0) * (x - x0) / (x1 - x0) if x1 > x0 else y1


def _idw(q: tuple[float, ...], pts: np.ndarray, vals: np.ndarray) -> float:
    """Inverse-squared-distance weighting of ``vals`` (log efficiencies) over the nearest points to ``q``."""
    d2 = ((pts - np.asarray(q)) ** 2).sum(axis=1)
    i = int(d2.argmin())
    if d2[i] < 1e-12:
        return float(vals[i])
    if len(d2) > IDW_NEIGHBOURS:
        idx = np.argpartition(d2, IDW_NEIGHBOURS)[:IDW_NEIGHBOURS]
        d2, vals = d2[idx], vals[idx]
    w = 1.0 / d2
    return float((w * vals).sum() / w.sum())


@dataclass
class _Curve:
    xs: list[float]
    ys: list[float]  # log efficiency


@dataclass
class Efficiencies:
    """A profile's kernel tables prepared for one dtype: efficiency lookups with a basis string."""

    profile: HardwareProfile
    dtype: str
    fallback: float
    gemm: tuple[np.ndarray, np.ndarray] | None = None
    conv: tuple[np.ndarray, np.ndarray] | None = None
    conv_dims: tuple[np.ndarray, np.ndarray] | None = None
    attention: dict[tuple[str, str], dict[int, _Curve]] = field(default_factory=dict)
    memory: dict[str, _Curve] = field(default_factory=dict)
    memo: dict[tuple, tuple[float, str]] = field(default_factory=dict)
    stand_in: set[tuple[str, str]] = field(default_factory=set)  # (kernel, pass) read off fwd_bwd points

    def gemm_eff(self, m: float, n: float, k: float) -> tuple[float, str]:
        if self.gemm is None:
            return self.fallback, "default (no gemm points)"
        key = ("g", m, n, k)
        if key not in self.memo:
            q = (math.log2(max(m, 1.0)), math.log2(max(n, 1.0)), math.log2(max(k, 1.0)))
            self.memo[key] = (math.exp(_idw(q, *self.gemm)), "gemm table")
        return self.memo[key]

    def conv_eff(self, macs: float, elements: float, dims: tuple[float, ...] | None = None) -> tuple[float, str]:
        """Efficiency of a convolution of ``macs`` moving ``elements``; ``dims`` (c_in, c_out, kernel volume,
        voxels) when the op has them."""
        if self.conv is None or self.conv_dims is None:
            return self.gemm_eff(*(max(macs, 1.0) ** (1 / 3),) * 3)[0], "gemm table (no conv points)"
        if dims is not None:
            dkey: tuple = ("cd", *dims)
            if dkey not in self.memo:
                q = tuple(math.log2(max(x, 1.0)) for x in dims)
                self.memo[dkey] = (math.exp(_idw(q, *self.conv_dims)), "conv table (by dims)")
            return self.memo[dkey]
        key = ("c", macs, elements)
        if key not in self.memo:
            q = (math.log2(max(2 * macs, 1.0)), math.log2(max(macs / max(elements, 1.0), 1e-6)))
            self.memo[key] = (math.exp(_idw(q, *self.conv)), "conv table")
        return self.memo[key]

    def attention_eff(self, kernel: str, pass_: str, head_dim: float, seq: float) -> tuple[float, str]:
        curves = self.attention.get((kernel, pass_))
        basis = f"{kernel} {'fwd_bwd' if (kernel, pass_) in self.stand_in else pass_} table"
        if curves is None and pass_ == "bwd":
            curves, basis = self.attention.get((kernel, "fwd")), f"{kernel} fwd table (no bwd points)"
        if curves is None:
            known = sorted({k for k, _ in self.attention})
            if known:
                raise ValueError(f"attention kernel {kernel!r} has no points for {self.profile.key} "
                                 f"(tables have: {', '.join(known)})")
            return self.fallback, "default (no attention points)"
        hd = min(curves, key=lambda h: (abs(math.log(h / max(head_dim, 1.0))), h))
        c = curves[hd]
        return math.exp(_piecewise(math.log(max(seq, 1.0)), c.xs, c.ys)), basis

    def memory_eff(self, keys: tuple[str, ...], nbytes: float) -> tuple[float, str]:
        """Achieved fraction of ``hbm_tbps`` for one call moving ``nbytes``, from the first of ``keys`` (op class
        and kind, e.g. ``elementwise.activation``; op class; ``copy``) the tables have."""
        for op in keys:
            c = self.memory.get(op)
            if c is not None:
                return math.exp(_piecewise(math.log(max(nbytes, 1.0)), c.xs, c.ys)), f"{op} memory table"
        return self.profile.memory_efficiency, "memory_efficiency"


def _same(point_dtype: str, dtype: str) -> bool:
    """Whether a point measured in ``point_dtype`` describes ``dtype``: the same dtype, or BF16 and FP16, which run on
    the same tensor-core paths at the same peak (the FlashAttention papers measure FP16; models run BF16)."""
    return point_dtype == dtype or {point_dtype, dtype} == {"bf16", "fp16"}


def _device(key: str, profile: HardwareProfile) -> HardwareProfile:
    return profile if key == profile.key else load_profile(key)


def _measured_on(table: KernelTable, profile: HardwareProfile) -> HardwareProfile:
    return _device(table.measured_on, profile)


def _peak(p: HardwareProfile, dtype: str) -> float | None:
    tf = getattr(p.peak_tflops, dtype)
    return None if tf is None else float(tf)


def _prepare(profile: HardwareProfile, dtype: str) -> Efficiencies:
    tables = profile_tables(profile)
    fallback = profile.default_mfu if profile.default_mfu is not None else 1.0
    eff = Efficiencies(profile, dtype, fallback)
    gemm: list[tuple[float, float, float, float]] = []
    conv: list[tuple[float, float, float]] = []
    conv_dims: list[tuple[float, float, float, float, float]] = []
    attn: dict[tuple[str, str], dict[int, list[tuple[float, float]]]] = {}
    causal_attn: dict[tuple[str, str], dict[int, list[tuple[float, float]]]] = {}
    stand_in: set[tuple[str, str]] = set()
    mem: dict[str, list[tuple[float, float]]] = {}
    for t in tables:
        dev = _measured_on(t, profile)

        def peak_of(point_device: str | None, table_device: HardwareProfile = dev) -> float | None:
            """The peak a point's efficiency is taken against: its own device's, else the table's."""
            return _peak(table_device if point_device is None else _device(point_device, profile), dtype)

        for p in t.gemm:
            if _same(p.dtype, dtype) and (peak := peak_of(p.measured_on)) is not None:
                gemm.append((math.log2(p.m), math.log2(p.n), math.log2(p.k), math.log(p.tflops / peak)))
        for c in t.conv3d:
            if _same(c.dtype, dtype) and (peak := peak_of(c.measured_on)) is not None:
                conv.append((math.log2(2 * c.macs), math.log2(c.macs / c.elements), math.log(c.tflops / peak)))
                conv_dims.append((math.log2(c.c_in), math.log2(c.c_out),
                                  math.log2(c.kernel[0] * c.kernel[1] * c.kernel[2]), math.log2(c.voxels),
                                  math.log(c.tflops / peak)))
        for a in t.attention:
            if _same(a.dtype, dtype) and (peak := peak_of(a.measured_on)) is not None:
                where = causal_attn if a.causal else attn
                where.setdefault((a.kernel, a.pass_), {}).setdefault(a.head_dim, []).append(
                    (math.log(a.seq_len), math.log(a.tflops / peak)))
        for mp in t.memory:
            mem.setdefault(mp.op, []).append((math.log(mp.bytes), math.log(min(mp.tbps / dev.hbm_tbps, 1.0))))
    if gemm:
        arr = np.array(gemm)
        eff.gemm = (arr[:, :3], arr[:, 3])
    if conv:
        arr = np.array(conv)
        eff.conv = (arr[:, :2], arr[:, 2])
        arr = np.array(conv_dims)
        eff.conv_dims = (arr[:, :4], arr[:, 4])

    def curve(points: list[tuple[float, float]]) -> _Curve:
        merged: dict[float, list[float]] = {}
        for x, y in points:  # repeated x: the mean log efficiency
            merged.setdefault(x, []).append(y)
        xs = sorted(merged)
        return _Curve(xs, [sum(merged[x]) / len(merged[x]) for x in xs])

    for k, v in causal_attn.items():  # a kernel measured only with a causal mask: its causal points
        attn.setdefault(k, v)
    for (kern, pass_), v in list(attn.items()):  # a kernel measured only forward + backward together (fwd_bwd):
        if pass_ == "fwd_bwd":  # that combined rate stands in for each pass (the basis says so)
            for alone in ("fwd", "bwd"):
                attn.setdefault((kern, alone), v)
                stand_in.add((kern, alone))
    eff.attention = {k: {hd: curve(pts) for hd, pts in v.items()} for k, v in attn.items()}
    eff.stand_in = stand_in
    eff.memory = {op: curve(pts) for op, pts in mem.items()}
    return eff


_CACHE: dict[tuple[int, str], tuple[HardwareProfile, Efficiencies]] = {}


def efficiencies(profile: HardwareProfile, dtype: str) -> Efficiencies:
    """The prepared tables of ``profile`` at ``dtype`` (cached per profile object)."""
    key = (id(profile), dtype)
    hit = _CACHE.get(key)
    if hit is None or hit[0] is not profile:
        if len(_CACHE) > 256:
            _CACHE.clear()
        hit = (profile, _prepare(profile, dtype))
        _CACHE[key] = hit
    return hit[1]
