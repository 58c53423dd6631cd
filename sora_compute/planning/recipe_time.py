"""Time, cost and energy of a training recipe from the time model (``evaluate/time.py``), stage by stage.

Per (stage, bucket): the seconds per GPU of an iteration in which every data-parallel rank runs the bucket's
per-rank samples (``dit_step``: the planning step time of ``planning/parallel.py`` for the stage's layout: DiT
compute and recomputation, exposed TP / CP / ZeRO-3 / pipeline / DP communication, the pipeline bubble, optimizer,
EMA), plus the VAE encoder and text encoders' forward over those samples (stages that encode on the fly), split
ideally over the rank's tp x cp x pp GPUs. A stage's iteration = the weighted mean over its buckets (bucket table:
the weights are the chance a rank draws the bucket; global batch: the share of the samples), so

    GPU-seconds of a part = iterations x gpus x sum_b w_b x part_b

In a bucket table every rank draws its own bucket and synchronous data parallelism waits for the slowest: the
``straggler`` part adds iterations x gpus x (E[max over dp ranks] - mean) of the iteration seconds
(``expected_slowest``; ``sync: mean`` leaves it out).

Productive wall-clock = GPU-seconds / gpus; goodput losses stretch it: wall = productive / prod(1 - fraction).
A stage whose layout is ``search`` is first laid out by the layout search (``recipe_layouts``: the fastest layout
that fits, for the stage's heaviest bucket).

Units: seconds, days (86,400 s), GPU-days, USD, MWh (GPU board power x hours x PUE), tokens per second per GPU,
MFU = model FLOPs (3 x DiT forward + encoders run on the fly) / (productive GPU-seconds x peak).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import pandas as pd

from sora_compute._frames import FrameRepr
from sora_compute.evaluate.time import call_records
from sora_compute.flops import Count, count_text_encoder, count_vae_encode
from sora_compute.hardware import resolve_gpu
from sora_compute.hardware.profiles import HardwareProfile
from sora_compute.planning.parallel import TrainingBasis, step_times, training_basis
from sora_compute.planning.recipe import STAGE_SUMS, bucket_workload, rank_batch, recipe_counts
from sora_compute.planning.recipe_layouts import memory_misfit, resolve_layouts
from sora_compute.planning.recipe_spec import Recipe, RecipeStage, recipe_profile, resolve_recipe
from sora_compute.specs import ModelSpec, VideoSpec, Workload

__all__ = ["RecipeEstimate", "estimate_recipe", "dit_step", "expected_slowest", "COMPONENTS", "OVERHEADS"]

COMPONENTS = ("dit", "communication", "bubble", "optimizer", "ema", "vae_encode", "text_encode", "straggler")
_PARTS = COMPONENTS[:-1]  # the parts a bucket's iteration is made of (the straggler wait is the stage's)
OVERHEADS = ("evaluation", "checkpointing", "failures")
_SECONDS = 10  # COLUMNS.index("seconds") in evaluate/time.py
_COMM = ("tp_comm_s", "cp_comm_s", "fsdp_comm_s", "pp_p2p_s", "dp_comm_s")
_DIT = ("compute_attention_s", "compute_matmul_s", "compute_other_s", "recompute_s")


def _forward_seconds(count: Count, profile: HardwareProfile, precision: str, kernel: str) -> float:
    """Seconds of one forward over ``count``'s terms on one GPU (a scheduled encode: each call at its shape)."""
    return float(sum(r[_SECONDS] for r in call_records(count.term_calls, profile, precision, kernel, "fwd")))


def expected_slowest(seconds: list[float], weights: list[float], ranks: int) -> float:
    """E[max] of ``ranks`` independent draws of a bucket (probabilities ``weights``) with iteration ``seconds``:
    sorted ascending, E = sum_k t_k (F_k^ranks - F_(k-1)^ranks), F the cumulative weight (synchronous data
    parallelism waits for the slowest rank's bucket)."""
    order = sorted(range(len(seconds)), key=lambda i: seconds[i])
    out, cdf, prev = 0.0, 0.0, 0.0
    for n, i in enumerate(order):
        cdf = 1.0 if n == len(order) - 1 else cdf + weights[i]
        now = cdf ** ranks
        out += seconds[i] * (now - prev)
        prev = now
    return out


@lru_cache(maxsize=4096)
def _step_basis(model: ModelSpec, video: VideoSpec, gpu: str, precision: str, kernel: str, checkpointing: str,
                micro_batch: int) -> TrainingBasis:
    """The time model's per-micro-batch basis of a training step (memoised: it does not depend on the layout)."""
    return training_basis(Workload.of(model, video), recipe_profile(gpu), micro_batch, checkpointing, kernel,
                          precision)


