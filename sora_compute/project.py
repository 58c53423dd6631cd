"""Training and inference compute projections, the GPT-3 yardstick, cluster and serving plans.

Units: FLOPs (= 2 x MACs) throughout, as GPU peak TFLOP/s and GPT-3's 3.14e23 count them;
seconds, days, GPU-hours, USD, MWh as named. "Model FLOPs" are the work the algorithm needs
(what MFU is quoted against); "hardware FLOPs" add activation recomputation (what HFU counts).
Projections count with the ``MATMUL_ONLY`` convention (matmuls, convolutions and attention;
norms are < 0.1% of a DiT and are not part of MFU accounting) unless told otherwise.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Annotated, Any, Literal

import numpy as np
import pandas as pd
import yaml
from pydantic import BaseModel, Field, model_validator

from sora_compute._frames import FrameRepr
from sora_compute._lookup import did_you_mean
from sora_compute.evaluate.params import dit_params
from sora_compute.finite import MAX_EXACT_INT, SPEC_CONFIG, FiniteFloat, require_finite
from sora_compute.flops import (
    MATMUL_ONLY,
    Count,
    CountingConvention,
    VideoGrid,
    count_dit,
    count_text_encoder,
    count_vae_decode,
    count_vae_encode,
)
from sora_compute.hardware import GPUSpec, Precision, load_gpu
from sora_compute.presets import Preset, load_preset, load_yardstick
from sora_compute.specs import MAX_FRAMES, MAX_SIDE_PX, ModelSpec, VideoSpec

__all__ = [
    "GPT3_PAPER_FLOPS",
    "GPT3_PARAMS",
    "GPT3_TOKENS",
    "GPT3_6ND_FLOPS",
    "six_nd",
    "DataBucket",
    "TrainingStage",
    "TrainingScenario",
    "TrainingEstimate",
    "estimate_training",
    "load_scenario",
    "load_scenario_file",
    "resolve_scenario",
    "sampling_defaults",
    "scenario_from_dict",
    "with_main_stage_shape",
    "ScenarioFileError",
    "UnknownScenarioError",
    "scenario_names",
    "VAETiling",
    "InferenceSettings",
    "InferenceEstimate",
    "estimate_inference",
    "Cluster",
    "ClusterPlan",
    "plan_cluster",
    "gpus_for_days",
    "budget_plan",
    "ServingPlan",
    "plan_serving",
    "sweep",
    "SweepQuery",
]

# GPT-3 175B (Brown et al. 2020, "Language Models are Few-Shot Learners", Table D.1): 3.64e3 PF-days.
_GPT3 = load_yardstick("gpt3-175b")  # presets/yardsticks.yaml, with its source
GPT3_PAPER_FLOPS = _GPT3.training_flops  # 3.14e23
GPT3_PARAMS = _GPT3.params_in_compute_table  # the paper's Table D.1 rounds 174.6B to 175B
GPT3_TOKENS = _GPT3.tokens  # 300e9


def six_nd(params: Any, tokens: Any) -> Any:
    """Training FLOPs by the 6·N·D rule: 2 FLOPs per MAC x (forward + 2 x backward) per parameter per token;
    attention's sequence-length term is ignored (Kaplan et al. 2020)."""
    return 6 * params * tokens


GPT3_6ND_FLOPS = six_nd(GPT3_PARAMS, GPT3_TOKENS)  # 3.15e23, within 0.4% of the paper's figure


class _Spec(BaseModel):
    model_config = SPEC_CONFIG  # frozen, no unknown keys, no inf / NaN


# ------------------------------------------------------------------------------------------------
# Training
# ------------------------------------------------------------------------------------------------

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
        names = [s.name for s in self.stages]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"stage names must be unique: {', '.join(map(repr, twice))} appears more than once")
        return self

    def with_model(self, model: ModelSpec) -> TrainingScenario:
        return self.model_copy(update={"model": model})


