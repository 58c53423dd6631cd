"""Predicted training time: the per-op time model (``evaluate/time.py``) over each training sample's ledgers, on a
hardware profile, at a precision and with an attention kernel.

Per sample of one (stage, bucket) shape, on one GPU:

    seconds per sample = DiT step(micro-batch) / micro-batch + VAE encode + text encode + optimizer step / global batch

- DiT step: forward + activation-gradient + weight-gradient passes + the recomputation of the scenario's
  checkpointing policy (``training_times`` of the DiT ledger at ``micro_batch`` samples, elementwise work included);
- VAE encode, text encode: one forward each per sample, only when the scenario runs them on the fly (their counted
  ledgers, as the inference time reads them);
- optimizer: the AdamW step over the DiT's parameters (memory bound), once per global batch; sharded over the GPUs
  (ZeRO), its GPU-seconds per step are one GPU's full step.

A stage's GPU-seconds = samples x seconds per sample. On N GPUs the wall time is GPU-seconds / N: ideal scaling
(communication and other parallel overheads come with the parallel-execution model). MFU = model FLOPs /
(GPU-seconds x peak); HFU = hardware FLOPs (with recomputation) / (GPU-seconds x peak). Units: seconds, FLOPs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from sora_compute._frames import FrameRepr
from sora_compute.evaluate.time import COLUMNS, call_records, op_records, optimizer_row, recomputed_ops
from sora_compute.flops import MATMUL_ONLY, count_text_encoder, count_vae_encode, dit_ops
from sora_compute.hardware.profiles import HardwareProfile, load_profile
from sora_compute.planning.training import TrainingEstimate
from sora_compute.specs import VideoSpec, Workload

__all__ = ["ASSUMED_MICRO_BATCH_TOKENS", "ASSUMED_GLOBAL_BATCH_TOKENS", "TrainingTime", "micro_batch_for",
           "global_batch_for", "encode_seconds", "sample_seconds", "training_time"]

#: ASSUMED (no measurement; the training-recipe module sets real batches): short samples (images, low-resolution
#: clips) are batched until a micro-batch holds at least this many video tokens, as trainers pack or bucket short
#: sequences, so their GEMMs run at large-M efficiency; a sample of more tokens runs alone.
ASSUMED_MICRO_BATCH_TOKENS = 8192
#: ASSUMED: a global batch of about 4M video tokens per optimizer step (GPT-3 175B trained at 3.2M tokens per
#: batch), used when a stage does not give ``global_batch``; it only sets how often the optimizer step runs.
ASSUMED_GLOBAL_BATCH_TOKENS = 4 * 2**20

_SECONDS, _BASIS = COLUMNS.index("seconds"), COLUMNS.index("basis")
PARTS = ("dit_fwd_s", "dit_bwd_activation_s", "dit_bwd_weight_s", "recompute_s", "vae_encode_s", "text_encode_s",
         "optimizer_s")


def micro_batch_for(tokens: Any) -> Any:
    """Samples per micro-batch: ceil(ASSUMED_MICRO_BATCH_TOKENS / tokens), at least 1 (arrays elementwise)."""
    mb = np.maximum(1, np.ceil(ASSUMED_MICRO_BATCH_TOKENS / np.maximum(np.asarray(tokens, dtype=np.float64), 1.0)))
    return int(mb) if np.ndim(mb) == 0 else mb


def global_batch_for(tokens: Any) -> Any:
    """Samples per optimizer step when the stage gives none: max(1, ASSUMED_GLOBAL_BATCH_TOKENS / tokens)."""
    gb = np.maximum(1.0, ASSUMED_GLOBAL_BATCH_TOKENS / np.maximum(np.asarray(tokens, dtype=np.float64), 1.0))
    return float(gb) if np.ndim(gb) == 0 else gb


def _profile(gpu: str | HardwareProfile) -> HardwareProfile:
    return gpu if isinstance(gpu, HardwareProfile) else load_profile(gpu)


def _sum(records: list[tuple]) -> tuple[float, float]:
    """(seconds, seconds in ops no kernel-table point covers) of op records."""
    return (sum(r[_SECONDS] for r in records),
            sum(r[_SECONDS] for r in records if str(r[_BASIS]).startswith("default")))


def encode_seconds(workload: Workload, gpu: str | HardwareProfile, precision: str = "bf16",
                   attention_kernel: str = "fa2", vae_on_the_fly: bool = False,
                   text_on_the_fly: bool = False) -> dict[str, float]:
    """Predicted seconds of encoding one training sample on the fly on one GPU: ``vae_encode_s`` (the VAE encoder
    under its official encode schedule), ``text_encode_s`` (the text encoders), each 0 when that input comes
    pre-computed, ``fallback_s`` (their seconds in ops no kernel-table point covers) and ``flops`` (their model
    FLOPs, matmul-only)."""
    profile = _profile(gpu)
    out = {"vae_encode_s": 0.0, "text_encode_s": 0.0, "fallback_s": 0.0, "flops": 0.0}
    for on, key, count in ((vae_on_the_fly, "vae_encode_s", count_vae_encode),
                           (text_on_the_fly, "text_encode_s", count_text_encoder)):
        if on:
            c = count(workload, convention=MATMUL_ONLY)
            s, f = _sum(call_records(c.term_calls, profile, precision, attention_kernel))
            out[key], out["fallback_s"], out["flops"] = s, out["fallback_s"] + f, out["flops"] + float(c.flops)
    return out


def sample_seconds(workload: Workload, gpu: str | HardwareProfile, precision: str = "bf16",
                   attention_kernel: str = "fa2", checkpointing: str = "none", vae_on_the_fly: bool = False,
                   text_on_the_fly: bool = False, micro_batch: int | None = None,
                   global_batch: float | None = None) -> dict[str, float]:
    """Predicted seconds of training on one sample of ``workload`` on one GPU, by part (``PARTS``: DiT forward,
    activation and weight gradients, recomputation, VAE and text encoding, the optimizer's share), their total
    ``seconds`` and ``fallback_s`` (seconds in ops no kernel-table point covers). ``micro_batch`` None:
    ``micro_batch_for``; ``global_batch`` None: ``global_batch_for``."""
    profile = _profile(gpu)
    mb = micro_batch if micro_batch is not None else micro_batch_for(workload.tokens)
    gb = global_batch if global_batch is not None else global_batch_for(workload.tokens)
    ops = dit_ops(workload, batch=mb)
    out, fallback = {}, 0.0
    for key, pass_, run in (("dit_fwd_s", "fwd", ops), ("dit_bwd_activation_s", "bwd_activation", ops),
                            ("dit_bwd_weight_s", "bwd_weight", ops),
                            ("recompute_s", "recompute", recomputed_ops(ops, checkpointing))):
        s, f = _sum(op_records(run, profile, precision, attention_kernel, pass_))  # training_times' rows, no frame
        out[key], fallback = s / mb, fallback + f / mb
    enc = encode_seconds(workload, profile, precision, attention_kernel, vae_on_the_fly, text_on_the_fly)
    out["vae_encode_s"], out["text_encode_s"] = enc["vae_encode_s"], enc["text_encode_s"]
    fallback += enc["fallback_s"]
    params = sum(float(op.weights) * op.instances for op in ops)
    out["optimizer_s"] = optimizer_row(params, profile)[_SECONDS] / gb
    out["seconds"] = sum(out[k] for k in PARTS)
    out["fallback_s"] = fallback
    out["micro_batch"] = float(mb)
    out["global_batch"] = float(gb)
    return out


@dataclass(frozen=True, repr=False)
class TrainingTime(FrameRepr):
    """Predicted GPU-seconds of a training estimate on one GPU type: per (stage, bucket) row the seconds per sample
    by part and the row's GPU-seconds (samples x seconds per sample); MFU and HFU implied."""

    estimate: TrainingEstimate
    profile: HardwareProfile
    precision: str
    attention_kernel: str
    table: pd.DataFrame

    @property
    def gpu_seconds(self) -> float:
        """GPU-seconds of the whole plan (one GPU's seconds; N GPUs take GPU-seconds / N under ideal scaling)."""
        return float(self.table["gpu_seconds"].sum())

    @property
    def peak_flops(self) -> float:
        return self.profile.peak_flops(self.precision)

    @property
    def mfu(self) -> float:
        """Model FLOPs / (GPU-seconds x peak)."""
        return self.estimate.model_flops / (self.gpu_seconds * self.peak_flops)

    @property
    def hfu(self) -> float:
        """Hardware FLOPs (recomputation included) / (GPU-seconds x peak)."""
        return self.estimate.hardware_flops / (self.gpu_seconds * self.peak_flops)

    @property
    def fallback_share(self) -> float:
        """Share of the GPU-seconds in ops no kernel-table point covers (the GPU's default MFU stands in)."""
        return float((self.table["fallback_s"] * self.table["samples"]).sum()) / self.gpu_seconds

    def wall_seconds(self, gpus: int) -> float:
        """Seconds on ``gpus`` GPUs: GPU-seconds / GPUs (ideal scaling)."""
        return self.gpu_seconds / gpus

    def by_part(self) -> pd.DataFrame:
        """GPU-seconds by part (DiT passes, recomputation, encoders, optimizer) with their share."""
        secs = {p.removesuffix("_s"): float((self.table[p] * self.table["samples"]).sum()) for p in PARTS}
        total = sum(secs.values())
        return pd.DataFrame({"part": list(secs), "gpu_seconds": list(secs.values()),
                             "share": [v / total for v in secs.values()]})

    def by_stage(self) -> pd.DataFrame:
        g = self.table.groupby("stage", sort=False)[["samples", "gpu_seconds"]].sum().reset_index()
        g["share"] = g["gpu_seconds"] / g["gpu_seconds"].sum()
        return g

    def to_frame(self) -> pd.DataFrame:
        return self.table.copy()

    def __repr__(self) -> str:
        return (f"TrainingTime({self.estimate.scenario.name} on {self.profile.key}: {self.gpu_seconds / 86400:,.0f} "
                f"GPU-days predicted, MFU {self.mfu:.0%}, HFU {self.hfu:.0%})")


def training_time(estimate: TrainingEstimate, gpu: str | HardwareProfile, precision: str = "bf16",
                  attention_kernel: str = "fa2", micro_batch: int | None = None) -> TrainingTime:
    """Predicted time of ``estimate`` on one ``gpu`` (see the module docstring); each (stage, bucket) row of the
    estimate's table gets its seconds per sample (``sample_seconds``) and GPU-seconds."""
    profile = _profile(gpu)
    sc = estimate.scenario
    stages = {s.name: s for s in sc.stages}
    memo: dict[tuple, dict[str, float]] = {}
    rows = []
    for r in estimate.table.to_dict(orient="records"):
        video = VideoSpec(width=int(r["width"]), height=int(r["height"]), num_frames=int(r["num_frames"]),
                          fps=float(r["fps"]))
        gb = stages[str(r["stage"])].global_batch
        key = (video, gb)
        if key not in memo:
            memo[key] = sample_seconds(Workload.of(sc.model, video), profile, precision, attention_kernel,
                                       sc.checkpointing, sc.vae_on_the_fly, sc.text_on_the_fly, micro_batch,
                                       None if gb is None else float(gb))
        per = memo[key]
        samples = float(r["samples"])
        rows.append({"stage": r["stage"], "width": video.width, "height": video.height,
                     "num_frames": video.num_frames, "samples": samples, **per,
                     "gpu_seconds": samples * per["seconds"]})
    table = pd.DataFrame(rows)
    if not math.isfinite(float(table["gpu_seconds"].sum())):
        raise ValueError("samples: the predicted GPU-seconds exceed the float64 range")
    return TrainingTime(estimate, profile, precision, attention_kernel, table)
