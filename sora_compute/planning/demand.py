"""Compute demand: from a market of generated video to GPUs, power and dollars.

Arithmetic (per basis: the model's serving plan, and a published throughput when the scenario has one):

- kept minutes a day = sum over sources of minutes a day x AI share; generated = kept x candidates;
- GPU-seconds per generated video-minute = the serving plan's seconds per video x GPUs per video x 60 / clip
  seconds (``ServingPlan.latency_s``: time comes from the serving plan, not from here: the time model's prediction,
  or FLOPs / (GPUs x peak x MFU) when the scenario gives an MFU), or 3,600 / the published
  video-minutes per GPU-hour;
- GPUs on average = generated minutes x GPU-seconds per minute / (86,400 x target utilisation), rounded up to whole
  serving units of ``gpus_per_video``; at peak, the same x the peak-to-average ratio;
- power = GPUs x board power x PUE; energy a year = the average fleet's power x 8,766 h;
- break-even = training FLOPs / inference FLOPs per generated minute (a published fleet counts GPUs x days at the
  serving MFU), also in days of this market (with growth: cumulative minutes G x 365.25 x ((1+g)^t - 1) / ln(1+g)).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import pandas as pd

from sora_compute.hardware import GPUSpec, load_gpu, load_profile, resolve_gpu
from sora_compute.planning.demand_spec import (
    DAYS_PER_YEAR,
    MAX_FLEET_GPUS,
    DemandScenario,
    resolve_demand,
)
from sora_compute.planning.inference import InferenceSettings, estimate_inference, sampling_defaults
from sora_compute.specs import VideoSpec

__all__ = ["Basis", "DemandEstimate", "estimate_demand", "model_basis", "published_basis", "serving_units",
           "cumulative_minutes", "break_even_days", "HOURS_PER_YEAR"]

HOURS_PER_YEAR = DAYS_PER_YEAR * 24
GROWTH_YEARS = 5  # the growth table's horizon


@dataclass(frozen=True)
class Basis:
    """How one generated video-minute is served: FLOPs, GPU-seconds, on which GPU."""

    label: str
    kind: str  # "model" | "published"
    gpu: GPUSpec
    gpus_per_video: int
    mfu: float
    flops_per_minute: float  # FLOPs per generated video-minute
    gpu_seconds_per_minute: float  # GPU-seconds per generated video-minute (all GPUs of a video together)
    detail: str = ""

    @property
    def video_minutes_per_gpu_hour(self) -> float:
        return 3600 / self.gpu_seconds_per_minute


def _settings(sc: DemandScenario) -> InferenceSettings:
    d = sampling_defaults(sc.model)
    s = sc.sampling
    return d.model_copy(update={"steps": s.steps if s.steps is not None else d.steps,
                                "cfg": s.cfg if s.cfg is not None else d.cfg,
                                "cache_skip_fraction": s.cache_skip_fraction})


def _videos(sc: DemandScenario) -> list[tuple[VideoSpec, float]]:
    """(clip, share of minutes) per shape; the preset's native clip when the scenario gives none."""
    from sora_compute.presets import load_preset

    p = load_preset(sc.model)
    if not sc.shapes:
        return [(p.video, 1.0)]
    out = []
    for s in sc.shapes:
        approx = VideoSpec.from_duration(s.width, s.height, s.duration_s, s.fps)
        out.append((approx.model_copy(update={"num_frames": p.model.snap_frames(approx.num_frames)}), s.share))
    return out


def model_basis(sc: DemandScenario) -> Basis:
    """The model's serving plan (``plan_serving``) over the scenario's clip shapes, per generated video-minute."""
    from sora_compute.planning.cluster import plan_serving
    from sora_compute.presets import load_preset

    model = load_preset(sc.model).model
    settings = _settings(sc)
    flops = seconds = 0.0
    shapes = []
    profile = load_profile(sc.gpu)  # the GPU, resolved once
    gpu = resolve_gpu(profile)
    bases = set()
    for video, share in _videos(sc):
        inf = estimate_inference(model, video, settings)
        plan = plan_serving(inf, profile, gpus_per_video=sc.gpus_per_video, mfu=sc.mfu, precision=sc.precision)
        flops += share * inf.flops_per_minute
        seconds += share * plan.latency_s * sc.gpus_per_video * 60 / video.duration_s
        bases.add(plan.time_basis if plan.predicted_s is None else
                  f"time predicted by the time model ({plan.attention_kernel} attention, {plan.dtypes})")
        shapes.append(f"{video.width}x{video.height} {video.duration_s:.3g} s" +
                      (f" ({share:.0%})" if share < 1 else ""))
    mfu = flops / (seconds * gpu.peak_flops(sc.precision))  # FLOPs per minute / (GPU-seconds per minute x peak)
    guidance = "CFG pair" if settings.cfg else "no CFG pair"
    cache = f", {settings.cache_skip_fraction:.0%} of DiT evaluations cached" if settings.cache_skip_fraction else ""
    detail = f"{', '.join(shapes)}; {settings.steps} steps, {guidance}{cache}; {'; '.join(sorted(bases))}"
    if sc.mfu is None:
        detail += f", MFU {mfu:.2f} implied"
    return Basis(f"sora-compute: {sc.model} on {sc.gpu}", "model", gpu, sc.gpus_per_video, mfu, flops, seconds, detail)


