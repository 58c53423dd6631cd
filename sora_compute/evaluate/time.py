"""The time evaluator: seconds per ledger op on a hardware profile, by roofline with kernel-table efficiencies.

For each op (all its instances) and pass:

    seconds = instances x (max(FLOPs / (peak[dtype] x eff), bytes / (hbm x mem_eff)) + launch_overhead
                           + extra kernels x kernel floor + views x view floor)

- FLOPs: 2 x MACs of the matmul-class ops (linear, conv3d/conv2d, sdpa); norms, elementwise work, resampling,
  embeddings and copies are memory bound here (their compute term is 0). The attention core's backward is 2.5x its
  forward FLOPs (FlashAttention's accounting: 5 matmuls against 2).
- bytes: the op's minimum traffic (``elements``) x bytes per element of ``dtype``; the math (unfused) attention
  kernel also writes and reads the scores and probabilities (4 x groups x heads x q_len x k_len elements). A core
  whose dims say ``math`` (1: the code runs it unfused whatever the plan's kernel, STDiT3's short sequences) is
  priced with the math kernel, its softmax in fp32: with 16-bit activations 8 more score-sized passes (the casts).
- eff: from the profile's kernel tables by shape (``evaluate/kernels.py``); mem_eff: by op class and bytes per call.
  GEMMs and convolutions read their weights from memory unless they stay in the last-level cache: a ledger whose
  GEMM and conv weights (parameters x instances x bytes of ``dtype``, summed over the ops of the call) fit in the
  profile's ``llc_mib`` is priced from the tables' warm-weight points, any other from the cold ones
  (``weights_fit``; a profile without ``llc_mib`` or warm points, every GPU profile, always cold).
  FlashAttention runs a head dim between its compiled sizes at the next one (72 as 96): eff = table(96) x 72 / 96.
- bound: ``compute`` or ``memory`` by the larger term, ``latency`` when both are under the launch overhead.
- eager extras (forward and recomputation): the kernels and view ops an eager implementation runs for the op beyond
  its own kernel, and the traffic of the intermediates they write and read (``evaluate/eager.py``,
  ``data/eager_ops.yaml``), at the floors of ``eager_floors``.

Passes: ``fwd``; ``bwd_activation`` (input gradients: dgrad GEMMs M=tokens N=fan_in K=fan_out, the attention
backward, norm/elementwise backward at about 1.5x-2x their forward traffic); ``bwd_weight`` (wgrad GEMMs
M=fan_in N=fan_out K=tokens, embedding scatter); ``recompute`` (forward again of what the checkpointing policy
dropped: ``full`` the DiT blocks, ``selective`` the attention cores); the optimizer step (memory bound over
parameters, gradients and states). Only Op fields are read (op, macs, elements, weights, dims, instances, path), so
legacy term lists (VAE, text encoders) work too.

Units: seconds, FLOPs (2 x MACs), bytes; MFU = model FLOPs (forward + backward, no recomputation) / (seconds x
peak); HFU counts the recomputation too.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from sora_compute.evaluate.eager import NONE, eager_extra
from sora_compute.evaluate.kernels import Efficiencies, efficiencies, kernel_head_dim
from sora_compute.evaluate.saved import BLOCKS
from sora_compute.hardware.profiles import DTYPE_BYTES, HardwareProfile, load_profile
from sora_compute.ledger.ops import Op

__all__ = [
    "PASSES",
    "COLUMNS",
    "ATTENTION_BWD_FACTOR",
    "ADAMW_BYTES_PER_PARAM",
    "op_times",
    "op_records",
    "call_records",
    "predict_seconds",
    "recomputed_ops",
    "training_times",
    "optimizer_row",
    "rollup",
    "summary",
    "component_times",
    "eager_floors",
    "weights_fit",
]

PASSES = ("fwd", "bwd_activation", "bwd_weight", "recompute")
COLUMNS = ["pass", "path", "kind", "op", "instances", "flops", "bytes", "compute_s", "memory_s", "overhead_s",
           "seconds", "bound", "efficiency", "memory_efficiency", "basis"]
ATTENTION_BWD_FACTOR = 2.5  # FLOPs of the attention backward over its forward (FlashAttention-2 paper, Sec. 4.1)
#: AdamW with fp32 master weights and states, bf16 compute copy: reads param, grad, m, v (4 x 4 B), writes param,
#: m, v (3 x 4 B) and the bf16 copy (2 B).
ADAMW_BYTES_PER_PARAM = 30
MATMUL_OPS = frozenset({"linear", "conv3d", "conv2d", "sdpa"})
CONV_OPS = frozenset({"conv3d", "conv2d"})
NO_WORK_OPS = frozenset({"parameter"})
EAGER_PASSES = frozenset({"fwd", "recompute"})  # passes the eager extras (evaluate/eager.py) are counted in


def _scalar(x: Any, what: str) -> float:
    if isinstance(x, np.ndarray) and x.ndim > 0:
        raise ValueError(f"{what}: the time model needs scalar shapes (one video shape per call)")
    return float(x)


def _profile(profile: HardwareProfile | str) -> HardwareProfile:
    return profile if isinstance(profile, HardwareProfile) else load_profile(profile)


def _dims(op: Op, *names: str) -> tuple[float, ...] | None:
    d = op.dims
    if not all(n in d for n in names):
        return None
    return tuple(_scalar(d[n], f"{op.path}.{n}") for n in names)


def _record(op: Op, pass_: str, eff: Efficiencies, attention_kernel: str, bpe: int, peak: float, bw: float,
            overhead: float, floors: tuple[float, float] = (0.0, 0.0)) -> tuple | None:
    """(pass, path, kind, op, instances, flops, bytes, compute_s, memory_s, overhead_s, seconds, bound, efficiency,
    memory_efficiency, basis) of all instances of ``op`` in ``pass_``, or None when the op does no work in it."""
    cls, kernel = op.op, attention_kernel
    if cls in NO_WORK_OPS:
        return None
    n = op.instances
    macs = _scalar(op.macs, op.path)
    elements = _scalar(op.elements, op.path)
    flops = 0.0
    c_eff, basis = 1.0, ""
    mem_keys: tuple[str, ...] = (f"{cls}.{op.kind}", cls, "copy")
    if cls == "linear":
        mkn = _dims(op, "tokens", "fan_out", "fan_in")
        m, n_, k = mkn if mkn is not None else (max(macs, 1.0) ** (1 / 3),) * 3
        shape = {"fwd": (m, n_, k), "recompute": (m, n_, k), "bwd_activation": (m, k, n_),
                 "bwd_weight": (k, n_, m)}[pass_]
        flops = 2 * macs
        c_eff, basis = eff.gemm_eff(*shape)
        mem_keys = ("copy",)
    elif cls in CONV_OPS:
        flops = 2 * macs
        dims = _dims(op, "c_in", "c_out", "kernel_volume", "voxels") or _dims(op, "c_in", "c_out", "kernel_volume",
                                                                              "tokens")  # the DiT's patch embedding
        c_eff, basis = eff.conv_eff(macs, elements, dims, eff.conv_algorithm(cls, op.dims) if dims else None)
        mem_keys = ("copy",)
    elif cls == "sdpa":
        if pass_ == "bwd_weight":
            return None
        ghqkd = _dims(op, "groups", "heads", "q_len", "k_len", "head_dim")
        g, h, q, k, d = ghqkd if ghqkd is not None else (1.0, 1.0, 1.0, 1.0, 64.0)
        bwd = pass_ == "bwd_activation"
        flops = 2 * macs * (ATTENTION_BWD_FACTOR if bwd else 1.0)
        math_path = bool(_scalar(op.dims.get("math", 0), f"{op.path}.math"))  # a core the code runs unfused
        kernel = "math" if math_path else kernel
        kd = kernel_head_dim(kernel, d)  # FlashAttention runs 72 as 96: the padded columns cost time
        try:
            c_eff, basis = eff.attention_eff(kernel, "bwd" if bwd else "fwd", kd, (q * k) ** 0.5)
        except ValueError:
            if math_path and eff.dtype != "fp8":  # no unfused-attention points for this GPU: its fused kernel's
                # efficiency stands for the two matmuls (the score passes below bound the time)
                c_eff, basis = eff.attention_eff(attention_kernel, "bwd" if bwd else "fwd", kd, (q * k) ** 0.5)
                basis += " (no math points)"
            elif eff.dtype != "fp8":
                raise
            # a kernel without FP8 (FlashAttention-2) runs attention in 16 bits in an FP8 model: its 16-bit
            # efficiency against the 16-bit peak, as a share of the FP8 peak this record divides by
            half = efficiencies(eff.profile, "bf16")
            c_eff, basis = half.attention_eff(kernel, "bwd" if bwd else "fwd", kd, (q * k) ** 0.5)
            c_eff *= eff.profile.peak_flops("bf16") / peak
            basis += " (16-bit attention in an fp8 run)"
        if kd != d:
            c_eff *= d / kd
            basis += f" (head dim {d:g} run by the {kd:g} kernel)"
        if bwd:
            elements *= 2  # reads q, k, v, o, dO and writes dq, dk, dv
        if kernel == "math":
            elements += 4 * g * h * q * k * (2 if bwd else 1)  # scores and probabilities written and read
            if math_path and bpe < 4:  # softmax in fp32 (STDiT3): scores cast up (read 1, write 2), softmax over
                elements += 8 * g * h * q * k  # fp32 (2 more), probabilities cast down (read 2, write 1)
        mem_keys = ("copy",)
    elif pass_ == "bwd_weight":
        if cls != "embedding" or not op.weights:
            return None  # norm and elementwise weight gradients come out of their input-gradient kernels
    elif pass_ == "bwd_activation":
        if cls == "embedding":
            return None  # no input gradient for token ids
        rw = _dims(op, "read", "written") if cls == "elementwise" else None
        elements = 2 * rw[0] + rw[1] if rw is not None else 1.5 * elements
    extra = eager_extra(op, bpe) if pass_ in EAGER_PASSES else NONE
    nbytes = elements * bpe
    m_eff, m_basis = eff.memory_eff(mem_keys, nbytes)
    compute_s = flops / (peak * c_eff) if flops else 0.0
    memory_s = nbytes / (bw * m_eff) if nbytes else 0.0
    if not flops and not nbytes:
        return None
    if extra.elements:  # the eager intermediates, at the bandwidth of a copy of their size
        extra_bytes = _scalar(extra.elements, op.path) * bpe
        nbytes += extra_bytes
        memory_s += extra_bytes / (bw * eff.memory_eff(("copy",), extra_bytes)[0])
    bound = "compute" if compute_s >= memory_s else "memory"
    if max(compute_s, memory_s) < overhead:
        bound = "latency"
    kernel_floor, view_floor = floors
    overhead = overhead + extra.kernels * kernel_floor + extra.views * view_floor
    seconds = n * (max(compute_s, memory_s) + overhead)
    return (pass_, op.path, op.kind, cls, n, n * flops, n * nbytes, n * compute_s, n * memory_s, n * overhead,
            seconds, bound, c_eff if flops else float("nan"), m_eff, basis or m_basis)


def weights_fit(ops: Iterable[Op], profile: HardwareProfile, dtype: str) -> bool:
    """Whether the GEMM and convolution weights of ``ops`` (parameters x instances x bytes of ``dtype``) fit in the
    profile's last-level cache (``llc_mib``): then they stay there across layers and calls and those ops run at the
    tables' warm-weight points. False for a profile without ``llc_mib``."""
    if profile.llc_mib is None:
        return False
    params = sum(float(np.max(op.weights)) * op.instances for op in ops if op.op in MATMUL_OPS and op.op != "sdpa")
    return params * DTYPE_BYTES[dtype] <= profile.llc_mib * 2**20