@lru_cache(maxsize=4096)
def dit_step(model: ModelSpec, video: VideoSpec, gpu: str, precision: str, kernel: str, checkpointing: str,
             micro_batch: int, global_batch: int, dp: int, tp: int, cp_ulysses: int, cp_ring: int, pp: int,
             zero: int, ema: bool, vpp: int = 1) -> dict[str, float]:
    """Seconds of one training iteration in which every data-parallel rank runs ``global_batch / dp`` samples of
    ``video`` in micro-batches of ``micro_batch``: the planning step time (``planning/parallel.py`` ``step_times``:
    compute and recomputation from the time model, TP / CP / ZeRO-3 / pipeline / DP communication from
    ``evaluate/comm.py`` with its overlap, the pipeline bubble, optimizer, EMA). Returns dit_s (compute +
    recomputation), communication_s (exposed), bubble_s, optimizer_s, ema_s and step_s. The one place the recipe
    asks for a DiT step time (memoised: stages share buckets)."""
    profile = recipe_profile(gpu)
    basis = _step_basis(model, video, gpu, precision, kernel, checkpointing, micro_batch)
    st = step_times([basis], 0, profile, global_batch, dp, tp, cp_ulysses, cp_ring, pp, zero, vpp, ema=ema).iloc[0]
    return {"dit_s": float(sum(st[c] for c in _DIT)), "communication_s": float(sum(st[c] for c in _COMM)),
            "bubble_s": float(st["bubble_s"]), "optimizer_s": float(st["optimizer_s"]), "ema_s": float(st["ema_s"]),
            "step_s": float(st["step_s"])}


@lru_cache(maxsize=4096)
def _encode_seconds(model: ModelSpec, video: VideoSpec, samples: float, gpu: str, precision: str, kernel: str,
                    latents: bool, text: bool) -> tuple[float, float]:
    """(VAE encode, text encode) seconds of ``samples`` clips and prompts on one GPU (the encoders' forward)."""
    profile = recipe_profile(gpu)
    n = max(1, round(samples))  # the encoders' batch shape; the seconds scale to ``samples`` below
    wl = Workload.of(model, video)
    vae = _forward_seconds(count_vae_encode(wl, batch=n), profile, precision, kernel) if latents else 0.0
    txt = _forward_seconds(count_text_encoder(model, batch=n), profile, precision, kernel) if text else 0.0
    return vae * samples / n, txt * samples / n


@dataclass(frozen=True, repr=False)
class RecipeEstimate(FrameRepr):
    """A recipe's counts and times: ``buckets`` (per stage and bucket), ``stages`` (per stage), ``total``."""

    recipe: Recipe
    buckets: pd.DataFrame
    stages: pd.DataFrame
    notes: tuple[str, ...] = field(default=())

    @property
    def total(self) -> dict[str, float]:
        s = self.stages
        keys = (*STAGE_SUMS, "gpu_days", "wall_days", "cost_usd", "energy_mwh", "productive_gpu_seconds", "gpu_seconds",
                *[f"{c}_gpu_s" for c in (*COMPONENTS, *OVERHEADS)])
        out = {k: float(s[k].sum(skipna=False)) for k in keys}  # an unknown stage figure (no board power): unknown
        peak = recipe_profile(self.recipe.gpu).peak_flops(self.recipe.precision)
        out["tokens_per_s_per_gpu"] = out["tokens"] / out["gpu_seconds"]
        out["mfu"] = out["model_flops"] / (out["productive_gpu_seconds"] * peak)
        out["mfu_wall"] = out["model_flops"] / (out["gpu_seconds"] * peak)
        return out

    def breakdown(self) -> pd.DataFrame:
        """GPU-seconds per stage and part (DiT, VAE encode, text encode, optimizer, exposed data-parallel
        communication, goodput losses), with each part's share of the stage."""
        rows = []
        for r in self.stages.to_dict(orient="records"):
            for part in (*COMPONENTS, *OVERHEADS):
                s = float(r.get(f"{part}_gpu_s", 0.0))
                rows.append({"stage": r["stage"], "part": part, "gpu_seconds": s, "share": s / r["gpu_seconds"]})
        return pd.DataFrame(rows)

    def to_frame(self) -> pd.DataFrame:
        return self.stages.copy()

    def __repr__(self) -> str:
        t = self.total
        return (f"RecipeEstimate({self.recipe.name} on {self.recipe.gpu}: {t['gpu_days']:,.0f} GPU-days, "
                f"{t['wall_days']:,.1f} days, ${t['cost_usd']:,.0f}, MFU {t['mfu']:.0%})")


def _bucket_seconds(recipe: Recipe, stage: RecipeStage) -> list[dict[str, float]]:
    """Per bucket: seconds of an iteration per GPU when every rank runs the bucket (``dit_step``), and its VAE and
    text encoding split over the rank's tp x cp x pp GPUs."""
    cu, cr = stage.cp_split
    heads = recipe.model.dit.num_heads
    if heads % (stage.tp * cu):
        raise ValueError(f"stage {stage.name!r}: tp x cp (Ulysses) = {stage.tp * cu} does not divide the "
                         f"{heads} heads")
    out = []
    for b in stage.buckets:
        wl = bucket_workload(recipe, stage, b)  # the shape error, naming the bucket
        batch = b.batch_per_rank * stage.dp if b.batch_per_rank is not None else stage.global_batch or 0
        per_rank = batch / stage.dp
        step = dit_step(recipe.model, wl.video, recipe.gpu, recipe.precision, recipe.attention_kernel,
                        stage.checkpointing, rank_batch(stage, b), batch, stage.dp, stage.tp, cu, cr, stage.pp,
                        stage.zero, stage.ema, stage.vpp)
        vae, text = _encode_seconds(recipe.model, wl.video, per_rank, recipe.gpu, recipe.precision,
                                    recipe.attention_kernel, stage.latents == "on_the_fly", stage.text == "on_the_fly")
        group = stage.tp * stage.cp * stage.pp
        out.append({**{k: v for k, v in step.items() if k != "step_s"}, "vae_encode_s": vae / group,
                    "text_encode_s": text / group})
    return out


