"""Time, cost and energy of a training recipe from the time model (``evaluate/time.py``), stage by stage.

Per (stage, bucket): the seconds of one data-parallel rank's micro-batch (``rank_batch`` samples) on one GPU:

    dit_s   = DiT training step (forward, input and weight gradients, the recomputation of the stage's
              checkpointing), ``dit_step_seconds``
    vae_s   = VAE encoder forward over the micro-batch (stages with latents on the fly)
    text_s  = text encoders' forward over its prompts (stages with prompts on the fly)

A rank of tp x cp x pp GPUs splits that work ideally (the tp / cp / pp collectives come with the parallel-execution
model; a stage whose layout is ``search`` is timed the same way, and says so). GPU-seconds of a bucket = samples x
(dit_s + vae_s + text_s) / rank_batch; per iteration and GPU, the optimizer step adds the AdamW update over the
GPU's share of the parameters (1 / (tp x pp), sharded over dp ranks from ZeRO-1 on) and the data-parallel gradient
and parameter traffic adds its exposed seconds (``dp_sync_seconds``, ``evaluate/comm.py``).
Productive wall-clock = GPU-seconds / gpus; goodput losses stretch it: wall = productive / prod(1 - fraction).

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
from sora_compute.evaluate.comm import Group, collective_seconds, overlap, topology_of
from sora_compute.evaluate.params import dit_params
from sora_compute.evaluate.time import op_records, optimizer_row, training_times
from sora_compute.flops import count_dit, count_text_encoder, count_vae_encode
from sora_compute.hardware import load_gpu
from sora_compute.hardware.profiles import HardwareProfile, load_profile
from sora_compute.planning.recipe import STAGE_SUMS, bucket_workload, rank_batch, recipe_counts
from sora_compute.planning.recipe_spec import Recipe, RecipeStage, resolve_recipe
from sora_compute.specs import ModelSpec, VideoSpec, Workload

__all__ = ["RecipeEstimate", "estimate_recipe", "dit_step_seconds", "dp_sync_seconds", "COMPONENTS", "OVERHEADS"]

COMPONENTS = ("dit", "vae_encode", "text_encode", "optimizer", "communication")
#: bytes per gradient / parameter word on the wire: bf16 (ASSUMED: mixed-precision ZeRO reduces 16-bit gradients)
GRAD_BYTES = 2
OVERHEADS = ("evaluation", "checkpointing", "failures")
_SECONDS = 10  # COLUMNS.index("seconds") in evaluate/time.py


def dit_step_seconds(workload: Workload, batch: int, profile: HardwareProfile, precision: str, kernel: str,
                     checkpointing: str) -> float:
    """Seconds of one DiT training step (forward, backward, recomputation; no optimizer) on ``batch`` samples of
    ``workload`` on one GPU. The one place the recipe asks for a step time (a planning-level step time can replace
    the body)."""
    ops = count_dit(workload, batch=batch).terms
    return float(training_times(ops, profile, precision, kernel, checkpointing, optimizer=False)["seconds"].sum())


def _forward_seconds(ops: Any, profile: HardwareProfile, precision: str, kernel: str) -> float:
    """Seconds of one forward over ``ops`` on one GPU."""
    return float(sum(r[_SECONDS] for r in op_records(ops, profile, precision, kernel, "fwd")))


def dp_sync_seconds(stage: RecipeStage, params: float, profile: HardwareProfile, step_s: float) -> float:
    """Exposed seconds per iteration of the data-parallel gradient and parameter traffic of one GPU
    (``evaluate/comm.py``), gradients and parameters in 2-byte words over the GPU's 1 / (tp x pp) of the parameters,
    on the DP group (ranks tp x cp apart): ZeRO-0 all-reduces the gradients behind the backward; ZeRO-1/2
    reduce-scatter them behind it and all-gather the updated parameters after the optimizer (exposed); ZeRO-3 adds
    an all-gather of the parameters in the forward and one in the backward (behind compute).
    exposed = overlap(step_s, behind)[1] + after."""
    if stage.dp == 1:
        return 0.0
    group = Group.placed(stage.dp, stage.tp * stage.cp, topology_of(profile).gpus_per_node)
    nbytes = GRAD_BYTES * params / (stage.tp * stage.pp)
    if stage.zero == 0:
        behind, after = collective_seconds("all_reduce", nbytes, group, profile), 0.0
    else:
        behind = collective_seconds("reduce_scatter", nbytes, group, profile)
        after = collective_seconds("all_gather", nbytes, group, profile)
        if stage.zero == 3:
            behind += 2 * after
    return overlap(step_s, behind)[1] + after


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
        out = {k: float(s[k].sum()) for k in (*STAGE_SUMS, "gpu_days", "wall_days", "cost_usd", "energy_mwh",
                                             "productive_gpu_seconds", "gpu_seconds",
                                             *[f"{c}_gpu_s" for c in (*COMPONENTS, *OVERHEADS)])}
        peak = load_profile(self.recipe.gpu).peak_flops(self.recipe.precision)
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


@lru_cache(maxsize=4096)
def _micro_batch_seconds(model: ModelSpec, video: VideoSpec, batch: int, gpu: str, precision: str, kernel: str,
                         checkpointing: str, latents: bool, text: bool) -> tuple[float, float, float]:
    """(DiT step, VAE encode, text encode) seconds of ``batch`` samples on one GPU (memoised: stages share buckets)."""
    profile = load_profile(gpu)
    wl = Workload.of(model, video)
    vae = _forward_seconds(count_vae_encode(wl, batch=batch).terms, profile, precision, kernel) if latents else 0.0
    txt = _forward_seconds(count_text_encoder(model, batch=batch).terms, profile, precision, kernel) if text else 0.0
    return dit_step_seconds(wl, batch, profile, precision, kernel, checkpointing), vae, txt


def _bucket_seconds(recipe: Recipe, stage: RecipeStage) -> list[dict[str, float]]:
    """Per bucket: one-GPU seconds of a rank's micro-batch in DiT, VAE encode and text encode."""
    out = []
    for b in stage.buckets:
        wl = bucket_workload(recipe, stage, b)  # the shape error, naming the bucket
        dit, vae, text = _micro_batch_seconds(recipe.model, wl.video, rank_batch(stage, b), recipe.gpu,
                                              recipe.precision, recipe.attention_kernel, stage.checkpointing,
                                              stage.latents == "on_the_fly", stage.text == "on_the_fly")
        out.append({"dit_s": dit, "vae_encode_s": vae, "text_encode_s": text})
    return out