def _setup(profile: HardwareProfile | str, dtype: str, ops: Sequence[Op] = ()) -> tuple[
        HardwareProfile, Efficiencies, int, float, float, float]:
    p = _profile(profile)
    if dtype not in DTYPE_BYTES:
        raise ValueError(f"dtype: expected one of {', '.join(DTYPE_BYTES)}, got {dtype!r}")
    return p, efficiencies(p, dtype, weights_fit(ops, p, dtype)), DTYPE_BYTES[dtype], p.peak_flops(dtype), \
        p.hbm_tbps * 1e12, p.launch_overhead_us * 1e-6


def eager_floors(p: HardwareProfile) -> tuple[float, float]:
    """(seconds per extra eager kernel, seconds per eager view op): the profile's bare-ATen-call floor
    (``dispatch_overhead_us``) for both where the device waits on the host (CPU); without it (GPU: the host runs
    ahead) an extra kernel costs its launch floor and a view nothing."""
    if p.dispatch_overhead_us is not None:
        return p.dispatch_overhead_us * 1e-6, p.dispatch_overhead_us * 1e-6
    return p.launch_overhead_us * 1e-6, 0.0


def op_records(ops: Iterable[Op], profile: HardwareProfile | str, dtype: str = "bf16",
               attention_kernel: str = "fa2", pass_: str = "fwd") -> list[tuple]:
    """The rows of ``op_times`` as tuples (``COLUMNS``), without building a DataFrame (the fast path)."""
    if pass_ not in PASSES:
        raise ValueError(f"pass_: expected one of {', '.join(PASSES)}, got {pass_!r}")
    ops = list(ops)
    p, eff, bpe, peak, bw, overhead = _setup(profile, dtype, ops)
    fl = eager_floors(p)
    rows = []
    for op in ops:
        r = _record(op, pass_, eff, attention_kernel, bpe, peak, bw, overhead, fl)
        if r is not None:
            rows.append(r)
    return rows


