"""Predicted against published: each timing in the validation file (``data/validation.yaml``) next to what the time
model predicts for the same model, GPU, shape and sampling, with the error. Nothing here feeds back into a parameter:
a large error is a finding (its ``note`` says what the model leaves out), never a reason to tune.

Covered now: inference timings (whole videos and single denoising steps) of presets on profiled GPUs. A run on
several GPUs is predicted by the multi-GPU schedule of the layout the entry states (``planning/parallel_inference.py``:
sharded op times, communication, serial parts; its own means, ``multi_gpu_mean_abs_error`` and, against the same
source's one-GPU run, ``speedup_mean_abs_error``); one whose layout is not stated is not compared. Training entries
of presets (not recipe entries) are timed by the training layout search (``validate_training.py``). The video shape
is snapped to the model's grid when the published one does not fit it (the note says so).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd

from sora_compute.hardware.profiles import UnknownProfileError, load_profile
from sora_compute.memory.pipeline import pipeline_memory
from sora_compute.planning.inference import InferenceSettings, estimate_inference, sampling_defaults
from sora_compute.planning.parallel_inference import inference_schedule
from sora_compute.planning.recipe_validate import recipe_comparison
from sora_compute.planning.timing import inference_times
from sora_compute.planning.validate_training import training_row
from sora_compute.planning.validation import TRAINING_SCOPES, ValidationEntry, ValidationFile, load_validation
from sora_compute.presets import load_preset, preset_names
from sora_compute.specs import ModelSpec, VideoSpec

__all__ = ["ValidationRun", "validate", "snap_video", "host_link_seconds"]


def _mean(values: pd.Series) -> float:
    """The mean of ``values``; NaN when there are none (no row of that kind was compared)."""
    return float(values.mean()) if len(values) else math.nan


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
        return _mean(self.compared["error"].abs())

    @property
    def mean_error(self) -> float:
        return _mean(self.compared["error"])

    @property
    def multi_gpu(self) -> pd.DataFrame:
        """Multi-GPU inference rows predicted by their layout's schedule (training rows apart)."""
        t = self.table
        return t[(t["status"] == "compared") & (t["gpus"] > 1) & ~t["scope"].isin(TRAINING_SCOPES)]

    @property
    def multi_gpu_mean_abs_error(self) -> float:
        return _mean(self.multi_gpu["error"].abs())

    @property
    def speedup_mean_abs_error(self) -> float:
        """Multi-GPU rows with a one-GPU baseline in the same source: mean |predicted / published speedup - 1|."""
        return _mean(self.multi_gpu["speedup_error"].dropna().abs())

    @property
    def mfu_mean_abs_error(self) -> float:
        """The same rows at the GPU's planning MFU (FLOPs / (peak x MFU)): the yardstick the time model replaces."""
        return _mean(self.compared["mfu_error"].abs())


def entry_model(e: ValidationEntry) -> ModelSpec:
    """The preset's model as the entry's software ran it: its text encoders in the entry's ``text_encoder_dtype``
    where the source's software differs from the official pipeline."""
    return load_preset(e.model).model.with_text_encoder_dtype(e.text_encoder_dtype)


def _settings(e: ValidationEntry, preset: str) -> InferenceSettings:
    base = sampling_defaults(preset)
    return base.model_copy(update={k: v for k, v in (("steps", e.steps), ("cfg", e.cfg)) if v is not None})


def _guidance(s: InferenceSettings) -> str:
    if not s.cfg:
        return "no CFG pair"
    return "CFG pair" if s.guidance_branches == 2 else f"{s.guidance_branches} guidance branches"


