"""Training recipes as they are run: stages of iterations, bucket tables of per-GPU batches, GPUs and layouts per
stage, latents and prompts encoded on the fly or pre-computed, and the goodput lost to evaluation, checkpoint saves
and failures. A recipe is a YAML/JSON file (``load_recipe_file``) or a packaged preset (``presets/recipes/*.yaml``,
``load_recipe``); ``dump_recipe`` writes one back (load -> dump -> load gives an equal recipe).

How a stage says how many samples it sees (``RecipeStage``):

- a bucket table (every bucket has ``batch_per_rank``): on each iteration every data-parallel rank draws one bucket
  with probability ``weight`` (weights are normalised) and runs ``batch_per_rank`` samples of it, so a bucket gets
  ``iterations x dp x weight x batch_per_rank`` samples (Open-Sora's ``bucket_config``);
- a global batch (``global_batch``, no ``batch_per_rank``): ``iterations x global_batch`` samples, split over the
  buckets by ``weight``; each rank runs ``global_batch / dp`` of them per iteration.

A bucket of 1 frame is an image; images and videos share a stage's iterations. Units: pixels, frames, frames per
second, USD per GPU-hour, fractions of wall-clock time.
"""

from __future__ import annotations

import hashlib
import json
import math
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import Field, model_validator

from sora_compute._lookup import did_you_mean
from sora_compute.hardware.profiles import HardwareProfile, UnknownProfileError, load_profile
from sora_compute.planning.base import _Spec, check_unique_names
from sora_compute.presets import load_preset
from sora_compute.specs import MAX_FRAMES, MAX_SIDE_PX, ModelSpec, VideoSpec

__all__ = ["Overhead", "Goodput", "RecipeBucket", "RecipeStage", "Recipe", "RecipeFileError", "UnknownRecipeError",
           "RECIPE_FILE_SUFFIXES", "recipe_names", "load_recipe", "load_recipe_file", "recipe_from_dict",
           "resolve_recipe", "dump_recipe", "profile_key", "recipe_profile"]

Checkpointing = Literal["none", "selective", "full"]
Encoding = Literal["precomputed", "on_the_fly"]
MAX_COUNT = 2**53  # iterations, GPUs and batches stay exact in float64 arithmetic


class Overhead(_Spec):
    """A share of wall-clock time lost to one cause, with where the figure comes from (or ``ASSUMED: why``)."""

    fraction: float = Field(ge=0, lt=1, description="share of wall-clock time lost, 0 <= f < 1")
    source: str = Field(min_length=1, description="where the figure comes from, or 'ASSUMED: reason'")


class Goodput(_Spec):
    """Wall-clock time lost outside training steps: wall = productive / ((1 - eval) (1 - ckpt) (1 - failures))."""

    evaluation: Overhead | None = Field(default=None, description="validation loss / sampling runs")
    checkpointing: Overhead | None = Field(default=None, description="checkpoint saves that stall training")
    failures: Overhead | None = Field(default=None, description="restarts, lost work since the last checkpoint")

    def items(self) -> list[tuple[str, Overhead]]:
        return [(k, v) for k in ("evaluation", "checkpointing", "failures") if (v := getattr(self, k)) is not None]

    @property
    def factor(self) -> float:
        """Productive share of wall-clock time: the product of (1 - fraction) over the overheads."""
        return math.prod(1 - o.fraction for _, o in self.items())


class RecipeBucket(_Spec):
    """One (resolution, frames) bucket of a stage: its shape, sampling weight and, in a bucket table, the per-GPU
    batch. ``num_frames: 1`` is an image."""

    name: str | None = Field(default=None, description="label, e.g. 256px")
    width: int = Field(gt=0, le=MAX_SIDE_PX, description="pixels")
    height: int = Field(gt=0, le=MAX_SIDE_PX, description="pixels")
    num_frames: int = Field(gt=0, le=MAX_FRAMES, description="frames per clip; 1 = an image")
    fps: float = Field(default=24.0, gt=0, le=1e6, description="frames per second")
    weight: float = Field(default=1.0, gt=0, le=MAX_COUNT,
                          description="sampling weight (normalised over the stage's buckets)")
    batch_per_rank: int | None = Field(default=None, gt=0, le=MAX_COUNT,
                                      description="samples per data-parallel rank per iteration (per GPU when "
                                                  "tp = cp = pp = 1)")

    @property
    def is_image(self) -> bool:
        return self.num_frames == 1

    @property
    def video(self) -> VideoSpec:
        return VideoSpec(width=self.width, height=self.height, num_frames=self.num_frames, fps=self.fps)

    @property
    def label(self) -> str:
        return self.name or f"{self.width}x{self.height}x{self.num_frames}"


