"""Kernel efficiencies for the time model, interpolated from a profile's kernel tables (hardware/kernels/*.yaml and
tables carried inline by measured profiles).

Every table point is an achieved throughput measured at one shape on one device (``measured_on``); its efficiency
is that throughput over the device's peak (TFLOP/s over peak TFLOP/s; TB/s over the memory bandwidth), so a table
measured on an H100 applies to an H200 through the same efficiencies. For a shape between points:

- GEMM (linear): inverse-distance weighting of log-efficiency over (log2 M, log2 N, log2 K), the 4 nearest points
  (an exact shape returns its point);
- attention core: the points of the kernel and pass (fwd / bwd) at the nearest head dim (the device's own points
  when it has any for that kernel and pass, else those of its kin scaled by peak; non-causal points; causal
  ones only for a kernel measured with a mask alone: the ledger counts causal cores in full), piecewise linear in log
  sequence length (per-sequence tokens; sqrt(q_len x k_len) for cross-attention), clamped at the ends;
- convolution: inverse-distance weighting over (log2 c_in, log2 c_out, log2 kernel volume, log2 voxels) when the
  op carries those dims (``c_in``, ``c_out``, ``kernel_volume``, ``voxels`` = batch x output positions), among the
  points of the algorithm the library runs for the op when the table's points name it (PyTorch on CPU chooses
  oneDNN or its native im2col kernel by shape, ``torch_cpu_conv_algorithm``; the two differ up to 8x), else over
  (log2 FLOPs, log2 arithmetic intensity = MACs / minimum elements), so legacy VAE terms without dims are matched
  too (less well: a library's algorithm choice can depend on channels and sizes apart);
- GEMM and convolution points come in two cache states where a table measured both (``calibrate --device cpu``):
  cold weights (``gemm``, ``conv3d``: the last-level cache flushed before each call, a layer of a model too big for
  the cache) and warm (``gemm_warm``, ``conv3d_warm``: no flush); ``efficiencies(..., warm=True)`` takes the warm
  ones, which the time model asks for when the ledger's weights fit in the profile's ``llc_mib``. Tables without
  warm points (every GPU table) give the cold points either way;
- memory-bound op classes: piecewise linear in log bytes moved per call of that op class and kind
  (``elementwise.activation``), else of the op class, else of ``copy``,
  clamped; without memory points, the profile's ``memory_efficiency``.

Without any point for an op class, the efficiency is the profile's ``default_mfu`` (the former assumption; 1.0 if
it has none) and the row's basis says so.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from sora_compute.hardware.profiles import HardwareProfile, KernelTable, load_profile, profile_tables

__all__ = ["Efficiencies", "efficiencies", "torch_cpu_conv_algorithm", "uses_mkldnn", "MKLDNN_MIN_SIZE",
           "KERNEL_HEAD_DIMS", "kernel_head_dim"]

IDW_NEIGHBOURS = 4
#: PyTorch's CPU fp32 convolution runs oneDNN only above this product of the input's first four sizes (N x C x D x H
#: for conv3d) when nothing else selects it (aten/src/ATen/native/Convolution.cpp, ConvParams::use_mkldnn: "for some
#: case, native is faster"); checked against torch's profiler in tests/test_time_accuracy.py.
MKLDNN_MIN_SIZE = 20480

#: Head dims FlashAttention compiles its kernels for; a head dim between them runs the next larger kernel, whose tile
#: multiplies over all of its columns (the padding is zeros): FA2 csrc/flash_attn/src/static_switch.h HEADDIM_SWITCH
#: (32, 64, 96, 128, 192, 256; PyTorch's SDPA flash backend vendors FA2) and FA3 hopper/flash_api.cpp
#: round_up_headdim (64, 96, 128, 192, 256), Dao-AILab/flash-attention at 0251105a.
KERNEL_HEAD_DIMS: dict[str, tuple[int, ...]] = {"fa2": (32, 64, 96, 128, 192, 256), "fa3": (64, 96, 128, 192, 256)}


def kernel_head_dim(kernel: str, head_dim: float) -> float:
    """The head dim the attention ``kernel`` runs ``head_dim`` at: FlashAttention's next compiled size (72 -> 96);
    ``head_dim`` itself for other kernels and beyond the largest size. A core of head dim d on a kernel of head dim
    k costs the kernel's time at k: its efficiency on the model's FLOPs is the table's at k times d / k."""
    for k in KERNEL_HEAD_DIMS.get(kernel, ()):
        if head_dim <= k:
            return float(k)
    return float(head_dim)


