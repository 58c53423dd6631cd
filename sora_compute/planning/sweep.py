"""Vectorised sweeps over models x resolutions x durations x fps x GPU types x GPU counts."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated

import numpy as np
import pandas as pd
from pydantic import Field

from sora_compute.evaluate.time import optimizer_row
from sora_compute.evaluate.time_grid import calls_seconds, forward_seconds, training_seconds
from sora_compute.finite import MAX_EXACT_INT, FiniteFloat
from sora_compute.flops import (
    MATMUL_ONLY,
    Count,
    CountingConvention,
    VideoGrid,
    count_dit,
    count_text_encoder,
    count_vae_decode,
    count_vae_encode,
    dit_ops,
)
from sora_compute.hardware import HardwareProfile, load_profile, resolve_gpu
from sora_compute.ledger.ops import Op
from sora_compute.planning.base import _Spec
from sora_compute.planning.inference import sampling_defaults
from sora_compute.planning.scenarios import Checkpointing
from sora_compute.planning.timing import AttentionKernelName, text_seconds
from sora_compute.planning.training_time import global_batch_for, micro_batch_for
from sora_compute.planning.yardstick import GPT3_PAPER_FLOPS
from sora_compute.presets import load_preset
from sora_compute.specs import MAX_FRAMES, MAX_SIDE_PX, ModelSpec

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
    mfu: float | None = Field(default=None, gt=0, le=1, description="None: time predicted by the time model")
    pue: float = Field(default=1.2, ge=1)
    checkpointing: Checkpointing = "none"
    attention_kernel: AttentionKernelName = "fa2"


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
    checkpointing: str = "none",
    attention_kernel: str = "fa2",
) -> pd.DataFrame:
    """One row per point of the grid models x resolutions x durations x fps x GPU types x GPU counts.

    Columns: video shape and tokens; per-video FLOPs of DiT forward, VAE encode/decode and text encode;
    training FLOPs for ``samples`` clips at that shape (3 x forward, latents pre-computed) and its multiple
    of GPT-3; inference FLOPs per video (``steps``, ``cfg``; by default each model's own sampling defaults, as
    ``estimate_inference``) and per minute; seconds per training sample and days, GPU-hours, cost and energy of that
    training on the cluster; latency per video on one GPU. Time is the per-op time model's prediction (training: the
    DiT's passes and ``checkpointing``'s recomputation at the ASSUMED micro- and global batches of
    ``planning/training_time.py``, split ideally over the GPUs (no layout search per row: `plan`/`estimate` apply the
    parallel efficiency of ``planning/scaling.py``); inference: as ``plan_serving``), the same seconds
    the scalar API gives; with ``mfu``, FLOPs / (GPUs x peak x MFU) (column ``time_basis``). ``fps`` None: each
    model's native frame rate. Durations snap to the nearest frame count each model accepts; a model named twice is
    swept once. Arguments are validated (``SweepQuery``): a bad one raises pydantic's ValidationError naming it."""
    q = SweepQuery(
        models=tuple(dict.fromkeys([models] if isinstance(models, str) else models)),
        resolutions=tuple(tuple(r) for r in resolutions),
        durations_s=tuple(durations_s), fps=None if fps is None else tuple([fps] if isinstance(fps, (int, float))
                                                                          else fps),
        gpus=tuple([gpus] if isinstance(gpus, str) else gpus),
        gpu_counts=tuple([gpu_counts] if isinstance(gpu_counts, int) else gpu_counts),
        samples=samples, steps=steps, cfg=cfg, mfu=mfu, pue=pue, checkpointing=checkpointing,
        attention_kernel=attention_kernel)
    specs = [load_profile(g) for g in q.gpus]  # the GPUs, resolved once
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


def _predicted(model: ModelSpec, grid: VideoGrid, tokens: np.ndarray, text_ops: Sequence[Op], decode: Count,
               branches: int, n_steps: int, profile: HardwareProfile, q: SweepQuery, convention: CountingConvention
               ) -> tuple[np.ndarray, np.ndarray]:
    """(training seconds per sample, inference seconds per video) on one GPU at every grid point, by the time model:
    the same rule and ops as ``training_time.sample_seconds`` and ``timing.predicted``, vectorised. ``branches``:
    DiT evaluations per step, batched (1 without guidance); ``decode``: the grid's decode count (its calls timed)."""
    kernel, size = q.attention_kernel, tokens.shape
    mb, gb = micro_batch_for(tokens), global_batch_for(tokens)
    ops = dit_ops(model, grid, batch=mb)
    passes = training_seconds(ops, profile, "bf16", kernel, q.checkpointing)
    params = sum(float(op.weights) * op.instances for op in ops)
    train = sum(np.broadcast_to(passes[p], size) for p in passes) / mb + optimizer_row(params, profile)[10] / gb
    dit = forward_seconds(count_dit(model, grid, batch=branches, convention=convention).timed_ops, profile, "bf16",
                          kernel)
    dec = calls_seconds(decode.timed_calls, profile, "bf16", kernel)  # each distinct tile call, gathered per point
    text = text_seconds(model, text_ops, profile, "bf16", kernel)  # each text encoder in its own dtype
    infer = (2.0 if branches > 1 else 1.0) * text + n_steps * np.broadcast_to(dit, size) + np.broadcast_to(dec, size)
    return train, infer