@dataclass(frozen=True, repr=False)
class TrainingEstimate(FrameRepr):
    """Training compute of a scenario: per (stage, bucket) rows and totals, in FLOPs (2 x MACs)."""

    scenario: TrainingScenario
    table: pd.DataFrame

    @property
    def model_flops(self) -> float:
        """DiT forward + backward (3 x forward) + frozen encoders run on the fly: what MFU is quoted against."""
        return float(self.table["model_flops"].sum())

    @property
    def hardware_flops(self) -> float:
        """Model FLOPs + activation recomputation: what HFU counts."""
        return float(self.table["hardware_flops"].sum())

    @property
    def video_tokens_seen(self) -> float:
        return float((self.table["video_tokens"] * self.table["samples"]).sum())

    @property
    def six_nd_flops(self) -> float:
        """The same training counted by 6·N·D (N = DiT parameters, D = video tokens seen): no attention term."""
        return six_nd(dit_params(self.scenario.model.dit), self.video_tokens_seen)

    @property
    def gpt3_multiple(self) -> float:
        """Model FLOPs / GPT-3's published 3.14e23 FLOPs."""
        return self.model_flops / GPT3_PAPER_FLOPS

    @property
    def gpt3_multiple_6nd(self) -> float:
        """Model FLOPs / GPT-3 by 6·N·D (3.15e23): both sides 2 FLOPs per MAC."""
        return self.model_flops / GPT3_6ND_FLOPS

    @property
    def six_nd_multiple(self) -> float:
        """What a parameter-count estimate says: this model's 6·N·D / GPT-3's 6·N·D."""
        return self.six_nd_flops / GPT3_6ND_FLOPS

    @property
    def main_stage(self) -> str:
        """Name of the stage with the most model FLOPs (the one what-ifs and sensitivities vary)."""
        return str(self.by_stage().sort_values("model_flops").iloc[-1]["stage"])

    def by_stage(self) -> pd.DataFrame:
        cols = ["samples", "model_flops", "hardware_flops"]
        out = self.table.groupby("stage", sort=False)[cols].sum()
        out["gpt3_multiple"] = out["model_flops"] / GPT3_PAPER_FLOPS
        return out.reset_index()

    def summary(self) -> dict[str, float]:
        return {
            "model_flops": self.model_flops,
            "hardware_flops": self.hardware_flops,
            "gpt3_multiple": self.gpt3_multiple,
            "gpt3_multiple_6nd": self.gpt3_multiple_6nd,
            "six_nd_flops": self.six_nd_flops,
            "six_nd_multiple": self.six_nd_multiple,
            "video_tokens_seen": self.video_tokens_seen,
            "samples": float(self.table["samples"].sum()),
        }

    def to_frame(self) -> pd.DataFrame:
        return self.table.copy()

    def __repr__(self) -> str:
        return (f"TrainingEstimate({self.scenario.name}: {self.model_flops:.3g} model FLOPs = "
                f"{self.gpt3_multiple:.2f}x GPT-3 175B, {self.hardware_flops:.3g} hardware FLOPs)")


def _per_sample(model: ModelSpec, video: VideoSpec | VideoGrid, scenario_flags: dict[str, Any],
                convention: CountingConvention) -> dict[str, Any]:
    """Training FLOPs per sample for one shape (or a grid of shapes)."""
    dit = count_dit(model, video, convention=convention)
    fwd = dit.flops
    sdpa = 2 * sum((t.total_macs for t in dit.terms if t.op == "sdpa"), start=0 * fwd)
    recompute = {"none": 0 * fwd, "selective": sdpa, "full": fwd}[scenario_flags["checkpointing"]]
    vae = count_vae_encode(model, video, convention=convention).flops if scenario_flags["vae_on_the_fly"] else 0 * fwd
    text = count_text_encoder(model, convention=convention).flops if scenario_flags["text_on_the_fly"] else 0
    model_flops = 3 * fwd + vae + text
    return {"video_tokens": dit.shape["tokens"], "dit_forward_flops": fwd, "dit_train_flops": 3 * fwd,
            "recompute_flops": recompute, "vae_encode_flops": vae, "text_encode_flops": text,
            "model_flops_per_sample": model_flops, "hardware_flops_per_sample": model_flops + recompute}