_SCALED = (4, 5, 6, 7, 8, 9, 10)  # instances, flops, bytes, compute_s, memory_s, overhead_s, seconds


def call_records(calls: Iterable[tuple[Iterable[Op], Any]], profile: HardwareProfile | str, dtype: str = "bf16",
                 attention_kernel: str = "fa2", pass_: str = "fwd") -> list[tuple]:
    """``op_records`` of ledgers each called ``n`` times (``Count.timed_calls``: a tiled decode's distinct tile
    ledgers): each ledger timed once, at its own shapes, and its rows' instances, FLOPs, bytes and seconds times
    ``n`` (efficiencies, bound and basis are the call's)."""
    calls = tuple(calls)
    rows: list[tuple] = []
    for ops, n in calls:
        rows += (_memo_records(ops, n, profile, dtype, attention_kernel, pass_) if len(calls) > 1
                 else _scaled(op_records(ops, profile, dtype, attention_kernel, pass_), n))
    return rows


def _scaled(records: list[tuple], n: Any) -> list[tuple]:
    """Rows of one call as rows of ``n`` calls (the extensive columns times ``n``)."""
    return records if n == 1 else [tuple(v * n if i in _SCALED else v for i, v in enumerate(r)) for r in records]


_RECORDS: OrderedDict[tuple, tuple[object, object, list[tuple]]] = OrderedDict()


