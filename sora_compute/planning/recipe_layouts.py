"""The fastest layout of each recipe stage: the layout search of ``planning/layouts.py`` run on the stage.

A stage with ``layout: search`` is laid out before it is timed. The search runs on the stage's heaviest bucket (the
most hardware FLOPs per iteration: weight x batch per rank x FLOPs per sample), its GPUs and global batch, pinned to
the stage's checkpointing and micro-batch and the recipe's attention kernel, and ranks the layouts that fit in memory
by step time. A bucket table's per-rank batches fix its data-parallel size: there the search keeps dp (and so the
samples) and arranges tp x cp x pp within each rank's GPUs, the heaviest bucket's batch per rank run as one
micro-batch. The fastest layout that fits gives the stage's dp x tp x cp (Ulysses x ring) x pp, interleaving and ZeRO
stage; every bucket of the stage is then timed at it (``recipe_time``; the other buckets are timed, not
memory-checked). The search times bf16 only. When no layout of N GPUs splits the batch and N is not a power of two,
``idle_ok`` runs the stage on the largest power of two below N (the rest idle: the caller pays for them); otherwise a
stage no layout fits raises ``NoLayoutError`` naming it.
"""

from __future__ import annotations

from functools import lru_cache

from sora_compute.flops import MATMUL_ONLY
from sora_compute.hardware import resolve_gpu
from sora_compute.memory.planner import (
    USABLE_FRACTION,
    GiB,
    PrecisionPolicy,
    TrainingMemoryBasis,
    layout_peak,
    training_memory_basis,
)
from sora_compute.planning.layouts import MAX_CP, MAX_PP, MAX_TP, most_gpus, search_training_layouts
from sora_compute.planning.recipe import bucket_per_sample, bucket_workload, rank_batch
from sora_compute.planning.recipe_spec import Recipe, RecipeStage, recipe_profile
from sora_compute.specs import ModelSpec, VideoSpec, Workload

__all__ = ["NoLayoutError", "heaviest_bucket", "search_stage", "resolve_layouts", "memory_misfit"]

class NoLayoutError(ValueError):
    """No layout of the stage's GPUs fits its global batch in memory."""


def _heaviest(recipe: Recipe, stage: RecipeStage) -> int:
    """Index of the stage's bucket with the most hardware FLOPs per iteration: weight x (batch per rank, in a bucket
    table) x hardware FLOPs per sample."""
    flops = [w * (b.batch_per_rank or 1) * float(bucket_per_sample(
        recipe.model, bucket_workload(recipe, stage, b).video, stage.checkpointing, False, False, MATMUL_ONLY
    )["hardware_flops_per_sample"]) for w, b in zip(stage.weights, stage.buckets, strict=True)]
    return flops.index(max(flops))


def heaviest_bucket(recipe: Recipe, stage: RecipeStage) -> VideoSpec:
    """The shape of the stage's heaviest bucket (``_heaviest``)."""
    return bucket_workload(recipe, stage, stage.buckets[_heaviest(recipe, stage)]).video


@lru_cache(maxsize=1024)
def _best(model: ModelSpec, video: VideoSpec, gpu: str, gpus: int, global_batch: int, checkpointing: str,
          kernel: str, micro_batch: int, ema: bool, extra: tuple[tuple[str, object], ...] = ()
          ) -> dict[str, object] | None:
    """The fastest fitting layout's fields (None: none fits) (memoised)."""
    pin = {**dict(extra), "checkpointing": checkpointing, "attention_kernel": kernel, "micro_batch": micro_batch}
    best = search_training_layouts(model, video, recipe_profile(gpu), gpus, global_batch, PrecisionPolicy(ema=ema),
                                   pin=pin).best
    return None if best is None else {str(k): v for k, v in best.items()}