def estimate_training(scenario: TrainingScenario | str, convention: CountingConvention = MATMUL_ONLY
                      ) -> TrainingEstimate:
    """Training FLOPs of a scenario: per sample, 3 x DiT forward (1 forward + 2 backward), plus the
    VAE encoder and text encoder forwards when run on the fly; recomputation adds hardware FLOPs only."""
    sc = load_scenario(scenario) if isinstance(scenario, str) else scenario
    flags = {"checkpointing": sc.checkpointing, "vae_on_the_fly": sc.vae_on_the_fly,
             "text_on_the_fly": sc.text_on_the_fly}
    rows = []
    for stage in sc.stages:
        per = [(b, b.video(sc.model)) for b in stage.buckets]
        costs = [_per_sample(sc.model, v, flags, convention) for _, v in per]
        mean_tokens = sum(b.share * c["video_tokens"] for (b, _), c in zip(per, costs, strict=True))
        n = stage.num_samples(mean_tokens)
        for (b, v), c in zip(per, costs, strict=True):
            samples = n * b.share
            rows.append({
                "stage": stage.name, "width": v.width, "height": v.height, "num_frames": v.num_frames, "fps": v.fps,
                "duration_s": v.duration_s, "share": b.share, "samples": samples, **c,
                "model_flops": samples * float(c["model_flops_per_sample"]),
                "hardware_flops": samples * float(c["hardware_flops_per_sample"]),
            })
    table = pd.DataFrame(rows)
    table["share_of_model_flops"] = table["model_flops"] / table["model_flops"].sum()
    return TrainingEstimate(sc, table)


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


def with_main_stage_shape(sc: TrainingScenario, width: int | None = None, height: int | None = None,
                          duration_s: float | None = None, fps: float | None = None,
                          stage: str | None = None) -> TrainingScenario:
    """What-if: the scenario with every bucket of its dominant stage (most model FLOPs; or ``stage``, when the
    caller already knows it) at a new shape."""
    if width is None and height is None and duration_s is None and fps is None:
        return sc
    names = [st.name for st in sc.stages]
    if stage is not None and stage not in names:
        from sora_compute._lookup import did_you_mean

        raise ValueError(f"stage: scenario {sc.name!r} has no stage {stage!r}{did_you_mean(stage, names)} "
                         f"(stages: {', '.join(names)})")
    main = stage if stage is not None else estimate_training(sc).main_stage
    stages = []
    for st in sc.stages:
        if st.name == main:
            buckets = []
            for b in st.buckets:
                upd: dict[str, Any] = {"width": width or b.width, "height": height or b.height, "fps": fps or b.fps}
                if duration_s is not None:
                    upd.update(duration_s=duration_s, num_frames=None)
                elif fps is not None and b.num_frames is not None:  # keep the clip's seconds at the new rate
                    upd.update(duration_s=b.num_frames / b.fps, num_frames=None)
                buckets.append(DataBucket.model_validate({**b.model_dump(), **upd}))
            st = st.model_copy(update={"buckets": tuple(buckets)})
        stages.append(st)
    return sc.model_copy(update={"stages": tuple(stages)})


# ------------------------------------------------------------------------------------------------
# Inference
# ------------------------------------------------------------------------------------------------

class VAETiling(_Spec):
    """Decode in overlapping tiles: spatial tiles of ``tile_px`` with ``overlap_px`` overlap, and optionally
    temporal tiles of ``tile_latent_frames`` latent frames with ``overlap_latent_frames`` overlap."""

    tile_px: int = Field(gt=0, description="spatial tile edge, pixels")
    overlap_px: int = Field(default=0, ge=0, description="overlap between neighbouring tiles, pixels")
    tile_latent_frames: int | None = Field(default=None, gt=0, description="temporal tile, latent frames")
    overlap_latent_frames: int = Field(default=0, ge=0)

    @model_validator(mode="after")
    def _check(self) -> VAETiling:
        if self.overlap_px >= self.tile_px:
            raise ValueError(f"overlap_px={self.overlap_px} must be smaller than tile_px={self.tile_px}")
        if self.tile_latent_frames is not None and self.overlap_latent_frames >= self.tile_latent_frames:
            raise ValueError("overlap_latent_frames must be smaller than tile_latent_frames")
        return self