def uses_mkldnn(batch: Any, c_in: Any, size_2: Any, size_3: Any, kernel: tuple[int, ...], strided: Any,
                threads: int) -> Any:
    """Whether PyTorch (CPU, fp32, groups 1, no dilation) runs oneDNN for a convolution whose input has sizes (batch,
    c_in, size_2, size_3, ...) (conv3d: D, H; conv2d: H, W), by ConvParams::use_mkldnn: (strided or batch >= 16 or a
    kernel other than 1x1 in the last two dims or threads > 1) and (kernel over 3x3 in both or batch > 1 or
    batch x c_in x size_2 x size_3 > 20480). Elementwise over numpy arrays too."""
    kh, kw = kernel[-2], kernel[-1]
    first = strided | (batch >= 16) | (kh != 1 or kw != 1 or threads > 1)
    second = (kh > 3 and kw > 3) | (batch > 1) | (batch * c_in * size_2 * size_3 > MKLDNN_MIN_SIZE)
    return first & second


def torch_cpu_conv_algorithm(batch: float, c_in: float, size_2: float, size_3: float, kernel: tuple[int, ...],
                             strided: bool, threads: int) -> str:
    """``mkldnn`` or ``native`` (slow_conv3d / slow_conv2d: im2col and a GEMM), by ``uses_mkldnn``."""
    return "mkldnn" if uses_mkldnn(batch, c_in, size_2, size_3, kernel, strided, threads) else "native"


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
    conv_algorithms: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)  # by algorithm label
    attention: dict[tuple[str, str], dict[int, _Curve]] = field(default_factory=dict)
    memory: dict[str, _Curve] = field(default_factory=dict)
    memo: dict[tuple, tuple[float, str]] = field(default_factory=dict)
    stand_in: set[tuple[str, str]] = field(default_factory=set)  # (kernel, pass) read off fwd_bwd points
    warm: bool = False  # GEMM and conv efficiencies from the tables' warm-weight points (``efficiencies(warm=True)``)

    def gemm_eff(self, m: float, n: float, k: float) -> tuple[float, str]:
        if self.gemm is None:
            return self.fallback, "default (no gemm points)"
        key = ("g", m, n, k)
        if key not in self.memo:
            q = (math.log2(max(m, 1.0)), math.log2(max(n, 1.0)), math.log2(max(k, 1.0)))
            self.memo[key] = (math.exp(_idw(q, *self.gemm)), "gemm table" + self.warm_label)
        return self.memo[key]

    def conv_algorithm(self, op: str, dims: Mapping[str, Any]) -> str | None:
        """The algorithm a convolution op (``dims`` as ``ledger.ops.conv_op`` gives them, with ``batch``,
        ``in_size`` (the input's two sizes after batch and channels) and ``kernel``) runs, when this profile's conv
        points name algorithms of PyTorch on CPU; else None (every point applies)."""
        if not self.conv_algorithms or not {"batch", "in_size", "kernel"} <= dims.keys():
            return None
        s2, s3 = dims["in_size"]
        return torch_cpu_conv_algorithm(float(dims["batch"]), float(dims["c_in"]), float(s2), float(s3),
                                        tuple(dims["kernel"]), float(dims["voxels"]) < float(dims["in_voxels"]),
                                        self.threads)

    @property
    def warm_label(self) -> str:
        return " (weights warm)" if self.warm else ""

    @property
    def threads(self) -> int:
        """Threads the profile was measured with (1 for a profile without a measured section)."""
        return self.profile.measured.threads if self.profile.measured is not None else 1

    def conv_eff(self, macs: float, elements: float, dims: tuple[float, ...] | None = None,
                 algorithm: str | None = None) -> tuple[float, str]:
        """Efficiency of a convolution of ``macs`` moving ``elements``; ``dims`` (c_in, c_out, kernel volume,
        voxels) when the op has them; ``algorithm``: only the points of that algorithm (``conv_algorithm``)."""
        if self.conv is None or self.conv_dims is None:
            return self.gemm_eff(*(max(macs, 1.0) ** (1 / 3),) * 3)[0], "gemm table (no conv points)"
        if dims is not None:
            dkey: tuple = ("cd", algorithm, *dims)
            if dkey not in self.memo:
                q = tuple(math.log2(max(x, 1.0)) for x in dims)
                family = self.conv_algorithms.get(algorithm) if algorithm is not None else None
                label = f"conv table ({algorithm} points, by dims)" if family else "conv table (by dims)"
                self.memo[dkey] = (math.exp(_idw(q, *(family or self.conv_dims))), label + self.warm_label)
            return self.memo[dkey]
        key = ("c", macs, elements)
        if key not in self.memo:
            q = (math.log2(max(2 * macs, 1.0)), math.log2(max(macs / max(elements, 1.0), 1e-6)))
            self.memo[key] = (math.exp(_idw(q, *self.conv)), "conv table" + self.warm_label)
        return self.memo[key]

    def attention_label(self, kernel: str) -> str:
        """What times ``kernel``'s attention cores here: the kernel's table points, or, where the tables have no
        attention points at all (``attention_eff``'s fallback), the profile's default MFU."""
        return kernel if self.attention else f"default MFU {self.fallback:.0%}"

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


