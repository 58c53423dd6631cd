"""Vectorised sweeps over models x resolutions x durations x fps x GPU types x GPU counts."""

from __future__ import annotations

from typing import Annotated

import numpy as np
import pandas as pd
from pydantic import Field

from sora_compute.finite import MAX_EXACT_INT, FiniteFloat
from sora_compute.flops import (
    MATMUL_ONLY,
    CountingConvention,
    VideoGrid,
    count_dit,
    count_text_encoder,
    count_vae_decode,
    count_vae_encode,
)
from sora_compute.hardware import GPUSpec, load_gpu
from sora_compute.planning.base import _Spec
from sora_compute.planning.inference import sampling_defaults
from sora_compute.planning.yardstick import GPT3_PAPER_FLOPS
from sora_compute.presets import load_preset
from sora_compute.specs import MAX_FRAMES, MAX_SIDE_PX

# ------------------------------------------------------------------------------------------------
# Vectorised sweeps
# ------------------------------------------------------------------------------------------------

_Side = Annotated[int, Field(gt=0, le=MAX_SIDE_PX)]
_Count = Annotated[int, Field(gt=0, le=MAX_EXACT_INT)]
_Positive = Annotated[FiniteFloat, Field(gt=0)]  # finite even outside SPEC_CONFIG models


class SweepQuery(_Spec):
    """The arguments of ``sweep``, validated: names non-empty, numbers finite and positive, counts in range."""

    models: tuple[Annotated[str, Field(min_length=1)], ...] = Field(min_length=1)
    resolutions: tuple[tuple[_Side, _Side], ...] = Field(min_length=1, description="(width, height) pixels")
    durations_s: tuple[_Positive, ...] = Field(min_length=1)
    fps: tuple[Annotated[float, Field(gt=0, le=1e6)], ...] | None = Field(
        default=None, description="None: each model's native fps")
    gpus: tuple[Annotated[str, Field(min_length=1)], ...] = Field(min_length=1)
    gpu_counts: tuple[_Count, ...] = Field(min_length=1)
    samples: _Positive = 1e7
    steps: _Count | None = Field(default=None, description="None: each model's sampling default")
    cfg: bool | None = Field(default=None, description="None: each model's sampling default")
    mfu: float | None = Field(default=None, gt=0, le=1)
    pue: float = Field(default=1.2, ge=1)


def sweep(
    models: list[str] | str,
    resolutions: list[tuple[int, int]],
    durations_s: list[float],
    fps: list[float] | float | None = None,
    gpus: list[str] | str = "h100-sxm",
    gpu_counts: list[int] | int = 1024,
    samples: float = 1e7,
    steps: int | None = None,
    cfg: bool | None = None,
    mfu: float | None = None,
    pue: float = 1.2,
    convention: CountingConvention = MATMUL_ONLY,
) -> pd.DataFrame:
    """One row per point of the grid models x resolutions x durations x fps x GPU types x GPU counts.

    Columns: video shape and tokens; per-video FLOPs of DiT forward, VAE encode/decode and text encode;
    training FLOPs for ``samples`` clips at that shape (3 x forward, latents pre-computed) and its multiple
    of GPT-3; inference FLOPs per video (``steps``, ``cfg``; by default each model's own sampling defaults, as
    ``estimate_inference``) and per minute; days, GPU-hours, cost and energy of that training on the cluster;
    compute-bound latency per video on one GPU. ``fps`` None: each model's native frame rate.
    Durations snap to the nearest frame count each model accepts; a model named twice is swept once.
    Arguments are validated (``SweepQuery``): a bad one raises pydantic's ValidationError naming it."""
    q = SweepQuery(
        models=tuple(dict.fromkeys([models] if isinstance(models, str) else models)),
        resolutions=tuple(tuple(r) for r in resolutions),
        durations_s=tuple(durations_s), fps=None if fps is None else tuple([fps] if isinstance(fps, (int, float))
                                                                          else fps),
        gpus=tuple([gpus] if isinstance(gpus, str) else gpus),
        gpu_counts=tuple([gpu_counts] if isinstance(gpu_counts, int) else gpu_counts),
        samples=samples, steps=steps, cfg=cfg, mfu=mfu, pue=pue)
    specs = [load_gpu(g) for g in q.gpus]
    counts = list(q.gpu_counts)
    res = np.asarray(q.resolutions, dtype=np.float64).reshape(-1, 2)
    with np.errstate(over="ignore", invalid="ignore"):
        out = pd.concat([_sweep_model(name, q, specs, counts, res, convention) for name in q.models],
                        ignore_index=True)
    for col in out.columns:
        if out[col].dtype.kind == "f" and np.isinf(out[col].to_numpy()).any():
            raise ValueError(f"{col}: exceeds the float64 range at these inputs (samples, sizes or durations too "
                             "large)")
    return out