def _tiles(size: int, tile: int, overlap: int) -> tuple[int, int]:
    """(number of tiles, tile size) covering ``size`` with stride tile - overlap."""
    if size <= tile:
        return 1, size
    return 1 + math.ceil((size - tile) / (tile - overlap)), tile


class InferenceSettings(_Spec):
    """Sampling settings that set the cost of generating one video."""

    steps: int = Field(default=50, gt=0, description="denoising steps (4-8 for step-distilled samplers)")
    cfg: bool = Field(default=True, description="classifier-free guidance: 2 DiT evaluations per step")
    cfg_mode: Literal["batched", "sequential"] = Field(
        default="batched", description="CFG pair as one batch of 2 (weights read once) or two passes; same FLOPs")
    cache_skip_fraction: float = Field(default=0.0, ge=0, lt=1,
                                       description="share of DiT evaluations skipped by feature caching "
                                                   "(TeaCache / PAB style)")
    vae_tiling: VAETiling | None = None

    @property
    def dit_evaluations(self) -> float:
        """DiT forwards per video (per sample of the CFG pair counted)."""
        return self.steps * (2 if self.cfg else 1) * (1 - self.cache_skip_fraction)


@dataclass(frozen=True, repr=False)
class InferenceEstimate(FrameRepr):
    """FLOPs to generate one video, by component, and per minute of video and per 1k videos."""

    model: ModelSpec
    video: VideoSpec
    settings: InferenceSettings
    counts: dict[str, Count]  # one evaluation of each component
    multipliers: dict[str, float]  # evaluations per video

    @property
    def flops_by_component(self) -> dict[str, float]:
        return {k: float(c.flops) * self.multipliers[k] for k, c in self.counts.items()}

    @property
    def flops_per_video(self) -> float:
        return sum(self.flops_by_component.values())

    @property
    def flops_per_minute(self) -> float:
        return self.flops_per_video * 60 / self.video.duration_s

    @property
    def flops_per_1k_videos(self) -> float:
        return 1000 * self.flops_per_video

    def to_frame(self) -> pd.DataFrame:
        f = self.flops_by_component
        total = sum(f.values())
        return pd.DataFrame({"component": list(f), "evaluations": [self.multipliers[k] for k in f],
                             "flops": list(f.values()), "share": [v / total for v in f.values()]})

    def __repr__(self) -> str:
        return (f"InferenceEstimate({self.video.width}x{self.video.height}x{self.video.num_frames}: "
                f"{self.flops_per_video:.3g} FLOPs per video, {self.flops_per_minute:.3g} per minute)")


def sampling_defaults(model: ModelSpec | Preset | str) -> InferenceSettings:
    """The sampling settings a model runs with by default: its preset's published steps and CFG (a preset, or a model
    spec named after one), else InferenceSettings() (50 steps, CFG)."""
    from sora_compute.presets import preset_names

    name = model if isinstance(model, str) else model.name
    if name in preset_names():
        sampling = load_preset(name).sampling
        if sampling is not None:
            return InferenceSettings(steps=sampling.steps, cfg=sampling.cfg)
    return InferenceSettings()


def estimate_inference(model: ModelSpec | Preset | str, video: VideoSpec | None = None,
                       settings: InferenceSettings | None = None,
                       convention: CountingConvention = MATMUL_ONLY) -> InferenceEstimate:
    """Per video: text encoding (x2 with CFG: the negative prompt), steps x DiT forward (x2 with CFG,
    less cached steps), and one VAE decode (summed over tiles when tiled). Without ``settings``, the preset's published
    sampling defaults (steps, CFG; ``sampling_defaults``) are used, for a preset or a model named after one."""
    if isinstance(model, str):
        model = load_preset(model)
    s = settings if settings is not None else sampling_defaults(model)
    if isinstance(model, Preset):
        video = video or model.video
        model = model.model
    if video is None:
        raise ValueError("give a video shape (or a preset, whose native shape is used)")
    cfg_batch = 2 if s.cfg and s.cfg_mode == "batched" else 1
    dit = count_dit(model, video, batch=cfg_batch, convention=convention)
    counts = {"text_encode": count_text_encoder(model, convention=convention), "dit": dit}
    mult = {"text_encode": 2.0 if s.cfg else 1.0, "dit": s.dit_evaluations / cfg_batch}
    if s.vae_tiling is None:
        counts["vae_decode"], mult["vae_decode"] = count_vae_decode(model, video, convention=convention), 1.0
    else:
        counts["vae_decode"], mult["vae_decode"] = _tiled_decode(model, video, s.vae_tiling, convention)
    return InferenceEstimate(model, video, s, counts, mult)


