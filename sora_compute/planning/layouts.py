"""The training layout search: every DP x TP x CP (Ulysses, ring) x PP layout of N GPUs, with ZeRO stage,
micro-batch, interleaving, checkpointing policy and attention kernel; memory per GPU (``memory/planner.py``
``layout_memory``, vectorised), step time and breakdown (``planning/parallel.py``, vectorised); layouts that do not
fit are never recommended; the rest ranked by step time (= $ per step at a fixed GPU count).

Enumeration (each rule is a framework's rule): TP divides the heads and stays in a node; Ulysses needs TP x
CP-Ulysses to divide the heads; CP and PP degrees are powers of two; PP at most the blocks; interleaved 1F1B (2
virtual chunks) needs the blocks to divide by 2 pp and the micro-batches by pp; ZeRO-2/3 not with PP (DeepSpeed's
rule; Megatron's distributed optimizer is ZeRO-1); the global batch must split into whole micro-batches per DP rank.

The ranking is a total order (fits, step time, then the layout's fields), so it does not depend on the
enumeration order.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from sora_compute._frames import FrameRepr
from sora_compute.evaluate.comm import topology_of
from sora_compute.hardware import resolve_gpu
from sora_compute.hardware.profiles import HardwareProfile, load_profile
from sora_compute.memory.planner import USABLE_FRACTION, GiB, PrecisionPolicy, layout_peak, training_memory_basis
from sora_compute.planning.parallel import BREAKDOWN, TrainingBasis, step_times, training_bases
from sora_compute.presets import load_preset
from sora_compute.specs import ModelSpec, VideoSpec, Workload, as_workload

__all__ = ["LayoutSearch", "search_training_layouts", "enumerate_layouts", "LAYOUT_FIELDS", "strong_scaling"]

LAYOUT_FIELDS = ["tp", "cp_ulysses", "cp_ring", "pp", "vpp", "dp", "zero", "micro_batch", "checkpointing",
                 "attention_kernel"]
CHECKPOINTING = ("none", "selective", "full")
MAX_TP, MAX_CP, MAX_PP = 8, 256, 16  # the search's default limits: a layout has at most batch x 8 x 256 x 16 GPUs


def most_gpus(global_batch: int, micro_batch: int) -> int:
    """The most GPUs any layout of the search's default limits can use for ``global_batch`` samples at
    ``micro_batch``: dp (global_batch // micro_batch) x MAX_TP x MAX_CP x MAX_PP."""
    return global_batch // micro_batch * MAX_TP * MAX_CP * MAX_PP


def _pows(limit: int) -> list[int]:
    return [2**k for k in range(0, max(0, int(math.log2(max(limit, 1)))) + 1)]


def enumerate_layouts(gpus: int, global_batch: int, heads: int, blocks: int, gpus_per_node: int,
                      micro_batches: tuple[int, ...] = (1, 2, 4), zero_stages: tuple[int, ...] = (0, 1, 2, 3),
                      checkpointing: tuple[str, ...] = CHECKPOINTING, kernels: tuple[str, ...] = ("fa2",),
                      max_tp: int = MAX_TP, max_cp: int = MAX_CP, max_pp: int = MAX_PP) -> pd.DataFrame:
    """The valid layouts (module docstring), one row each (``LAYOUT_FIELDS``)."""
    rows = []
    tps = [t for t in range(1, min(max_tp, gpus_per_node, heads) + 1) if heads % t == 0]
    for tp in tps:
        for cu in (c for c in _pows(max_cp) if heads % (tp * c) == 0):
            for cr in (c for c in _pows(max_cp) if cu * c <= max_cp):
                for pp in (p for p in _pows(min(max_pp, blocks))):
                    mp = tp * cu * cr * pp
                    if gpus % mp:
                        continue
                    dp = gpus // mp
                    for mb in micro_batches:
                        if global_batch % (dp * mb):
                            continue
                        m = global_batch // (dp * mb)
                        vpps = [1] + ([2] if pp > 1 and blocks % (2 * pp) == 0 and m % pp == 0 else [])
                        for vpp, zero in itertools.product(vpps, zero_stages):
                            if pp > 1 and zero >= 2:
                                continue
                            for ck, ker in itertools.product(checkpointing, kernels):
                                rows.append((tp, cu, cr, pp, vpp, dp, zero, mb, ck, ker))
    return pd.DataFrame(rows, columns=LAYOUT_FIELDS)


@dataclass(frozen=True, repr=False)
class LayoutSearch(FrameRepr):
    """All layouts considered: fit, memory, step time and breakdown, ranked (fitting first, fastest first)."""

    table: pd.DataFrame
    gpu: str
    gpus: int
    global_batch: int

    @property
    def fitting(self) -> pd.DataFrame:
        return self.table[self.table["fits"]]

    @property
    def best(self) -> pd.Series | None:
        """The fastest layout that fits (None when none fits)."""
        f = self.fitting
        return f.iloc[0] if len(f) else None

    def top(self, k: int = 5) -> pd.DataFrame:
        return self.fitting.head(k)

    def to_frame(self) -> pd.DataFrame:
        return self.table.copy()

    def __repr__(self) -> str:
        b = self.best
        head = (f"best {b['layout']}: {b['step_s']:.3g} s/step, MFU {b['mfu']:.1%}" if b is not None
                else "no layout fits")
        return (f"LayoutSearch({len(self.table):,} layouts of {self.gpus:,} x {self.gpu}, "
                f"{len(self.fitting):,} fit; {head})")


def _label(df: pd.DataFrame) -> list[str]:
    cols = [df[c].tolist() for c in LAYOUT_FIELDS]
    return [f"TP{tp} CP{cu}u{cr}r PP{pp}{f'v{v}' if v > 1 else ''} DP{dp} ZeRO-{z} mb{mb} {ck} {ker}"
            for tp, cu, cr, pp, v, dp, z, mb, ck, ker in zip(*cols, strict=True)]


def search_training_layouts(
    model: ModelSpec | Workload | str,
    video: VideoSpec | None,
    gpu: str | HardwareProfile = "h100-sxm",
    gpus: int = 1024,
    global_batch: int | None = None,
    precision: PrecisionPolicy | None = None,
    micro_batches: tuple[int, ...] = (1, 2, 4),
    zero_stages: tuple[int, ...] = (0, 1, 2, 3),
    checkpointing: tuple[str, ...] = CHECKPOINTING,
    kernels: tuple[str, ...] = ("fa2", "fa3"),
    max_tp: int = MAX_TP,
    max_cp: int = MAX_CP,
    max_pp: int = MAX_PP,
    usable_fraction: float = USABLE_FRACTION,
    pin: dict[str, object] | None = None,
) -> LayoutSearch:
    """Every valid training layout of ``gpus`` GPUs for one training shape and ``global_batch`` samples per step
    (default: one per GPU), with memory per GPU, fit, step time and breakdown, tokens/s per GPU, MFU and $ per step;
    ranked fitting first, then by step time. ``pin`` fixes layout fields (e.g. ``{"tp": 1, "zero": 3}``). ``model``
    may be a preset name (``video`` None: the preset's native shape)."""
    if gpus < 1:
        raise ValueError(f"gpus: expected a positive count, got {gpus!r}")
    B = gpus if global_batch is None else global_batch
    if B < 1:
        raise ValueError(f"global_batch: expected a positive count, got {global_batch!r}")
    prec = precision or PrecisionPolicy()
    if isinstance(model, str):
        preset = load_preset(model)
        model, video = preset.model, video if video is not None else preset.video
    w = as_workload(model, video)
    profile = gpu if isinstance(gpu, HardwareProfile) else load_profile(gpu)
    spec = resolve_gpu(profile)
    topo = topology_of(profile)
    dit = w.model.dit
    pin = dict(pin or {})
    unknown = sorted(set(pin) - set(LAYOUT_FIELDS))
    if unknown:
        raise ValueError(f"pin: unknown layout field {unknown[0]!r} (fields: {', '.join(LAYOUT_FIELDS)})")
    mbs = (int(pin["micro_batch"]),) if "micro_batch" in pin else micro_batches  # type: ignore[call-overload]
    cks = (str(pin["checkpointing"]),) if "checkpointing" in pin else checkpointing
    kers = (str(pin["attention_kernel"]),) if "attention_kernel" in pin else kernels
    zs = (int(pin["zero"]),) if "zero" in pin else zero_stages  # type: ignore[call-overload]
    for c in cks:
        if c not in CHECKPOINTING:
            raise ValueError(f"checkpointing: expected one of {', '.join(CHECKPOINTING)}, got {c!r}")
    all_bases = training_bases(w, profile, mbs, cks, kers)  # kernels the time model cannot time are dropped
    kers = tuple(k for k in kers if any(key[2] == k for key in all_bases))
    if not kers:
        raise ValueError(f"attention kernels: none of {', '.join(kernels)} can be timed on {profile.key}")
    lay = enumerate_layouts(gpus, B, dit.num_heads, dit.num_blocks, topo.gpus_per_node, mbs, zs, cks, kers,
                            max_tp, max_cp, max_pp)
    for k, v in pin.items():
        lay = lay[lay[k] == v]
    lay = lay.reset_index(drop=True)
    keys = list(zip(lay["micro_batch"].tolist(), lay["checkpointing"].tolist(), lay["attention_kernel"].tolist(),
                    strict=True))
    combos = sorted(set(keys))
    bases: list[TrainingBasis] = [all_bases[c] for c in combos]
    where = {c: i for i, c in enumerate(combos)}
    idx = np.fromiter((where[c] for c in keys), dtype=int, count=len(lay))
    peak = np.zeros(len(lay))
    mem_bases = {}
    for i, (mb, ck, ker) in enumerate(combos):
        mk = "materialized" if ker == "math" else "fused"
        if (mb, ck, mk) not in mem_bases:
            mem_bases[(mb, ck, mk)] = training_memory_basis(w, mb, prec, ck, mk)  # type: ignore[arg-type]
        sel = idx == i
        sub = lay[sel]
        peak[sel] = layout_peak(mem_bases[(mb, ck, mk)], sub["dp"].to_numpy(), sub["tp"].to_numpy(),
                                (sub["cp_ulysses"] * sub["cp_ring"]).to_numpy(), sub["pp"].to_numpy(),
                                sub["zero"].to_numpy(), prec)
    capacity = spec.hbm_bytes * usable_fraction
    times = step_times(bases, idx, profile, B, lay["dp"], lay["tp"], lay["cp_ulysses"], lay["cp_ring"], lay["pp"],
                       lay["zero"], lay["vpp"], ema=prec.ema) if len(lay) else pd.DataFrame(columns=["step_s"])
    out = lay.copy()
    out.insert(0, "layout", _label(lay))
    out["cp"] = out["cp_ulysses"] * out["cp_ring"]
    out["peak_GiB"] = peak / GiB
    out["capacity_GiB"] = capacity / GiB
    out["fits"] = peak <= capacity
    out = pd.concat([out, times.drop(columns=["gpus"], errors="ignore")], axis=1)
    if len(out):
        out["usd_per_step"] = out["step_s"] * gpus * spec.price_usd_per_hour / 3600
    # equal step times (ZeRO-1 and ZeRO-2 move the same bytes) go to the smaller peak, then to the layout fields
    out = out.sort_values(["fits", "step_s", "peak_GiB", *LAYOUT_FIELDS],
                          ascending=[False, True, True, *[True] * len(LAYOUT_FIELDS)], ignore_index=True,
                          kind="mergesort")
    out["why_not_best"] = _why(out)
    return LayoutSearch(out, profile.key, gpus, B)


def _why(df: pd.DataFrame) -> pd.Series:
    """Why each layout loses to the best fitting one: it does not fit, or the breakdown part it spends most more
    seconds on."""
    if not len(df) or not bool(df["fits"].iloc[0]):
        return pd.Series(np.where(df["fits"], "", "does not fit") if len(df) else [], dtype=str, index=df.index)
    best = df.iloc[0]
    diff = df[BREAKDOWN].to_numpy() - best[BREAKDOWN].to_numpy(dtype=float)
    worst = np.asarray(BREAKDOWN)[np.argmax(diff, axis=1)]
    more = np.max(diff, axis=1)
    text = np.char.add(np.char.add("+", np.char.mod("%.3g", more)), np.char.add(" s ", worst))
    out = np.where(~df["fits"].to_numpy(), "does not fit", np.where(more > 0, text, ""))
    out[0] = "best"
    return pd.Series(out, index=df.index, dtype=str)


def strong_scaling(model: ModelSpec | Workload, video: VideoSpec | None, gpu: str | HardwareProfile,
                   gpu_counts: list[int], global_batch: int, **search: object) -> pd.DataFrame:
    """The best fitting layout at each GPU count for a fixed global batch: step time, speed-up and efficiency
    against the smallest count (efficiency = speed-up / GPU ratio: 1 is linear scaling)."""
    rows = []
    for n in gpu_counts:
        s = search_training_layouts(model, video, gpu, n, global_batch, **search)  # type: ignore[arg-type]
        b = s.best
        if b is None:
            rows.append({"gpus": n, "layout": "no layout fits"})
            continue
        rows.append({"gpus": n, "layout": b["layout"], "step_s": b["step_s"], "mfu": b["mfu"],
                     "tokens_per_s_per_gpu": b["tokens_per_s_per_gpu"], "bubble_s": b["bubble_s"],
                     "comm_s": float(b[["tp_comm_s", "cp_comm_s", "fsdp_comm_s", "pp_p2p_s", "dp_comm_s"]].sum())})
    df = pd.DataFrame(rows)
    if "step_s" in df and df["step_s"].notna().any():
        first = df[df["step_s"].notna()].iloc[0]
        df["speedup"] = first["step_s"] / df["step_s"]
        df["efficiency"] = df["speedup"] / (df["gpus"] / first["gpus"])
    return df
