"""The inference layout search: every way to serve videos on N GPUs, ranked by latency and by cost per video.

A candidate is ``replicas`` independent copies of one per-video layout (``InferenceLayout``: cfg x pipefusion x
ring x ulysses GPUs per video, FSDP degree, parallel VAE), replicas x GPUs per video = N. Layouts the model cannot
run (Ulysses not dividing the heads, CFG parallel without a CFG pair, more stages than blocks) are left out; the
rest are timed and sized by ``inference_schedule`` and kept with ``fits``. Recommended: among the layouts that fit,
the lowest latency (``latency_rank`` 1) and the lowest cost per video, i.e. the most videos per GPU-hour
(``cost_rank`` 1). Ties go to the label's alphabetical order, so the result does not depend on the order in which
layouts are enumerated. Units: seconds, GiB (2^30 bytes), USD.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import pandas as pd

from sora_compute.hardware.profiles import HardwareProfile
from sora_compute.planning.inference import InferenceEstimate
from sora_compute.planning.parallel_inference import (
    COMM_KINDS,
    InferenceLayout,
    ScheduleContext,
    inference_schedule,
    layout_problem,
)

__all__ = ["candidate_layouts", "search_inference_layouts", "best_layouts", "latency_scaling"]


def _divisors(n: int) -> list[int]:
    return [k for k in range(1, n + 1) if n % k == 0]


def candidate_layouts(gpus_per_video: int, estimate: InferenceEstimate) -> Iterator[InferenceLayout]:
    """Every layout of exactly ``gpus_per_video`` GPUs that the model can run: cfg in {1, 2} x pipefusion x ring x
    ulysses, FSDP over 1 or all of the GPUs that hold the same blocks, VAE decode split or not (with > 1 GPU)."""
    g = gpus_per_video
    for cfg in (c for c in (1, 2) if g % c == 0):
        for pf in _divisors(g // cfg):
            for ring in _divisors(g // (cfg * pf)):
                uly = g // (cfg * pf * ring)
                shared = cfg * ring * uly
                for fsdp in sorted({1, shared}):
                    for vae in (False, True) if g > 1 else (False,):
                        lay = InferenceLayout(cfg=cfg, ulysses=uly, ring=ring, pipefusion=pf, fsdp=fsdp,
                                              vae_parallel=vae)
                        if layout_problem(lay, estimate) is None:
                            yield lay


def _row(ctx: ScheduleContext, lay: InferenceLayout, gpus: int, price: float | None) -> dict:
    s = inference_schedule(ctx, layout=lay, price_usd_per_hour=price)
    replicas = gpus // lay.gpus
    return {**s.summary(), "gpus_per_video": lay.gpus, "replicas": replicas,
            **{f"{k}_s": v * s.steps_run for k, v in s.comm_per_step.items()},
            "videos_per_hour": replicas * 3600 / s.latency_s}


def search_inference_layouts(estimate: InferenceEstimate, gpu: str | HardwareProfile, gpus: int,
                             precision: str = "bf16", attention_kernel: str = "fa2",
                             price_usd_per_hour: float | None = None,
                             layouts: Iterable[InferenceLayout] | None = None) -> pd.DataFrame:
    """All layouts of ``gpus`` GPUs (replicas x GPUs per video; default ``candidate_layouts`` of every divisor of
    ``gpus``, or the ``layouts`` given) with latency, per-step time, breakdown, memory per GPU, ``fits``,
    videos per hour (all replicas), videos per GPU-hour, USD per video, ``latency_rank`` and ``cost_rank`` (1 =
    best among the layouts that fit; 0 for those that do not). Sorted: fitting first, then by latency."""
    if isinstance(gpus, bool) or not isinstance(gpus, int) or gpus < 1:
        raise ValueError(f"gpus must be an integer >= 1, got {gpus!r}")
    ctx = ScheduleContext(estimate, gpu, precision, attention_kernel)
    if layouts is None:
        layouts = (lay for g in _divisors(gpus) for lay in candidate_layouts(g, estimate))
    rows = []
    for lay in layouts:
        if gpus % lay.gpus:
            raise ValueError(f"layout {lay.label()} uses {lay.gpus} GPUs per video: not a divisor of {gpus}")
        rows.append(_row(ctx, lay, gpus, price_usd_per_hour))
    df = pd.DataFrame(rows)
    if df.empty:
        return df
    for k in COMM_KINDS:
        if f"{k}_s" not in df:
            df[f"{k}_s"] = 0.0
    df = df.sort_values(["layout", "gpus_per_video"], ignore_index=True)  # one order, whatever came in
    fit = df["fits"]
    df["latency_rank"] = 0
    df["cost_rank"] = 0
    df.loc[fit, "latency_rank"] = df.loc[fit, "latency_s"].rank(method="first").astype(int)
    df.loc[fit, "cost_rank"] = df.loc[fit, "cost_per_video_usd"].rank(method="first").astype(int)
    return df.sort_values(["fits", "latency_s", "layout"], ascending=[False, True, True], ignore_index=True)


def best_layouts(table: pd.DataFrame) -> tuple[pd.Series | None, pd.Series | None]:
    """(latency-optimal row, cost-optimal row) of a search table; None where no layout fits."""
    if table.empty or not table["fits"].any():
        return None, None
    return (table.loc[table["latency_rank"] == 1].iloc[0], table.loc[table["cost_rank"] == 1].iloc[0])


def latency_scaling(table: pd.DataFrame) -> pd.DataFrame:
    """The fastest fitting layout at each GPU count per video, with its speedup over one GPU (or over the smallest
    count that fits) and parallel efficiency = speedup / (GPUs / base GPUs)."""
    fit = table[table["fits"]]
    if fit.empty:
        return pd.DataFrame(columns=["gpus_per_video", "layout", "latency_s", "speedup", "efficiency"])
    best = fit.sort_values(["latency_s", "layout"]).groupby("gpus_per_video", sort=True).head(1)
    best = best.sort_values("gpus_per_video", ignore_index=True)
    base = best.iloc[0]
    out = best[["gpus_per_video", "layout", "latency_s", "step_s", "comm_exposed_s", "serial_s", "peak_GiB"]].copy()
    out["speedup"] = base["latency_s"] / out["latency_s"]
    out["efficiency"] = out["speedup"] / (out["gpus_per_video"] / base["gpus_per_video"])
    return out
