"""Cluster plans (days, GPU-hours, cost, energy) for training work, inverse queries, and serving plans."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import pandas as pd
from pydantic import Field, model_validator

from sora_compute._frames import FrameRepr
from sora_compute.finite import require_finite
from sora_compute.hardware import GPUSpec, HardwareProfile, Precision, load_gpu, load_profile, resolve_gpu
from sora_compute.planning.base import _Spec
from sora_compute.planning.inference import InferenceEstimate
from sora_compute.planning.training import TrainingEstimate

# ------------------------------------------------------------------------------------------------
# Clusters
# ------------------------------------------------------------------------------------------------

class Cluster(_Spec):
    """GPUs of one type, and the assumptions that turn FLOPs into time, money and energy."""

    gpu: str = Field(description="catalog key, e.g. h100-sxm (see `sora-compute gpus`)")
    count: int = Field(gt=0, description="number of GPUs")
    mfu: float | None = Field(default=None, gt=0, le=1, description="model-FLOPs utilisation (default: per GPU)")
    pue: float = Field(default=1.2, ge=1, description="datacentre power usage effectiveness")
    price_usd_per_hour: float | None = Field(default=None, gt=0, description="USD per GPU-hour (default: catalog)")
    power_w: float | None = Field(default=None, gt=0, description="W per GPU (default: catalog TDP)")
    precision: Precision = Field(default="bf16", description="bf16 or fp8 peak")

    @model_validator(mode="after")
    def _known(self) -> Cluster:
        spec = load_gpu(self.gpu)  # raises UnknownGPUError with a did-you-mean
        spec.peak_flops(self.precision)
        return self

    @property
    def spec(self) -> GPUSpec:
        return load_gpu(self.gpu)

    @property
    def effective_mfu(self) -> float:
        return self.mfu if self.mfu is not None else self.spec.default_mfu

    @property
    def price(self) -> float:
        return self.price_usd_per_hour if self.price_usd_per_hour is not None else self.spec.price_usd_per_hour

    @property
    def power(self) -> float:
        """W per GPU (NaN when the catalog has no TDP and none was given)."""
        p = self.power_w if self.power_w is not None else self.spec.tdp_w
        return float("nan") if p is None else p

    @property
    def sustained_flops(self) -> float:
        """Model FLOP/s the whole cluster sustains: count x peak x MFU."""
        return self.count * self.spec.peak_flops(self.precision) * self.effective_mfu


@dataclass(frozen=True, repr=False)
class ClusterPlan(FrameRepr):
    """Time, GPU-hours, cost and energy to run ``model_flops`` on ``cluster`` at its MFU."""

    cluster: Cluster
    model_flops: float
    hardware_flops: float

    @property
    def seconds(self) -> float:
        """Wall-clock seconds = model FLOPs / (GPUs x peak x MFU)."""
        return self.model_flops / self.cluster.sustained_flops

    @property
    def days(self) -> float:
        return self.seconds / 86400

    @property
    def gpu_hours(self) -> float:
        return self.cluster.count * self.seconds / 3600

    @property
    def gpu_days(self) -> float:
        return self.gpu_hours / 24

    @property
    def cost_usd(self) -> float:
        return self.gpu_hours * self.cluster.price

    @property
    def energy_mwh(self) -> float:
        """GPU board power x hours x PUE (servers' CPUs and network only as far as PUE covers them)."""
        return self.gpu_hours * self.cluster.power * self.cluster.pue / 1e6

    @property
    def hfu(self) -> float:
        """Hardware-FLOPs utilisation implied by the MFU: MFU x hardware / model FLOPs."""
        return self.cluster.effective_mfu * self.hardware_flops / self.model_flops

    def summary(self) -> dict[str, Any]:
        c = self.cluster
        return {"gpu": c.gpu, "gpus": c.count, "precision": c.precision, "mfu": c.effective_mfu, "hfu": self.hfu,
                "model_flops": self.model_flops, "hardware_flops": self.hardware_flops, "days": self.days,
                "gpu_hours": self.gpu_hours, "gpu_days": self.gpu_days, "cost_usd": self.cost_usd,
                "energy_mwh": self.energy_mwh, "basis": "time = model FLOPs / (GPUs x peak x MFU)"}

    def to_frame(self) -> pd.DataFrame:
        return pd.DataFrame([self.summary()])

    def __repr__(self) -> str:
        return (f"ClusterPlan({self.cluster.count} x {self.cluster.gpu} at MFU {self.cluster.effective_mfu:.0%}: "
                f"{self.days:,.1f} days, {self.gpu_hours:,.0f} GPU-hours, ${self.cost_usd:,.0f}, "
                f"{self.energy_mwh:,.0f} MWh)")


def plan_cluster(work: TrainingEstimate | float, cluster: Cluster) -> ClusterPlan:
    """Run a training estimate (or a number of model FLOPs) on a cluster."""
    if isinstance(work, TrainingEstimate):
        return ClusterPlan(cluster, work.model_flops, work.hardware_flops)
    return ClusterPlan(cluster, float(work), float(work))


def gpus_for_days(work: TrainingEstimate | float, gpu: str | GPUSpec, days: float, mfu: float | None = None,
                  precision: Precision = "bf16") -> int:
    """Fewest GPUs that finish ``work`` within ``days`` at the given (or default) MFU."""
    require_finite("days", days, positive=True)
    if mfu is not None and not 0 < require_finite("mfu", mfu) <= 1:
        raise ValueError(f"mfu must be in (0, 1], got {mfu!r}")
    flops = work.model_flops if isinstance(work, TrainingEstimate) else float(work)
    spec = resolve_gpu(gpu)
    per_gpu = spec.peak_flops(precision) * (mfu if mfu is not None else spec.default_mfu)
    return max(1, math.ceil(flops / (per_gpu * days * 86400) - 1e-9))


def budget_plan(work: TrainingEstimate | float, cluster: Cluster, budget_usd: float) -> dict[str, float]:
    """What ``budget_usd`` buys on ``cluster``: affordable days, the share of ``work`` it completes, and the
    budget that completes it (cost does not depend on GPU count at fixed MFU; time does)."""
    require_finite("budget_usd", budget_usd, positive=True)
    plan = plan_cluster(work, cluster)
    affordable_days = budget_usd / (cluster.count * cluster.price * 24)
    return {"affordable_days": affordable_days, "days_needed": plan.days,
            "fraction_completed": min(1.0, affordable_days / plan.days), "budget_needed_usd": plan.cost_usd}


# ------------------------------------------------------------------------------------------------
# Serving
# ------------------------------------------------------------------------------------------------

@dataclass(frozen=True, repr=False)
class ServingPlan(FrameRepr):
    """Latency and throughput of generating videos on ``gpus_per_video`` GPUs of one type.

    The time per video is the per-op time model's prediction (``predicted_s``, one GPU; ``mfu`` is then the
    model-FLOPs utilisation it implies), or, when an MFU was given, FLOPs / (GPUs x peak x that MFU)."""

    estimate: InferenceEstimate
    gpu: GPUSpec
    gpus_per_video: int
    mfu: float
    precision: Precision
    roofline_seconds: float  # sum over layers of max(FLOPs / peak, bytes / bandwidth), perfectly split
    price_usd_per_hour: float | None = None  # USD per GPU-hour (None: the catalog's)
    predicted_s: float | None = None  # seconds per video on one GPU from the time model (None: assumed MFU)
    attention_kernel: str = "fa2"
    fallback_share: float = 0.0  # share of the predicted time with no kernel-table point (default MFU stands in)
    why_assumed: str = ""  # why the MFU path was taken although no MFU was given
    schedule_s: float | None = None  # seconds per video on gpus_per_video GPUs by the multi-GPU schedule
    layout: str = ""  # the multi-GPU layout of schedule_s (planning/parallel_inference.py)

    @property
    def price(self) -> float:
        return self.price_usd_per_hour if self.price_usd_per_hour is not None else self.gpu.price_usd_per_hour

    @property
    def latency_s(self) -> float:
        """Seconds per video: the predicted one-GPU time split over the GPUs (ideally: communication comes with the
        parallel-execution model), or FLOPs per video / (GPUs x peak x MFU) with an assumed MFU."""
        if self.schedule_s is not None:
            return self.schedule_s
        if self.predicted_s is not None:
            return self.predicted_s / self.gpus_per_video
        return self.estimate.flops_per_video / (self.gpus_per_video * self.gpu.peak_flops(self.precision) * self.mfu)

    @property
    def time_basis(self) -> str:
        """Where the time comes from, in words."""
        if self.predicted_s is not None:
            gaps = "" if self.fallback_share == 0 else (
                f"; {self.fallback_share:.0%} of it at the GPU's default MFU {self.gpu.default_mfu:.0%}: no "
                "kernel-table points for those ops")
            split = (f"; {self.gpus_per_video} GPUs as {self.layout} (multi-GPU schedule: communication, serial "
                     "text encoder)") if self.schedule_s is not None else ""
            return (f"predicted by the per-op time model ({self.attention_kernel} attention; MFU {self.mfu:.0%} "
                    f"implied{gaps}){split}")
        return f"assumed MFU {self.mfu:.0%}" + (f" ({self.why_assumed})" if self.why_assumed else "")

    @property
    def latency_lower_bound_s(self) -> float:
        """Roofline lower bound: every layer at peak compute or peak memory bandwidth, whichever binds."""
        return self.roofline_seconds

    @property
    def videos_per_gpu_hour(self) -> float:
        return 3600 / (self.latency_s * self.gpus_per_video)

    @property
    def video_minutes_per_gpu_hour(self) -> float:
        return self.videos_per_gpu_hour * self.estimate.video.duration_s / 60

    @property
    def cost_per_video_usd(self) -> float:
        return self.price / self.videos_per_gpu_hour

    @property
    def cost_per_video_minute_usd(self) -> float:
        return self.cost_per_video_usd * 60 / self.estimate.video.duration_s

    def gpus_for(self, videos_per_day: float) -> int:
        """GPUs needed to generate ``videos_per_day`` at this latency, round the clock."""
        return max(1, math.ceil(videos_per_day * self.latency_s * self.gpus_per_video / 86400 - 1e-9))

    def to_frame(self) -> pd.DataFrame:
        return pd.DataFrame([self.summary()])

    def __repr__(self) -> str:
        return (f"ServingPlan({self.gpus_per_video} x {self.gpu.key}: {self.latency_s:,.0f} s per video, "
                f"{self.time_basis} (roofline bound {self.latency_lower_bound_s:,.0f} s), "
                f"{self.videos_per_gpu_hour:.3g} videos per GPU-hour)")

    def summary(self) -> dict[str, Any]:
        e = self.estimate
        return {"gpu": self.gpu.key, "gpus_per_video": self.gpus_per_video, "mfu": self.mfu,
                "time_basis": "predicted" if self.predicted_s is not None else "assumed_mfu",
                "flops_per_video": e.flops_per_video, "latency_s": self.latency_s,
                "latency_lower_bound_s": self.latency_lower_bound_s, "videos_per_gpu_hour": self.videos_per_gpu_hour,
                "video_minutes_per_gpu_hour": self.video_minutes_per_gpu_hour,
                "price_usd_per_gpu_hour": self.price, "cost_per_video_usd": self.cost_per_video_usd,
                "cost_per_video_minute_usd": self.cost_per_video_minute_usd}


def plan_serving(estimate: InferenceEstimate, gpu: str | HardwareProfile, gpus_per_video: int = 1,
                 mfu: float | None = None,
                 precision: Precision = "bf16", bytes_per_element: int = 2,
                 price_usd_per_hour: float | None = None, attention_kernel: str = "fa2",
                 predict: bool = False, layout: Any = None) -> ServingPlan:
    """Serving plan for one inference estimate on ``gpus_per_video`` GPUs (ideal split for the bound), at the
    catalog's rental price or ``price_usd_per_hour``. The time per video is FLOPs / (peak x MFU) at ``mfu`` (default:
    the GPU's planning MFU); with ``predict`` (and no ``mfu``) it is the per-op time model's prediction
    (``planning/timing.py``), and on more than one GPU the multi-GPU schedule (``planning/parallel_inference.py``)
    of ``layout`` (an ``InferenceLayout`` of ``gpus_per_video`` GPUs; default: the fastest that fits). An MFU (given
    or the GPU's default) is the utilisation of all the video's GPUs together: FLOPs split evenly. The planners use
    the MFU path until the time model is vectorised for sweeps and its validation (``sora-compute validate``) beats
    the assumed MFU."""
    if isinstance(gpus_per_video, bool) or not isinstance(gpus_per_video, int) or gpus_per_video < 1:
        raise ValueError(f"gpus_per_video must be an integer >= 1, got {gpus_per_video!r}")
    if layout is not None and layout.gpus != gpus_per_video:
        raise ValueError(f"layout {layout.label()} uses {layout.gpus} GPUs, gpus_per_video is {gpus_per_video}")
    if mfu is not None and not 0 < require_finite("mfu", mfu) <= 1:
        raise ValueError(f"mfu must be in (0, 1], got {mfu!r}")
    if price_usd_per_hour is not None:
        require_finite("price_usd_per_hour", price_usd_per_hour, positive=True)
    profile = gpu if isinstance(gpu, HardwareProfile) else load_profile(gpu)  # the GPU, resolved once
    spec = resolve_gpu(profile)
    peak, bw = spec.peak_flops(precision), spec.hbm_bytes_per_s
    seconds = 0.0
    for name, count in estimate.counts.items():
        per_eval = sum(max(2 * float(t.macs) / peak, float(t.elements) * bytes_per_element / bw) * t.instances
                       for t in count.terms)
        seconds += per_eval * estimate.multipliers[name]
    if mfu is not None or not predict:
        return ServingPlan(estimate, spec, gpus_per_video, mfu if mfu is not None else spec.default_mfu, precision,
                           seconds / gpus_per_video, price_usd_per_hour, None, attention_kernel)
    from sora_compute.planning.timing import predicted

    try:
        one_gpu, fallback = predicted(estimate, profile, precision, attention_kernel)
    except ValueError as e:  # e.g. the kernel has no points at this precision (FlashAttention-2 has no FP8)
        return ServingPlan(estimate, spec, gpus_per_video, spec.default_mfu, precision, seconds / gpus_per_video,
                           price_usd_per_hour, None, attention_kernel, why_assumed=f"the GPU's default: {e}")
    implied = estimate.flops_per_video / (one_gpu * peak)
    sched_s, label = (None, "") if gpus_per_video == 1 else _scheduled(
        estimate, profile, gpus_per_video, precision, attention_kernel, layout)
    return ServingPlan(estimate, spec, gpus_per_video, implied, precision, seconds / gpus_per_video,
                       price_usd_per_hour, one_gpu, attention_kernel, fallback, schedule_s=sched_s, layout=label)


def _scheduled(estimate: InferenceEstimate, profile: HardwareProfile, gpus: int, precision: str, kernel: str,
               layout: Any) -> tuple[float, str]:
    """(seconds per video, layout label) on ``gpus`` GPUs: the given layout's schedule, else the fastest layout of
    exactly that many GPUs that fits (the fastest of all when none does: the label says so)."""
    from sora_compute.planning.inference_layouts import candidate_layouts, search_inference_layouts

    layouts = [layout] if layout is not None else list(candidate_layouts(gpus, estimate))
    table = search_inference_layouts(estimate, profile, gpus, precision, kernel, layouts=layouts)
    best = table.iloc[0]  # fitting first, then the fastest
    return float(best["latency_s"]), str(best["layout"]) + ("" if bool(best["fits"]) else ", which does not fit")
