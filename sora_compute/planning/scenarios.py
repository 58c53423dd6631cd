"""Training scenarios by name (sora_compute/scenarios.yaml) or from YAML / JSON files, and their what-ifs."""

from __future__ import annotations

from functools import cache
from importlib import resources
from typing import Any, Literal

import yaml
from pydantic import Field, model_validator

from sora_compute._lookup import did_you_mean
from sora_compute.planning.base import _Spec, check_unique_names
from sora_compute.presets import load_preset
from sora_compute.specs import MAX_FRAMES, ModelSpec, VideoSpec


class DataBucket(_Spec):
    """A share of a stage's training samples at one shape. Images are a bucket of one frame.

    Give ``num_frames``, or ``duration_s`` (snapped to the nearest frame count the model accepts)."""

    width: int = Field(gt=0, description="pixels")
    height: int = Field(gt=0, description="pixels")
    num_frames: int | None = Field(default=None, gt=0)
    duration_s: float | None = Field(default=None, gt=0, description="seconds")
    fps: float = Field(default=24.0, gt=0)
    share: float = Field(default=1.0, gt=0, le=1, description="fraction of the stage's samples")

    @model_validator(mode="after")
    def _one_length(self) -> DataBucket:
        if (self.num_frames is None) == (self.duration_s is None):
            raise ValueError("give exactly one of num_frames or duration_s")
        if self.duration_s is not None and not self.duration_s * self.fps < MAX_FRAMES:
            raise ValueError(f"duration_s={self.duration_s:g} at {self.fps:g} fps is more than {MAX_FRAMES:,} frames")
        return self

    def video(self, model: ModelSpec) -> VideoSpec:
        if self.num_frames is not None:
            return VideoSpec(width=self.width, height=self.height, num_frames=self.num_frames, fps=self.fps)
        assert self.duration_s is not None
        frames = model.snap_frames(max(1, round(self.duration_s * self.fps)))
        return VideoSpec(width=self.width, height=self.height, num_frames=frames, fps=self.fps)


class TrainingStage(_Spec):
    """One stage of a training plan. Say how many samples it sees in exactly one way:
    ``samples``; or ``videos`` x ``epochs``; or ``steps`` x ``global_batch``; or ``token_budget``
    (video tokens seen, divided by the mean tokens per sample of the buckets)."""

    name: str = Field(min_length=1)
    buckets: tuple[DataBucket, ...] = Field(min_length=1)
    samples: float | None = Field(default=None, gt=0, description="clips/images seen in this stage")
    videos: float | None = Field(default=None, gt=0, description="distinct clips in the dataset")
    epochs: float | None = Field(default=None, gt=0)
    steps: int | None = Field(default=None, gt=0)
    global_batch: int | None = Field(default=None, gt=0)
    token_budget: float | None = Field(default=None, gt=0, description="video tokens seen")

    @model_validator(mode="after")
    def _check(self) -> TrainingStage:
        total = sum(b.share for b in self.buckets)
        if abs(total - 1) > 1e-6:
            raise ValueError(f"bucket shares of stage {self.name!r} sum to {total:g}, not 1")
        ways = [self.samples is not None, self.videos is not None or self.epochs is not None,
                self.steps is not None or self.global_batch is not None, self.token_budget is not None]
        if sum(ways) != 1:
            raise ValueError(f"stage {self.name!r}: give exactly one of samples, videos+epochs, steps+global_batch, "
                             "token_budget")
        if ways[1] and (self.videos is None or self.epochs is None):
            raise ValueError(f"stage {self.name!r}: videos and epochs go together")
        if ways[2] and (self.steps is None or self.global_batch is None):
            raise ValueError(f"stage {self.name!r}: steps and global_batch go together")
        return self

    def num_samples(self, mean_tokens: float) -> float:
        if self.samples is not None:
            return self.samples
        if self.videos is not None and self.epochs is not None:
            return self.videos * self.epochs
        if self.steps is not None and self.global_batch is not None:
            return float(self.steps * self.global_batch)
        assert self.token_budget is not None
        return self.token_budget / mean_tokens


Checkpointing = Literal["none", "selective", "full"]


