"""How a pipeline runs a VAE decoder over a clip (``DecodeSchedule``): the whole latent at once, overlapping tiles in
space and time (diffusers' ``tiled_decode`` / ``_temporal_tiled_decode``), or latent-frame chunks with a causal
feature cache (Wan2.1's ``WanVAE_.decode``); and each family's official default (``sora_compute/data/
vae_schedules.yaml``, with its source). Sizes are in pixels and pixel frames, as the pipelines configure them.
The same record says how an encoder runs (``official_encode_schedule``): the whole clip, or chunked (Wan2.1's
``WanVAE_.encode``: the first frame, then ``chunk_latent_frames`` x temporal-compression frames per call).
"""

from __future__ import annotations

from functools import cache
from importlib import resources
from typing import Literal

import yaml
from pydantic import Field, model_validator

from sora_compute.specs.base import _Spec

__all__ = ["DecodeSchedule", "ScheduleMode", "official_decode_schedule", "decode_schedule", "official_encode_schedule",
           "encode_schedule"]

ScheduleMode = Literal["whole", "tiled", "chunked"]


class DecodeSchedule(_Spec):
    """``whole``: one decoder call on the whole latent (families that chunk inside their decoder, Open-Sora 1.2,
    Step-Video and WF-VAE, do so here). ``tiled``: spatial tiles of ``tile_px`` (height, width) pixels every
    ``stride_px`` pixels, and/or temporal tiles of ``tile_frames`` video frames every ``stride_frames`` (diffusers:
    ``tile_sample_min_*`` and ``tile_sample_stride_*``); tiles overlap by tile - stride and are blended.
    ``chunked``: ``chunk_latent_frames`` latent frames per decoder call, each causal conv reading its cache of the
    previous chunk's last frames (Wan2.1). ``frame_batch`` (whole or tiled): the latent (each tile's) decoded
    ``frame_batch`` latent frames per call, the causal convs' caches carried from call to call and the outputs
    concatenated (diffusers AutoencoderKLCogVideoX ``use_framewise_decoding``, ``num_latent_frames_batch_size``)."""

    mode: ScheduleMode = "whole"
    tile_px: tuple[int, int] | None = Field(default=None, description="spatial tile (height, width), pixels")
    stride_px: tuple[int, int] | None = Field(default=None, description="spatial stride (height, width), pixels")
    tile_frames: int | None = Field(default=None, gt=0, description="temporal tile, video frames")
    stride_frames: int | None = Field(default=None, gt=0, description="temporal stride, video frames")
    chunk_latent_frames: int = Field(default=1, gt=0, description="latent frames per chunk (chunked)")
    frame_batch: int | None = Field(default=None, gt=0, description="whole / tiled: latent frames per decoder call, "
                                    "each causal conv fed the previous call's last frames (CogVideoX's conv_cache)")
    source: str = Field(default="", description="where the official default comes from")

    @model_validator(mode="after")
    def _check(self) -> DecodeSchedule:
        for name in ("tile_px", "stride_px"):
            v = getattr(self, name)
            if v is not None and min(v) <= 0:
                raise ValueError(f"{name}: expected positive (height, width), got {v}")
        if (self.tile_px is None) != (self.stride_px is None):
            raise ValueError("give tile_px and stride_px together")
        if (self.tile_frames is None) != (self.stride_frames is None):
            raise ValueError("give tile_frames and stride_frames together")
        if self.tile_px is not None and self.stride_px is not None and any(
                s > t for s, t in zip(self.stride_px, self.tile_px, strict=True)):
            raise ValueError(f"stride_px {self.stride_px} must not exceed tile_px {self.tile_px}")
        if self.tile_frames is not None and self.stride_frames is not None and self.stride_frames > self.tile_frames:
            raise ValueError(f"stride_frames={self.stride_frames} must not exceed tile_frames={self.tile_frames}")
        if self.mode == "tiled" and self.tile_px is None and self.tile_frames is None:
            raise ValueError("mode='tiled' needs tile_px/stride_px or tile_frames/stride_frames")
        if self.frame_batch is not None and (self.mode == "chunked" or self.tile_frames is not None):
            raise ValueError("frame_batch: frame batches of a whole latent or of spatial tiles only (not with "
                             "chunked decoding or temporal tiles)")
        return self

    def label(self, encode: bool = False) -> str:
        """A short description: ``whole``, ``tiled 256x256 px / 192 + 16 frames / 12``, ``chunked 1 latent frame``;
        ``encode``: an encode schedule, whose ``frame_batch`` counts video frames."""
        if self.mode == "chunked":
            n = self.chunk_latent_frames
            return f"chunked, {n} latent frame{'s' if n > 1 else ''} per call (causal cache)"
        unit = "video" if encode else "latent"
        batches = (f", {self.frame_batch} {unit} frame{'s' if self.frame_batch > 1 else ''} per call (conv cache)"
                   if self.frame_batch else "")
        if self.mode == "whole":
            return "whole clip" + batches
        parts = []
        if self.tile_px is not None and self.stride_px is not None:
            parts.append(f"{self.tile_px[0]}x{self.tile_px[1]} px tiles every {self.stride_px[0]}x{self.stride_px[1]}")
        if self.tile_frames is not None:
            parts.append(f"{self.tile_frames}-frame tiles every {self.stride_frames}")
        return "tiled, " + ", ".join(parts) + batches