def published_basis(sc: DemandScenario) -> Basis | None:
    """The published throughput as a basis (its FLOPs per minute implied at its GPU's default MFU)."""
    pt = sc.published_throughput
    if pt is None:
        return None
    gpu = load_gpu(pt.gpu)
    mfu = _mfu(sc, gpu)
    seconds = 3600 / pt.video_minutes_per_gpu_hour
    return Basis(f"published: {pt.video_minutes_per_gpu_hour:g} video-min per {pt.gpu}-hour", "published", gpu, 1,
                 mfu, seconds * gpu.peak_flops("bf16") * mfu, seconds, f"FLOPs implied at MFU {mfu:.0%}")


def serving_units(gpu_equivalents: float, gpus_per_video: int) -> int:
    """Whole serving units of ``gpus_per_video`` GPUs covering ``gpu_equivalents`` (0 for no demand)."""
    if gpu_equivalents <= 0:
        return 0
    if gpu_equivalents > MAX_FLEET_GPUS:
        raise ValueError(f"the market needs {gpu_equivalents:.3g} GPUs, more than the {MAX_FLEET_GPUS:.0e} "
                         "sora-compute plans for: lower the minutes, shares, candidates or peak")
    return max(1, math.ceil(gpu_equivalents / gpus_per_video - 1e-9)) * gpus_per_video


def cumulative_minutes(per_day: float, days: float, growth: float) -> float:
    """Generated minutes after ``days`` at ``per_day`` today, growing by ``growth`` a year (continuous)."""
    if growth == 0:
        return per_day * days
    k = math.log1p(growth)
    return per_day * DAYS_PER_YEAR * math.expm1(k * days / DAYS_PER_YEAR) / k


def break_even_days(minutes: float, per_day: float, growth: float) -> float:
    """Days until ``minutes`` are generated (inverse of ``cumulative_minutes``); NaN when nothing is generated."""
    if per_day <= 0:
        return float("nan")
    if growth == 0:
        return minutes / per_day
    k = math.log1p(growth)
    return DAYS_PER_YEAR * math.log1p(minutes * k / (per_day * DAYS_PER_YEAR)) / k


@dataclass(frozen=True)
class _Training:
    name: str
    flops: float
    gpus: int
    gpu: str
    days: float
    detail: str
    fleet: bool  # a published fleet (GPUs x days), not a scenario


def _mfu(sc: DemandScenario, gpu: GPUSpec) -> float:
    """The MFU a GPU runs at: the scenario's on its own GPU type, the catalog default on any other."""
    return sc.mfu if sc.mfu is not None and gpu.key == sc.gpu else gpu.default_mfu


