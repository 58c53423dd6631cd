"""Cluster plans (days, GPU-hours, cost, energy) for training work, inverse queries, and serving plans."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import pandas as pd
from pydantic import Field, PrivateAttr, model_validator

from sora_compute._frames import FrameRepr
from sora_compute.finite import require_finite
from sora_compute.hardware import GPUSpec, HardwareProfile, Precision, load_profile, resolve_gpu
from sora_compute.planning.base import _Spec
from sora_compute.planning.inference import InferenceEstimate
from sora_compute.planning.scaling import ScenarioScaling, scenario_scaling
from sora_compute.planning.timing import AttentionKernelName, predicted
from sora_compute.planning.training import TrainingEstimate
from sora_compute.planning.training_time import TrainingTime, training_time

# ------------------------------------------------------------------------------------------------
# Clusters
# ------------------------------------------------------------------------------------------------

class Cluster(_Spec):
    """GPUs of one type, and the assumptions that turn work into time, money and energy: the time model's prediction,
    or, with ``mfu``, model FLOPs / (GPUs x peak x that MFU)."""

    gpu: str = Field(description="catalog key, e.g. h100-sxm (see `sora-compute gpus`)")
    count: int = Field(gt=0, description="number of GPUs")
    mfu: float | None = Field(default=None, gt=0, le=1,
                              description="assumed model-FLOPs utilisation (default: predicted by the time model)")
    attention_kernel: AttentionKernelName = Field(default="fa2", description="attention kernel of the time model")
    pue: float = Field(default=1.2, ge=1, description="datacentre power usage effectiveness")
    price_usd_per_hour: float | None = Field(default=None, gt=0, description="USD per GPU-hour (default: catalog)")
    power_w: float | None = Field(default=None, gt=0, description="W per GPU (default: catalog TDP)")
    precision: Precision = Field(default="bf16", description="bf16 or fp8 peak")

    _resolved: tuple[str, HardwareProfile] | None = PrivateAttr(default=None)

    @model_validator(mode="after")
    def _known(self) -> Cluster:
        self.spec.peak_flops(self.precision)  # UnknownGPUError with a did-you-mean; no such precision
        return self

    @property
    def profile(self) -> HardwareProfile:
        """The GPU's hardware profile, resolved once (again only if a copy changed ``gpu``)."""
        if self._resolved is None or self._resolved[0] != self.gpu:
            self._resolved = (self.gpu, load_profile(self.gpu))
        return self._resolved[1]

    @property
    def spec(self) -> GPUSpec:
        return resolve_gpu(self.profile)

    @property
    def effective_mfu(self) -> float:
        """The assumed MFU: the one given, else the GPU's planning default (used where no time can be predicted)."""
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
        """Model FLOP/s the whole cluster sustains at the assumed MFU: count x peak x MFU."""
        return self.count * self.spec.peak_flops(self.precision) * self.effective_mfu