@cache
def _defaults() -> dict[str, dict[str, DecodeSchedule]]:
    text = resources.files("sora_compute.data").joinpath("vae_schedules.yaml").read_text()
    return {section: {k: DecodeSchedule.model_validate(v) for k, v in entries.items()}
            for section, entries in yaml.safe_load(text).items()}


def official_decode_schedule(family: str, preset: str | None = None) -> DecodeSchedule:
    """The decode schedule the preset's (else the family's) official pipeline runs by default; the whole clip where
    none is recorded."""
    d = _defaults()
    if preset is not None and preset in d["presets"]:
        return d["presets"][preset]
    return d["families"].get(family, DecodeSchedule(source="no official schedule recorded: the whole clip"))


def decode_schedule(mode: str, family: str, preset: str | None = None) -> DecodeSchedule:
    """``official`` (the pipeline's default), ``whole``, or ``tiled`` / ``chunked``: the official schedule when it is
    of that mode, else the fallback of the data file (diffusers' HunyuanVideo tiles; Wan2.1's one-frame chunks)."""
    official = official_decode_schedule(family, preset)
    if mode == "official" or mode == official.mode:
        return official
    if mode == "whole":
        return DecodeSchedule(source="the whole clip in one decoder call")
    if mode in ("tiled", "chunked"):
        return _defaults()["fallback"][mode]
    raise ValueError(f"VAE decode schedule: expected official, whole, tiled or chunked, got {mode!r}")


def official_encode_schedule(family: str, preset: str | None = None) -> DecodeSchedule:
    """The encode schedule the family's official pipeline runs by default (``encode_families`` in the data file;
    chunked: ``chunk_latent_frames`` latent frames, each temporal-compression video frames, per encoder call after the
    first frame; ``frame_batch``: video frames per encoder call; tiled: spatial tiles only); the preset's own
    (``encode_presets``) first; the whole clip where none is recorded."""
    if preset is not None and preset in _defaults()["encode_presets"]:
        return _defaults()["encode_presets"][preset]
    return _defaults()["encode_families"].get(
        family, DecodeSchedule(source="no official encode schedule recorded: the whole clip in one encoder call"))


def encode_schedule(mode: str, family: str, preset: str | None = None) -> DecodeSchedule:
    """``official`` (the pipeline's default), ``whole`` (one encoder call), or ``chunked`` (Wan2.1's chunks of one
    latent frame)."""
    official = official_encode_schedule(family, preset)
    if mode == "official" or (mode == official.mode and official.frame_batch is None):
        return official
    if mode == "whole":
        return DecodeSchedule(source="the whole clip in one encoder call")
    if mode == "chunked":
        return _defaults()["fallback"]["chunked"]
    raise ValueError(f"VAE encode schedule: expected official, whole or chunked, got {mode!r}")