def _prepare(profile: HardwareProfile, dtype: str, warm: bool = False) -> Efficiencies:
    tables = profile_tables(profile)
    fallback = profile.default_mfu if profile.default_mfu is not None else 1.0
    # warm: the tables' warm-weight GEMM and conv points where they have them (measured CPU profiles); else, as for
    # every GPU profile, the cold points (``Efficiencies.warm`` False: the same tables as ``warm=False``)
    warm_gemm = warm and any(t.gemm_warm for t in tables)
    warm_conv = warm and any(t.conv3d_warm for t in tables)
    eff = Efficiencies(profile, dtype, fallback, warm=warm_gemm or warm_conv)
    gemm: list[tuple[float, float, float, float]] = []
    conv: list[tuple[float, float, float]] = []
    conv_dims: list[tuple[float, float, float, float, float]] = []
    conv_algo: dict[str, list[tuple[float, float, float, float, float]]] = {}
    attn: dict[tuple[str, str], dict[int, list[tuple[float, float]]]] = {}
    causal_attn: dict[tuple[str, str], dict[int, list[tuple[float, float]]]] = {}
    own: dict[tuple[str, str], dict[int, list[tuple[float, float]]]] = {}  # points measured on this device
    own_causal: dict[tuple[str, str], dict[int, list[tuple[float, float]]]] = {}
    stand_in: set[tuple[str, str]] = set()
    mem: dict[str, list[tuple[float, float]]] = {}
    for t in tables:
        dev = _measured_on(t, profile)

        def peak_of(point_device: str | None, table_device: HardwareProfile = dev) -> float | None:
            """The peak a point's efficiency is taken against: its own device's, else the table's."""
            return _peak(table_device if point_device is None else _device(point_device, profile), dtype)

        for p in t.gemm_warm if warm_gemm else t.gemm:
            if _same(p.dtype, dtype) and (peak := peak_of(p.measured_on)) is not None:
                gemm.append((math.log2(p.m), math.log2(p.n), math.log2(p.k), math.log(p.tflops / peak)))
        for c in t.conv3d_warm if warm_conv else t.conv3d:
            if _same(c.dtype, dtype) and (peak := peak_of(c.measured_on)) is not None:
                conv.append((math.log2(2 * c.macs), math.log2(c.macs / c.elements), math.log(c.tflops / peak)))
                conv_dims.append((math.log2(c.c_in), math.log2(c.c_out),
                                  math.log2(c.kernel[0] * c.kernel[1] * c.kernel[2]), math.log2(c.voxels),
                                  math.log(c.tflops / peak)))
                if c.algorithm is not None:
                    conv_algo.setdefault(c.algorithm, []).append(conv_dims[-1])
        for a in t.attention:
            if _same(a.dtype, dtype) and (peak := peak_of(a.measured_on)) is not None:
                where = causal_attn if a.causal else attn
                point = (math.log(a.seq_len), math.log(a.tflops / peak))
                where.setdefault((a.kernel, a.pass_), {}).setdefault(a.head_dim, []).append(point)
                if (a.measured_on or t.measured_on) == profile.key:  # the device's own measurement
                    (own_causal if a.causal else own).setdefault((a.kernel, a.pass_), {}).setdefault(
                        a.head_dim, []).append(point)
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
        eff.conv_algorithms = {a: (np.array(v)[:, :4], np.array(v)[:, 4]) for a, v in conv_algo.items()}

    def curve(points: list[tuple[float, float]]) -> _Curve:
        merged: dict[float, list[float]] = {}
        for x, y in points:  # repeated x: the mean log efficiency
            merged.setdefault(x, []).append(y)
        xs = sorted(merged)
        return _Curve(xs, [sum(merged[x]) / len(merged[x]) for x in xs])

    attn.update(own)  # a kernel and pass the device itself was measured on: its own points only
    causal_attn.update(own_causal)
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


_CACHE: dict[tuple[int, str, bool], tuple[HardwareProfile, Efficiencies]] = {}


def efficiencies(profile: HardwareProfile, dtype: str, warm: bool = False) -> Efficiencies:
    """The prepared tables of ``profile`` at ``dtype`` (cached per profile object); ``warm``: GEMMs and convolutions
    from the warm-weight points where the tables have them (``weights_fit``)."""
    key = (id(profile), dtype, warm)
    hit = _CACHE.get(key)
    if hit is None or hit[0] is not profile:
        if len(_CACHE) > 256:
            _CACHE.clear()
        hit = (profile, _prepare(profile, dtype, warm))
        _CACHE[key] = hit
    return hit[1]