def _row(e: ValidationEntry, kernel: str) -> dict:
    row: dict = {"id": e.id, "model": e.model, "gpu": e.gpu, "gpus": e.gpus, "scope": e.scope,
                 "published_s": e.seconds, "predicted_s": float("nan"), "error": float("nan"),
                 "mfu_s": float("nan"), "mfu_error": float("nan"), "status": "", "note": "", "source": e.source}
    if e.recipe is not None:  # a training run or step a recipe preset predicts
        return {**row, **recipe_comparison(e)}
    if e.kind != "inference":
        return {**row, **training_row(e, kernel)}
    if e.seconds is None:
        return {**row, "status": "no timing", "note": "a memory figure: compared in the memory table"}
    if e.gpus > 1 and e.layout is None:
        return {**row, "status": "not modelled", "note": "multi-GPU run whose layout the source does not state, or "
                "one the schedules do not model (tensor parallel): settings.parallelism says what ran"}
    if e.model not in preset_names():
        return {**row, "status": "no preset", "note": f"{e.model} is not a preset"}
    try:
        profile = load_profile(e.gpu)
    except UnknownProfileError:
        return {**row, "status": "no profile", "note": f"{e.gpu} has no hardware profile"}
    assert e.resolution is not None and e.frames is not None  # the entry's own check for inference
    if e.steps is None:
        return {**row, "status": "not modelled", "note": "the source does not state the sampling steps (nor CFG): "
                "the preset's defaults would be a guess at what was timed"}
    model = entry_model(e)
    video, snapped = snap_video(model, *e.resolution, e.frames)
    settings = _settings(e, e.model)
    if e.dtype == "fp8":
        return {**row, "status": "not modelled", "note": "fp8 GEMMs with bf16 attention: one dtype per run here"}
    precision = e.dtype if e.dtype in ("bf16", "fp16") else "bf16"
    estimate = estimate_inference(model, video, settings)
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
    at_mfu = at_mfu / e.gpus
    text_dtype = model.text_encoder_dtypes(precision)
    notes = [f"{video.width}x{video.height}x{video.num_frames}, {settings.steps} steps, "
             f"{_guidance(settings)}, {precision}" + (f" (text encoder {text_dtype})" if text_dtype not in
                                                       ("", precision) else "")]
    if snapped:
        notes.append(f"snapped: {snapped}")
    if e.gpus == 1:
        link_s, mode = host_link_seconds(e, model, video, settings)
        if link_s:
            predicted += link_s
            notes.append(f"{mode} offload: {link_s:.3g} s of weight copies over the host link")
    if e.gpus > 1:
        assert e.layout is not None  # checked above
        try:
            sched = inference_schedule(estimate, profile, e.layout, precision, kernel)
        except ValueError as err:
            return {**row, "status": "not modelled", "note": str(err)}
        predicted = sched.step_s if e.scope == "denoise_step" else sched.latency_s
        one = inference_schedule(estimate, profile, None, precision, kernel)  # the same basis on one GPU
        row["predicted_1gpu_s"] = one.step_s if e.scope == "denoise_step" else one.latency_s
        comm = sum(sched.comm_per_step.values()) * sched.steps_run + sched.bubble_s
        notes.append(f"{e.gpus} GPUs as {e.layout.label()}: schedule with {comm:.3g} s exposed communication and "
                     f"bubble, {sched.serial_s:.3g} s serial")
    if e.approx:
        notes.append("published figure approximate")
    return {**row, "predicted_s": predicted, "error": predicted / e.seconds - 1, "mfu_s": at_mfu,
            "mfu_error": at_mfu / e.seconds - 1, "status": "compared", "note": "; ".join(notes)}


def host_link_seconds(e: ValidationEntry, model: ModelSpec, video: VideoSpec, settings: InferenceSettings
                      ) -> tuple[float, str]:
    """(seconds of weight copies over the host link in what ``e`` times, the offload mode) for the offload the
    source states (``validate_memory.offload_of``), by the pipeline memory model's per-phase bytes and the GPU's
    host link (``hardware/host_links.yaml``): the whole video for an end-to-end figure, one step of the denoising
    phase for a step figure. Copies are not overlapped with compute (diffusers' and accelerate's offload hooks move a
    module's weights when it is called, then run it). (0, 'none') without offload."""
    from sora_compute.planning.validate_memory import offload_of  # it imports this module

    mode = offload_of(e)
    if mode == "none":
        return 0.0, mode
    pm = pipeline_memory(model, video, e.gpu, mode, cfg_batch=2 if settings.cfg and settings.cfg_mode == "batched"
                         else 1, steps=settings.steps)
    if e.scope == "denoise_step":
        denoise = [p for p in pm.phases if p.name.startswith("denoise")]
        return sum(pm.link.seconds(p.h2d_bytes, p.d2h_bytes) for p in denoise) / settings.steps, mode
    return pm.transfer_s, mode


def _series(e: ValidationEntry) -> tuple:
    """What a multi-GPU run shares with its one-GPU baseline in the same source."""
    return (e.model, e.gpu, e.scope, e.resolution, e.frames, e.steps, e.cfg, e.dtype, e.source)


def _speedups(f: ValidationFile, table: pd.DataFrame) -> pd.DataFrame:
    """Published speedup (one-GPU baseline of the same series / this run) next to the predicted one (the schedule
    on one GPU / on the layout): the parallel model judged apart from the one-GPU time model's own error."""
    base = {_series(e): e for e in f.entries if e.gpus == 1 and e.seconds is not None and e.kind == "inference"}
    published, baseline = [], []
    for e in f.entries:
        b = base.get(_series(e)) if e.gpus > 1 and e.seconds is not None else None
        published.append(b.seconds / e.seconds if b is not None and b.seconds is not None and e.seconds else math.nan)
        baseline.append(b.id if b is not None else "")
    t = table.copy()
    if "predicted_1gpu_s" not in t:
        t["predicted_1gpu_s"] = math.nan
    t["baseline"] = baseline
    t["speedup_published"] = published
    t["speedup_predicted"] = t["predicted_1gpu_s"] / t["predicted_s"]
    t["speedup_error"] = t["speedup_predicted"] / t["speedup_published"] - 1
    return t


def validate(file: ValidationFile | None = None, attention_kernel: str = "fa2") -> ValidationRun:
    """Every entry of the validation file (default: the packaged one) with the time model's prediction; multi-GPU
    runs also with their speedup over the one-GPU baseline of the same source, published and predicted."""
    f = file if file is not None else load_validation()
    table = pd.DataFrame([_row(e, attention_kernel) for e in f.entries])
    return ValidationRun(_speedups(f, table), attention_kernel)
