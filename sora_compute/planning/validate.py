"""Predicted against published: each timing in the validation file (``data/validation.yaml``) next to what the time
model predicts for the same model, GPU, shape and sampling, with the error. Nothing here feeds back into a parameter:
a large error is a finding (its ``note`` says what the model leaves out), never a reason to tune.

Covered now: inference timings (whole videos and single denoising steps) of presets on profiled GPUs. A run on
several GPUs is predicted as the one-GPU time split ideally, flagged, and kept out of the single-GPU mean; training
entries of presets are timed by the layout search (``validate_training.py``). The video shape is snapped to the
model's grid when the published one does not fit it (the note says so).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd

from sora_compute.hardware.profiles import UnknownProfileError, load_profile
from sora_compute.planning.inference import InferenceSettings, estimate_inference, sampling_defaults
from sora_compute.planning.timing import inference_times
from sora_compute.planning.validate_training import training_row
from sora_compute.planning.validation import ValidationEntry, ValidationFile, load_validation
from sora_compute.presets import load_preset, preset_names
from sora_compute.specs import ModelSpec, VideoSpec

__all__ = ["ValidationRun", "validate", "snap_video"]


def snap_video(model: ModelSpec, width: int, height: int, frames: int) -> tuple[VideoSpec, str]:
    """The nearest shape ``model`` takes (width and height to multiples of VAE compression x patch, frames to the
    nearest count its VAE and patch accept) and a note naming what changed ('' when nothing did)."""
    sw, sh = model.grid_px
    W, H = max(sw, round(width / sw) * sw), max(sh, round(height / sh) * sh)
    F = int(model.snap_frames(frames))
    changed = [f"{width}x{height} -> {W}x{H}" if (width, height) != (W, H) else "",
               f"{frames} -> {F} frames" if frames != F else ""]
    return VideoSpec(width=W, height=H, num_frames=F), "; ".join(c for c in changed if c)


@dataclass(frozen=True)
class ValidationRun:
    """Rows of predicted vs published (``table``) and the single-GPU inference mean |error|."""

    table: pd.DataFrame
    attention_kernel: str

    @property
    def compared(self) -> pd.DataFrame:
        """Single-GPU inference rows with a prediction."""
        t = self.table
        return t[(t["status"] == "compared") & (t["gpus"] == 1)]

    @property
    def mean_abs_error(self) -> float:
        c = self.compared
        return float(c["error"].abs().mean()) if len(c) else float("nan")

    @property
    def mean_error(self) -> float:
        c = self.compared
        return float(c["error"].mean()) if len(c) else float("nan")

    @property
    def mfu_mean_abs_error(self) -> float:
        """The same rows at the GPU's planning MFU (FLOPs / (peak x MFU)): the yardstick the time model replaces."""
        c = self.compared
        return float(c["mfu_error"].abs().mean()) if len(c) else math.nan


def _settings(e: ValidationEntry, preset: str) -> InferenceSettings:
    base = sampling_defaults(preset)
    return base.model_copy(update={k: v for k, v in (("steps", e.steps), ("cfg", e.cfg)) if v is not None})


def _row(e: ValidationEntry, kernel: str) -> dict:
    row: dict = {"id": e.id, "model": e.model, "gpu": e.gpu, "gpus": e.gpus, "scope": e.scope,
                 "published_s": e.seconds, "predicted_s": float("nan"), "error": float("nan"),
                 "mfu_s": float("nan"), "mfu_error": float("nan"), "status": "", "note": "", "source": e.source}
    if e.kind == "inference" and e.seconds is None:
        return {**row, "status": "no timing", "note": "a memory figure (memory validation comes with issue 16)"}
    if e.model not in preset_names():
        return {**row, "status": "no preset", "note": f"{e.model} is not a preset"}
    try:
        profile = load_profile(e.gpu)
    except UnknownProfileError:
        return {**row, "status": "no profile", "note": f"{e.gpu} has no hardware profile"}
    if e.resolution is None or e.frames is None:  # the entry's own check makes inference entries state them
        return {**row, "status": "not modelled", "note": "training: the source states no video shape"}
    preset = load_preset(e.model)
    video, snapped = snap_video(preset.model, *e.resolution, e.frames)
    if e.kind == "training":
        return training_row(e, row, preset.model, video, profile, [f"snapped: {snapped}"] if snapped else [], kernel)
    assert e.seconds is not None  # an inference entry without a timing returned above
    settings = _settings(e, e.model)
    if e.dtype == "fp8":
        return {**row, "status": "not modelled", "note": "fp8 GEMMs with bf16 attention: one dtype per run here"}
    precision = e.dtype if e.dtype in ("bf16", "fp16") else "bf16"
    estimate = estimate_inference(preset, video, settings)
    try:
        times = inference_times(estimate, profile, precision, kernel)
    except ValueError as err:  # e.g. no kernel-table points for this kernel on this GPU
        return {**row, "status": "not modelled", "note": str(err)}
    # the old yardstick beside it: FLOPs / (peak x the GPU's planning MFU)
    # (a profile file without a planning MFU has no such yardstick: NaN, shown as missing)
    assumed = profile.peak_flops(precision) * (profile.default_mfu if profile.default_mfu is not None else math.nan)
    if e.scope == "denoise_step":  # one step: the DiT evaluations of one step (the CFG pair as it runs)
        predicted = float(times.loc[times["component"] == "dit", "seconds"].sum()) / settings.steps
        at_mfu = estimate.flops_by_component["dit"] / settings.steps / assumed
    else:
        predicted = float(times["seconds"].sum())
        at_mfu = estimate.flops_per_video / assumed
    predicted, at_mfu = predicted / e.gpus, at_mfu / e.gpus
    notes = [f"{video.width}x{video.height}x{video.num_frames}, {settings.steps} steps, "
             f"{'CFG pair' if settings.cfg else 'no CFG pair'}, {precision}"]
    if snapped:
        notes.append(f"snapped: {snapped}")
    if e.gpus > 1:
        notes.append(f"{e.gpus} GPUs: ideal split (no communication model yet)")
    if e.approx:
        notes.append("published figure approximate")
    return {**row, "predicted_s": predicted, "error": predicted / e.seconds - 1, "mfu_s": at_mfu,
            "mfu_error": at_mfu / e.seconds - 1, "status": "compared", "note": "; ".join(notes)}


def validate(file: ValidationFile | None = None, attention_kernel: str = "fa2") -> ValidationRun:
    """Every entry of the validation file (default: the packaged one) with the time model's prediction."""
    f = file if file is not None else load_validation()
    return ValidationRun(pd.DataFrame([_row(e, attention_kernel) for e in f.entries]), attention_kernel)