class RecipeStage(_Spec):
    """One stage: iterations on ``gpus`` GPUs laid out as dp x tp x cp x pp, over a bucket table or a global batch."""

    name: str = Field(min_length=1)
    iterations: int = Field(gt=0, le=MAX_COUNT, description="optimizer steps")
    global_batch: int | None = Field(default=None, gt=0, le=MAX_COUNT,
                                     description="samples per iteration (instead of per-bucket batches)")
    buckets: tuple[RecipeBucket, ...] = Field(min_length=1)
    gpus: int = Field(gt=0, le=MAX_COUNT, description="GPUs of the stage")
    layout: Literal["given", "search"] = Field(
        default="given", description="'given': the tp/cp/pp below; 'search': left to the layout search")
    tp: int = Field(default=1, gt=0, le=MAX_COUNT, description="tensor-parallel size")
    cp: int = Field(default=1, gt=0, le=MAX_COUNT, description="context/sequence-parallel size (SP)")
    pp: int = Field(default=1, gt=0, le=MAX_COUNT, description="pipeline-parallel size")
    cp_kind: Literal["ring", "ulysses", "hybrid"] = Field(
        default="ring", description="context parallelism: ring attention (K/V passed around), Ulysses (all-to-all "
                                    "over heads), or hybrid (Ulysses groups of cp_ulysses inside a ring)")
    cp_ulysses: int | None = Field(default=None, gt=0, le=MAX_COUNT,
                                   description="hybrid CP: the Ulysses degree (divides cp; the ring is cp / it)")
    vpp: int = Field(default=1, gt=0, le=64, description="virtual pipeline chunks per rank (interleaved 1F1B)")
    micro_batch: int = Field(default=1, gt=0, le=MAX_COUNT,
                             description="samples per micro-batch (global-batch stages; a bucket table runs "
                                         "batch_per_rank as one micro-batch)")
    ema: bool = Field(default=False, description="an EMA copy of the weights updated every iteration")
    sync: Literal["slowest", "mean"] = Field(
        default="slowest", description="bucket tables: an iteration waits for the slowest rank's bucket (expected "
                                       "max over dp ranks), or takes the mean (buckets balanced across ranks)")
    zero: Literal[0, 1, 2, 3] = Field(default=2, description="ZeRO stage (>= 1: optimizer states over dp ranks)")
    checkpointing: Checkpointing = Field(default="full", description="activation recomputation")
    latents: Encoding = Field(default="on_the_fly", description="VAE-encode clips during training, or pre-computed")
    text: Encoding = Field(default="on_the_fly", description="encode prompts during training, or pre-computed")
    goodput: Goodput | None = Field(default=None, description="overrides the recipe's goodput for this stage")
    source: str | None = Field(default=None, description="where the stage's figures come from")

    @model_validator(mode="after")
    def _check(self) -> RecipeStage:
        per_gpu = [b.batch_per_rank is not None for b in self.buckets]
        if self.global_batch is None and not all(per_gpu):
            raise ValueError(f"stage {self.name!r}: give global_batch, or batch_per_rank on every bucket")
        if self.global_batch is not None and any(per_gpu):
            raise ValueError(f"stage {self.name!r}: give global_batch or per-bucket batch_per_rank, not both")
        if (self.cp_kind == "hybrid") != (self.cp_ulysses is not None):
            raise ValueError(f"stage {self.name!r}: cp_ulysses goes with cp_kind: hybrid (and hybrid needs it)")
        if self.cp_ulysses is not None and self.cp % self.cp_ulysses:
            raise ValueError(f"stage {self.name!r}: cp_ulysses={self.cp_ulysses} does not divide cp={self.cp}")
        group = self.tp * self.cp * self.pp
        if self.gpus % group:
            raise ValueError(f"stage {self.name!r}: gpus={self.gpus} is not a multiple of tp x cp x pp = {group}")
        if self.layout == "given" and self.global_batch is not None and self.global_batch < self.dp:
            raise ValueError(f"stage {self.name!r}: global_batch={self.global_batch} is less than one sample per "
                             f"data-parallel rank (dp = {self.dp})")
        if self.layout == "given" and self.global_batch is not None and self.global_batch % self.dp:
            raise ValueError(f"stage {self.name!r}: global_batch={self.global_batch} does not split into whole "
                             f"samples over dp = {self.dp} data-parallel ranks (gpus / (tp x cp x pp))")
        return self

    @property
    def dp(self) -> int:
        """Data-parallel ranks: gpus / (tp x cp x pp)."""
        return self.gpus // (self.tp * self.cp * self.pp)

    @property
    def cp_split(self) -> tuple[int, int]:
        """(Ulysses, ring) degrees of the context parallelism."""
        if self.cp_kind == "ulysses":
            return self.cp, 1
        if self.cp_kind == "hybrid" and self.cp_ulysses is not None:
            return self.cp_ulysses, self.cp // self.cp_ulysses
        return 1, self.cp

    @property
    def weights(self) -> list[float]:
        """Bucket weights normalised to sum to 1."""
        total = math.fsum(b.weight for b in self.buckets)
        return [b.weight / total for b in self.buckets]