def _training(sc: DemandScenario) -> list[_Training]:
    from sora_compute.planning.cluster import gpus_for_days
    from sora_compute.planning.scenarios import resolve_scenario, scenario_names
    from sora_compute.planning.training import estimate_training

    refs = list(sc.training)
    if not refs and sc.model in scenario_names():
        from sora_compute.planning.demand_spec import TrainingReference

        refs = [TrainingReference(name=f"{sc.model} scenario (sora-compute)", scenario=sc.model)]
    out = []
    for r in refs:
        g = load_gpu(r.gpu)
        if r.gpus is not None:
            mfu = _mfu(sc, g)
            flops = r.gpus * r.days * 86400 * g.peak_flops("bf16") * mfu
            out.append(_Training(r.name, flops, r.gpus, r.gpu, r.days,
                                 f"{r.gpus:,} x {r.gpu} x {r.days:g} days at MFU {mfu:.0%}", True))
        elif r.flops is not None:  # bare FLOPs: no workload to predict, the GPU's planning MFU
            mfu = _mfu(sc, g)
            n = gpus_for_days(r.flops, g, r.days, mfu=mfu)
            detail = f"{r.flops:.3g} model FLOPs; {n:,} x {r.gpu} at MFU {mfu:.0%} train it in {r.days:g} days"
            out.append(_Training(r.name, r.flops, n, r.gpu, r.days, detail, False))
        else:  # a scenario: the GPUs the time model predicts finish it (the recipe time path, as `plan --days`)
            est = estimate_training(resolve_scenario(str(r.scenario)))
            flops, n = est.model_flops, gpus_for_days(est, r.gpu, r.days)
            detail = (f"{flops:.3g} model FLOPs; {n:,} x {r.gpu} train it in {r.days:g} days (predicted by the time "
                      "model at each stage's fastest fitting layout)")
            out.append(_Training(r.name, flops, n, r.gpu, r.days, detail, False))
    return out


@dataclass(frozen=True)
class DemandEstimate:
    """The market's demand on each basis: ``summary`` (one row per basis), ``platforms`` (per source),
    ``break_even`` (per basis x training run), ``published_check`` (published totals recomputed), ``growth``."""

    scenario: DemandScenario
    bases: tuple[Basis, ...]
    summary: pd.DataFrame
    platforms: pd.DataFrame
    break_even: pd.DataFrame
    published_check: pd.DataFrame
    growth: pd.DataFrame

    @property
    def kept_minutes_per_day(self) -> float:
        return sum(s.ai_minutes for s in self.scenario.sources)

    @property
    def generated_minutes_per_day(self) -> float:
        return self.kept_minutes_per_day * self.scenario.candidates

    def row(self, kind: str = "model") -> dict[str, Any]:
        """The summary row of one basis ("model" or "published")."""
        return dict(self.summary[self.summary["kind"] == kind].iloc[0])

    def __repr__(self) -> str:
        r = self.row()
        return (f"DemandEstimate({self.scenario.name}: {self.generated_minutes_per_day:,.0f} generated minutes a day, "
                f"{r['gpus_avg']:,} {r['gpu']} on average, {r['gpus_peak']:,} at peak)")


def _fleet(sc: DemandScenario, b: Basis, kept: float) -> dict[str, Any]:
    generated = kept * sc.candidates
    equivalents = generated * b.gpu_seconds_per_minute / (86400 * sc.utilisation)
    avg = serving_units(equivalents, b.gpus_per_video)
    peak = serving_units(equivalents * sc.peak_to_average, b.gpus_per_video)
    own = b.gpu.key == sc.gpu
    watts = sc.power_w if sc.power_w is not None and own else (b.gpu.tdp_w or float("nan"))
    rent = sc.price_usd_per_gpu_hour if sc.price_usd_per_gpu_hour is not None and own else b.gpu.price_usd_per_hour
    gwh = avg * watts * sc.pue * HOURS_PER_YEAR / 1e9
    return {"kept_minutes_per_day": kept, "generated_minutes_per_day": generated,
            "flops_per_day": generated * b.flops_per_minute, "gpu_equivalents": equivalents, "gpus_avg": avg,
            "gpus_peak": peak, "mw_avg": avg * watts * sc.pue / 1e6, "mw_peak": peak * watts * sc.pue / 1e6,
            "gwh_per_year": gwh,
            "capital_usd": peak * sc.gpu_price_usd if sc.gpu_price_usd is not None else float("nan"),
            "rental_usd_per_year": avg * rent * HOURS_PER_YEAR,
            "electricity_usd_per_year": gwh * 1e6 * sc.electricity_usd_per_kwh
            if sc.electricity_usd_per_kwh is not None else float("nan")}


