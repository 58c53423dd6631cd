"""The fastest layout of each recipe stage: the layout search of ``planning/layouts.py`` run on the stage.

A stage with ``layout: search`` (a global-batch stage) is laid out before it is timed: the search runs on the
stage's heaviest bucket (the most hardware FLOPs: weight x FLOPs per sample), its GPUs and global batch, pinned to
the stage's checkpointing and micro-batch and the recipe's attention kernel (the search ranks the layouts that fit
in memory by step time); the fastest that fits gives the stage's dp x tp x cp (Ulysses x ring) x pp, interleaving
and ZeRO stage, and every bucket of the stage is then timed at that layout (``recipe_time``). The search times bf16
only. When no layout of N GPUs splits the batch and N is not a power of two, ``idle_ok`` runs the stage on the
largest power of two below N (the rest idle: the caller pays for them); otherwise a stage no layout fits raises
``NoLayoutError`` naming it.
"""

from __future__ import annotations

from functools import lru_cache

from sora_compute.flops import MATMUL_ONLY
from sora_compute.memory.planner import PrecisionPolicy
from sora_compute.planning.layouts import search_training_layouts
from sora_compute.planning.recipe import bucket_workload
from sora_compute.planning.recipe_spec import Recipe, RecipeStage, recipe_profile
from sora_compute.planning.training import _per_sample
from sora_compute.specs import ModelSpec, VideoSpec

__all__ = ["NoLayoutError", "heaviest_bucket", "search_stage", "resolve_layouts"]


class NoLayoutError(ValueError):
    """No layout of the stage's GPUs fits its global batch in memory."""


def heaviest_bucket(recipe: Recipe, stage: RecipeStage) -> VideoSpec:
    """The shape of the stage's bucket with the most hardware FLOPs (weight x hardware FLOPs per sample)."""
    flags = {"checkpointing": stage.checkpointing, "vae_on_the_fly": False, "text_on_the_fly": False}
    videos = [bucket_workload(recipe, stage, b).video for b in stage.buckets]
    flops = [w * float(_per_sample(recipe.model, v, flags, MATMUL_ONLY)["hardware_flops_per_sample"])
             for w, v in zip(stage.weights, videos, strict=True)]
    return videos[flops.index(max(flops))]


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
    if stage.global_batch is None:
        raise ValueError(f"stage {stage.name!r}: the layout search needs global_batch (a bucket table's per-rank "
                         "batches fix the data-parallel size)")
    if recipe.precision != "bf16":
        raise ValueError(f"stage {stage.name!r}: the layout search times bf16 only, not {recipe.precision}")
    video = heaviest_bucket(recipe, stage)
    rest = (stage.global_batch, stage.checkpointing, recipe.attention_kernel, stage.micro_batch, stage.ema,
            tuple(sorted((pin or {}).items())))
    used = stage.gpus
    best = _best(recipe.model, video, recipe.gpu, used, *rest)
    if best is None and idle_ok and used & (used - 1):
        used = 1 << (used.bit_length() - 1)
        best = _best(recipe.model, video, recipe.gpu, used, *rest)
    if best is None:
        raise NoLayoutError(f"stage {stage.name!r}: no layout of {stage.gpus:,} GPUs fits a global batch of "
                            f"{stage.global_batch:,} at micro-batch {stage.micro_batch} in memory")
    cu, cr = int(best["cp_ulysses"]), int(best["cp_ring"])  # type: ignore[call-overload]
    kind = "hybrid" if cu > 1 and cr > 1 else "ulysses" if cu > 1 else "ring"
    update = {"layout": "given", "gpus": used, "tp": int(best["tp"]), "cp": cu * cr, "cp_kind": kind,  # type: ignore[call-overload]
              "cp_ulysses": cu if kind == "hybrid" else None, "pp": int(best["pp"]),  # type: ignore[call-overload]
              "vpp": int(best["vpp"]), "zero": int(best["zero"])}  # type: ignore[call-overload]
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