class Recipe(_Spec):
    """A model, the stages it trains through, the hardware they run on, and the goodput assumptions."""

    name: str = Field(default="custom", min_length=1)
    model: ModelSpec
    stages: tuple[RecipeStage, ...] = Field(min_length=1)
    gpu: str = Field(default="h100-sxm", min_length=1, description="hardware profile / catalog key")
    precision: Literal["bf16", "fp16", "fp8"] = "bf16"
    attention_kernel: Literal["fa2", "fa3", "cudnn", "math"] = "fa2"
    price_usd_per_hour: float | None = Field(default=None, gt=0, le=1e6, description="default: the catalog's")
    pue: float = Field(default=1.2, ge=1, le=10, description="datacentre power usage effectiveness")
    goodput: Goodput = Field(default_factory=Goodput)
    source: str | None = Field(default=None, description="where the recipe comes from")
    assumptions: dict[str, str] = Field(default_factory=dict, description="written assumptions and their sources")

    @model_validator(mode="after")
    def _unique(self) -> Recipe:
        check_unique_names(s.name for s in self.stages)
        return self

    def stage_goodput(self, stage: RecipeStage) -> Goodput:
        return stage.goodput if stage.goodput is not None else self.goodput

    def with_gpu(self, gpu: str) -> Recipe:
        """The recipe on ``gpu``; its price per GPU-hour is its own GPU's, so on another type the catalog's."""
        if gpu == self.gpu or recipe_profile(gpu).key == recipe_profile(self.gpu).key:  # 'H100-SXM' is h100-sxm
            return self
        return self.model_copy(update={"gpu": gpu, "price_usd_per_hour": None})


_PROFILES: dict[str, HardwareProfile] = {}  # profiles that are not the catalog's, by the key profile_key gave them


def profile_key(profile: HardwareProfile) -> str:
    """The ``gpu`` a recipe names ``profile`` by: its catalog key when the catalog's profile is this one, else a key
    registered for this process (a modified or file profile: ``KEY@hash``) that ``recipe_profile`` resolves."""
    try:
        if load_profile(profile.key) == profile:
            return profile.key
    except (ValueError, UnknownProfileError):  # a file profile whose key is not the catalog's
        pass
    key = f"{profile.key}@{hashlib.sha1(profile.model_dump_json().encode()).hexdigest()[:12]}"
    _PROFILES[key] = profile
    return key