def estimate_demand(scenario: DemandScenario | str) -> DemandEstimate:
    """Video-minutes and FLOPs a day, GPUs on average and at peak, power, energy, capital and running cost, and
    the break-even against each training run, on the model's serving plan and on the published throughput."""
    sc = resolve_demand(scenario)
    bases = [model_basis(sc)]
    pb = published_basis(sc)
    if pb is not None:
        bases.append(pb)
    kept = sum(s.ai_minutes for s in sc.sources)
    summary, platforms, be = [], [], []
    trainings = _training(sc)
    for b in bases:
        fleet = _fleet(sc, b, kept)
        summary.append({"basis": b.label, "kind": b.kind, "gpu": b.gpu.key, "gpus_per_video": b.gpus_per_video,
                        "video_minutes_per_gpu_hour": b.video_minutes_per_gpu_hour,
                        "gpu_seconds_per_video_minute": b.gpu_seconds_per_minute,
                        "flops_per_video_minute": b.flops_per_minute, **fleet, "detail": b.detail})
        for s in sc.sources:
            platforms.append({"basis": b.label, "kind": b.kind, "source": s.name, "minutes_per_day": s.minutes,
                              "ai_share": s.ai_share, **_fleet(sc, b, s.ai_minutes)})
        for t in trainings:
            minutes = t.flops / b.flops_per_minute
            days = break_even_days(minutes, fleet["generated_minutes_per_day"], sc.growth_per_year)
            be.append({"basis": b.label, "kind": b.kind, "training": t.name, "training_flops": t.flops,
                       "training_gpus": t.gpus, "training_gpu": t.gpu, "training_days": t.days,
                       "break_even_minutes": minutes, "break_even_days": days, "inference_gpus_avg": fleet["gpus_avg"],
                       "inference_gpus_peak": fleet["gpus_peak"],
                       "inference_to_training_gpus": fleet["gpus_peak"] / t.gpus, "fleet": t.fleet,
                       "detail": t.detail})
    summary_df = pd.DataFrame(summary)
    growth = pd.DataFrame([{"year": y, **{f"{k}_{b.kind}": v for b in bases for k, v in _fleet(
        sc, b, kept * (1 + sc.growth_per_year) ** y).items() if k in ("generated_minutes_per_day", "gpus_avg",
                                                                     "gpus_peak")}}
                           for y in range(GROWTH_YEARS + 1)]) if sc.growth_per_year > 0 else pd.DataFrame()
    return DemandEstimate(sc, tuple(bases), summary_df, pd.DataFrame(platforms), pd.DataFrame(be),
                          _published_check(sc, bases, pd.DataFrame(be)), growth)


def _published_check(sc: DemandScenario, bases: list[Basis], be: pd.DataFrame) -> pd.DataFrame:
    """The published totals next to the same arithmetic on the published inputs (at the published throughput)."""
    p = sc.published
    pub = next((b for b in bases if b.kind == "published"), None)
    if p is None or pub is None:
        return pd.DataFrame()
    kept = sum(s.ai_minutes for s in sc.sources)
    per_gpu_day = 86400 / pub.gpu_seconds_per_minute  # video-minutes per GPU-day
    plain = kept / per_gpu_day  # their first figure: no candidates, peak or utilisation
    full = _fleet(sc, pub, kept)
    rows = []
    if p.gpus_avg is not None:
        rows.append({"figure": "GPUs on average (kept minutes only)", "published": p.gpus_avg,
                     "recomputed": float(math.ceil(plain - 1e-9)), "ratio": math.ceil(plain - 1e-9) / p.gpus_avg,
                     "reading": f"{kept:,.0f} kept minutes a day / {per_gpu_day:g} minutes per GPU-day; the published "
                                f"figure matches {p.gpus_avg * per_gpu_day:,.0f} minutes a day"})
    if p.gpus_peak is not None:
        factor = sc.candidates * sc.peak_to_average / sc.utilisation
        rows.append({"figure": "GPUs at peak", "published": p.gpus_peak, "recomputed": float(full["gpus_peak"]),
                     "ratio": full["gpus_peak"] / p.gpus_peak,
                     "reading": f"x {sc.candidates:g} candidates x {sc.peak_to_average:g} peak / {sc.utilisation:.0%} "
                                f"utilisation = x {factor:g}; published peak / average = "
                                f"{p.gpus_peak / p.gpus_avg if p.gpus_avg else float('nan'):.3g}"})
    fleet_rows = [r for r in be.to_dict(orient="records") if r["kind"] == "published" and r["fleet"]]
    for published, r in zip(p.break_even_minutes, fleet_rows, strict=False):
        rows.append({"figure": f"break-even minutes, {r['training']}", "published": published,
                     "recomputed": r["break_even_minutes"], "ratio": r["break_even_minutes"] / published,
                     "reading": f"{r['training_gpus']:,} GPUs x {r['training_days'] * 24:,.1f} h x "
                                f"{pub.video_minutes_per_gpu_hour:g} video-min per GPU-hour"})
    return pd.DataFrame(rows)