def _sweep_model(name: str, q: SweepQuery, specs: list[GPUSpec], counts: list[int], res: np.ndarray,
                 convention: CountingConvention) -> pd.DataFrame:
    """The sweep rows of one model (see ``sweep``)."""
    preset = load_preset(name)
    model = preset.model
    fps_list = list(q.fps) if q.fps is not None else [preset.video.fps]
    default = sampling_defaults(preset)
    n_steps = q.steps if q.steps is not None else default.steps
    use_cfg = q.cfg if q.cfg is not None else default.cfg
    ri, di, fi = (a.ravel() for a in np.meshgrid(np.arange(len(res)), np.arange(len(q.durations_s)),
                                                  np.arange(len(fps_list)), indexing="ij"))
    w, h = res[ri, 0], res[ri, 1]
    d, r = np.asarray(q.durations_s, dtype=np.float64)[di], np.asarray(fps_list, dtype=np.float64)[fi]
    raw_frames = np.maximum(1, np.round(d * r))
    if not np.all(raw_frames < MAX_FRAMES):  # guard the int64 casts below
        raise ValueError(f"durations_s: a clip of more than {MAX_FRAMES:,} frames (duration x fps) is too long")
    frames = model.snap_frames(raw_frames)
    grid = VideoGrid(w, h, frames)
    dit = count_dit(model, grid, convention=convention)
    fwd = np.broadcast_to(dit.flops, w.shape)
    enc = np.broadcast_to(count_vae_encode(model, grid, convention=convention).flops, w.shape)
    dec = np.broadcast_to(count_vae_decode(model, grid, convention=convention).flops, w.shape)
    text = float(count_text_encoder(model, convention=convention).flops)
    train = q.samples * 3 * fwd
    infer = (2 if use_cfg else 1) * (n_steps * fwd + text) + dec
    base = pd.DataFrame({"model": name, "width": w.astype(np.int64), "height": h.astype(np.int64), "fps": r,
                         "num_frames": frames.astype(np.int64), "duration_s": frames / r,
                         "video_tokens": np.broadcast_to(dit.shape["tokens"], w.shape),
                         "steps": n_steps, "cfg": use_cfg,
                         "dit_forward_flops": fwd, "vae_encode_flops": enc, "vae_decode_flops": dec,
                         "text_encode_flops": text, "train_flops": train, "gpt3_multiple": train / GPT3_PAPER_FLOPS,
                         "inference_flops_per_video": infer, "inference_flops_per_minute": infer * 60 * r / frames})
    # cross with GPU types and counts, vectorised
    g_key = np.repeat([g.key for g in specs], len(counts))
    g_peak = np.repeat([g.bf16_tflops * 1e12 for g in specs], len(counts))
    g_mfu = np.repeat([q.mfu if q.mfu is not None else g.default_mfu for g in specs], len(counts))
    g_price = np.repeat([g.price_usd_per_hour for g in specs], len(counts))
    g_power = np.repeat([g.tdp_w if g.tdp_w is not None else np.nan for g in specs], len(counts))
    g_n = np.tile(np.asarray(counts, dtype=np.float64), len(specs))
    n_pts, n_hw = len(base), len(g_key)
    out = base.loc[base.index.repeat(n_hw)].reset_index(drop=True)
    peak, m_, n_ = (np.tile(a, n_pts) for a in (g_peak, g_mfu, g_n))
    seconds = out["train_flops"].to_numpy() / (n_ * peak * m_)
    gpu_hours = n_ * seconds / 3600
    out["gpu"], out["gpus"], out["mfu"] = np.tile(g_key, n_pts), n_.astype(np.int64), m_  # counts <= 2^53
    out["train_days"], out["gpu_hours"] = seconds / 86400, gpu_hours
    out["cost_usd"] = gpu_hours * np.tile(g_price, n_pts)
    out["energy_mwh"] = gpu_hours * np.tile(g_power, n_pts) * q.pue / 1e6
    out["latency_s_1gpu"] = out["inference_flops_per_video"].to_numpy() / (peak * m_)
    return out