@dataclass(frozen=True, repr=False)
class ClusterPlan(FrameRepr):
    """Time, GPU-hours, cost and energy to run a training plan on ``cluster``: the time model's predicted
    GPU-seconds (``time``) split ideally over the GPUs, or, without one, ``model_flops`` at the assumed MFU
    (``why_assumed`` says why)."""

    cluster: Cluster
    model_flops: float
    hardware_flops: float
    time: TrainingTime | None = None
    why_assumed: str = ""
    scaling: ScenarioScaling | None = None  # the parallel efficiency on this cluster (None: ideal scaling)
    why_ideal: str = ""  # why ``scaling`` is None for a predicted time

    @property
    def seconds(self) -> float:
        """Wall-clock seconds: the scenario written as a recipe and timed by the recipe time path, each stage at its
        fastest fitting layout (``planning/scaling.py``, ``planning/recipe_scenario.py``); without ``scaling``,
        ideal: the time model's GPU-seconds / GPUs; or model FLOPs / (GPUs x peak x MFU) at an assumed MFU."""
        if self.scaling is not None:
            return self.scaling.wall_seconds
        if self.time is not None:
            return self.time.wall_seconds(self.cluster.count)
        return self.model_flops / self.cluster.sustained_flops

    @property
    def mfu(self) -> float:
        """Model-FLOPs utilisation: the one the time model implies (x the parallel efficiency), or the assumed one."""
        if self.time is None:
            return self.cluster.effective_mfu
        return self.time.mfu * (1.0 if self.scaling is None else self.scaling.efficiency)

    @property
    def time_basis(self) -> str:
        """Where the time comes from, in words."""
        if self.time is not None:
            t = self.time
            gaps = "" if t.fallback_share == 0 else (
                f"; {t.fallback_share:.0%} of it at the GPU's default MFU {self.cluster.spec.default_mfu:.2f}: no "
                "kernel-table points for those ops")
            head = (f"predicted by the time model ({t.attention_kernel} attention, {t.precision}; one-GPU MFU "
                    f"{t.mfu:.2f})")
            if self.scaling is None:
                return (f"{head}; ideal scaling over {self.cluster.count:,} GPUs (no parallel overheads: "
                        f"{self.why_ideal or 'not searched'}){gaps}")
            return (f"{head}; parallel efficiency {self.scaling.efficiency:.0%} on {self.cluster.count:,} GPUs "
                    f"(best fitting layout per stage: {self.scaling.describe()}){gaps}")
        return (f"time from assumed MFU {self.mfu:.2f}" + (f" ({self.why_assumed})" if self.why_assumed else "")
                + f"; ideal scaling over {self.cluster.count:,} GPUs")

    @property
    def days(self) -> float:
        return self.seconds / 86400

    @property
    def efficiency(self) -> float:
        """Parallel efficiency: ideal wall seconds / predicted wall seconds (1.0 under ideal scaling)."""
        return 1.0 if self.scaling is None else self.scaling.efficiency

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
        """Hardware-FLOPs utilisation: MFU x hardware / model FLOPs."""
        return self.mfu * self.hardware_flops / self.model_flops

    def summary(self) -> dict[str, Any]:
        c = self.cluster
        return {"gpu": c.gpu, "gpus": c.count, "precision": c.precision, "mfu": self.mfu, "hfu": self.hfu,
                "model_flops": self.model_flops, "hardware_flops": self.hardware_flops, "days": self.days,
                "gpu_hours": self.gpu_hours, "gpu_days": self.gpu_days, "cost_usd": self.cost_usd,
                "energy_mwh": self.energy_mwh, "parallel_efficiency": self.efficiency,
                "time_basis": "predicted" if self.time is not None else "assumed_mfu",
                "basis": self.time_basis}

    def to_frame(self) -> pd.DataFrame:
        return pd.DataFrame([self.summary()])

    def __repr__(self) -> str:
        return (f"ClusterPlan({self.cluster.count} x {self.cluster.gpu} at MFU {self.mfu:.0%}: "
                f"{self.days:,.1f} days, {self.gpu_hours:,.0f} GPU-hours, ${self.cost_usd:,.0f}, "
                f"{self.energy_mwh:,.0f} MWh)")


def predict_training(work: TrainingEstimate, gpu: str | HardwareProfile, precision: Precision = "bf16",
                     attention_kernel: str = "fa2") -> tuple[TrainingTime | None, str]:
    """The time model's training time of ``work`` on ``gpu``, or (None, why it cannot predict it)."""
    try:
        return training_time(work, gpu, precision, attention_kernel), ""
    except ValueError as e:  # e.g. the kernel has no points at this precision (FlashAttention-2 has no FP8)
        return None, f"the GPU's planning MFU: {e}"


