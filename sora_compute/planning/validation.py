"""Published end-to-end timings and memory figures (``data/validation.yaml``): load and validate.

Each entry is one published figure with its source, GPU, GPU count, settings and a quote of the row it comes from.
These figures are only ever compared with predictions and reported; no model parameter is fitted to them (the time
model is calibrated from kernel-level data). Units: seconds (wall time of what ``scope`` names), memory per GPU as the
source prints it (``peak_memory_gib``; ``memory_unit_as_published`` says when the source's "GB" is undefined),
tokens per second, TFLOP/s per GPU, MFU/HFU as fractions.
"""

from __future__ import annotations

from functools import cache
from importlib import resources
from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import BaseModel, Field, model_validator

from sora_compute.finite import SPEC_CONFIG, FiniteFloat
from sora_compute.planning.parallel_inference import InferenceLayout

__all__ = [
    "TRAINING_SCOPES", "ValidationEntry", "ValidationMissing", "ValidationFile", "load_validation", "VALIDATION_PATH"]

VALIDATION_PATH = "data/validation.yaml"  # inside the sora_compute package

Positive = Annotated[FiniteFloat, Field(gt=0)]
Fraction = Annotated[FiniteFloat, Field(gt=0, le=1)]
Pixels = Annotated[int, Field(gt=0)]
Setting = str | bool | int | FiniteFloat


#: Scopes of training figures (a step or a whole run), apart from the inference ones.
TRAINING_SCOPES = ("training_step", "training_run")

class ValidationEntry(BaseModel):
    """One published figure: what ran (model, GPU, shape, settings), what was measured, and where it is printed."""

    model_config = SPEC_CONFIG

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9._-]*$", description="unique slug")
    model: str = Field(min_length=1, description="preset name, or a name listed under missing.models")
    kind: Literal["inference", "training"]
    scope: Literal["end_to_end", "denoise_step", "training_step", "training_run"] = Field(
        description="what `seconds` covers; training_run: a whole run or stage (gpu_hours, cost_usd)")
    gpu: str = Field(min_length=1, description="profile key, or a name listed under missing.gpus")
    gpu_as_published: str = Field(min_length=1, description="the source's own words for the GPU")
    gpus: int = Field(ge=1, description="GPU count of the run")
    resolution: tuple[Pixels, Pixels] | None = Field(default=None, description="[width, height] in pixels")
    frames: int | None = Field(default=None, ge=1)
    steps: int | None = Field(default=None, ge=1, description="denoising steps")
    cfg: bool | None = Field(default=None, description="classifier-free guidance with an unconditional evaluation")
    dtype: Literal["fp32", "bf16", "fp16", "fp8"] | None = None
    seconds: Positive | None = Field(default=None, description="wall time of `scope`, s")
    peak_memory_gib: Positive | None = Field(default=None, description="peak device memory per GPU, as published")
    memory_unit_as_published: str | None = None
    tokens_per_second: Positive | None = Field(default=None, description="training throughput of the whole run")
    tflops_per_gpu: Positive | None = Field(default=None, description="achieved TFLOP/s per GPU as published")
    gpu_hours: Positive | None = Field(default=None, description="GPU-hours of a training run as published")
    cost_usd: Positive | None = Field(default=None, description="cost of a training run as published, USD")
    recipe: str | None = Field(default=None, description="recipe preset that predicts it (presets/recipes)")
    stage: str | None = Field(default=None, description="the recipe's stage it covers (none: the whole recipe)")
    mfu: Fraction | None = None
    hfu: Fraction | None = None
    approx: bool = Field(default=False, description="published as approximate or read off a plot")
    settings: dict[str, Setting] = Field(default_factory=dict)
    layout: InferenceLayout | None = Field(default=None, description="a multi-GPU inference run's layout as the "
                                           "source states it (cfg, ulysses, ring, pipefusion, fsdp, vae_parallel); "
                                           "None: not stated, or not one the schedules model (tensor parallel)")
    software: str | None = None
    source: str = Field(min_length=1)
    quote: str = Field(min_length=1)

    @model_validator(mode="after")
    def _consistent(self) -> ValidationEntry:
        figures = (self.seconds, self.peak_memory_gib, self.tokens_per_second, self.tflops_per_gpu, self.mfu,
                   self.gpu_hours, self.cost_usd)
        if all(f is None for f in figures):
            raise ValueError(f"{self.id}: no published figure (seconds, peak_memory_gib, tokens_per_second, "
                             "tflops_per_gpu, mfu, gpu_hours or cost_usd)")
        if self.scope == "training_run" and self.gpu_hours is None and self.cost_usd is None:
            raise ValueError(f"{self.id}: a training_run entry needs gpu_hours or cost_usd")
        if self.stage is not None and self.recipe is None:
            raise ValueError(f"{self.id}: stage names a stage of a recipe: give recipe too")
        if (self.kind == "training") != (self.scope in TRAINING_SCOPES):
            raise ValueError(f"{self.id}: scope {self.scope!r} does not fit kind {self.kind!r}")
        if self.kind == "inference" and (self.resolution is None or self.frames is None):
            raise ValueError(f"{self.id}: an inference entry needs resolution and frames")
        for key in ("latents", "text"):  # how a training source feeds its encoders (as recipe stages say it)
            if key in self.settings and self.settings[key] not in ("on_the_fly", "precomputed"):
                raise ValueError(f"{self.id}: settings.{key}: expected on_the_fly or precomputed, got "
                                 f"{self.settings[key]!r}")
        if self.layout is not None and self.layout.gpus != self.gpus:
            raise ValueError(f"{self.id}: layout {self.layout.label()} uses {self.layout.gpus} GPUs, the run "
                             f"{self.gpus}")
        return self


class ValidationMissing(BaseModel):
    """Names used by entries that are not (yet) presets or hardware profiles."""

    model_config = SPEC_CONFIG

    models: list[str] = Field(default_factory=list)
    gpus: list[str] = Field(default_factory=list)


class ValidationFile(BaseModel):
    """The whole file: entries with unique ids, and the names they use that the catalogs do not have."""

    model_config = SPEC_CONFIG

    missing: ValidationMissing = Field(default_factory=ValidationMissing)
    entries: list[ValidationEntry] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique_and_listed(self) -> ValidationFile:
        seen: set[str] = set()
        for e in self.entries:
            if e.id in seen:
                raise ValueError(f"duplicate entry id {e.id!r}")
            seen.add(e.id)
        for field, used in (("models", {e.model for e in self.entries}), ("gpus", {e.gpu for e in self.entries})):
            stale = sorted(set(getattr(self.missing, field)) - used)
            if stale:
                raise ValueError(f"missing.{field} lists names no entry uses: {stale}")
        return self


def _parse(text: str, where: str) -> ValidationFile:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise ValueError(f"{where}: not valid YAML ({e.__class__.__name__})") from None
    if not isinstance(data, dict):
        raise ValueError(f"{where}: expected a mapping with 'entries' (and 'missing')")
    return ValidationFile.model_validate(data)


@cache
def _packaged() -> ValidationFile:
    return _parse(resources.files("sora_compute").joinpath(VALIDATION_PATH).read_text(), VALIDATION_PATH)


def load_validation(path: str | Path | None = None) -> ValidationFile:
    """The packaged validation file, or the one at ``path``; raises ``ValueError``/``ValidationError`` naming the
    bad field."""
    if path is None:
        return _packaged()
    p = Path(path)
    try:
        text = p.read_text()
    except OSError as e:
        raise ValueError(f"{p}: cannot read ({e.strerror})") from None
    return _parse(text, str(p))