def _tiled_decode(model: ModelSpec, video: VideoSpec, tiling: VAETiling, convention: CountingConvention
                  ) -> tuple[Count, float]:
    """One tile's decode and the number of tiles (tiles cut in latent space, all of one size)."""
    s = model.vae.spatial_compression
    lat = model.latent_shape(video)
    tile, overlap = max(1, tiling.tile_px // s), tiling.overlap_px // s
    n_h, th = _tiles(lat.height, tile, overlap)
    n_w, tw = _tiles(lat.width, tile, overlap)
    n_t, tt = (1, lat.frames) if tiling.tile_latent_frames is None else _tiles(
        lat.frames, tiling.tile_latent_frames, tiling.overlap_latent_frames)
    frames = model.vae.decoded_frames(tt)
    tile_video = VideoSpec(width=tw * s, height=th * s, num_frames=frames, fps=video.fps)
    # the tile is decoded from latents directly: only the VAE's divisibility applies, not the DiT patch
    vae_only = model.model_copy(update={"dit": model.dit.model_copy(update={"patch_size": (1, 1, 1)})})
    return count_vae_decode(vae_only, tile_video, convention=convention), float(n_h * n_w * n_t)


# ------------------------------------------------------------------------------------------------
# Clusters
# ------------------------------------------------------------------------------------------------

class Cluster(_Spec):
    """GPUs of one type, and the assumptions that turn FLOPs into time, money and energy."""

    gpu: str = Field(description="catalog key, e.g. h100-sxm (see `sora-compute gpus`)")
    count: int = Field(gt=0, description="number of GPUs")
    mfu: float | None = Field(default=None, gt=0, le=1, description="model-FLOPs utilisation (default: per GPU)")
    pue: float = Field(default=1.2, ge=1, description="datacentre power usage effectiveness")
    price_usd_per_hour: float | None = Field(default=None, gt=0, description="USD per GPU-hour (default: catalog)")
    power_w: float | None = Field(default=None, gt=0, description="W per GPU (default: catalog TDP)")
    precision: Precision = Field(default="bf16", description="bf16 or fp8 peak")

    @model_validator(mode="after")
    def _known(self) -> Cluster:
        spec = load_gpu(self.gpu)  # raises UnknownGPUError with a did-you-mean
        spec.peak_flops(self.precision)
        return self

    @property
    def spec(self) -> GPUSpec:
        return load_gpu(self.gpu)

    @property
    def effective_mfu(self) -> float:
        return self.mfu if self.mfu is not None else self.spec.default_mfu

    @property
    def price(self) -> float:
        return self.price_usd_per_hour if self.price_usd_per_hour is not None else self.spec.price_usd_per_hour

    @property
    def power(self) -> float:
        """W per GPU (NaN when the catalog has no TDP and none was given)."""
        p = self.power_w if self.power_w is not None else self.spec.tdp_w
        return float("nan") if p is None else p

    @property
    def sustained_flops(self) -> float:
        """Model FLOP/s the whole cluster sustains: count x peak x MFU."""
        return self.count * self.spec.peak_flops(self.precision) * self.effective_mfu


@dataclass(frozen=True, repr=False)
class ClusterPlan(FrameRepr):
    """Time, GPU-hours, cost and energy to run ``model_flops`` on ``cluster`` at its MFU."""

    cluster: Cluster
    model_flops: float
    hardware_flops: float

    @property
    def seconds(self) -> float:
        """Wall-clock seconds = model FLOPs / (GPUs x peak x MFU)."""
        return self.model_flops / self.cluster.sustained_flops

    @property
    def days(self) -> float:
        return self.seconds / 86400

    @property
    def gpu_hours(self) -> float:
        return self.cluster.count * self.seconds / 3600

    @property
    def gpu_days(self) -> float:
        return self.gpu_hours / 24

    @property
    def cost_usd(self) -> float:
        return self.gpu_hours * self.cluster.price

    @property
    def energy_mwh(self) -> float:
        """GPU board power x hours x PUE (servers' CPUs and network only as far as PUE covers them)."""
        return self.gpu_hours * self.cluster.power * self.cluster.pue / 1e6

    @property
    def hfu(self) -> float:
        """Hardware-FLOPs utilisation implied by the MFU: MFU x hardware / model FLOPs."""
        return self.cluster.effective_mfu * self.hardware_flops / self.model_flops

    def summary(self) -> dict[str, Any]:
        c = self.cluster
        return {"gpu": c.gpu, "gpus": c.count, "precision": c.precision, "mfu": c.effective_mfu, "hfu": self.hfu,
                "model_flops": self.model_flops, "hardware_flops": self.hardware_flops, "days": self.days,
                "gpu_hours": self.gpu_hours, "gpu_days": self.gpu_days, "cost_usd": self.cost_usd,
                "energy_mwh": self.energy_mwh, "basis": "time = model FLOPs / (GPUs x peak x MFU)"}

    def to_frame(self) -> pd.DataFrame:
        return pd.DataFrame([self.summary()])

    def __repr__(self) -> str:
        return (f"ClusterPlan({self.cluster.count} x {self.cluster.gpu} at MFU {self.cluster.effective_mfu:.0%}: "
                f"{self.days:,.1f} days, {self.gpu_hours:,.0f} GPU-hours, ${self.cost_usd:,.0f}, "
                f"{self.energy_mwh:,.0f} MWh)")


def plan_cluster(work: TrainingEstimate | float, cluster: Cluster) -> ClusterPlan:
    """Run a training estimate (or a number of model FLOPs) on a cluster."""
    if isinstance(work, TrainingEstimate):
        return ClusterPlan(cluster, work.model_flops, work.hardware_flops)
    return ClusterPlan(cluster, float(work), float(work))


def gpus_for_days(work: TrainingEstimate | float, gpu: str, days: float, mfu: float | None = None,
                  precision: Precision = "bf16") -> int:
    """Fewest GPUs that finish ``work`` within ``days`` at the given (or default) MFU."""
    require_finite("days", days, positive=True)
    if mfu is not None and not 0 < require_finite("mfu", mfu) <= 1:
        raise ValueError(f"mfu must be in (0, 1], got {mfu!r}")
    flops = work.model_flops if isinstance(work, TrainingEstimate) else float(work)
    spec = load_gpu(gpu)
    per_gpu = spec.peak_flops(precision) * (mfu if mfu is not None else spec.default_mfu)
    return max(1, math.ceil(flops / (per_gpu * days * 86400) - 1e-9))


def budget_plan(work: TrainingEstimate | float, cluster: Cluster, budget_usd: float) -> dict[str, float]:
    """What ``budget_usd`` buys on ``cluster``: affordable days, the share of ``work`` it completes, and the
    budget that completes it (cost does not depend on GPU count at fixed MFU; time does)."""
    require_finite("budget_usd", budget_usd, positive=True)
    plan = plan_cluster(work, cluster)
    affordable_days = budget_usd / (cluster.count * cluster.price * 24)
    return {"affordable_days": affordable_days, "days_needed": plan.days,
            "fraction_completed": min(1.0, affordable_days / plan.days), "budget_needed_usd": plan.cost_usd}


# ------------------------------------------------------------------------------------------------
# Serving
# ------------------------------------------------------------------------------------------------

@dataclass(frozen=True, repr=False)
class ServingPlan(FrameRepr):
    """Latency and throughput of generating videos on ``gpus_per_video`` GPUs of one type."""

    estimate: InferenceEstimate
    gpu: GPUSpec
    gpus_per_video: int
    mfu: float
    precision: Precision
    roofline_seconds: float  # sum over layers of max(FLOPs / peak, bytes / bandwidth), perfectly split
    price_usd_per_hour: float | None = None  # USD per GPU-hour (None: the catalog's)

    @property
    def price(self) -> float:
        return self.price_usd_per_hour if self.price_usd_per_hour is not None else self.gpu.price_usd_per_hour

    @property
    def latency_s(self) -> float:
        """Compute-bound latency: FLOPs per video / (GPUs x peak x MFU)."""
        return self.estimate.flops_per_video / (self.gpus_per_video * self.gpu.peak_flops(self.precision) * self.mfu)

    @property
    def latency_lower_bound_s(self) -> float:
        """Roofline lower bound: every layer at peak compute or peak memory bandwidth, whichever binds."""
        return self.roofline_seconds

    @property
    def videos_per_gpu_hour(self) -> float:
        return 3600 / (self.latency_s * self.gpus_per_video)

    @property
    def video_minutes_per_gpu_hour(self) -> float:
        return self.videos_per_gpu_hour * self.estimate.video.duration_s / 60

    @property
    def cost_per_video_usd(self) -> float:
        return self.price / self.videos_per_gpu_hour

    @property
    def cost_per_video_minute_usd(self) -> float:
        return self.cost_per_video_usd * 60 / self.estimate.video.duration_s

    def gpus_for(self, videos_per_day: float) -> int:
        """GPUs needed to generate ``videos_per_day`` at this latency, round the clock."""
        return max(1, math.ceil(videos_per_day * self.latency_s * self.gpus_per_video / 86400 - 1e-9))

    def to_frame(self) -> pd.DataFrame:
        return pd.DataFrame([self.summary()])

    def __repr__(self) -> str:
        return (f"ServingPlan({self.gpus_per_video} x {self.gpu.key}: {self.latency_s:,.0f} s per video at MFU "
                f"{self.mfu:.0%} (roofline bound {self.latency_lower_bound_s:,.0f} s), "
                f"{self.videos_per_gpu_hour:.3g} videos per GPU-hour)")

    def summary(self) -> dict[str, Any]:
        e = self.estimate
        return {"gpu": self.gpu.key, "gpus_per_video": self.gpus_per_video, "mfu": self.mfu,
                "flops_per_video": e.flops_per_video, "latency_s": self.latency_s,
                "latency_lower_bound_s": self.latency_lower_bound_s, "videos_per_gpu_hour": self.videos_per_gpu_hour,
                "video_minutes_per_gpu_hour": self.video_minutes_per_gpu_hour,
                "price_usd_per_gpu_hour": self.price, "cost_per_video_usd": self.cost_per_video_usd,
                "cost_per_video_minute_usd": self.cost_per_video_minute_usd}


def plan_serving(estimate: InferenceEstimate, gpu: str, gpus_per_video: int = 1, mfu: float | None = None,
                 precision: Precision = "bf16", bytes_per_element: int = 2,
                 price_usd_per_hour: float | None = None) -> ServingPlan:
    """Serving plan for one inference estimate on ``gpus_per_video`` GPUs (ideal split for the bound), at the
    catalog's rental price or ``price_usd_per_hour``."""
    if isinstance(gpus_per_video, bool) or not isinstance(gpus_per_video, int) or gpus_per_video < 1:
        raise ValueError(f"gpus_per_video must be an integer >= 1, got {gpus_per_video!r}")
    if mfu is not None and not 0 < require_finite("mfu", mfu) <= 1:
        raise ValueError(f"mfu must be in (0, 1], got {mfu!r}")
    if price_usd_per_hour is not None:
        require_finite("price_usd_per_hour", price_usd_per_hour, positive=True)
    spec = load_gpu(gpu)
    peak, bw = spec.peak_flops(precision), spec.hbm_bytes_per_s
    seconds = 0.0
    for name, count in estimate.counts.items():
        per_eval = sum(max(2 * float(t.macs) / peak, float(t.elements) * bytes_per_element / bw) * t.instances
                       for t in count.terms)
        seconds += per_eval * estimate.multipliers[name]
    return ServingPlan(estimate, spec, gpus_per_video, mfu if mfu is not None else spec.default_mfu, precision,
                       seconds / gpus_per_video, price_usd_per_hour)


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
