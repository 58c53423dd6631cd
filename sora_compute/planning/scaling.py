"""Parallel efficiency of a training stage on N GPUs: the stage written as a recipe stage, laid out by the layout
search (``planning/recipe_layouts.py``, the fastest layout that fits) and timed by the recipe time path
(``planning/recipe_time.py``: the one training-time source), against ideal scaling of the time model's one-GPU seconds
per sample (``planning/training_time.py``).

For one stage, GPU, N GPUs and a global batch of B samples per optimizer step:

    ideal seconds per sample     = stage GPU-seconds on one GPU / samples        (no parallel overheads)
    predicted seconds per sample = recipe wall seconds of the stage x N / samples
                                 (per bucket: step_s of the stage's layout + VAE encode + text encode)
    efficiency(N)                = ideal / predicted                              (1 = linear scaling)

The search is pinned to the scenario's checkpointing policy, the plan's attention kernel and the time model's
micro-batch (``micro_batch_for``), so the layout's compute equals the ideal's and the efficiency only carries the
parallel overheads (exposed communication, pipeline bubble, replicated optimizer work); the encoders run data
parallel (ideal). The layout is searched for the stage's heaviest bucket (most hardware FLOPs) and every bucket is
timed at it. A scenario's wall seconds on N GPUs = sum over stages of the recipe's stage wall seconds
(``scenario_recipe``: iterations = ceil(samples / B)). When no layout of N GPUs splits the batch (N not a power of
two), the stage runs on the largest power of two below N and the rest idle (paid: predicted x N / used); when no
layout fits at all, the stage scales ideally and ``why_ideal`` says why.

Global batch: the stage's ``global_batch`` when it gives one, else the time model's ASSUMED ~4M-token batch
(``global_batch_for``) rounded to a power of two of whole micro-batches (``recipe_scenario.default_global_batch``);
it is fixed as N grows (strong scaling). Each search is memoised per process.
Units: seconds.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from sora_compute.hardware.profiles import HardwareProfile
from sora_compute.planning.layouts import most_gpus
from sora_compute.planning.recipe_layouts import NoLayoutError, heaviest_bucket, search_stage
from sora_compute.planning.recipe_scenario import default_global_batch, scenario_recipe
from sora_compute.planning.recipe_spec import Recipe, RecipeBucket, RecipeStage, profile_key
from sora_compute.planning.recipe_time import RecipeEstimate, estimate_recipe
from sora_compute.planning.training_time import TrainingTime, micro_batch_for, sample_seconds
from sora_compute.specs import VideoSpec, Workload

__all__ = ["StageScaling", "ScenarioScaling", "stage_efficiency", "scenario_scaling", "default_global_batch",
           "search_pins"]


@dataclass(frozen=True)
class StageScaling:
    """One stage shape on N GPUs: the best fitting layout (None: none fits) and the efficiency it implies."""

    stage: str
    video: VideoSpec
    gpus: int
    global_batch: int
    layout: str | None
    step_s: float  # NaN when no layout fits
    ideal_sample_s: float
    predicted_sample_s: float  # NaN when no layout fits
    why_ideal: str = ""  # set when no layout fits: the stage is scaled ideally and this says why

    @property
    def efficiency(self) -> float:
        """ideal / predicted seconds per sample (1.0, ideal, when no layout fits: ``why_ideal`` says so)."""
        return 1.0 if self.layout is None else self.ideal_sample_s / self.predicted_sample_s


@dataclass(frozen=True)
class ScenarioScaling:
    """A scenario's stages on N GPUs: their efficiencies and the wall seconds they imply."""

    gpus: int
    stages: tuple[StageScaling, ...]
    stage_gpu_seconds: tuple[float, ...]  # the time model's GPU-seconds per stage (ideal)

    @property
    def wall_seconds(self) -> float:
        """sum over stages of GPU-seconds / (N x efficiency)."""
        return sum(g / (self.gpus * s.efficiency) for g, s in zip(self.stage_gpu_seconds, self.stages, strict=True))

    @property
    def efficiency(self) -> float:
        """Whole-scenario efficiency: ideal wall (GPU-seconds / N) / predicted wall."""
        return sum(self.stage_gpu_seconds) / self.gpus / self.wall_seconds

    def describe(self) -> str:
        """The stages' layouts and efficiencies, in words."""
        parts = [f"{s.stage} {s.layout} at global batch {s.global_batch:,}: {s.efficiency:.0%}" if s.layout else
                 f"{s.stage}: ideal ({s.why_ideal})" for s in self.stages]
        return "; ".join(parts)


def search_pins(workload: Workload, checkpointing: str, attention_kernel: str) -> dict[str, object]:
    """The layout fields the efficiency search pins: the scenario's checkpointing, the plan's kernel, the time
    model's micro-batch."""
    return {"checkpointing": checkpointing, "attention_kernel": attention_kernel,
            "micro_batch": int(micro_batch_for(workload.tokens))}


