"""A training scenario (videos x epochs over buckets, ``scenarios.yaml``) written as a recipe, so its days and
dollars come from the one recipe time path (``recipe_time``) on a cluster of N GPUs of one type.

Per scenario stage: the global batch B is the stage's own, else the time model's ASSUMED ~4M-token batch for the
stage's heaviest bucket (the most hardware FLOPs) in whole micro-batches, a power of two of them
(``default_global_batch``); the micro-batch is the time model's (``micro_batch_for``: ~64k tokens, ASSUMED);
iterations = ceil(samples / B) (so a stage sees up to B - 1 samples more than the scenario says: the rounding is
reported, never hidden); the buckets keep their shares as weights; the layout is searched
(``recipe_layouts``) on all N GPUs; checkpointing and on-the-fly encoding are the scenario's; no goodput losses
(the scenario has none).
"""

from __future__ import annotations

import math

from sora_compute.planning.recipe_spec import MAX_COUNT, Recipe, RecipeBucket, RecipeStage
from sora_compute.planning.scenarios import TrainingScenario
from sora_compute.planning.training import estimate_training
from sora_compute.planning.training_time import global_batch_for, micro_batch_for

__all__ = ["default_global_batch", "scenario_recipe"]


def default_global_batch(tokens: float) -> int:
    """The ASSUMED global batch in samples, whole micro-batches (mb = ``micro_batch_for``) in a power of two:
    mb x 2^round(log2(global_batch_for(tokens) / mb))."""
    mb = int(micro_batch_for(tokens))
    return mb * 2 ** max(0, round(math.log2(global_batch_for(tokens) / mb)))


def scenario_recipe(sc: TrainingScenario, gpu: str = "h100-sxm", gpus: int = 4096, attention_kernel: str = "fa2",
                    precision: str = "bf16") -> Recipe:
    """``sc`` as a recipe of ``gpus`` GPUs of type ``gpu`` (module docstring)."""
    table = estimate_training(sc).table
    stages = []
    for s in sc.stages:
        rows = table[table["stage"] == s.name]
        heavy = rows.iloc[int(rows["hardware_flops"].to_numpy().argmax())]
        tokens = float(heavy["video_tokens"])
        batch = s.global_batch if s.global_batch is not None else default_global_batch(tokens)
        samples = float(rows["samples"].sum())
        iterations = s.steps if s.steps is not None else max(1, math.ceil(samples / batch - 1e-9))
        if iterations > MAX_COUNT:  # name the scenario's field, not the recipe's it becomes
            raise ValueError(f"stage {s.name!r}: {samples:.3g} samples / global batch {batch:,} = {iterations:.3g} "
                             f"iterations, more than {MAX_COUNT:.3g}: fewer samples (or epochs)")
        buckets = [RecipeBucket(width=int(r["width"]), height=int(r["height"]), num_frames=int(r["num_frames"]),
                                fps=float(r["fps"]), weight=b.share)
                   for b, r in zip(s.buckets, rows.to_dict(orient="records"), strict=True)]
        stages.append(RecipeStage(
            name=s.name, iterations=iterations, global_batch=batch, buckets=tuple(buckets), gpus=gpus,
            layout="search", micro_batch=int(micro_batch_for(tokens)), checkpointing=sc.checkpointing,
            latents="on_the_fly" if sc.vae_on_the_fly else "precomputed",
            text="on_the_fly" if sc.text_on_the_fly else "precomputed", sync="mean",
            source=f"scenario {sc.name!r} stage {s.name!r}: {samples:,.0f} samples / global batch {batch:,} "
                   f"-> {iterations:,} iterations"))
    return Recipe(name=sc.name, model=sc.model, stages=tuple(stages), gpu=gpu, precision=precision,
                  attention_kernel=attention_kernel, assumptions=dict(sc.assumptions),
                  source=f"scenario {sc.name!r} (sora_compute/scenarios.yaml or its file) written as a recipe")