class TrainingScenario(_Spec):
    """A model and a staged training plan, with the switches that change what training costs."""

    name: str = "custom"
    model: ModelSpec
    stages: tuple[TrainingStage, ...] = Field(min_length=1)
    checkpointing: Checkpointing = Field(
        default="none", description="activation recomputation: none, selective (attention core), full (forward)")
    vae_on_the_fly: bool = Field(default=False, description="encode latents during training (else pre-computed)")
    text_on_the_fly: bool = Field(default=False, description="encode prompts during training (else pre-computed)")
    cfg_dropout: float = Field(default=0.1, ge=0, lt=1,
                               description="condition dropout for classifier-free guidance (recorded; costs nothing)")
    assumptions: dict[str, str] = Field(default_factory=dict, description="written assumptions and their sources")

    @model_validator(mode="after")
    def _unique_stages(self) -> TrainingScenario:
        check_unique_names(s.name for s in self.stages)
        return self

    def with_model(self, model: ModelSpec) -> TrainingScenario:
        return self.model_copy(update={"model": model})


class UnknownScenarioError(KeyError):
    def __str__(self) -> str:
        return str(self.args[0])


@cache
def _scenario_raw() -> dict[str, dict[str, Any]]:
    text = resources.files("sora_compute").joinpath("scenarios.yaml").read_text()
    return dict(yaml.safe_load(text)["scenarios"])


def scenario_names() -> list[str]:
    return list(_scenario_raw())


@cache
def load_scenario(name: str) -> TrainingScenario:
    """A named training scenario from ``scenarios.yaml`` (its model is a preset, by name)."""
    raw = _scenario_raw()
    if not isinstance(name, str):
        raise UnknownScenarioError(f"scenario: expected a name, got {name!r} (known: {', '.join(raw)})")
    if name not in raw:
        raise UnknownScenarioError(f"unknown scenario {name!r}{did_you_mean(name, raw)} (known: {', '.join(raw)})")
    return scenario_from_dict(raw[name], name)


def scenario_from_dict(entry: dict[str, Any], name: str = "custom") -> TrainingScenario:
    """A scenario from a scenarios.yaml-style mapping: ``preset: NAME`` or an inline ``model:`` spec."""
    entry = dict(entry)
    if "preset" in entry:
        entry["model"] = load_preset(entry.pop("preset")).model
    entry.setdefault("name", name)
    return TrainingScenario.model_validate(entry)


class ScenarioFileError(ValueError):
    """A scenario file that cannot be read or parsed (message names the file and the problem)."""


SCENARIO_FILE_SUFFIXES = (".yaml", ".yml", ".json")


def load_scenario_file(path: str) -> TrainingScenario:
    """A scenario from a YAML or JSON file. One schema: a flat mapping (``preset:`` or ``model:``, ``stages:``,
    switches, ``assumptions:``), or the same mapping wrapped in one named entry (``NAME: {...}``, or
    ``scenarios: {NAME: {...}}`` as scenarios.yaml writes them), whose name then names the scenario.
    Unreadable or malformed files raise ScenarioFileError; invalid values raise pydantic's ValidationError naming
    the field."""
    import json
    from pathlib import Path

    p = Path(path)
    try:
        text = p.read_text()
    except (OSError, UnicodeDecodeError) as e:
        raise ScenarioFileError(f"{path}: cannot read ({getattr(e, 'strerror', None) or e})") from None
    if p.suffix.lower() == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise ScenarioFileError(f"{path}: not valid JSON at line {e.lineno}") from None
    else:
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as e:
            mark = getattr(e, "problem_mark", None)
            where = f" at line {mark.line + 1}" if mark is not None else ""
            raise ScenarioFileError(f"{path}: not valid YAML{where}") from None
    name = p.stem
    if isinstance(data, dict) and set(data) == {"scenarios"} and isinstance(data["scenarios"], dict):
        data = data["scenarios"]
        if len(data) != 1:
            raise ScenarioFileError(f"{path}: expected one entry under scenarios:, found {len(data)}")
    if isinstance(data, dict) and len(data) == 1 and "stages" not in data:
        (key, value), = data.items()
        if isinstance(value, dict):
            name, data = str(key), value
    if not isinstance(data, dict) or "stages" not in data:
        raise ScenarioFileError(f"{path}: expected a mapping with stages and a preset or model (flat, or wrapped "
                                "in one named entry)")
    if not isinstance(data.get("preset", ""), str):
        raise ScenarioFileError(f"{path}: preset: expected a preset name, got {data['preset']!r}")
    return scenario_from_dict(data, name)


def resolve_scenario(arg: str | TrainingScenario) -> TrainingScenario:
    """A scenario given as a name from scenarios.yaml or as a path to a .yaml/.yml/.json file."""
    if isinstance(arg, TrainingScenario):
        return arg
    if isinstance(arg, str) and arg.lower().endswith(SCENARIO_FILE_SUFFIXES):
        return load_scenario_file(arg)
    return load_scenario(arg)