def _sweep_model(name: str, q: SweepQuery, specs: list[HardwareProfile], counts: list[int], res: np.ndarray,
                 convention: CountingConvention) -> pd.DataFrame:
    """The sweep rows of one model (see ``sweep``)."""
    preset = load_preset(name)
    model = preset.model
    fps_list = list(q.fps) if q.fps is not None else [preset.video.fps]
    default = sampling_defaults(preset)
    n_steps = q.steps if q.steps is not None else default.steps
    use_cfg = q.cfg if q.cfg is not None else default.cfg
    branches = default.guidance_branches if use_cfg else 1  # DiT evaluations per step
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
    decode = count_vae_decode(model, grid, convention=convention)  # under the official decode schedule
    dec = np.broadcast_to(decode.flops, w.shape)
    text_count = count_text_encoder(model, convention=convention)
    text = float(text_count.flops)
    train = q.samples * 3 * fwd
    infer = branches * n_steps * fwd + (2 if use_cfg else 1) * text + dec
    base = pd.DataFrame({"model": name, "width": w.astype(np.int64), "height": h.astype(np.int64), "fps": r,
                         "num_frames": frames.astype(np.int64), "duration_s": frames / r,
                         "video_tokens": np.broadcast_to(dit.shape["tokens"], w.shape),
                         "steps": n_steps, "cfg": use_cfg,
                         "dit_forward_flops": fwd, "vae_encode_flops": enc, "vae_decode_flops": dec,
                         "text_encode_flops": text, "train_flops": train, "gpt3_multiple": train / GPT3_PAPER_FLOPS,
                         "inference_flops_per_video": infer, "inference_flops_per_minute": infer * 60 * r / frames})
    # cross with GPU types and counts, vectorised; one GPU's seconds per training sample and per video first
    tokens = np.broadcast_to(dit.shape["tokens"], w.shape).astype(np.float64)
    per_gpu = []
    for p in specs:
        g = resolve_gpu(p)
        peak = g.peak_flops("bf16")
        if q.mfu is not None:
            train_s, infer_s = 3 * fwd / (peak * q.mfu), infer / (peak * q.mfu)
        else:
            train_s, infer_s = _predicted(model, grid, tokens, text_count.terms, decode, branches, n_steps, p, q,
                                         convention)
        per_gpu.append((g, peak, train_s, infer_s))
    n_pts, n_c = len(base), len(counts)
    out = base.loc[np.repeat(np.arange(n_pts), len(specs) * n_c)].reset_index(drop=True)
    # rows: point-major, then GPU type, then count
    col = {k: np.stack([np.repeat(np.broadcast_to(v, (n_pts,))[:, None], n_c, axis=1) for v in vals], axis=1).ravel()
           for k, vals in (("peak", [x[1] for x in per_gpu]), ("train_s", [x[2] for x in per_gpu]),
                           ("infer_s", [x[3] for x in per_gpu]),
                           ("price", [x[0].price_usd_per_hour for x in per_gpu]),
                           ("power", [x[0].tdp_w if x[0].tdp_w is not None else np.nan for x in per_gpu]))}
    n_ = np.tile(np.asarray(counts, dtype=np.float64), n_pts * len(specs))
    train_flops = out["train_flops"].to_numpy()
    if q.mfu is None:  # predicted: GPU-seconds split ideally over the GPUs
        seconds = q.samples * col["train_s"] / n_
        mfu: np.ndarray | float = train_flops / (n_ * seconds * col["peak"])
    else:  # the assumed MFU, as FLOPs / (GPUs x peak x MFU)
        seconds, mfu = train_flops / (n_ * col["peak"] * q.mfu), q.mfu
    gpu_hours = n_ * seconds / 3600
    out["gpu"] = np.tile(np.repeat([x[0].key for x in per_gpu], n_c), n_pts)
    out["gpus"] = n_.astype(np.int64)  # counts <= 2^53
    out["mfu"] = mfu
    out["time_basis"] = "predicted" if q.mfu is None else "assumed_mfu"  # ideal scaling (the CLI's sentence says)
    out["train_s_per_sample"] = col["train_s"]
    out["train_days"], out["gpu_hours"] = seconds / 86400, gpu_hours
    out["cost_usd"] = gpu_hours * col["price"]
    out["energy_mwh"] = gpu_hours * col["power"] * q.pue / 1e6
    out["latency_s_1gpu"] = col["infer_s"]
    return out
