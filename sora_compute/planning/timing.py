"""Predicted time of generating a video: the per-op time model (``evaluate/time.py``) over each component's ledger
(text encoder, DiT forward, VAE decode), on a hardware profile, at a dtype and with an attention kernel.

The estimate says how many times each component runs per video (CFG pair, steps, cached evaluations, VAE tiles);
this module turns one run of each into seconds: time per op = max(FLOPs / (peak x efficiency of its shape),
bytes / (bandwidth x memory efficiency)) + launch overhead, with efficiencies from the profile's kernel tables. On
``gpus`` GPUs a video's work is split ideally (parallel overheads come with the parallel-execution model).
"""

from __future__ import annotations

from typing import Literal

import pandas as pd

from sora_compute.evaluate.time import COLUMNS, op_records
from sora_compute.hardware.profiles import HardwareProfile, load_profile
from sora_compute.planning.inference import InferenceEstimate

__all__ = ["ATTENTION_KERNELS", "AttentionKernelName", "inference_times", "predicted_seconds", "fallback_share"]

#: Attention kernels the time model knows by name (kernel tables give their efficiencies per GPU generation):
#: FlashAttention-2 and -3, cuDNN's fused attention, unfused "math" attention (scores materialised), and the CPU's.
ATTENTION_KERNELS = ("fa2", "fa3", "cudnn", "math", "flash_cpu")
AttentionKernelName = Literal["fa2", "fa3", "cudnn", "math", "flash_cpu"]


def _profile(gpu: str | HardwareProfile) -> HardwareProfile:
    return gpu if isinstance(gpu, HardwareProfile) else load_profile(gpu)


_SECONDS, _BOUND, _BASIS = COLUMNS.index("seconds"), COLUMNS.index("bound"), COLUMNS.index("basis")


def inference_times(estimate: InferenceEstimate, gpu: str | HardwareProfile, precision: str = "bf16",
                    attention_kernel: str = "fa2") -> pd.DataFrame:
    """Seconds per component of one video on one GPU: component, calls (runs per video), seconds_per_call, seconds,
    share, mfu (of that component: its FLOPs as the estimate counts them over seconds x peak), and the seconds in
    compute-, memory- and latency-bound ops."""
    profile = _profile(gpu)
    peak = profile.peak_flops(precision)
    rows = []
    for name, count in estimate.counts.items():
        calls = estimate.multipliers[name]
        records = op_records(count.terms, profile, precision, attention_kernel)
        per_call = sum(r[_SECONDS] for r in records)
        bound = {b: sum(r[_SECONDS] for r in records if r[_BOUND] == b) * calls
                 for b in ("compute", "memory", "latency")}
        rows.append({"component": name, "calls": calls, "seconds_per_call": per_call, "seconds": per_call * calls,
                     "mfu": float(count.flops) / (per_call * peak) if per_call else 0.0,
                     **{f"{b}_bound_s": v for b, v in bound.items()}})
    out = pd.DataFrame(rows)
    total = float(out["seconds"].sum())
    out.insert(4, "share", out["seconds"] / total if total else 0.0)
    return out


def predicted_seconds(estimate: InferenceEstimate, gpu: str | HardwareProfile, precision: str = "bf16",
                      attention_kernel: str = "fa2", gpus: int = 1) -> float:
    """Seconds to generate one video on ``gpus`` GPUs (the one-GPU time split ideally)."""
    profile = _profile(gpu)
    total = 0.0
    for name, count in estimate.counts.items():
        total += sum(r[_SECONDS] for r in op_records(count.terms, profile, precision, attention_kernel)) \
            * estimate.multipliers[name]
    return total / gpus


def fallback_share(estimate: InferenceEstimate, gpu: str | HardwareProfile, precision: str = "bf16",
                   attention_kernel: str = "fa2") -> float:
    """Share of the predicted time spent in ops whose efficiency no kernel-table point gives (the profile's default
    MFU stands in for them): 0 where the GPU's tables cover every op class, 1 where it has no tables."""
    profile = _profile(gpu)
    total = fallback = 0.0
    for name, count in estimate.counts.items():
        for r in op_records(count.terms, profile, precision, attention_kernel):
            seconds = r[_SECONDS] * estimate.multipliers[name]
            total += seconds
            fallback += seconds if str(r[_BASIS]).startswith("default") else 0.0
    return fallback / total if total else 0.0
