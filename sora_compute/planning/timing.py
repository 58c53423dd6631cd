"""Predicted time of generating a video: the per-op time model (``evaluate/time.py``) over each component's ledger
(text encoder, DiT forward, VAE decode), on a hardware profile, at a dtype and with an attention kernel.

The estimate says how many times each component runs per video (CFG pair, steps, cached evaluations, VAE tiles);
this module turns one run of each into seconds: time per op = max(FLOPs / (peak x efficiency of its shape),
bytes / (bandwidth x memory efficiency)) + launch overhead, with efficiencies from the profile's kernel tables. On
``gpus`` GPUs a video's work is split ideally (parallel overheads come with the parallel-execution model).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Literal

import pandas as pd

from sora_compute.evaluate.time import COLUMNS, call_records, op_records
from sora_compute.flops import text_encoder_groups
from sora_compute.hardware.profiles import DTYPE_BYTES, HardwareProfile, load_profile
from sora_compute.ledger.ops import Op
from sora_compute.planning.inference import InferenceEstimate
from sora_compute.specs import ModelSpec, TextEncoderSpec

__all__ = ["ATTENTION_KERNELS", "AttentionKernelName", "FUSED_ATTENTION_DTYPES", "component_records", "count_records",
           "text_records", "text_seconds", "timed_dtype", "inference_times", "predicted",
           "predicted_seconds"]

#: Attention kernels the time model knows by name (kernel tables give their efficiencies per GPU generation):
#: FlashAttention-2 and -3, cuDNN's fused attention, unfused "math" attention (scores materialised), and the CPU's.
ATTENTION_KERNELS = ("fa2", "fa3", "cudnn", "math", "flash_cpu")
AttentionKernelName = Literal["fa2", "fa3", "cudnn", "math", "flash_cpu"]


def _profile(gpu: str | HardwareProfile) -> HardwareProfile:
    return gpu if isinstance(gpu, HardwareProfile) else load_profile(gpu)


_SECONDS, _BOUND, _BASIS = COLUMNS.index("seconds"), COLUMNS.index("bound"), COLUMNS.index("basis")


#: Dtypes the fused attention kernels take: FlashAttention-2 "Datatype fp16 and bf16" (Dao-AILab/flash-attention
#: README, commit 0251105a), FlashAttention-3 and cuDNN's fused attention add FP8; none takes fp32 (or tf32).
FUSED_ATTENTION_DTYPES = ("bf16", "fp16", "fp8")


def timed_dtype(spec: TextEncoderSpec, profile: HardwareProfile, precision: str) -> str:
    """The dtype ``profile`` times an encoder in: its ``inference_dtype`` (else the run's ``precision``); tf32 on a
    device without TF32 units (no tf32 peak: CPUs) runs fp32, as ``allow_tf32`` changes nothing there; a dtype the
    device has no peak for at all, the run's ``precision``."""
    dtype = spec.dtype_or(precision)
    if getattr(profile.peak_tflops, dtype) is not None:
        return dtype
    return "fp32" if dtype == "tf32" and profile.peak_tflops.fp32 is not None else precision


def text_records(model: ModelSpec, ops: Iterable[Op], profile: HardwareProfile, precision: str,
                 attention_kernel: str, pass_: str = "fwd") -> list[tuple]:
    """Op records of the text encoders' ops (``count_text_encoder``'s), each encoder in its own dtype
    (``inference_dtype``; the run's ``precision`` without one): fp32 at the FP32 peak, tf32 at the TF32 tensor-core
    peak (fp32 tensors, 4 bytes per element, either way). An encoder in a dtype no fused kernel takes (fp32, tf32)
    times its attention with the ``math`` kernel (scores materialised: what PyTorch runs then, and HF transformers'
    eager T5 attention)."""
    rows: list[tuple] = []
    for spec, group in zip(model.text_encoders, text_encoder_groups(ops, len(model.text_encoders)), strict=False):
        dtype = timed_dtype(spec, profile, precision)
        kernel = attention_kernel if dtype in FUSED_ATTENTION_DTYPES or attention_kernel == "flash_cpu" else "math"
        rows += op_records(group, profile, dtype, kernel, pass_)
    return rows


def text_seconds(model: ModelSpec, ops: Iterable[Op], profile: HardwareProfile, precision: str,
                 attention_kernel: str) -> float:
    """Seconds of one forward of the text encoders' ops, each encoder in its own dtype (``text_records``)."""
    return float(sum(r[_SECONDS] for r in text_records(model, ops, profile, precision, attention_kernel)))


def count_records(estimate: InferenceEstimate, name: str, profile: HardwareProfile, precision: str,
                  attention_kernel: str) -> list[tuple]:
    """Op records of one call of the estimate's component ``name`` (``evaluate/time.COLUMNS``): the text encoders
    each in their own dtype (``text_records``), the rest at ``precision``."""
    if name == "text_encode":
        return text_records(estimate.model, estimate.counts[name].timed_ops, profile, precision, attention_kernel)
    return call_records(estimate.counts[name].timed_calls, profile, precision, attention_kernel)


def component_records(estimate: InferenceEstimate, profile: HardwareProfile, precision: str, attention_kernel: str
                   ) -> Iterator[tuple[str, float, float, list[tuple]]]:
    """(component, FLOPs of one call, calls per video, op records of one call; ``evaluate/time.COLUMNS``) for each
    component: the one walk every predicted inference time reads. The records are of the whole ledger
    (``Count.timed_calls``): the elementwise work a FLOP count leaves out (modulation, gates, residual adds,
    activations, copies) costs memory traffic and launches; a tiled VAE decode's distinct tile ledgers are each timed
    at their own shape, times their calls."""
    for name, count in estimate.counts.items():
        yield name, float(count.flops), estimate.multipliers[name], count_records(estimate, name, profile, precision,
                                                                                  attention_kernel)


def _text_dtype(model: ModelSpec, profile: HardwareProfile, precision: str) -> str:
    """The dtype the text encoders are timed in (``timed_dtype``), one, or each encoder's where they differ."""
    dtypes = {timed_dtype(e, profile, precision) for e in model.text_encoders}
    return dtypes.pop() if len(dtypes) == 1 else model.text_encoder_dtypes(precision)


def inference_times(estimate: InferenceEstimate, gpu: str | HardwareProfile, precision: str = "bf16",
                    attention_kernel: str = "fa2") -> pd.DataFrame:
    """Seconds per component of one video on one GPU: component, dtype (the text encoders' own where they have one:
    ``text_records``), calls (runs per video), seconds_per_call, seconds, share, mfu (of that component: its FLOPs as
    the estimate counts them over seconds x the peak of its dtype), the seconds in
    compute-, memory- and latency-bound ops, and ``fallback_s``: the seconds in ops no kernel-table point covers
    (the profile's default MFU stands in for them)."""
    profile = _profile(gpu)
    rows = []
    for name, flops, calls, records in component_records(estimate, profile, precision, attention_kernel):
        dtype = _text_dtype(estimate.model, profile, precision) if name == "text_encode" else precision
        peak = profile.peak_flops(dtype if dtype in DTYPE_BYTES else precision)  # mixed: against the run's peak
        per_call = sum(r[_SECONDS] for r in records)
        bound = {b: sum(r[_SECONDS] for r in records if r[_BOUND] == b) * calls
                 for b in ("compute", "memory", "latency")}
        fallback = sum(r[_SECONDS] for r in records if str(r[_BASIS]).startswith("default")) * calls
        rows.append({"component": name, "dtype": dtype or precision, "calls": calls, "seconds_per_call": per_call,
                     "seconds": per_call * calls,
                     "mfu": flops / (per_call * peak) if per_call else 0.0,
                     **{f"{b}_bound_s": v for b, v in bound.items()}, "fallback_s": fallback})
    out = pd.DataFrame(rows)
    total = float(out["seconds"].sum())
    out.insert(5, "share", out["seconds"] / total if total else 0.0)
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
