"""Demand scenarios: a market of generated video (sources x AI share x candidates per kept video), the model and
sampling that serve it, the GPUs, and the published figures to check. Named presets live in
sora_compute/presets/demand/*.yaml; YAML / JSON files use the same schema.

Every input has a documented maximum (the ``MAX_*`` constants): a value beyond it is refused with one line naming
the field, so a typo of a few orders of magnitude cannot print an astronomically large fleet.
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from pydantic import Field, model_validator

from sora_compute._lookup import did_you_mean
from sora_compute.hardware import Precision, load_gpu
from sora_compute.planning.base import _Spec

__all__ = ["DemandSource", "ShapeShare", "Sampling", "TrainingReference", "PublishedThroughput",
           "PublishedFigures", "GapStep", "DemandScenario", "UnknownDemandError", "demand_names", "load_demand",
           "load_demand_file", "resolve_demand", "MAX_MINUTES_PER_DAY", "MAX_CANDIDATES", "MAX_PEAK_TO_AVERAGE",
           "MIN_UTILISATION", "MAX_GROWTH_PER_YEAR", "MAX_STEPS", "MAX_FLEET_GPUS", "DAYS_PER_YEAR", "DAYS_PER_MONTH"]

MAX_MINUTES_PER_DAY = 1e12  # video-minutes a day, per source (~4 orders above all of YouTube's uploads)
MAX_VIDEOS_PER_DAY = 1e13
MAX_USERS = 1e11  # ~12x the world's population
MAX_VIDEOS_PER_USER_PER_DAY = 1e4
MAX_SECONDS_PER_VIDEO = 86400.0
MAX_CANDIDATES = 1000.0  # videos generated per kept video
MAX_STEPS = 10000  # sampling steps
MAX_PEAK_TO_AVERAGE = 100.0
MIN_UTILISATION = 0.01
MAX_GROWTH_PER_YEAR = 10.0  # +1000% a year
MAX_GPU_PRICE_USD = 1e7
MAX_SOURCES = 1000
MAX_FLEET_GPUS = 1e12  # a result beyond this many GPUs is refused (inputs within bounds can still multiply up)
DAYS_PER_YEAR = 365.25
DAYS_PER_MONTH = DAYS_PER_YEAR / 12


class UnknownDemandError(ValueError):
    """A demand preset name that does not exist (the message lists the presets)."""


class DemandSource(_Spec):
    """One source of demand (a platform or a segment). Give its volume in exactly one way: ``minutes_per_day``;
    ``videos_per_day`` x ``seconds_per_video``; or ``users`` x ``videos_per_user_per_day`` x ``seconds_per_video``."""

    name: str = Field(min_length=1, max_length=100)
    minutes_per_day: float | None = Field(default=None, gt=0, le=MAX_MINUTES_PER_DAY,
                                          description="video-minutes a day (all of it, before the AI share)")
    videos_per_day: float | None = Field(default=None, gt=0, le=MAX_VIDEOS_PER_DAY)
    users: float | None = Field(default=None, gt=0, le=MAX_USERS)
    videos_per_user_per_day: float | None = Field(default=None, gt=0, le=MAX_VIDEOS_PER_USER_PER_DAY)
    seconds_per_video: float | None = Field(default=None, gt=0, le=MAX_SECONDS_PER_VIDEO)
    ai_share: float = Field(ge=0, le=1, description="fraction of the minutes that is AI-generated")
    source: str = ""

    @model_validator(mode="after")
    def _one_way(self) -> DemandSource:
        ways = [self.minutes_per_day is not None, self.videos_per_day is not None, self.users is not None]
        if sum(ways) != 1:
            raise ValueError(f"source {self.name!r}: give exactly one of minutes_per_day, videos_per_day (with "
                             "seconds_per_video), users (with videos_per_user_per_day and seconds_per_video)")
        if (ways[1] or ways[2]) and self.seconds_per_video is None:
            raise ValueError(f"source {self.name!r}: videos need seconds_per_video")
        if ways[2] and self.videos_per_user_per_day is None:
            raise ValueError(f"source {self.name!r}: users need videos_per_user_per_day")
        if ways[0] and self.seconds_per_video is not None:
            raise ValueError(f"source {self.name!r}: minutes_per_day already counts minutes: drop seconds_per_video")
        if not ways[2] and self.videos_per_user_per_day is not None:
            raise ValueError(f"source {self.name!r}: videos_per_user_per_day goes with users")
        if self.minutes > MAX_MINUTES_PER_DAY:
            raise ValueError(f"source {self.name!r}: {self.minutes:.3g} minutes a day is more than "
                             f"{MAX_MINUTES_PER_DAY:.0e}")
        return self

    @property
    def minutes(self) -> float:
        """Video-minutes a day, all of them (before the AI share)."""
        if self.minutes_per_day is not None:
            return self.minutes_per_day
        videos = self.videos_per_day if self.videos_per_day is not None else \
            float(self.users or 0) * float(self.videos_per_user_per_day or 0)
        return videos * float(self.seconds_per_video or 0) / 60

    @property
    def ai_minutes(self) -> float:
        """AI-generated video-minutes kept a day."""
        return self.minutes * self.ai_share


class ShapeShare(_Spec):
    """A share of the generated minutes at one clip shape (duration snapped to a frame count the model takes)."""

    width: int = Field(gt=0, le=16384, description="pixels")
    height: int = Field(gt=0, le=16384, description="pixels")
    duration_s: float = Field(gt=0, le=3600, description="seconds per clip")
    fps: float = Field(default=24.0, gt=0, le=240)
    share: float = Field(default=1.0, gt=0, le=1, description="fraction of the generated minutes")


class Sampling(_Spec):
    """Sampling settings (None: the model preset's published default). A step-distilled sampler is its steps."""

    steps: int | None = Field(default=None, gt=0, le=MAX_STEPS, description="denoising steps")
    cfg: bool | None = Field(default=None, description="classifier-free guidance: the CFG pair, 2 DiT passes a step")
    cache_skip_fraction: float = Field(default=0.0, ge=0, lt=1, description="DiT evaluations skipped by caching")


class TrainingReference(_Spec):
    """One training run to weigh inference against: a training scenario (its model FLOPs; its cluster is the GPUs
    that finish it in ``days``), its model FLOPs given directly, or a published fleet (``gpus`` x ``days``, at the
    serving MFU)."""

    name: str = Field(min_length=1, max_length=200)
    scenario: str | None = Field(default=None, description="a scenario name (scenarios.yaml) or a scenario file")
    flops: float | None = Field(default=None, gt=0, le=1e40, description="model FLOPs of one training run")
    gpus: int | None = Field(default=None, gt=0, le=10**9)
    days: float = Field(default=DAYS_PER_MONTH, gt=0, le=36525, description="fleet days / training time")
    gpu: str = "h100-sxm"
    source: str = ""

    @model_validator(mode="after")
    def _one_way(self) -> TrainingReference:
        if sum(x is not None for x in (self.scenario, self.flops, self.gpus)) != 1:
            raise ValueError(f"training {self.name!r}: give a scenario, flops, or a fleet (gpus and days): exactly one")
        load_gpu(self.gpu)
        return self


class PublishedThroughput(_Spec):
    """A published serving throughput, computed as a second basis next to the model's."""

    video_minutes_per_gpu_hour: float = Field(gt=0, le=1e6)
    gpu: str = "h100-sxm"
    source: str = Field(min_length=1)


class PublishedFigures(_Spec):
    """Published totals to recompute from the published inputs (and to say so where they differ)."""

    gpus_avg: float | None = Field(default=None, gt=0)
    gpus_peak: float | None = Field(default=None, gt=0)
    break_even_minutes: tuple[float, ...] = ()
    quote: str = Field(min_length=1)
    source: str = Field(min_length=1)


class GapStep(_Spec):
    """One change from the model's serving setup towards a cheaper one (for explaining a throughput gap)."""

    label: str = Field(min_length=1)
    cfg: bool | None = None
    steps: int | None = Field(default=None, gt=0, le=10000)
    cache_skip_fraction: float | None = Field(default=None, ge=0, lt=1)
    width: int | None = Field(default=None, gt=0, le=16384)
    height: int | None = Field(default=None, gt=0, le=16384)
    duration_s: float | None = Field(default=None, gt=0, le=3600)


class DemandScenario(_Spec):
    """A market of generated video and how it is served (see the README, "Compute demand")."""

    name: str = "custom"
    description: str = ""
    source: str = ""
    sources: tuple[DemandSource, ...] = Field(min_length=1, max_length=MAX_SOURCES)
    model: str = Field(default="sora", description="model preset that generates the video")
    sampling: Sampling = Sampling()
    shapes: tuple[ShapeShare, ...] = Field(default=(), description="clip shapes by share of minutes "
                                                                   "(default: the preset's native clip)")
    candidates: float = Field(default=1.0, ge=1, le=MAX_CANDIDATES, description="videos generated per kept video")
    gpu: str = "h100-sxm"
    gpus_per_video: int = Field(default=1, ge=1, le=4096, description="GPUs that generate one video together")
    mfu: float | None = Field(default=None, gt=0, le=1, description="assumed MFU (default: the time model's time)")
    precision: Precision = "bf16"
    peak_to_average: float = Field(default=1.0, ge=1, le=MAX_PEAK_TO_AVERAGE)
    utilisation: float = Field(default=1.0, ge=MIN_UTILISATION, le=1, description="target fleet utilisation")
    gpu_price_usd: float | None = Field(default=None, gt=0, le=MAX_GPU_PRICE_USD, description="capital, per GPU")
    price_usd_per_gpu_hour: float | None = Field(default=None, gt=0, le=1e4, description="rental (default: catalog)")
    electricity_usd_per_kwh: float | None = Field(default=None, gt=0, le=10)
    power_w: float | None = Field(default=None, gt=0, le=1e5, description="W per GPU (default: catalog TDP)")
    pue: float = Field(default=1.2, ge=1, le=10)
    growth_per_year: float = Field(default=0.0, ge=0, le=MAX_GROWTH_PER_YEAR, description="demand growth a year")
    training: tuple[TrainingReference, ...] = Field(default=(), max_length=100,
                                                    description="default: the scenario named after the model")
    published_throughput: PublishedThroughput | None = None
    published: PublishedFigures | None = None
    gap_steps: tuple[GapStep, ...] = ()

    @model_validator(mode="after")
    def _check(self) -> DemandScenario:
        from sora_compute.presets import load_preset

        load_preset(self.model)  # unknown names: one line with a did-you-mean
        load_gpu(self.gpu).peak_flops(self.precision)
        if self.published_throughput is not None:
            load_gpu(self.published_throughput.gpu)
        names = [s.name for s in self.sources]
        if len(set(names)) != len(names):
            raise ValueError("sources: names must be unique")
        if self.shapes and abs(sum(s.share for s in self.shapes) - 1) > 1e-6:
            raise ValueError(f"shapes: shares sum to {sum(s.share for s in self.shapes):g}, not 1")
        return self


# ------------------------------------------------------------------------------------------------
# Loading
# ------------------------------------------------------------------------------------------------

@cache
def _raw() -> dict[str, dict[str, Any]]:
    folder = resources.files("sora_compute").joinpath("presets").joinpath("demand")
    out: dict[str, dict[str, Any]] = {}
    for f in sorted(folder.iterdir(), key=lambda p: p.name):
        if f.name.endswith(".yaml"):
            out.update(yaml.safe_load(f.read_text()).get("demand", {}))
    return out


def demand_names() -> list[str]:
    """The demand presets (sora_compute/presets/demand/*.yaml)."""
    return list(_raw())


@cache
def load_demand(name: str) -> DemandScenario:
    """A demand preset by name."""
    raw = _raw()
    if name not in raw:
        raise UnknownDemandError(f"unknown demand preset {name!r}{did_you_mean(name, raw)} "
                                 f"(known: {', '.join(raw)}; or give a .yaml/.json file)")
    return DemandScenario.model_validate({"name": name, **raw[name]})


def load_demand_file(path: str) -> DemandScenario:
    """A demand scenario from a YAML / JSON file: a flat mapping, or one named entry (``NAME: {...}`` or
    ``demand: {NAME: {...}}``)."""
    from sora_compute.planning.scenarios import ScenarioFileError

    p = Path(path)
    try:
        text = p.read_text()
    except (OSError, UnicodeDecodeError) as e:
        raise ScenarioFileError(f"{path}: cannot read ({getattr(e, 'strerror', None) or e})") from None
    try:
        data = json.loads(text) if p.suffix.lower() == ".json" else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError):
        raise ScenarioFileError(f"{path}: not valid {'JSON' if p.suffix.lower() == '.json' else 'YAML'}") from None
    name = p.stem
    if isinstance(data, dict) and set(data) == {"demand"} and isinstance(data["demand"], dict):
        data = data["demand"]
    if isinstance(data, dict) and len(data) == 1 and "sources" not in data:
        (key, value), = data.items()
        if isinstance(value, dict):
            name, data = str(key), value
    if not isinstance(data, dict) or "sources" not in data:
        raise ScenarioFileError(f"{path}: expected a mapping with sources: (flat, or wrapped in one named entry)")
    return DemandScenario.model_validate({"name": name, **data})


def resolve_demand(arg: str | DemandScenario) -> DemandScenario:
    """A demand scenario given as a preset name or a path to a .yaml/.yml/.json file."""
    if isinstance(arg, DemandScenario):
        return arg
    if arg.lower().endswith((".yaml", ".yml", ".json")):
        return load_demand_file(arg)
    return load_demand(arg)
