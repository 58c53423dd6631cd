"""Inverse questions on a training recipe: the GPUs that finish it by a deadline, the cheapest GPU type for it.

GPUs for a deadline keep each stage's samples and layout: a stage's GPUs grow by one factor s (rounded up to whole
tp x cp x pp groups), its data-parallel ranks with them, and its iterations shrink by dp / dp' (rounded up) so the
samples stay (up to that rounding). With the ideal split of the time model, wall-clock days scale as 1 / s; the
plan is re-estimated at the rounded counts and the next factor tried until the deadline holds.
"""

from __future__ import annotations

import math

import pandas as pd

from sora_compute.planning.recipe_spec import MAX_COUNT, Recipe, RecipeStage, resolve_recipe
from sora_compute.planning.recipe_time import RecipeEstimate, estimate_recipe

__all__ = ["scale_recipe", "recipe_gpus_for_days", "compare_gpu_types"]


def _scaled_stage(stage: RecipeStage, factor: float) -> RecipeStage:
    group = stage.tp * stage.cp * stage.pp
    gpus = max(group, math.ceil(stage.gpus * factor / group) * group)
    if gpus > MAX_COUNT:
        raise ValueError(f"days: stage {stage.name!r} would need more than {MAX_COUNT:,} GPUs")
    dp = gpus // group
    iterations = max(1, math.ceil(stage.iterations * stage.dp / dp))
    update: dict = {"gpus": gpus, "iterations": iterations}
    if stage.global_batch is not None:  # the samples per iteration grow with the ranks
        update["global_batch"] = stage.global_batch * dp // stage.dp
    return RecipeStage.model_validate({**stage.model_dump(), **update})


def scale_recipe(recipe: Recipe, factor: float) -> Recipe:
    """``recipe`` with every stage's GPUs times ``factor`` (whole tp x cp x pp groups) and its iterations cut so the
    stage's samples stay."""
    if not (math.isfinite(factor) and factor > 0):
        raise ValueError(f"factor: expected a finite positive number, got {factor!r}")
    return recipe.model_copy(update={"stages": tuple(_scaled_stage(s, factor) for s in recipe.stages)})


def recipe_gpus_for_days(recipe: Recipe | str, days: float, gpu: str | None = None,
                         max_rounds: int = 20) -> tuple[Recipe, RecipeEstimate]:
    """The recipe scaled to finish within ``days`` of wall-clock (all stages one after another) and its estimate."""
    if not (math.isfinite(days) and days > 0):
        raise ValueError(f"days: expected a finite positive number of days, got {days!r}")
    rc = resolve_recipe(recipe)
    if gpu is not None:
        rc = rc.with_gpu(gpu)
    base = estimate_recipe(rc)
    factor = base.total["wall_days"] / days
    for _ in range(max_rounds):
        scaled = scale_recipe(rc, factor)
        est = estimate_recipe(scaled)
        if est.total["wall_days"] <= days:
            return scaled, est
        factor *= est.total["wall_days"] / days * 1.001
    raise ValueError(f"days: no GPU count found that finishes in {days:g} days within {max_rounds} tries")


def compare_gpu_types(recipe: Recipe | str, gpus: list[str]) -> pd.DataFrame:
    """The whole recipe on each GPU type (the same GPU counts and layouts): GPU-days, wall-clock days, cost, energy,
    MFU, cheapest first, each at its catalog price and with the recipe's attention kernel (FlashAttention-2 where
    the GPU has no kernel-table points for it) (the recipe's own price is for its own GPU; memory per GPU is not
    checked)."""
    rc = resolve_recipe(recipe).model_copy(update={"price_usd_per_hour": None})
    rows = []
    for g in gpus:
        kernel = rc.attention_kernel
        try:
            t = estimate_recipe(rc, gpu=g).total
        except ValueError:  # no kernel-table points for the recipe's attention kernel on this GPU: FlashAttention-2
            if kernel == "fa2":
                raise
            kernel = "fa2"
            t = estimate_recipe(rc.model_copy(update={"attention_kernel": kernel}), gpu=g).total
        rows.append({"gpu": g, "attention_kernel": kernel,
                     **{k: t[k] for k in ("gpu_days", "wall_days", "cost_usd", "energy_mwh", "mfu",
                                          "tokens_per_s_per_gpu")}})
    out = pd.DataFrame(rows).sort_values("cost_usd", ignore_index=True)
    out["cheapest"] = out.index == 0
    return out
