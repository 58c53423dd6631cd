"""Analytic per-layer operation counts of the reference video DiT, 3D VAE and text encoders.

Units: every count is in MACs (multiply-accumulates; fvcore's "flops"); ``Count.flops`` is
2 x MACs. Scalar video shapes give exact Python ints; numpy arrays of widths, heights and frame
counts (``VideoGrid``) give float64 arrays, for sweeps.

    >>> import sora_compute as sc
    >>> c = sc.count_dit("dit-xl-2")          # native 256x256 image
    >>> round(c.macs / 1e9, 2)                # paper Table 4: 118.64 Gflops (MACs)
    118.64
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import Any

import numpy as np
import pandas as pd

from sora_compute.evaluate.flops import Count, Term, count_calls, count_ops
from sora_compute.flops.vae_tiles import spatially_tiled, tiled_decode_calls, tiled_encode_calls
from sora_compute.ledger.dit import DiTShape, dit_ledger
from sora_compute.ledger.formulas import FVCORE, MATMUL_ONLY, CountingConvention, Number, as_number
from sora_compute.ledger.ops import Op
from sora_compute.ledger.text_encoder import text_encoder_ledger
from sora_compute.ledger.vae import vae_decoder_ledger, vae_encoder_ledger
from sora_compute.ledger.vae_schedule import scheduled_decode
from sora_compute.memory.vae_schedule import encode_schedule_count, scheduled_decode_count
from sora_compute.presets import Preset, load_preset
from sora_compute.specs import ModelSpec, TextEncoderSpec, VideoShapeError, VideoSpec, Workload
from sora_compute.specs.vae import VAESpec
from sora_compute.specs.vae.schedule import DecodeSchedule, official_decode_schedule, official_encode_schedule

__all__ = [
    "Count",
    "Term",
    "CountingConvention",
    "FVCORE",
    "MATMUL_ONLY",
    "VideoGrid",
    "latent_grid",
    "count_dit",
    "count_vae_encode",
    "count_vae_decode",
    "count_text_encoder",
    "text_encoder_groups",
    "count_video",
    "dit_ledger",
    "text_encoder_ledger",
    "dit_ops",
    "text_encoder_terms",
]


@dataclass(frozen=True)
class VideoGrid:
    """Video shapes for a vectorised count: broadcastable arrays of width, height (pixels) and frames."""

    width: Any
    height: Any
    num_frames: Any


@dataclass(frozen=True)
class LatentGrid:
    """Latent frames/height/width and the DiT token grid (ints, or float64 arrays)."""

    frames: Number
    height: Number
    width: Number
    tokens_t: Number
    tokens_h: Number
    tokens_w: Number

    @property
    def tokens(self) -> Number:
        return self.tokens_t * self.tokens_h * self.tokens_w


Model = ModelSpec | Preset | str | Workload  # what the count functions take: a Workload carries its video


def _resolve(model: Model) -> tuple[ModelSpec, VideoSpec | None]:
    if isinstance(model, str):
        model = load_preset(model)
    if isinstance(model, Preset | Workload):
        return model.model, model.video
    return model, None


def _grid(workload: Workload) -> LatentGrid:
    ls = workload.latent
    return LatentGrid(ls.frames, ls.height, ls.width, ls.tokens_t, ls.tokens_h, ls.tokens_w)


def latent_grid(model: ModelSpec, video: VideoSpec | VideoGrid) -> LatentGrid:
    """Latent and token grid of ``video``; raises VideoShapeError (naming the dimension) if any shape misfits."""
    if isinstance(video, VideoSpec):
        return _grid(Workload.of(model, video))
    w, h, f = (np.asarray(v, dtype=np.float64) for v in (video.width, video.height, video.num_frames))
    vae, (pt, ph, pw) = model.vae, model.dit.patch_size
    s = vae.spatial_compression
    for name, arr, step in (("width", w, s * pw), ("height", h, s * ph)):
        bad = (arr <= 0) | (arr % step != 0)
        if bad.any():
            raise VideoShapeError(f"{name}={arr[bad].flat[0]:g} is not a positive multiple of "
                                  f"spatial compression x patch = {step}")
    frames, bad, rule = vae.frame_grid(f)  # the VAE's own rule (a padding or chunked VAE has its own)
    if bad.any():
        raise VideoShapeError(f"num_frames={f[bad].flat[0]:g} does not fit the VAE: use {rule}")
    if (frames % pt != 0).any():
        raise VideoShapeError(f"latent frames must be divisible by temporal patch {pt}")
    lh, lw = h // s, w // s
    return LatentGrid(frames, lh, lw, frames // pt, lh // ph, lw // pw)


def _video(model: Model, video: VideoSpec | VideoGrid | None) -> tuple[ModelSpec, Any, LatentGrid]:
    """The model, the video (scalar or grid) and its latent grid, computed once here (a Workload's own grid)."""
    if isinstance(model, Workload) or isinstance(video, VideoSpec | None):
        w = _workload(model, video)  # type: ignore[arg-type]
        return w.model, w.video, _grid(w)
    spec, _ = _resolve(model)
    return spec, video, latent_grid(spec, video)


def _workload(model: Model, video: VideoSpec | None) -> Workload:
    if isinstance(model, Workload):
        if video is not None and video != model.video:
            raise ValueError("give either a Workload or a video shape, not both")
        return model
    spec, native = _resolve(model)
    video = video if video is not None else native
    if video is None:
        raise ValueError("no video shape given and the model is not a preset with a native shape")
    return Workload.of(spec, video)


def _dit_ops(spec: ModelSpec, g: LatentGrid, batch: int, text_tokens: int | None) -> list[Op]:
    L = text_tokens if text_tokens is not None else spec.num_text_tokens
    shape = DiTShape(as_number(batch), as_number(g.tokens_t), as_number(g.tokens_h), as_number(g.tokens_w),
                     as_number(L) if spec.dit.text_conditioned else 0)
    return dit_ledger(spec.dit, shape)


def dit_ops(
    model: Model,
    video: VideoSpec | VideoGrid | None = None,
    *,
    batch: int = 1,
    text_tokens: int | None = None,
) -> list[Op]:
    """The ledger of one DiT forward on ``batch`` videos of shape ``video``: every op, elementwise work included
    (what the time and traffic evaluators read; ``count_dit`` keeps the counted ones)."""
    spec, _, g = _video(model, video)
    return _dit_ops(spec, g, batch, text_tokens)


def count_dit(
    model: Model,
    video: VideoSpec | VideoGrid | None = None,
    *,
    batch: int = 1,
    text_tokens: int | None = None,
    convention: CountingConvention = FVCORE,
) -> Count:
    """MACs of one DiT forward (one denoising step) on ``batch`` videos of shape ``video``."""
    spec, _, g = _video(model, video)
    L = text_tokens if text_tokens is not None else spec.num_text_tokens
    return count_ops("dit_forward", _dit_ops(spec, g, batch, text_tokens), convention,
                     {"tokens": g.tokens, "text_tokens": L if spec.dit.text_conditioned else 0, "batch": batch})


def count_vae_encode(model: Model, video: VideoSpec | VideoGrid | None = None, *,
                     batch: int = 1, convention: CountingConvention = FVCORE,
                     schedule: DecodeSchedule | None = None) -> Count:
    """MACs of encoding ``batch`` videos to latents (the encoder; sampling from the posterior is free) under
    ``schedule``: None, the official encode schedule of the model (``official_encode_schedule``: Wan's chunks,
    CogVideoX's frame batches, Open-Sora 2.0's overlapping spatial tiles), every encoder call counted
    (``encode_schedule_count``, the schedule training memory walks). A grid of shapes (vectorised sweeps) is counted
    under the same schedule: spatial tiles summed per op (``tiled_encode_calls``), chunks and frame batches as the
    whole clip (they compute exactly its convolutions), so each point equals its single-shape count."""
    spec, video, _ = _video(model, video)  # validates the shape
    shape = (as_number(video.num_frames), as_number(video.height), as_number(video.width))
    dims = {"frames": video.num_frames, "height": video.height, "width": video.width, "batch": batch}
    if schedule is None:
        schedule = official_encode_schedule(spec.vae.family, spec.name)
    if not isinstance(video, VideoSpec) and spatially_tiled(schedule):
        return count_calls("vae_encode", [tiled_encode_calls(spec.vae, *shape, schedule, as_number(batch))],
                           convention, dims)
    if not isinstance(video, VideoSpec):
        return count_ops("vae_encode", vae_encoder_ledger(spec.vae, shape, as_number(batch)), convention, dims)
    if not (schedule.mode == "whole" and schedule.frame_batch is None):
        if int(batch) != batch:
            raise ValueError(f"batch: a scheduled VAE encode counts whole clips, got {batch}")
        count = encode_schedule_count(spec.vae, (int(video.num_frames), int(video.height), int(video.width)),
                                      schedule, int(batch), convention)
        return replace(count, shape={**dims, **count.shape})
    return count_ops("vae_encode", vae_encoder_ledger(spec.vae, shape, as_number(batch)), convention, dims)


def count_vae_decode(model: Model, video: VideoSpec | VideoGrid | None = None, *,
                     batch: int = 1, convention: CountingConvention = FVCORE,
                     schedule: DecodeSchedule | None = None) -> Count:
    """MACs of decoding ``batch`` latents back to videos of shape ``video`` under ``schedule``: None, the official
    decode schedule of the model (``official_decode_schedule``: Open-Sora 2.0's and HunyuanVideo's spatial and
    temporal tiles, CogVideoX's spatial tiles in frame batches), the one memory peaks walk. A tiled schedule counts
    every decoder call (``scheduled_decode_count``, overlapping tiles recomputed); a grid of shapes gathers the same
    calls per point (``tiled_decode_calls``), so each point equals its single-shape count. Either is a Count of
    weighted calls: the time model prices each distinct call once, at its shape (``Count.timed_calls``). Wan's chunked
    decode computes the whole clip's convolutions: counted, and timed, as the whole clip."""
    spec, video, g = _video(model, video)
    shape = (as_number(g.frames), as_number(g.height), as_number(g.width))
    dims = {"latent_frames": g.frames, "latent_height": g.height, "latent_width": g.width, "batch": batch}
    if schedule is None:
        schedule = official_decode_schedule(spec.vae.family, spec.name)
    if schedule.mode == "tiled" and not isinstance(video, VideoSpec):
        return count_calls("vae_decode", [tiled_decode_calls(spec.vae, *shape, schedule, as_number(batch))],
                           convention, dims)
    if schedule.mode == "tiled":
        if int(batch) != batch:
            raise ValueError(f"batch: a tiled VAE decode counts whole latents, got {batch}")
        count = _scheduled_decode_count(spec.vae, (int(g.frames), int(g.height), int(g.width)), schedule, int(batch),
                                        convention)
        return replace(count, shape={**dims, **count.shape})
    ops = vae_decoder_ledger(spec.vae, shape, as_number(batch), num_frames=as_number(video.num_frames))
    return count_ops("vae_decode", ops, convention, dims)


@lru_cache(maxsize=1024)
def _scheduled_decode_count(vae: VAESpec, latent: tuple[int, int, int], schedule: DecodeSchedule, batch: int,
                            convention: CountingConvention) -> Count:
    """``scheduled_decode_count`` of one latent, memoised (specs and schedules are frozen; a Count is immutable):
    estimates, serving plans and validate count the same few tiled decodes many times."""
    return scheduled_decode_count(scheduled_decode(vae, latent, schedule, batch), convention)


def count_text_encoder(model: Model, *, batch: int = 1, text_tokens: int | None = None,
                       convention: CountingConvention = FVCORE) -> Count:
    """MACs of encoding ``batch`` prompts of ``text_tokens`` tokens (0 terms for class-conditioned models)."""
    spec, _ = _resolve(model)
    if not spec.text_encoders:
        return Count("text_encode", (), convention, {"text_tokens": 0, "batch": batch})
    L = text_tokens if text_tokens is not None else spec.num_text_tokens
    tokens = spec.text_encoder_tokens(L)  # the token encoder also runs over the prompt template, if any
    terms = text_encoder_terms(spec.text_encoders[0], as_number(tokens[0]), as_number(batch), convention)
    extras = zip(spec.text_encoders[1:], tokens[1:], strict=True)
    for i, (extra, n_tok) in enumerate(extras, start=2):
        terms += [replace(t, path=f"text_encoder_{i}.{t.path}")
                  for t in text_encoder_terms(extra, as_number(n_tok), as_number(batch), convention)]
    return Count("text_encode", tuple(terms), convention, {"text_tokens": L, "batch": batch})


def text_encoder_groups(ops: Iterable[Op], encoders: int) -> list[list[Op]]:
    """``count_text_encoder``'s ops split back per encoder, in ``ModelSpec.text_encoders`` order (the extras' paths
    start ``text_encoder_2.``, ``text_encoder_3.``, ...): the time model runs each encoder in its own dtype."""
    groups: list[list[Op]] = [[] for _ in range(max(encoders, 1))]
    for op in ops:
        head = op.path.split(".", 1)[0]
        i = int(head.removeprefix("text_encoder_")) - 1 if head.startswith("text_encoder_") else 0
        groups[i].append(op)
    return groups


def text_encoder_terms(spec: TextEncoderSpec, tokens: Number, batch: Number = 1,
                       convention: CountingConvention = FVCORE) -> list[Term]:
    """The counted ops of one encoder forward over ``tokens`` tokens: its ledger (``ledger/text_encoder.py``) under
    ``convention``, elementwise work, lookups and weight-only records left out."""
    return list(count_ops("text_encode", text_encoder_ledger(spec, tokens, batch, convention), convention).terms)


def count_video(model: Model, video: VideoSpec | None = None, *, batch: int = 1,
                convention: CountingConvention = FVCORE) -> pd.DataFrame:
    """Per-component summary for one video shape: MACs, FLOPs (2 x MACs), tokens; one row each for
    text encode, VAE encode, one DiT forward and VAE decode."""
    w = _workload(model, video)  # the latent shape, computed once
    counts = [
        count_text_encoder(w, batch=batch, convention=convention),
        count_vae_encode(w, batch=batch, convention=convention),
        count_dit(w, batch=batch, convention=convention),
        count_vae_decode(w, batch=batch, convention=convention),
    ]
    return pd.DataFrame({
        "component": [c.component for c in counts],
        "macs": pd.Series([c.macs for c in counts], dtype=object),
        "flops": pd.Series([c.flops for c in counts], dtype=object),
        "gflops": [float(c.flops) / 1e9 for c in counts],
    })