def _laid(recipe: Recipe, pin: dict[str, object] | None = None) -> tuple[RecipeEstimate | None, str, str]:
    """A one-stage recipe laid out and estimated: (estimate, layout in words, ''), or (None, '', why no layout fits).
    On a power of two of its GPUs when no layout of them splits the batch, and on the largest power of two below
    that a layout fits when none of that does (more GPUs than the batch and the search's tp x cp x pp limits can
    use: the rest idle, paid by the caller); a layout that fits at fewer GPUs also fits at more within those limits
    (more shards, less memory per GPU), so the stage is scaled ideally only when no count up to its GPUs fits."""
    stage = recipe.stages[0]
    try:
        laid, words = search_stage(recipe, stage, idle_ok=True, pin=pin)
        return estimate_recipe(recipe.model_copy(update={"stages": (laid,)})), words, ""
    except NoLayoutError:
        pass
    used = stage.gpus if not stage.gpus & (stage.gpus - 1) else 1 << (stage.gpus.bit_length() - 1)
    most = most_gpus(stage.global_batch or 0, stage.micro_batch)  # GPUs any layout can have
    for fewer in (used >> k for k in range(1, used.bit_length()) if used >> k <= most):
        try:
            laid, words = search_stage(recipe, stage.model_copy(update={"gpus": fewer}), pin=pin)
        except NoLayoutError:
            continue
        words = f"{words} on {fewer:,} of the {stage.gpus:,} GPUs (no layout of more splits the batch)"
        return estimate_recipe(recipe.model_copy(update={"stages": (laid,)})), words, ""
    mb, b = stage.micro_batch, stage.global_batch or 0
    fits = any(b % (dp * mb) == 0 for dp in range(1, used + 1) if used % dp == 0)
    why = (f"no layout of {used:,} GPUs fits a global batch of {b:,} at micro-batch {mb}" if fits
           else f"{used:,} GPUs cannot split a global batch of {b:,} samples")
    return None, "", why


def _scaled(recipe: Recipe, ideal_gpu_seconds: float, samples: float, pin: dict[str, object] | None = None
            ) -> StageScaling:
    """The one stage of ``recipe`` on its GPUs through the recipe time path, against the ideal GPU-seconds of
    ``samples`` samples (the time model on one GPU)."""
    stage = recipe.stages[0]
    video = heaviest_bucket(recipe, stage)
    batch = int(stage.global_batch or 0)
    est, words, why = _laid(recipe, pin)
    if est is None:
        return StageScaling(stage.name, video, stage.gpus, batch, None, math.nan, ideal_gpu_seconds / samples,
                            math.nan, why)
    row = est.stages.iloc[0]
    paid = float(row["wall_days"]) * 86400 * stage.gpus  # idle GPUs are paid too
    step = float(row["seconds_per_iteration"])
    return StageScaling(stage.name, video, stage.gpus, batch, words, step, ideal_gpu_seconds / samples,
                        paid / samples)  # per the scenario's samples: wall = the recipe's (its rounded iterations)


def stage_efficiency(workload: Workload, profile: HardwareProfile, gpus: int, global_batch: int, stage: str = "",
                     checkpointing: str = "full", attention_kernel: str = "fa2", vae_on_the_fly: bool = False,
                     text_on_the_fly: bool = False, pin: dict[str, object] | None = None) -> StageScaling:
    """The best fitting layout of ``gpus`` GPUs for ``workload`` at ``global_batch`` samples per step and the
    efficiency it implies (module docstring): one iteration of a one-bucket recipe stage, laid out by the layout
    search (``pin`` fixes more layout fields) and timed by the recipe time path."""
    mb = int(micro_batch_for(workload.tokens))
    ideal = sample_seconds(workload, profile, "bf16", attention_kernel, checkpointing, vae_on_the_fly,
                           text_on_the_fly, mb, float(global_batch))
    v = workload.video
    rs = RecipeStage(name=stage or "stage", iterations=1, global_batch=global_batch, gpus=gpus, layout="search",
                     micro_batch=mb, checkpointing=checkpointing,
                     latents="on_the_fly" if vae_on_the_fly else "precomputed",
                     text="on_the_fly" if text_on_the_fly else "precomputed",
                     buckets=(RecipeBucket(width=v.width, height=v.height, num_frames=v.num_frames, fps=v.fps),))
    rc = Recipe(name="stage", model=workload.model, stages=(rs,), gpu=profile_key(profile),
                attention_kernel=attention_kernel)
    return replace(_scaled(rc, ideal["seconds"] * global_batch, float(global_batch), pin), stage=stage)


def scenario_scaling(time: TrainingTime, gpus: int) -> ScenarioScaling:
    """Each stage of ``time``'s scenario on ``gpus`` GPUs (module docstring): the scenario written as a recipe
    (``scenario_recipe``), each stage laid out by the layout search and timed by the recipe time path."""
    sc = time.estimate.scenario
    rc = scenario_recipe(sc, profile_key(time.profile), gpus, time.attention_kernel)
    ideal = {str(r["stage"]): (float(r["gpu_seconds"]), float(r["samples"]))
             for r in time.by_stage().to_dict(orient="records")}
    out, gsec = [], []
    for stage in rc.stages:
        g, samples = ideal[stage.name]
        out.append(_scaled(rc.model_copy(update={"stages": (stage,)}), g, samples))
        gsec.append(g)
    return ScenarioScaling(gpus, tuple(out), tuple(gsec))