def estimate_recipe(recipe: Recipe | str, gpu: str | None = None,
                    progress: Callable[[str], None] | None = None) -> RecipeEstimate:
    """Counts and predicted times of every stage of ``recipe`` (a Recipe, a preset name or a file path) on its GPU
    (or ``gpu``): per-bucket and per-stage DataFrames, GPU-days, wall-clock days, cost, energy, tokens/s per GPU,
    MFU and the breakdown."""
    rc = resolve_recipe(recipe)
    if gpu is not None:
        rc = rc.with_gpu(gpu)
    profile = load_profile(rc.gpu)
    spec = load_gpu(rc.gpu)
    price = rc.price_usd_per_hour if rc.price_usd_per_hour is not None else spec.price_usd_per_hour
    power = spec.tdp_w if spec.tdp_w is not None else float("nan")
    peak = profile.peak_flops(rc.precision)
    counts = recipe_counts(rc)
    params = float(dit_params(rc.model.dit))
    times, stage_rows = [], []
    notes = ["communication: the data-parallel gradient and parameter traffic (evaluate/comm.py); the tp / cp / pp "
             "collectives are not modelled yet: a rank's work is split ideally over its tp x cp x pp GPUs"]
    for stage in rc.stages:
        if progress is not None:
            progress(stage.name)
        secs = _bucket_seconds(rc, stage)
        rows = counts[counts["stage"] == stage.name]
        for s, (_, r) in zip(secs, rows.iterrows(), strict=True):
            per_sample = {k: v / r["rank_batch"] for k, v in s.items()}
            times.append({**{k: v for k, v in s.items()},
                          **{f"{k[:-2]}_gpu_s": r["samples"] * v for k, v in per_sample.items()}})
        shards = stage.dp if stage.zero >= 1 else 1
        opt_s = float(optimizer_row(params / (stage.tp * stage.pp), profile, shards=shards)[_SECONDS])
        part = pd.DataFrame(times[-len(secs):])
        row: dict[str, Any] = {"stage": stage.name, "iterations": stage.iterations, "gpus": stage.gpus,
                               "dp": stage.dp, "tp": stage.tp, "cp": stage.cp, "pp": stage.pp, "layout": stage.layout,
                               "checkpointing": stage.checkpointing, "latents": stage.latents, "text": stage.text,
                               **{k: float(rows[k].sum()) for k in STAGE_SUMS},
                               "dit_gpu_s": float(part["dit_gpu_s"].sum()),
                               "vae_encode_gpu_s": float(part["vae_encode_gpu_s"].sum()),
                               "text_encode_gpu_s": float(part["text_encode_gpu_s"].sum()),
                               "optimizer_gpu_s": stage.iterations * stage.gpus * opt_s}
        step_s = row["dit_gpu_s"] / (stage.gpus * stage.iterations)
        row["communication_gpu_s"] = stage.iterations * stage.gpus * dp_sync_seconds(stage, params, profile, step_s)
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
        if stage.layout == "search":
            notes.append(f"stage {stage.name!r}: layout 'search' is timed as the given tp/cp/pp until the layout "
                         "search lands")
        stage_rows.append(row)
    buckets = pd.concat([counts, pd.DataFrame(times)], axis=1)
    return RecipeEstimate(rc, buckets, pd.DataFrame(stage_rows), tuple(notes))
