"""Inference compute per video: sampling settings (steps, CFG, distillation, caching), VAE tiling, each preset's
published sampling defaults."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import pandas as pd
from pydantic import Field, model_validator

from sora_compute._frames import FrameRepr
from sora_compute.flops import (
    MATMUL_ONLY,
    Count,
    CountingConvention,
    count_dit,
    count_text_encoder,
    count_vae_decode,
)
from sora_compute.ledger.vae_schedule import scheduled_decode
from sora_compute.memory.vae_schedule import scheduled_decode_count
from sora_compute.planning.base import _Spec
from sora_compute.presets import Preset, load_preset
from sora_compute.specs import ModelSpec, VideoSpec, Workload, as_workload
from sora_compute.specs.vae.schedule import DecodeSchedule

# ------------------------------------------------------------------------------------------------
# Inference
# ------------------------------------------------------------------------------------------------

class VAETiling(_Spec):
    """Decode in overlapping tiles: spatial tiles of ``tile_px`` with ``overlap_px`` overlap, and optionally
    temporal tiles of ``tile_latent_frames`` latent frames every ``tile_latent_frames - overlap_latent_frames``
    (diffusers' temporal tiles read one latent frame more than that, the causal frame before them). Counted as the
    decode schedule it is (``schedule``: ``ledger/vae_schedule.py``, the one count of tiled decodes)."""

    tile_px: int = Field(gt=0, description="spatial tile edge, pixels")
    overlap_px: int = Field(default=0, ge=0, description="overlap between neighbouring tiles, pixels")
    tile_latent_frames: int | None = Field(default=None, gt=0, description="temporal tile, latent frames")
    overlap_latent_frames: int = Field(default=0, ge=0)

    @model_validator(mode="after")
    def _check(self) -> VAETiling:
        if self.overlap_px >= self.tile_px:
            raise ValueError(f"overlap_px={self.overlap_px} must be smaller than tile_px={self.tile_px}")
        if self.tile_latent_frames is not None and self.overlap_latent_frames >= self.tile_latent_frames:
            raise ValueError("overlap_latent_frames must be smaller than tile_latent_frames")
        return self

    def schedule(self, temporal_compression: int) -> DecodeSchedule:
        """The tiled ``DecodeSchedule`` (pixels and video frames, as diffusers configures tiles)."""
        stride = self.tile_px - self.overlap_px
        frames = {} if self.tile_latent_frames is None else {
            "tile_frames": self.tile_latent_frames * temporal_compression,
            "stride_frames": (self.tile_latent_frames - self.overlap_latent_frames) * temporal_compression}
        return DecodeSchedule(mode="tiled", tile_px=(self.tile_px, self.tile_px), stride_px=(stride, stride),
                              source="InferenceSettings.vae_tiling", **frames)


class InferenceSettings(_Spec):
    """Sampling settings that set the cost of generating one video."""

    steps: int = Field(default=50, gt=0, description="denoising steps (4-8 for step-distilled samplers)")
    cfg: bool = Field(default=True, description="classifier-free guidance: 2 DiT evaluations per step")
    guidance_branches: int = Field(default=2, ge=2, le=3, description="DiT evaluations per step with guidance: 2, "
                                   "or 3 with an image-unconditional branch (Open-Sora 2.0's sampler)")
    cfg_mode: Literal["batched", "sequential"] = Field(
        default="batched", description="CFG pair as one batch of 2 (weights read once) or two passes; same FLOPs")
    cache_skip_fraction: float = Field(default=0.0, ge=0, lt=1,
                                       description="share of DiT evaluations skipped by feature caching "
                                                   "(TeaCache / PAB style)")
    vae_tiling: VAETiling | None = None

    @property
    def dit_evaluations(self) -> float:
        """DiT forwards per video (per sample of the CFG pair counted)."""
        return self.steps * (self.guidance_branches if self.cfg else 1) * (1 - self.cache_skip_fraction)


@dataclass(frozen=True, repr=False)
class InferenceEstimate(FrameRepr):
    """FLOPs to generate one video, by component, and per minute of video and per 1k videos."""

    model: ModelSpec
    video: VideoSpec
    settings: InferenceSettings
    counts: dict[str, Count]  # one evaluation of each component
    multipliers: dict[str, float]  # evaluations per video

    @property
    def flops_by_component(self) -> dict[str, float]:
        return {k: float(c.flops) * self.multipliers[k] for k, c in self.counts.items()}

    @property
    def flops_per_video(self) -> float:
        return sum(self.flops_by_component.values())

    @property
    def flops_per_minute(self) -> float:
        return self.flops_per_video * 60 / self.video.duration_s

    @property
    def flops_per_1k_videos(self) -> float:
        return 1000 * self.flops_per_video

    def to_frame(self) -> pd.DataFrame:
        f = self.flops_by_component
        total = sum(f.values())
        return pd.DataFrame({"component": list(f), "evaluations": [self.multipliers[k] for k in f],
                             "flops": list(f.values()), "share": [v / total for v in f.values()]})

    def __repr__(self) -> str:
        return (f"InferenceEstimate({self.video.width}x{self.video.height}x{self.video.num_frames}: "
                f"{self.flops_per_video:.3g} FLOPs per video, {self.flops_per_minute:.3g} per minute)")


def sampling_defaults(model: ModelSpec | Preset | str) -> InferenceSettings:
    """The sampling settings a model runs with by default: its preset's published steps and CFG (a preset, or a model
    spec named after one), else InferenceSettings() (50 steps, CFG)."""
    from sora_compute.presets import preset_names

    name = model if isinstance(model, str) else model.name
    if name in preset_names():
        sampling = load_preset(name).sampling
        if sampling is not None:
            return InferenceSettings(steps=sampling.steps, cfg=sampling.cfg,
                                     guidance_branches=sampling.guidance_branches)
    return InferenceSettings()


def estimate_inference(model: ModelSpec | Preset | str | Workload, video: VideoSpec | None = None,
                       settings: InferenceSettings | None = None,
                       convention: CountingConvention = MATMUL_ONLY) -> InferenceEstimate:
    """Per video: text encoding (x2 with CFG: the negative prompt), steps x DiT forward (x2 with CFG, x3 with an
    image-unconditional branch too, less cached steps), and one VAE decode (summed over tiles when tiled). Without
    ``settings``, the preset's published sampling defaults (steps, CFG, guidance branches; ``sampling_defaults``) are
    used, for a preset or a model named after one.
    ``model`` may be a Workload (model and video shape, validated once)."""
    if isinstance(model, str):
        model = load_preset(model)
    s = settings if settings is not None else sampling_defaults(model.model if isinstance(model, Workload) else model)
    if isinstance(model, Preset):
        video = video or model.video
        model = model.model
    if video is None and not isinstance(model, Workload):
        raise ValueError("give a video shape (or a preset, whose native shape is used)")
    w = as_workload(model, video)  # the latent shape, computed once for every count below
    cfg_batch = s.guidance_branches if s.cfg and s.cfg_mode == "batched" else 1
    dit = count_dit(w, batch=cfg_batch, convention=convention)
    counts = {"text_encode": count_text_encoder(w, convention=convention), "dit": dit}
    mult = {"text_encode": 2.0 if s.cfg else 1.0, "dit": s.dit_evaluations / cfg_batch}
    if s.vae_tiling is None:
        counts["vae_decode"], mult["vae_decode"] = count_vae_decode(w, convention=convention), 1.0
    else:
        counts["vae_decode"], mult["vae_decode"] = _tiled_decode(w, s.vae_tiling, convention)
    return InferenceEstimate(w.model, w.video, s, counts, mult)


def _tiled_decode(w: Workload, tiling: VAETiling, convention: CountingConvention) -> tuple[Count, float]:
    """Every tile's decode (diffusers' ``tiled_decode``: tiles every stride, edge tiles cut short), as one count."""
    vae, lat = w.model.vae, w.latent
    sd = scheduled_decode(vae, (lat.frames, lat.height, lat.width), tiling.schedule(vae.temporal_compression))
    return scheduled_decode_count(sd, convention), 1.0
