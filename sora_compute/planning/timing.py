"""Predicted time of generating a video: the per-op time model (``evaluate/time.py``) over each component's ledger
(text encoder, DiT forward, VAE decode), on a hardware profile, at a dtype and with an attention kernel.

The estimate says how many times each component runs per video (CFG pair, steps, cached evaluations, VAE tiles);
this module turns one run of each into seconds: time per op = max(FLOPs / (peak x efficiency of its shape),
bytes / (bandwidth x memory efficiency)) + launch overhead, with efficiencies from the profile's kernel tables. On
``gpus`` GPUs a video's work is split ideally (parallel overheads come with the parallel-execution model).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Literal

import pandas as pd

from sora_compute.evaluate.time import COLUMNS, call_records
from sora_compute.hardware.profiles import HardwareProfile, load_profile
from sora_compute.planning.inference import InferenceEstimate

__all__ = ["ATTENTION_KERNELS", "AttentionKernelName", "component_records", "inference_times", "predicted",
           "predicted_seconds"]

#: Attention kernels the time model knows by name (kernel tables give their efficiencies per GPU generation):
#: FlashAttention-2 and -3, cuDNN's fused attention, unfused "math" attention (scores materialised), and the CPU's.
ATTENTION_KERNELS = ("fa2", "fa3", "cudnn", "math", "flash_cpu")
AttentionKernelName = Literal["fa2", "fa3", "cudnn", "math", "flash_cpu"]


def _profile(gpu: str | HardwareProfile) -> HardwareProfile:
    return gpu if isinstance(gpu, HardwareProfile) else load_profile(gpu)


_SECONDS, _BOUND, _BASIS = COLUMNS.index("seconds"), COLUMNS.index("bound"), COLUMNS.index("basis")


def component_records(estimate: InferenceEstimate, profile: HardwareProfile, precision: str, attention_kernel: str
                   ) -> Iterator[tuple[str, float, float, list[tuple]]]:
    """(component, FLOPs of one call, calls per video, op records of one call; ``evaluate/time.COLUMNS``) for each
    component: the one walk every predicted inference time reads. The records are of the whole ledger
    (``Count.timed_calls``): the elementwise work a FLOP count leaves out (modulation, gates, residual adds,
    activations, copies) costs memory traffic and launches; a tiled VAE decode's distinct tile ledgers are each timed
    at their own shape, times their calls."""
    for name, count in estimate.counts.items():
        yield name, float(count.flops), estimate.multipliers[name], call_records(count.timed_calls, profile,
                                                                                 precision, attention_kernel)


def inference_times(estimate: InferenceEstimate, gpu: str | HardwareProfile, precision: str = "bf16",
                    attention_kernel: str = "fa2") -> pd.DataFrame:
    """Seconds per component of one video on one GPU: component, calls (runs per video), seconds_per_call, seconds,
    share, mfu (of that component: its FLOPs as the estimate counts them over seconds x peak), the seconds in
    compute-, memory- and latency-bound ops, and ``fallback_s``: the seconds in ops no kernel-table point covers
    (the profile's default MFU stands in for them)."""
    profile = _profile(gpu)
    peak = profile.peak_flops(precision)
    rows = []
    for name, flops, calls, records in component_records(estimate, profile, precision, attention_kernel):
        per_call = sum(r[_SECONDS] for r in records)
        bound = {b: sum(r[_SECONDS] for r in records if r[_BOUND] == b) * calls
                 for b in ("compute", "memory", "latency")}
        fallback = sum(r[_SECONDS] for r in records if str(r[_BASIS]).startswith("default")) * calls
        rows.append({"component": name, "calls": calls, "seconds_per_call": per_call, "seconds": per_call * calls,
                     "mfu": flops / (per_call * peak) if per_call else 0.0,
                     **{f"{b}_bound_s": v for b, v in bound.items()}, "fallback_s": fallback})
    out = pd.DataFrame(rows)
    total = float(out["seconds"].sum())
    out.insert(4, "share", out["seconds"] / total if total else 0.0)
    return out


def predicted(estimate: InferenceEstimate, gpu: str | HardwareProfile, precision: str = "bf16",
              attention_kernel: str = "fa2") -> tuple[float, float]:
    """(seconds of one video on one GPU, the share of them in ops no kernel-table point covers), in one walk."""
    total = fallback = 0.0
    for _, _, calls, records in component_records(estimate, _profile(gpu), precision, attention_kernel):
        total += sum(r[_SECONDS] for r in records) * calls
        fallback += sum(r[_SECONDS] for r in records if str(r[_BASIS]).startswith("default")) * calls
    return total, fallback / total if total else 0.0


def predicted_seconds(estimate: InferenceEstimate, gpu: str | HardwareProfile, precision: str = "bf16",
                      attention_kernel: str = "fa2", gpus: int = 1) -> float:
    """Seconds to generate one video on ``gpus`` GPUs (the one-GPU time split ideally)."""
    return predicted(estimate, gpu, precision, attention_kernel)[0] / gpus
