"""Model zoo: named presets loaded from the yaml files beside this module.

Each yaml file has ``presets:`` (name -> entry) and may hold ``defaults`` anchors. An entry has
``source`` (where the numbers come from), ``video`` (native shape), ``dit``, ``vae``, optional
``text_encoder``, ``extra_text_encoders`` and ``text_tokens``, and optional ``published`` figures for the tests.
"""

from __future__ import annotations

from functools import cache
from importlib import resources
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field

from sora_compute._lookup import did_you_mean
from sora_compute.specs import ModelSpec, VideoSpec

__all__ = ["Preset", "Sampling", "UnknownPresetError", "load_preset", "preset_names", "all_presets", "Yardstick",
           "load_yardstick", "yardstick_names"]


class UnknownPresetError(KeyError):
    """A preset name that is not in the zoo (message carries a did-you-mean)."""

    def __str__(self) -> str:
        return str(self.args[0])


class Sampling(BaseModel):
    """The model's published sampling defaults: denoising steps and whether classifier-free guidance runs a second
    (unconditional) DiT evaluation per step (guidance-distilled models embed the scale instead)."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    steps: int = Field(gt=0, description="denoising steps")
    cfg: bool = Field(description="classifier-free guidance with an unconditional evaluation")
    guidance_branches: int = Field(default=2, ge=2, le=3, description="DiT evaluations per step with guidance: 2 "
                                   "(conditional, unconditional); 3 adds an image-unconditional one (Open-Sora 2.0)")
    source: str = Field(min_length=1, description="where the defaults come from")


class Preset(BaseModel):
    """A named model with its native video shape and the source of its numbers."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    name: str
    source: str = Field(min_length=1)
    model: ModelSpec
    video: VideoSpec = Field(description="native resolution, frames and fps")
    published: dict[str, float] = Field(default_factory=dict, description="published figures (params, Gflops)")
    sampling: Sampling | None = Field(default=None, description="published sampling defaults (steps, CFG)")


class Yardstick(BaseModel):
    """A language model that video training compute is compared with (e.g. GPT-3 175B)."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    name: str
    source: str = Field(min_length=1)
    params: float = Field(gt=0, description="parameters")
    params_in_compute_table: float = Field(gt=0, description="parameters the published compute figure uses")
    tokens: float = Field(gt=0, description="training tokens")
    training_flops: float = Field(gt=0, description="published training compute, FLOPs (2 per MAC)")

    @property
    def six_nd_flops(self) -> float:
        """6 x N x D with the compute table's N: the rule the published figure follows."""
        return 6 * self.params_in_compute_table * self.tokens


@cache
def _yaml_files() -> dict[str, dict[str, Any]]:
    return {f.name: yaml.safe_load(f.read_text()) for f in sorted(resources.files(__package__).iterdir(),
                                                                  key=lambda p: p.name) if f.name.endswith(".yaml")}


@cache
def _yardsticks() -> dict[str, dict[str, Any]]:
    return {k: v for data in _yaml_files().values() for k, v in data.get("yardsticks", {}).items()}


def yardstick_names() -> list[str]:
    return list(_yardsticks())


@cache
def load_yardstick(name: str = "gpt3-175b") -> Yardstick:
    """A yardstick language model by name (``gpt3-175b``)."""
    raw = _yardsticks()
    if not isinstance(name, str) or name not in raw:
        raise UnknownPresetError(f"unknown yardstick {name!r}{did_you_mean(name, raw)}")
    e = raw[name]
    return Yardstick(name=name, **{**e, "source": " ".join(e["source"].split())})


@cache
def _raw() -> dict[str, dict[str, Any]]:
    entries: dict[str, dict[str, Any]] = {}
    for fname, data in _yaml_files().items():
        if "presets" in data:
            for name, entry in data["presets"].items():
                if name in entries:
                    raise ValueError(f"preset {name!r} defined twice (second in {fname})")
                entries[name] = entry
    return entries


def preset_names() -> list[str]:
    return list(_raw())


@cache
def load_preset(name: str) -> Preset:
    """The preset called ``name`` (lower-case, hyphenated), validated."""
    raw = _raw()
    if not isinstance(name, str):
        raise UnknownPresetError(f"preset: expected a preset name, got {name!r} (see `sora-compute presets`)")
    if name in _yardsticks():
        raise UnknownPresetError(f"{name!r} is a language-model yardstick, not a video model: use load_yardstick")
    if name not in raw:
        raise UnknownPresetError(f"unknown preset {name!r}{did_you_mean(name, raw)} (see `sora-compute presets`)")
    e = raw[name]
    model_keys = set(ModelSpec.model_fields) - {"name"}
    unknown = set(e) - model_keys - {"source", "video", "published", "sampling"}
    if unknown:
        raise ValueError(f"preset {name!r}: unknown keys {sorted(unknown)}")
    model = ModelSpec(name=name, **{k: v for k, v in e.items() if k in model_keys})
    return Preset(name=name, source=" ".join(e["source"].split()), model=model, video=e["video"],
                  published=e.get("published", {}), sampling=e.get("sampling"))


def all_presets() -> list[Preset]:
    return [load_preset(n) for n in preset_names()]
