"""Published training costs and step times against a recipe's prediction (never fitted).

An entry of the validation file with ``recipe`` (and optionally ``stage``) is predicted by ``estimate_recipe`` on the
entry's GPU:

- ``training_run`` with ``gpu_hours``: published wall-clock on its GPUs = gpu_hours x 3600 / gpus; predicted =
  the stage's (or the recipe's) GPU-seconds, goodput losses included, / gpus; error = predicted / published - 1
  (the same ratio as GPU-hours). A ``cost_usd``-only entry compares dollars.
- ``training_step``: published seconds per iteration against the stage's productive seconds per iteration.
"""

from __future__ import annotations

import math
from functools import cache
from typing import Any

from sora_compute.planning.recipe_spec import UnknownRecipeError
from sora_compute.planning.recipe_time import RecipeEstimate, estimate_recipe
from sora_compute.planning.validation import ValidationEntry

__all__ = ["recipe_comparison"]

LEFT_OUT = "data loading, host overhead and waits for the slowest rank's bucket not modelled"


@cache
def _estimate(recipe: str, gpu: str) -> RecipeEstimate:
    return estimate_recipe(recipe, gpu=gpu)


def recipe_comparison(e: ValidationEntry) -> dict[str, Any]:
    """published_s, predicted_s, error, status and note of a recipe-backed training entry."""
    assert e.recipe is not None
    try:
        est = _estimate(e.recipe, e.gpu)
    except UnknownRecipeError:
        return {"status": "no recipe", "note": f"{e.recipe} is not a recipe preset"}
    stages = est.stages if e.stage is None else est.stages[est.stages["stage"] == e.stage]
    if not len(stages):
        return {"status": "no stage", "note": f"recipe {e.recipe} has no stage {e.stage!r}"}
    what = f"recipe {e.recipe}" + (f", stage {e.stage}" if e.stage else ", all stages")
    left_out = LEFT_OUT + ("; published figure approximate (see its source)" if e.approx else "")
    if e.scope == "training_step":
        if e.seconds is None:
            return {"status": "no timing", "note": f"{what}: no published seconds per iteration"}
        predicted = float(stages["seconds_per_iteration"].iloc[0])
        return {"published_s": e.seconds, "predicted_s": predicted, "error": predicted / e.seconds - 1,
                "status": "compared", "note": f"{what}: seconds per iteration, productive (no goodput losses); "
                                              + left_out}
    gpu_s, cost = float(stages["gpu_seconds"].sum()), float(stages["cost_usd"].sum())
    days = f"{gpu_s / 86400:,.0f} GPU-days and ${cost:,.0f} predicted"
    if e.gpu_hours is not None:
        published = e.gpu_hours * 3600 / e.gpus
        predicted = gpu_s / e.gpus
        pub = f"{e.gpu_hours / 24:,.0f} GPU-days" + (f" and ${e.cost_usd:,.0f}" if e.cost_usd else "") + " published"
        return {"published_s": published, "predicted_s": predicted, "error": predicted / published - 1,
                "status": "compared", "note": f"{what}: wall-clock on {e.gpus:,} GPUs; {days}, {pub}; "
                                              + left_out}
    assert e.cost_usd is not None
    return {"published_s": math.nan, "predicted_s": math.nan, "error": cost / e.cost_usd - 1, "status": "compared",
            "note": f"{what}: cost; {days}, ${e.cost_usd:,.0f} published; " + left_out}