def _memo_records(ops: Iterable[Op], n: Any, profile: HardwareProfile | str, dtype: str, kernel: str,
                  pass_: str) -> list[tuple]:
    """``op_records`` of ``n`` calls of one ledger of a multi-ledger count (a tiled decode's tiles: the memoised
    count hands over the same ledger tuples each time, so validate, serving and the report time each tile shape
    once), kept for the last 512 (ledger, calls, profile); the entry holds the ledger and the profile, so their
    identities stay theirs while it lives."""
    if not isinstance(ops, tuple) or not isinstance(n, int):
        return _scaled(op_records(ops, profile, dtype, kernel, pass_), n)
    key = (id(ops), n, profile if isinstance(profile, str) else id(profile), dtype, kernel, pass_)
    hit = _RECORDS.get(key)
    if hit is not None and hit[0] is ops and (isinstance(profile, str) or hit[1] is profile):
        _RECORDS.move_to_end(key)
        return hit[2]
    records = _scaled(op_records(ops, profile, dtype, kernel, pass_), n)
    _RECORDS[key] = (ops, profile, records)
    if len(_RECORDS) > 512:
        _RECORDS.popitem(last=False)
    return records


def _frame(rows: list[tuple]) -> pd.DataFrame:
    return pd.DataFrame.from_records(rows, columns=COLUMNS)


def op_times(ops: Iterable[Op], profile: HardwareProfile | str, dtype: str = "bf16", attention_kernel: str = "fa2",
             pass_: str = "fwd") -> pd.DataFrame:
    """One row per ledger op that does work in ``pass_``: path, kind, op, instances, flops, bytes, compute_s,
    memory_s, overhead_s, seconds (all instances), bound, efficiency (compute), memory_efficiency, basis."""
    return _frame(op_records(ops, profile, dtype, attention_kernel, pass_))


def predict_seconds(ops: Iterable[Op], profile: HardwareProfile | str, dtype: str = "bf16",
                    attention_kernel: str = "fa2", pass_: str = "fwd") -> float:
    """Total seconds of ``ops`` in ``pass_`` (the sum of ``op_times(...)['seconds']``)."""
    return float(sum(r[10] for r in op_records(ops, profile, dtype, attention_kernel, pass_)))


def recomputed_ops(ops: Sequence[Op], checkpointing: str) -> list[Op]:
    """What a checkpointing policy runs forward again during backward: ``none`` nothing; ``selective`` the attention
    cores; ``full`` every op of the DiT blocks (``blocks.{i}.*``)."""
    if checkpointing == "none":
        return []
    if checkpointing == "selective":
        return [op for op in ops if op.op == "sdpa"]
    if checkpointing == "full":
        return [op for op in ops if op.path.startswith(BLOCKS)]
    raise ValueError(f"checkpointing: expected none, selective or full, got {checkpointing!r}")


