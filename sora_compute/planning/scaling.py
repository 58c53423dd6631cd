"""Parallel efficiency of a training stage on N GPUs: the best fitting layout of the layout search
(``planning/layouts.py``) against ideal scaling of the time model's one-GPU seconds per sample
(``planning/training_time.py``).

For one stage shape (workload), GPU, N GPUs and a global batch of B samples per optimizer step:

    ideal seconds per sample     = sample_seconds(workload, B)                       (one GPU, no parallel overheads)
    predicted seconds per sample = step_s(best layout of N GPUs) x N / B + VAE encode + text encode
    efficiency(N)                = ideal / predicted                                  (1 = linear scaling)

The search is pinned to the scenario's checkpointing policy, the plan's attention kernel and the time model's
micro-batch (``micro_batch_for``), so the layout's compute equals the ideal's and the efficiency only carries the
parallel overheads (exposed communication, pipeline bubble, replicated optimizer work); the encoders run data
parallel (ideal). A scenario's wall seconds on N GPUs = sum over stages of stage GPU-seconds / (N x efficiency of
the stage's shape), the shape being the stage's bucket with the most GPU-seconds. When no layout of N GPUs splits
the batch (N not a power of two), the stage runs on the largest power of two below N and the rest idle (paid:
predicted = step_s x N / B); when no layout fits at all, the stage scales ideally and ``why_ideal`` says why.

Global batch: the stage's ``global_batch`` when it gives one, else the time model's ASSUMED ~4M-token batch
(``global_batch_for``) rounded to a power of two of whole micro-batches (trainers' batches split evenly over power-
of-two DP groups); it is fixed as N grows (strong scaling). Each (stage shape, GPU, N, B, policy) is searched once
per process (cache).
Units: seconds.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from sora_compute.hardware.profiles import HardwareProfile
from sora_compute.planning.layouts import search_training_layouts
from sora_compute.planning.training_time import TrainingTime, global_batch_for, micro_batch_for, sample_seconds
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


def default_global_batch(tokens: float) -> int:
    """The ASSUMED global batch in samples, whole micro-batches (mb = ``micro_batch_for``) in a power of two:
    mb x 2^round(log2(global_batch_for(tokens) / mb))."""
    mb = int(micro_batch_for(tokens))
    return mb * 2 ** max(0, round(math.log2(global_batch_for(tokens) / mb)))


def search_pins(workload: Workload, checkpointing: str, attention_kernel: str) -> dict[str, object]:
    """The layout fields the efficiency search pins: the scenario's checkpointing, the plan's kernel, the time
    model's micro-batch."""
    return {"checkpointing": checkpointing, "attention_kernel": attention_kernel,
            "micro_batch": int(micro_batch_for(workload.tokens))}


_CACHE: dict[tuple, StageScaling] = {}


def stage_efficiency(workload: Workload, profile: HardwareProfile, gpus: int, global_batch: int, stage: str = "",
                     checkpointing: str = "full", attention_kernel: str = "fa2", vae_on_the_fly: bool = False,
                     text_on_the_fly: bool = False, pin: dict[str, object] | None = None) -> StageScaling:
    """The best fitting layout of ``gpus`` GPUs for ``workload`` at ``global_batch`` samples per step and the
    efficiency it implies (module docstring); ``pin`` fixes more layout fields. Cached per (shape, GPU, N, B,
    policy, pin)."""
    pins = {**search_pins(workload, checkpointing, attention_kernel), **(pin or {})}
    key = (workload.model.model_dump_json(), workload.video, profile.model_dump_json(), gpus, global_batch,
           checkpointing, attention_kernel, vae_on_the_fly, text_on_the_fly, tuple(sorted(pins.items())))
    if key in _CACHE:
        hit = _CACHE[key]
        return replace(hit, stage=stage)
    mb = int(micro_batch_for(workload.tokens))
    ideal = sample_seconds(workload, profile, "bf16", attention_kernel, checkpointing, vae_on_the_fly,
                           text_on_the_fly, mb, float(global_batch))
    used, search = gpus, search_training_layouts(workload, None, profile, gpus, global_batch, pin=pins)
    if search.best is None and gpus & (gpus - 1):  # not a power of two: run on the largest one, the rest idle
        used = 1 << (gpus.bit_length() - 1)
        search = search_training_layouts(workload, None, profile, used, global_batch, pin=pins)
    best = search.best
    if best is None:
        why = (f"no layout of {used:,} GPUs fits a global batch of {global_batch:,} at micro-batch {mb}"
               if len(search.table) else f"{used:,} GPUs cannot split a global batch of {global_batch:,} samples")
        out = StageScaling(stage, workload.video, gpus, global_batch, None, math.nan, ideal["seconds"], math.nan, why)
    else:
        step = float(best["step_s"])
        predicted = step * gpus / global_batch + ideal["vae_encode_s"] + ideal["text_encode_s"]
        layout = str(best["layout"]) + ("" if used == gpus else f" on {used:,} of the {gpus:,} GPUs")
        out = StageScaling(stage, workload.video, gpus, global_batch, layout, step, ideal["seconds"], predicted)
    _CACHE[key] = out
    return out


def scenario_scaling(time: TrainingTime, gpus: int) -> ScenarioScaling:
    """Each stage of ``time``'s scenario on ``gpus`` GPUs (module docstring): its shape with the most GPU-seconds,
    its global batch, the best layout and efficiency."""
    sc = time.estimate.scenario
    stages = {s.name: s for s in sc.stages}
    out, gsec = [], []
    for name, rows in time.table.groupby("stage", sort=False):
        r = rows.iloc[int(rows["gpu_seconds"].to_numpy().argmax())]
        # training_time keeps the estimate's row order
        fps = float(time.estimate.table["fps"].iloc[int(r.name)])  # type: ignore[call-overload]
        video = VideoSpec(width=int(r["width"]), height=int(r["height"]), num_frames=int(r["num_frames"]), fps=fps)
        w = Workload.of(sc.model, video)
        gb = stages[str(name)].global_batch
        b = int(gb) if gb is not None else default_global_batch(w.tokens)
        out.append(stage_efficiency(w, time.profile, gpus, b, str(name), sc.checkpointing, time.attention_kernel,
                                    sc.vae_on_the_fly, sc.text_on_the_fly))
        gsec.append(float(rows["gpu_seconds"].sum()))
    return ScenarioScaling(gpus, tuple(out), tuple(gsec))