def plan_cluster(work: TrainingEstimate | float, cluster: Cluster, time: TrainingTime | None = None,
                 mfu_source: str = "given", parallel: bool = True) -> ClusterPlan:
    """Run a training estimate (or a number of model FLOPs) on a cluster. The time: ``time`` when given (the
    prediction of ``work`` on this cluster's GPU, computed once by the caller), else, without ``cluster.mfu``, the
    time model's prediction of ``work`` (``planning/training_time.py``); with ``cluster.mfu`` (said to come from
    ``mfu_source``), or for bare FLOPs, model FLOPs / (GPUs x peak x MFU). A predicted time is spread over the GPUs
    at the parallel efficiency of each stage's best fitting layout (``planning/scaling.py``; ``parallel`` False:
    ideal scaling)."""
    if not isinstance(work, TrainingEstimate):
        why = mfu_source if cluster.mfu is not None else "the GPU's planning MFU: bare FLOPs, no workload to predict"
        return ClusterPlan(cluster, float(work), float(work), None, why)
    if cluster.mfu is not None:
        return ClusterPlan(cluster, work.model_flops, work.hardware_flops, None, mfu_source)
    why = ""
    if time is None:
        time, why = predict_training(work, cluster.profile, cluster.precision, cluster.attention_kernel)
    scaling, why_ideal = None, "ideal scaling asked for"
    if time is not None and parallel:
        if time.precision != "bf16":
            why_ideal = "the layout search times bf16 only"
        else:
            scaling = scenario_scaling(time, cluster.count)
    return ClusterPlan(cluster, work.model_flops, work.hardware_flops, time, why, scaling, why_ideal)


def gpus_for_days(work: TrainingEstimate | float, gpu: str | GPUSpec | HardwareProfile, days: float,
                  mfu: float | None = None, precision: Precision = "bf16", attention_kernel: str = "fa2",
                  time: TrainingTime | None = None, parallel: bool = True) -> int:
    """Fewest GPUs that finish ``work`` within ``days``: predicted, at the parallel efficiency of the best layouts
    (``_fewest_parallel``; ``parallel`` False: ceil(predicted GPU-seconds / (days x 86,400)), ideal scaling), or,
    at a given MFU or for bare FLOPs, ceil(model FLOPs / (peak x MFU x days x 86,400))."""
    require_finite("days", days, positive=True)
    if mfu is not None and not 0 < require_finite("mfu", mfu) <= 1:
        raise ValueError(f"mfu must be in (0, 1], got {mfu!r}")
    if isinstance(work, TrainingEstimate) and mfu is None and not isinstance(gpu, GPUSpec):
        if time is None:
            time, _ = predict_training(work, gpu, precision, attention_kernel)
        if time is not None:
            ideal = max(1, math.ceil(time.gpu_seconds / (days * 86400) - 1e-9))
            return ideal if not parallel or time.precision != "bf16" else _fewest_parallel(time, days, ideal)
    flops = work.model_flops if isinstance(work, TrainingEstimate) else float(work)
    spec = resolve_gpu(gpu)
    per_gpu = spec.peak_flops(precision) * (mfu if mfu is not None else spec.default_mfu)
    return max(1, math.ceil(flops / (per_gpu * days * 86400) - 1e-9))


MAX_GPUS = 1 << 20  # the largest cluster the deadline search tries