def optimizer_row(params: float, profile: HardwareProfile | str, bytes_per_param: float = ADAMW_BYTES_PER_PARAM,
                  shards: int = 1) -> tuple:
    """The optimizer step over ``params`` parameters (divided over ``shards`` ZeRO shards), memory bound."""
    p = _profile(profile)
    nbytes = float(params) * bytes_per_param / shards
    eff = efficiencies(p, "fp32")
    m_eff, basis = eff.memory_eff(("copy",), nbytes)
    memory_s = nbytes / (p.hbm_tbps * 1e12 * m_eff) if nbytes else 0.0
    overhead = p.launch_overhead_us * 1e-6
    return ("optimizer", "optimizer.step", "optimizer", "optimizer", 1, 0.0, nbytes, 0.0, memory_s, overhead,
            memory_s + overhead, "memory", float("nan"), m_eff, basis)


def training_times(ops: Sequence[Op], profile: HardwareProfile | str, dtype: str = "bf16",
                   attention_kernel: str = "fa2", checkpointing: str = "none", optimizer: bool = True,
                   zero_shards: int = 1) -> pd.DataFrame:
    """One training step of ``ops`` on one device: rows of every pass (``pass`` column), the recomputation of
    ``checkpointing`` and, with ``optimizer``, the optimizer step over the ops' weights."""
    rows: list[tuple] = []
    for pass_ in ("fwd", "bwd_activation", "bwd_weight"):
        rows += op_records(ops, profile, dtype, attention_kernel, pass_)
    rows += op_records(recomputed_ops(ops, checkpointing), profile, dtype, attention_kernel, "recompute")
    if optimizer:
        params = sum(float(op.weights) * op.instances for op in ops)
        rows.append(optimizer_row(params, profile, shards=zero_shards))
    return _frame(rows)


def rollup(df: pd.DataFrame, by: str | list[str] = "kind") -> pd.DataFrame:
    """Seconds, FLOPs and bytes summed by ``by`` (kind, op, pass, bound, path, ...), with the share of seconds,
    largest first."""
    keys = [by] if isinstance(by, str) else list(by)
    g = df.groupby(keys, sort=False)[["seconds", "flops", "bytes", "compute_s", "memory_s", "overhead_s"]].sum()
    g = g.reset_index()
    total = float(df["seconds"].sum())
    g["share"] = g["seconds"] / total if total else 0.0
    return g.sort_values("seconds", ascending=False, ignore_index=True)


def summary(df: pd.DataFrame, profile: HardwareProfile | str, dtype: str = "bf16") -> dict[str, float]:
    """Totals of an ``op_times`` / ``training_times`` frame: seconds, model and hardware FLOPs, MFU, HFU, seconds
    in compute-, memory- and latency-bound ops."""
    p = _profile(profile)
    seconds = float(df["seconds"].sum())
    hardware = float(df["flops"].sum())
    model = float(df.loc[df["pass"] != "recompute", "flops"].sum())
    peak = p.peak_flops(dtype)
    out = {"seconds": seconds, "model_flops": model, "hardware_flops": hardware,
           "mfu": model / (seconds * peak) if seconds else 0.0, "hfu": hardware / (seconds * peak) if seconds else 0.0}
    for b in ("compute", "memory", "latency"):
        out[f"{b}_bound_s"] = float(df.loc[df["bound"] == b, "seconds"].sum())
    return out


def component_times(parts: Mapping[str, tuple[Iterable[Op], int]], profile: HardwareProfile | str,
                    dtype: str = "bf16", attention_kernel: str = "fa2") -> pd.DataFrame:
    """Forward seconds per component (e.g. text encoder, DiT forward x steps, VAE decode): ``parts`` maps a name to
    (ops, calls). Columns: component, calls, seconds_per_call, seconds, share, mfu, compute/memory/latency seconds."""
    p = _profile(profile)
    rows = []
    for name, (ops, calls) in parts.items():
        df = op_times(ops, p, dtype, attention_kernel)
        s = summary(df.assign(**{"pass": "fwd"}), p, dtype) if len(df) else {
            "seconds": 0.0, "mfu": 0.0, "compute_bound_s": 0.0, "memory_bound_s": 0.0, "latency_bound_s": 0.0}
        rows.append({"component": name, "calls": calls, "seconds_per_call": s["seconds"],
                     "seconds": s["seconds"] * calls, "mfu": s["mfu"],
                     **{k: s[k] * calls for k in ("compute_bound_s", "memory_bound_s", "latency_bound_s")}})
    out = pd.DataFrame(rows)
    total = float(out["seconds"].sum()) if len(out) else 0.0
    out.insert(4, "share", out["seconds"] / total if total else 0.0)
    return out
