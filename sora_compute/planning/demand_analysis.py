"""What moves a demand estimate: one-at-a-time sensitivity of the GPU count, the steps that separate the model's
throughput from a published one, and the curves the report plots (GPUs vs AI share; cumulative inference vs
training compute)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from sora_compute.planning.demand import (
    DemandEstimate,
    _fleet,
    _settings,
    _videos,
    cumulative_minutes,
    model_basis,
    published_basis,
)
from sora_compute.planning.demand_spec import (
    MAX_CANDIDATES,
    MAX_PEAK_TO_AVERAGE,
    MAX_STEPS,
    MIN_UTILISATION,
    DemandScenario,
    GapStep,
    ShapeShare,
    resolve_demand,
)

__all__ = ["DemandVariation", "demand_variations", "demand_sensitivity", "throughput_gap", "gpus_vs_share",
           "cumulative_compute", "with_shapes"]


def with_shapes(sc: DemandScenario, **update: Any) -> DemandScenario:
    """Every clip shape of ``sc`` with ``update`` applied (the preset's native clip when it gives none)."""
    shapes = sc.shapes or tuple(ShapeShare(width=v.width, height=v.height, duration_s=v.duration_s, fps=v.fps)
                                for v, _ in _videos(sc))
    return sc.model_copy(update={"shapes": tuple(s.model_copy(update=update) for s in shapes)})


def _sampling(sc: DemandScenario, **update: Any) -> DemandScenario:
    return sc.model_copy(update={"sampling": sc.sampling.model_copy(update=update)})


def _scale_shares(sc: DemandScenario, factor: float) -> DemandScenario:
    return sc.model_copy(update={"sources": tuple(s.model_copy(update={"ai_share": min(1.0, s.ai_share * factor)})
                                                  for s in sc.sources)})


@dataclass(frozen=True)
class DemandVariation:
    """One assumption and how to move it: ``apply(scenario, "low" | "high")``."""

    assumption: str
    base: str
    low: str
    high: str
    apply: Callable[[DemandScenario, str], DemandScenario]


def demand_variations(sc: DemandScenario) -> list[DemandVariation]:
    """Low / high alternatives around ``sc`` for every assumption of the market and of its serving."""
    s = _settings(sc)
    video = _videos(sc)[0][0]
    mfu = model_basis(sc).mfu
    shares = ", ".join(f"{x.name} {x.ai_share:.0%}" for x in sc.sources)
    low_steps, high_steps = max(1, s.steps // 2), min(MAX_STEPS, 2 * s.steps)
    cand = min(MAX_CANDIDATES, 2 * sc.candidates)
    peak = min(MAX_PEAK_TO_AVERAGE, 2 * sc.peak_to_average)
    util = max(MIN_UTILISATION, sc.utilisation / 2)
    return [
        DemandVariation("AI share (every source)", shares, "x0.5", "x2 (at most 100%)",
                        lambda c, w: _scale_shares(c, 0.5 if w == "low" else 2.0)),
        DemandVariation("candidates per kept video", f"{sc.candidates:g}", "1", f"{cand:g}",
                        lambda c, w: c.model_copy(update={"candidates": 1.0 if w == "low" else cand})),
        DemandVariation("peak-to-average", f"{sc.peak_to_average:g}", "1", f"{peak:g}",
                        lambda c, w: c.model_copy(update={"peak_to_average": 1.0 if w == "low" else peak})),
        DemandVariation("target utilisation", f"{sc.utilisation:.0%}", "100%", f"{util:.0%}",
                        lambda c, w: c.model_copy(update={"utilisation": 1.0 if w == "low" else util})),
        DemandVariation("sampling steps", f"{s.steps}", f"{low_steps}", f"{high_steps}",
                        lambda c, w: _sampling(c, steps=low_steps if w == "low" else high_steps)),
        DemandVariation("CFG pair", "yes" if s.cfg else "no", "no CFG pair", "CFG pair",
                        lambda c, w: _sampling(c, cfg=w == "high")),
        DemandVariation("resolution", f"{video.width}x{video.height}", "848x480", "1920x1088",
                        lambda c, w: with_shapes(c, **({"width": 848, "height": 480} if w == "low"
                                                       else {"width": 1920, "height": 1088}))),
        DemandVariation("clip length", f"{video.duration_s:.3g} s", "5 s", "20 s",
                        lambda c, w: with_shapes(c, duration_s=5.0 if w == "low" else 20.0)),
        DemandVariation("MFU", f"{mfu:.0%}", f"{min(1.0, 1.5 * mfu):.0%}", f"{mfu / 2:.0%}",
                        lambda c, w: c.model_copy(update={"mfu": min(1.0, 1.5 * mfu) if w == "low" else mfu / 2})),
        DemandVariation("GPU type", sc.gpu, "b200", "a100-80gb",
                        lambda c, w: c.model_copy(update={"gpu": "b200" if w == "low" else "a100-80gb",
                                                          "mfu": None, "power_w": None})),
    ]


def _peak_gpus(sc: DemandScenario) -> float:
    """GPUs at peak on the model's serving plan; NaN where a variation needs more than MAX_FLEET_GPUS."""
    kept = sum(s.ai_minutes for s in sc.sources)
    try:
        return float(_fleet(sc, model_basis(sc), kept)["gpus_peak"])
    except ValueError:
        return float("nan")


def demand_sensitivity(scenario: DemandScenario | str, variations: list[DemandVariation] | None = None
                       ) -> pd.DataFrame:
    """One row per assumption: GPUs at peak (the model's serving plan) at its low and high value, sorted by swing
    (NaN where a value needs more GPUs than sora-compute plans for)."""
    sc = resolve_demand(scenario)
    base = int(_fleet(sc, model_basis(sc), sum(s.ai_minutes for s in sc.sources))["gpus_peak"])
    rows = []
    for v in variations if variations is not None else demand_variations(sc):
        low, high = (_peak_gpus(v.apply(sc, w)) for w in ("low", "high"))
        rows.append({"assumption": v.assumption, "base": v.base, "low": v.low, "high": v.high,
                     "gpus_peak_low": low, "gpus_peak_base": base, "gpus_peak_high": high,
                     "swing": abs(high - low)})
    return pd.DataFrame(rows).sort_values("swing", ascending=False, ignore_index=True)


def _apply_step(sc: DemandScenario, step: GapStep) -> tuple[DemandScenario, str]:
    """The scenario with one gap step applied, and what changed in words (from the values before and after)."""
    s, video = _settings(sc), _videos(sc)[0][0]
    changes = []
    if step.cfg is not None:
        sc = _sampling(sc, cfg=step.cfg)
        changes.append(f"CFG pair {'on' if s.cfg else 'off'} -> {'on' if step.cfg else 'off'}")
    if step.steps is not None:
        sc = _sampling(sc, steps=step.steps)
        changes.append(f"{s.steps} -> {step.steps} steps")
    if step.cache_skip_fraction is not None:
        sc = _sampling(sc, cache_skip_fraction=step.cache_skip_fraction)
        changes.append(f"{s.cache_skip_fraction:.0%} -> {step.cache_skip_fraction:.0%} of DiT evaluations skipped")
    if step.width is not None or step.height is not None:
        w, h = step.width or video.width, step.height or video.height
        sc = with_shapes(sc, width=w, height=h)
        changes.append(f"{video.width}x{video.height} -> {w}x{h}")
    if step.duration_s is not None:
        sc = with_shapes(sc, duration_s=step.duration_s)
        changes.append(f"{video.duration_s:.3g} s -> {_videos(sc)[0][0].duration_s:.3g} s clips")
    return sc, "; ".join(changes) or "no change"


def throughput_gap(scenario: DemandScenario | str) -> pd.DataFrame:
    """The model's throughput, then each gap step applied on top of the previous ones: video-minutes per GPU-hour,
    the factor the step gives alone (from the base) and in sequence, and the gap left to the published throughput
    (> 1: the model is still slower; < 1: the steps so far overshoot)."""
    sc = resolve_demand(scenario)
    pub = published_basis(sc)
    if pub is None:
        return pd.DataFrame()
    base = model_basis(sc)
    rows = [{"step": "sora-compute as configured", "change": base.detail,
             "video_minutes_per_gpu_hour": base.video_minutes_per_gpu_hour, "factor_alone": 1.0,
             "factor_in_sequence": 1.0, "gap_left": pub.video_minutes_per_gpu_hour / base.video_minutes_per_gpu_hour}]
    current, prev = sc, base.video_minutes_per_gpu_hour
    for step in sc.gap_steps:
        alone, _ = _apply_step(sc, step)
        current, change = _apply_step(current, step)
        rate = model_basis(current).video_minutes_per_gpu_hour
        rows.append({"step": step.label, "change": change, "video_minutes_per_gpu_hour": rate,
                     "factor_alone": model_basis(alone).video_minutes_per_gpu_hour / base.video_minutes_per_gpu_hour,
                     "factor_in_sequence": rate / prev, "gap_left": pub.video_minutes_per_gpu_hour / rate})
        prev = rate
    return pd.DataFrame(rows)


def gpus_vs_share(scenario: DemandScenario | str, gpus: Sequence[str], shares: Sequence[float]) -> pd.DataFrame:
    """Average GPUs (the model's serving plan) each source needs alone at each AI share, on each GPU type."""
    sc = resolve_demand(scenario)
    rows = []
    for g in gpus:
        c = sc.model_copy(update={"gpu": g, "mfu": sc.mfu if g == sc.gpu else None,
                                  "power_w": sc.power_w if g == sc.gpu else None})
        b = model_basis(c)
        for src in sc.sources:
            for x in shares:
                rows.append({"source": src.name, "gpu": g, "ai_share": x,
                             "gpus_avg": _fleet(c, b, src.minutes * x)["gpus_avg"]})
    return pd.DataFrame(rows)


def cumulative_compute(est: DemandEstimate, days: Sequence[float]) -> pd.DataFrame:
    """Cumulative inference FLOPs after each number of days of this market, per basis (growth included)."""
    rows = []
    g = est.scenario.growth_per_year
    for _, r in est.summary.iterrows():
        per_min = float(r["flops_per_video_minute"])
        for d in days:
            minutes = cumulative_minutes(float(r["generated_minutes_per_day"]), float(d), g)
            rows.append({"basis": r["basis"], "kind": r["kind"], "day": float(d), "generated_minutes": minutes,
                         "inference_flops": minutes * per_min})
    return pd.DataFrame(rows)