def search_stage(recipe: Recipe, stage: RecipeStage, idle_ok: bool = False,
                 pin: dict[str, object] | None = None) -> tuple[RecipeStage, str]:
    """``stage`` laid out by the layout search (module docstring; its layout then 'given') and the layout in words;
    ``pin`` fixes more
    layout fields (``layouts.LAYOUT_FIELDS``: tp, cp_ulysses, cp_ring, pp, vpp, dp, zero)."""
    if recipe.precision != "bf16":
        raise ValueError(f"stage {stage.name!r}: the layout search times bf16 only, not {recipe.precision}")
    heavy = stage.buckets[_heaviest(recipe, stage)]
    video = bucket_workload(recipe, stage, heavy).video
    if stage.global_batch is not None:
        batch, mb = stage.global_batch, stage.micro_batch
    else:  # a bucket table: its per-rank batches fix dp; the heaviest bucket's batch runs as one micro-batch
        batch, mb, pin = stage.dp * (heavy.batch_per_rank or 1), heavy.batch_per_rank or 1, {**(pin or {}),
                                                                                           "dp": stage.dp}
    rest = (batch, stage.checkpointing, recipe.attention_kernel, mb, stage.ema, tuple(sorted((pin or {}).items())))
    used = stage.gpus
    best = _best(recipe.model, video, recipe.gpu, used, *rest)
    if best is None and idle_ok and used & (used - 1):
        used = 1 << (used.bit_length() - 1)
        best = _best(recipe.model, video, recipe.gpu, used, *rest)
    if best is None:
        most = most_gpus(batch, mb)
        if stage.gpus > most:
            raise NoLayoutError(f"stage {stage.name!r}: {stage.gpus:,} GPUs are more than any layout of a global "
                                f"batch of {batch:,} at micro-batch {mb} can use (at most {most:,}: dp x tp "
                                f"{MAX_TP} x cp {MAX_CP} x pp {MAX_PP})")
        raise NoLayoutError(f"stage {stage.name!r}: no layout of {stage.gpus:,} GPUs splits a global batch of "
                            f"{batch:,} at micro-batch {mb} and fits in memory")
    cu, cr = int(best["cp_ulysses"]), int(best["cp_ring"])  # type: ignore[call-overload]
    kind = "hybrid" if cu > 1 and cr > 1 else "ulysses" if cu > 1 else "ring"
    tp, pp, vpp, zero = (int(best[k]) for k in ("tp", "pp", "vpp", "zero"))  # type: ignore[call-overload]
    update = {"layout": "given", "gpus": used, "tp": tp, "cp": cu * cr, "cp_kind": kind,
              "cp_ulysses": cu if kind == "hybrid" else None, "pp": pp, "vpp": vpp, "zero": zero}
    laid = RecipeStage.model_validate({**stage.model_dump(), **update})
    where = "" if used == stage.gpus else f" on {used:,} of the {stage.gpus:,} GPUs"
    return laid, f"{best['layout']}{where}"


def resolve_layouts(recipe: Recipe, idle_ok: bool = False) -> tuple[Recipe, tuple[str, ...]]:
    """``recipe`` with every ``layout: search`` stage laid out (``search_stage``), and one note per such stage."""
    stages, notes = [], []
    for s in recipe.stages:
        if s.layout != "search":
            stages.append(s)
            continue
        laid, words = search_stage(recipe, s, idle_ok)
        stages.append(laid)
        notes.append(f"stage {s.name!r}: layout searched (fastest that fits, for its heaviest bucket): {words}")
    return recipe.model_copy(update={"stages": tuple(stages)}), tuple(notes)


def memory_misfit(recipe: Recipe, stage: RecipeStage) -> str:
    """'' when the stage's given layout fits its heaviest bucket's micro-batch in memory per GPU (the layout
    search's ledger: ``layout_memory``, at ``USABLE_FRACTION`` of HBM), else why not, in words."""
    heavy = stage.buckets[_heaviest(recipe, stage)]
    wl = bucket_workload(recipe, stage, heavy)
    kind = "materialized" if recipe.attention_kernel == "math" else "fused"
    basis = _memory_basis(wl, rank_batch(stage, heavy), stage.ema, stage.checkpointing, kind)
    peak = float(layout_peak(basis, stage.dp, stage.tp, stage.cp, stage.pp, stage.zero, PrecisionPolicy(ema=stage.ema)))
    usable = resolve_gpu(recipe_profile(recipe.gpu)).hbm_bytes * USABLE_FRACTION
    if peak <= usable:
        return ""
    return (f"stage {stage.name!r}: DP{stage.dp} TP{stage.tp} CP{stage.cp} PP{stage.pp} ZeRO-{stage.zero} needs "
            f"{peak / GiB:,.1f} GiB per GPU of {usable / GiB:,.1f} GiB usable on {recipe.gpu}")


@lru_cache(maxsize=256)
def _memory_basis(wl: Workload, micro_batch: int, ema: bool, checkpointing: str, kind: str) -> TrainingMemoryBasis:
    """The layout-independent memory inputs of one bucket (memoised: a deadline search checks many dp)."""
    return training_memory_basis(wl, micro_batch, PrecisionPolicy(ema=ema), checkpointing,  # type: ignore[arg-type]
                                 kind)  # type: ignore[arg-type]