def _fewest_parallel(time: TrainingTime, days: float, ideal: int) -> int:
    """Fewest GPUs whose predicted wall time (``scenario_scaling``) is within ``days``: from the ideal count, grow
    n <- ceil(n x wall days / days) until it finishes, then bisect down to the last count that does not (wall days
    assumed non-increasing in between). A count at which a stage has no layout that fits in memory does not finish
    (the plan would scale that stage ideally): more GPUs shard more."""
    def wall_days(n: int) -> float:
        sc = scenario_scaling(time, n)
        return math.inf if any(s.layout is None for s in sc.stages) else sc.wall_seconds / 86400

    if ideal > MAX_GPUS:  # past the layouts (a stage no layout fits is scaled ideally): do not trust the ideal count
        raise ValueError(f"days: no cluster of up to {MAX_GPUS:,} GPUs finishes within {days:g} days: even ideal "
                         f"scaling needs {ideal:,}")
    lo, n = ideal - 1, ideal
    while wall_days(n) > days:
        wall = wall_days(n)
        grown = max(n + 1, math.ceil(n * wall / days)) if math.isfinite(wall) else 2 * n
        if grown > MAX_GPUS:
            raise ValueError(f"days: no cluster of up to {MAX_GPUS:,} GPUs finishes within {days:g} days at the "
                             "predicted parallel efficiency" + ("" if math.isfinite(wall) else
                                                                f" (on {n:,} a stage fits no layout in memory)"))
        lo, n = n, grown
    while n - lo > 1:
        mid = (lo + n) // 2
        lo, n = (lo, mid) if wall_days(mid) <= days else (mid, n)
    return n


def budget_plan(work: TrainingEstimate | float | ClusterPlan, cluster: Cluster, budget_usd: float
                ) -> dict[str, float]:
    """What ``budget_usd`` buys on ``cluster``: affordable days, the share of ``work`` it completes, and the
    budget that completes it (cost does not depend on GPU count under ideal scaling or a fixed MFU; time does).
    ``work`` may be the plan already made for ``cluster``."""
    require_finite("budget_usd", budget_usd, positive=True)
    plan = work if isinstance(work, ClusterPlan) else plan_cluster(work, cluster)
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
    def dtypes(self) -> str:
        """The run's precision, and the text encoders' dtype where the official pipeline runs them in another."""
        text = self.estimate.model.text_encoder_dtypes(self.precision)
        return self.precision + (f", text encoder {text}" if text not in ("", self.precision) else "")

    @property
    def time_basis(self) -> str:
        """Where the time comes from, in words."""
        if self.predicted_s is not None:
            gaps = "" if self.fallback_share == 0 else (
                f"; {self.fallback_share:.0%} of it at the GPU's default MFU {self.gpu.default_mfu:.2f}: no "
                "kernel-table points for those ops")
            split = (f"; {self.gpus_per_video} GPUs as {self.layout} (multi-GPU schedule: communication, serial "
                     "text encoder)") if self.schedule_s is not None else ""
            return (f"predicted by the time model ({self.attention_kernel} attention, {self.dtypes}); MFU "
                    f"{self.mfu:.2f}{gaps}{split}")
        return f"time from assumed MFU {self.mfu:.2f}" + (f" ({self.why_assumed})" if self.why_assumed else "")

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
                 predict: bool = True, layout: Any = None, mfu_source: str = "given") -> ServingPlan:
    """Serving plan for one inference estimate on ``gpus_per_video`` GPUs, at the catalog's rental price or
    ``price_usd_per_hour``. The time per video is the per-op time model's prediction (``planning/timing.py``), on more
    than one GPU the multi-GPU schedule (``planning/parallel_inference.py``) of ``layout`` (an ``InferenceLayout`` of
    ``gpus_per_video`` GPUs; default: the fastest that fits). With ``mfu`` (said to come from ``mfu_source``) it is
    FLOPs / (GPUs x peak x MFU), and with ``predict=False`` the same at the GPU's planning MFU: the utilisation of
    all the video's GPUs together, FLOPs split evenly."""
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
                           seconds / gpus_per_video, price_usd_per_hour, None, attention_kernel,
                           why_assumed=mfu_source if mfu is not None else "the GPU's planning MFU")
    try:
        one_gpu, fallback = predicted(estimate, profile, precision, attention_kernel)
    except ValueError as e:  # e.g. the kernel has no points at this precision (FlashAttention-2 has no FP8)
        return ServingPlan(estimate, spec, gpus_per_video, spec.default_mfu, precision, seconds / gpus_per_video,
                           price_usd_per_hour, None, attention_kernel, why_assumed=f"the GPU's planning MFU: {e}")
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
