"""The arithmetic of a training recipe, exact: samples, images and videos, latent tokens and FLOPs per stage.

Per (stage, bucket), with weights w normalised over the stage's buckets (``recipe_spec``):

    samples = iterations x dp x w x batch_per_rank      (bucket table)
    samples = iterations x global_batch x w            (global batch)
    tokens  = samples x latent tokens per sample        (the Workload's latent grid, never recomputed here)
    FLOPs   = samples x per-sample FLOPs               (``training._per_sample``: 3 x DiT forward, the recomputation
                                                        of the stage's checkpointing, VAE encode and text encode
                                                        when the stage encodes on the fly)

Units: samples (clips or images), tokens, FLOPs (2 x MACs, MATMUL_ONLY unless told otherwise).
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import pandas as pd

from sora_compute.flops import MATMUL_ONLY, CountingConvention
from sora_compute.planning.recipe_spec import Recipe, RecipeBucket, RecipeStage
from sora_compute.planning.training import _per_sample
from sora_compute.specs import ModelSpec, VideoShapeError, VideoSpec, Workload

__all__ = ["bucket_workload", "bucket_samples", "bucket_per_sample", "rank_batch", "recipe_counts", "STAGE_SUMS"]

#: columns summed per stage by ``recipe_counts`` consumers
STAGE_SUMS = ["samples", "images", "videos", "tokens", "model_flops", "hardware_flops", "dit_train_flops_total",
              "vae_encode_flops_total", "text_encode_flops_total"]


def bucket_workload(recipe: Recipe, stage: RecipeStage, bucket: RecipeBucket) -> Workload:
    """The model on the bucket's shape; a shape the model cannot take raises VideoShapeError naming the bucket."""
    try:
        return Workload.of(recipe.model, bucket.video)
    except VideoShapeError as e:
        raise VideoShapeError(f"stage {stage.name!r}, bucket {bucket.label}: {e}") from None


def bucket_samples(stage: RecipeStage) -> list[float]:
    """Samples each bucket of ``stage`` sees: iterations x dp x w x batch_per_rank, or iterations x global_batch x w."""
    w = stage.weights
    if stage.global_batch is not None:
        return [stage.iterations * stage.global_batch * wi for wi in w]
    return [stage.iterations * stage.dp * wi * float(b.batch_per_rank or 0) for wi, b in zip(w, stage.buckets,
                                                                                           strict=True)]


def rank_batch(stage: RecipeStage, bucket: RecipeBucket) -> int:
    """Samples of one micro-batch (the shape the time model runs): batch_per_rank in a bucket table, else the
    stage's micro_batch."""
    return bucket.batch_per_rank if bucket.batch_per_rank is not None else stage.micro_batch


@lru_cache(maxsize=4096)
def bucket_per_sample(model: ModelSpec, video: VideoSpec, checkpointing: str, vae_on_the_fly: bool,
                      text_on_the_fly: bool, convention: CountingConvention = MATMUL_ONLY) -> dict[str, Any]:
    """``training._per_sample`` of one shape (memoised: a deadline search counts the same buckets at every GPU
    count; do not mutate the dict returned)."""
    flags = {"checkpointing": checkpointing, "vae_on_the_fly": vae_on_the_fly, "text_on_the_fly": text_on_the_fly}
    return _per_sample(model, video, flags, convention)


def recipe_counts(recipe: Recipe, convention: CountingConvention = MATMUL_ONLY) -> pd.DataFrame:
    """One row per (stage, bucket): shape, weight, per-rank batch, samples (images or videos), latent tokens per
    sample and in all, FLOPs per sample and in all (model FLOPs = 3 x DiT forward + encoders run on the fly;
    hardware FLOPs add the recomputation)."""
    rows = []
    for stage in recipe.stages:
        for b, w, n in zip(stage.buckets, stage.weights, bucket_samples(stage), strict=True):
            wl = bucket_workload(recipe, stage, b)
            per = bucket_per_sample(recipe.model, wl.video, stage.checkpointing, stage.latents == "on_the_fly",
                                    stage.text == "on_the_fly", convention)
            rows.append({
                "stage": stage.name, "bucket": b.label, "width": b.width, "height": b.height,
                "num_frames": b.num_frames, "fps": b.fps, "kind": "image" if b.is_image else "video", "weight": w,
                "rank_batch": rank_batch(stage, b), "samples": n, "images": n if b.is_image else 0.0,
                "videos": 0.0 if b.is_image else n, "latent_frames": wl.latent.frames,
                "video_tokens": wl.tokens, "tokens": n * wl.tokens, "text_tokens": wl.text_tokens,
                **{k: float(v) for k, v in per.items() if k != "video_tokens"},
                "model_flops": n * float(per["model_flops_per_sample"]),
                "hardware_flops": n * float(per["hardware_flops_per_sample"]),
                "dit_train_flops_total": n * float(per["dit_train_flops"]),
                "vae_encode_flops_total": n * float(per["vae_encode_flops"]),
                "text_encode_flops_total": n * float(per["text_encode_flops"]),
            })
    return pd.DataFrame(rows)