def estimate_recipe(recipe: Recipe | str, gpu: str | None = None,
                    progress: Callable[[str], None] | None = None, idle_ok: bool = False) -> RecipeEstimate:
    """Counts and predicted times of every stage of ``recipe`` (a Recipe, a preset name or a file path) on its GPU
    (or ``gpu``): per-bucket and per-stage DataFrames, GPU-days, wall-clock days, cost, energy, tokens/s per GPU,
    MFU and the breakdown. ``layout: search`` stages are laid out first (``recipe_layouts``; ``idle_ok``: on the
    largest power of two of GPUs when no layout of theirs splits the batch)."""
    rc = resolve_recipe(recipe)
    if gpu is not None:
        rc = rc.with_gpu(gpu)
    misfit = [m for m in (memory_misfit(rc, s) for s in rc.stages if s.layout == "given") if m]
    rc, laid = resolve_layouts(rc, idle_ok)
    profile = recipe_profile(rc.gpu)
    spec = resolve_gpu(profile)
    price = rc.price_usd_per_hour if rc.price_usd_per_hour is not None else spec.price_usd_per_hour
    power = spec.tdp_w if spec.tdp_w is not None else float("nan")
    peak = profile.peak_flops(rc.precision)
    counts = recipe_counts(rc)
    times, stage_rows = [], []
    notes = ["step time from planning/parallel.py (compute, TP / CP / ZeRO / pipeline / DP communication with "
             "overlap, bubble, optimizer); VAE and text encoding split ideally over a rank's tp x cp x pp GPUs",
             *laid, *(f"{m}: the layout as given does not fit in memory per GPU (timed anyway)" for m in misfit)]
    for stage in rc.stages:
        if progress is not None:
            progress(stage.name)
        secs = _bucket_seconds(rc, stage)
        rows = counts[counts["stage"] == stage.name]
        scale = stage.iterations * stage.gpus  # iteration-seconds per GPU -> GPU-seconds of the stage
        part = pd.DataFrame([{**sec, **{f"{k[:-2]}_gpu_s": scale * w * v for k, v in sec.items()}}
                             for sec, w in zip(secs, stage.weights, strict=True)])
        times.append(part)
        row: dict[str, Any] = {"stage": stage.name, "iterations": stage.iterations, "gpus": stage.gpus,
                               "dp": stage.dp, "tp": stage.tp, "cp": stage.cp, "cp_kind": stage.cp_kind,
                               "pp": stage.pp, "zero": stage.zero, "layout": stage.layout,
                               "checkpointing": stage.checkpointing, "latents": stage.latents, "text": stage.text,
                               **{k: float(rows[k].sum()) for k in STAGE_SUMS},
                               **{f"{c}_gpu_s": float(part[f"{c}_gpu_s"].sum()) for c in _PARTS}}
        per_iteration = [sum(sec[f"{c}_s"] for c in _PARTS) for sec in secs]
        mean = sum(w * t for w, t in zip(stage.weights, per_iteration, strict=True))
        slowest = expected_slowest(per_iteration, stage.weights, stage.dp) if stage.global_batch is None \
            and stage.sync == "slowest" else mean
        row["straggler_gpu_s"] = scale * max(0.0, slowest - mean)
        productive = sum(row[f"{c}_gpu_s"] for c in COMPONENTS)
        wall = productive
        for name in OVERHEADS:
            row[f"{name}_gpu_s"] = 0.0
        for name, o in rc.stage_goodput(stage).items():
            grown = wall / (1 - o.fraction)
            row[f"{name}_gpu_s"] = grown - wall
            wall = grown
        seconds = wall / stage.gpus
        row.update({"productive_gpu_seconds": productive, "gpu_seconds": wall,
                    "seconds_per_iteration": productive / stage.gpus / stage.iterations,
                    "wall_days": seconds / 86400, "gpu_days": wall / 86400, "cost_usd": wall / 3600 * price,
                    "energy_mwh": wall / 3600 * power * rc.pue / 1e6,
                    "tokens_per_s_per_gpu": row["tokens"] / wall,
                    "mfu": row["model_flops"] / (productive * peak), "mfu_wall": row["model_flops"] / (wall * peak)})
        stage_rows.append(row)
    buckets = pd.concat([counts, pd.concat(times, ignore_index=True)], axis=1)
    return RecipeEstimate(rc, buckets, pd.DataFrame(stage_rows), tuple(notes))