def recipe_profile(gpu: str) -> HardwareProfile:
    """The hardware profile of a recipe's ``gpu`` (a catalog key, a profile file, or a ``profile_key``)."""
    return _PROFILES[gpu] if gpu in _PROFILES else load_profile(gpu)


class RecipeFileError(ValueError):
    """A recipe file that cannot be read or parsed (the message names the file and the problem)."""


class UnknownRecipeError(ValueError):
    """A recipe name that is not a packaged preset (the message carries a did-you-mean)."""


RECIPE_FILE_SUFFIXES = (".yaml", ".yml", ".json")
_PRESETS = "presets/recipes"  # inside the sora_compute package


def recipe_from_dict(entry: dict[str, Any], name: str = "custom") -> Recipe:
    """A recipe from a mapping: ``preset: NAME`` (a model preset) or an inline ``model:`` spec, and the fields."""
    if not isinstance(entry, dict):
        raise RecipeFileError(f"recipe {name!r}: expected a mapping, got {type(entry).__name__}")
    entry = dict(entry)
    if "preset" in entry:
        if "model" in entry:
            raise RecipeFileError(f"recipe {name!r}: give preset or model, not both")
        if not isinstance(entry["preset"], str):
            raise RecipeFileError(f"preset: expected a preset name, got {entry['preset']!r}")
        entry["model"] = load_preset(entry.pop("preset")).model
    entry.setdefault("name", name)
    return Recipe.model_validate(entry)


def _parse(text: str, where: str, json_file: bool) -> Any:
    if json_file:
        try:
            return json.loads(text)
        except json.JSONDecodeError as e:
            raise RecipeFileError(f"{where}: not valid JSON at line {e.lineno}") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        raise RecipeFileError(f"{where}: not valid YAML{f' at line {mark.line + 1}' if mark else ''}") from None


def load_recipe_file(path: str | Path) -> Recipe:
    """A recipe from a YAML or JSON file (a flat mapping; its name defaults to the file's stem). Unreadable or
    malformed files raise RecipeFileError; invalid values raise pydantic's ValidationError naming the field."""
    p = Path(path)
    try:
        text = p.read_text()
    except (OSError, UnicodeDecodeError) as e:
        raise RecipeFileError(f"{path}: cannot read ({getattr(e, 'strerror', None) or e})") from None
    data = _parse(text, str(path), p.suffix.lower() == ".json")
    if not isinstance(data, dict) or "stages" not in data:
        raise RecipeFileError(f"{path}: expected a mapping with stages and a preset or model")
    return recipe_from_dict(data, p.stem)


@cache
def _packaged() -> dict[str, str]:
    folder = resources.files("sora_compute").joinpath(_PRESETS)
    return {f.name.rsplit(".", 1)[0]: f.read_text() for f in sorted(folder.iterdir(), key=lambda f: f.name)
            if f.name.endswith(".yaml")}


def recipe_names() -> list[str]:
    """Names of the packaged recipe presets (``presets/recipes/NAME.yaml``)."""
    return list(_packaged())


@cache
def load_recipe(name: str) -> Recipe:
    """A packaged recipe preset by name."""
    raw = _packaged()
    if not isinstance(name, str) or name not in raw:
        raise UnknownRecipeError(f"unknown recipe {name!r}{did_you_mean(str(name), raw)} (known: {', '.join(raw)})")
    return recipe_from_dict(_parse(raw[name], f"{_PRESETS}/{name}.yaml", False), name)


def resolve_recipe(arg: str | Recipe) -> Recipe:
    """A recipe given as a preset name or as a path to a .yaml/.yml/.json file."""
    if isinstance(arg, Recipe):
        return arg
    if isinstance(arg, str) and arg.lower().endswith(RECIPE_FILE_SUFFIXES):
        return load_recipe_file(arg)
    return load_recipe(arg)


def dump_recipe(recipe: Recipe, fmt: Literal["yaml", "json"] = "yaml") -> str:
    """The recipe as YAML or JSON text that ``load_recipe_file`` reads back equal (the model written inline)."""
    data = recipe.model_dump(mode="json", exclude_none=True)
    if fmt == "json":
        return json.dumps(data, indent=2)
    return yaml.safe_dump(data, sort_keys=False)
