"""Memory per GPU for training and inference, parallel layouts that fit, and the largest shapes that fit.

Units: bytes (exact ints) and GiB (= 2^30 bytes) in the breakdowns; GPU capacity from the catalog
(vendor GB, decimal) with a usable fraction left for the CUDA context, communication buffers and
allocator fragmentation.

Training memory per GPU = model states (weights, gradients, fp32 master weights, optimizer moments,
EMA; divided by TP x PP, and by DP as far as ZeRO shards them) + saved activations of the blocks on
the GPU's pipeline stage for the micro-batches in flight (divided by TP x CP: tensor/sequence and
context parallelism split the tokens) + a transient working set (one block recomputed or being
back-propagated; FSDP gather buffers; frozen encoders run on the fly).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from importlib import resources
from typing import Any, Literal, get_args

import numpy as np
import pandas as pd
import yaml
from pydantic import BaseModel, ConfigDict, Field

from sora_compute._frames import FrameRepr
from sora_compute.evaluate.params import dit_block_params, dit_params, text_encoder_params, vae_params
from sora_compute.evaluate.saved import ActivationDtypes, AttentionKernel, Checkpointing, dit_block_saved, dit_saved
from sora_compute.hardware import GPUSpec, resolve_gpu
from sora_compute.memory.activations import dit_inference_peak, text_encoder_peak, vae_decode_peak
from sora_compute.memory.vae_schedule import decode_schedule_peak, encode_schedule_peak
from sora_compute.specs import ModelSpec, VideoShapeError, VideoSpec, Workload, as_workload
from sora_compute.specs.vae.schedule import DecodeSchedule, official_decode_schedule, official_encode_schedule

__all__ = [
    "GiB",
    "PrecisionPolicy",
    "ParallelLayout",
    "MemoryBreakdown",
    "training_memory",
    "TrainingMemoryBasis",
    "training_memory_basis",
    "layout_memory",
    "layout_peak",
    "USABLE_FRACTION",
    "search_layouts",
    "max_feasible",
    "inference_memory",
    "recommend_vae_tiling",
    "InferenceStage",
]

GiB = 2**30
#: the share of HBM a plan may allocate (the rest: allocator fragmentation, CUDA context, workspaces), the default of
#: every fit check (training, inference, the layout search)
USABLE_FRACTION = 0.92
OPTIMIZER_STATE_BYTES = {"adamw": 8, "sgd_momentum": 4, "sgd": 0}  # per parameter: fp32 moments


class _Spec(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)


def _one_of(name: str, value: Any, allowed: Any) -> None:
    """Reject a value outside a Literal (e.g. checkpointing="FULL"): the API refuses what the CLI refuses."""
    options = get_args(allowed)
    if value not in options:
        raise ValueError(f"{name}: expected one of {', '.join(map(repr, options))}, got {value!r}")


class PrecisionPolicy(_Spec):
    """Bytes per element of each model state (mixed-precision AdamW by default)."""

    weight_bytes: int = Field(default=2, gt=0, description="weights used in forward/backward (bf16)")
    grad_bytes: int = Field(default=2, gt=0, description="gradients (bf16)")
    master_bytes: int = Field(default=4, ge=0, description="fp32 master weights (0: none)")
    optimizer: Literal["adamw", "sgd_momentum", "sgd"] = Field(default="adamw")
    ema: bool = Field(default=False, description="keep an EMA copy of the weights (fp32)")
    ema_bytes: int = Field(default=4, gt=0)
    act_bytes: int = Field(default=2, gt=0, description="activations (bf16)")

    @property
    def optimizer_bytes(self) -> int:
        return OPTIMIZER_STATE_BYTES[self.optimizer]


class ParallelLayout(_Spec):
    """How training is split: data (dp, with ZeRO stage), tensor (tp), context (cp), pipeline (pp)."""

    dp: int = Field(default=1, gt=0)
    tp: int = Field(default=1, gt=0)
    cp: int = Field(default=1, gt=0)
    pp: int = Field(default=1, gt=0)
    zero: Literal[0, 1, 2, 3] = Field(default=1, description="ZeRO stage (3 = FSDP full sharding)")
    cp_mode: Literal["ulysses", "ring"] = Field(default="ring", description="context-parallel attention")
    micro_batch: int = Field(default=1, gt=0, description="samples per micro-batch")

    @property
    def gpus(self) -> int:
        return self.dp * self.tp * self.cp * self.pp

    @property
    def model_parallel(self) -> int:
        return self.tp * self.cp * self.pp

    def label(self) -> str:
        return f"TP{self.tp} x CP{self.cp} x PP{self.pp} x DP{self.dp} (ZeRO-{self.zero}, mb {self.micro_batch})"


@dataclass(frozen=True, repr=False)
class MemoryBreakdown(FrameRepr):
    """Bytes per GPU by component, and whether they fit a GPU."""

    components: dict[str, int]
    transient: dict[str, int]  # alternatives of which the largest is live at the peak
    gpu: GPUSpec
    usable_fraction: float
    notes: tuple[str, ...] = ()
    before_forward: dict[str, int] = field(default_factory=dict)  # encoders run on the fly, before the forward
    states: tuple[str, ...] = ()  # the components live then (model states; no gradients, activations or buffers)

    @property
    def resident_bytes(self) -> int:
        return sum(self.components.values())

    @property
    def before_forward_bytes(self) -> int:
        """Allocated bytes while the largest on-the-fly encode runs: the model states and that encode's peak."""
        if not self.before_forward:
            return 0
        return sum(self.components[k] for k in self.states) + max(self.before_forward.values())

    @property
    def peak_bytes(self) -> int:
        """Allocated bytes (live tensors) at the peak: the step's (resident + the largest transient) or an on-the-fly
        encode's before the forward, whichever is larger."""
        step = self.resident_bytes + (max(self.transient.values()) if self.transient else 0)
        return max(step, self.before_forward_bytes)

    @property
    def reserved_bytes(self) -> int:
        """Reserved bytes at the peak: allocated x (1 + allocator margin) + CUDA context + cuBLAS workspace
        (``data/memory_overheads.yaml``, as the inference timeline)."""
        from sora_compute.memory.pipeline import overheads  # the overheads live beside the pipeline timeline

        return overheads(self.gpu).reserved(self.peak_bytes)

    @property
    def capacity_bytes(self) -> float:
        return self.gpu.hbm_bytes * self.usable_fraction

    @property
    def fits(self) -> bool:
        return self.peak_bytes <= self.capacity_bytes

    def to_frame(self) -> pd.DataFrame:
        rows = [(k, v, "resident") for k, v in self.components.items()]
        if self.transient:
            k = max(self.transient, key=lambda x: self.transient[x])
            rows.append((f"peak transient: {k}", self.transient[k], "transient"))
        if self.before_forward:
            k = max(self.before_forward, key=lambda x: self.before_forward[x])
            rows.append((f"before the forward, on the model states alone: {k}", self.before_forward[k],
                         "before forward"))
        df = pd.DataFrame(rows, columns=["component", "bytes", "kind"])
        df["GiB"] = df["bytes"] / GiB
        return df

    def summary(self) -> dict[str, object]:
        return {"gpu": self.gpu.key, "peak_GiB": self.peak_bytes / GiB, "reserved_GiB": self.reserved_bytes / GiB,
                "capacity_GiB": self.capacity_bytes / GiB, "fits": self.fits,
                "headroom_GiB": (self.capacity_bytes - self.peak_bytes) / GiB}

    def __repr__(self) -> str:
        verdict = "fits" if self.fits else "does NOT fit"
        return (f"MemoryBreakdown({self.peak_bytes / GiB:,.1f} GiB peak per GPU, {verdict} in "
                f"{self.capacity_bytes / GiB:,.1f} GiB usable of {self.gpu.key})")


SINGLE_GPU = ParallelLayout()
MIXED_ADAMW = PrecisionPolicy()


def _shard(n: Any, by: Any) -> Any:
    """ceil(n / by): the largest shard (ints or int arrays)."""
    return -(-n // by)


@dataclass(frozen=True)
class TrainingMemoryBasis:
    """The layout-independent inputs of training memory for one shape, micro-batch size, checkpointing policy and
    attention kernel (bytes, parameters): computed once, then evaluated for any number of layouts."""

    params: int
    block_params: int
    blocks: int
    per_block_saved: int  # the largest block's saved activations at the micro-batch (whole block, one GPU)
    outside_saved: int  # embedders and final layer
    full_block: int  # one block's activations live in backward (recomputed or kept)
    resident: dict[str, int]  # frozen encoders kept on the GPU
    transient: dict[str, int]  # alternatives live on top of the step's resident bytes
    before_forward: dict[str, int] = field(default_factory=dict)  # encoders run on the fly, on the model states


def training_memory_basis(
    w: Workload, micro_batch: int = 1, precision: PrecisionPolicy = MIXED_ADAMW, checkpointing: Checkpointing = "none",
    kernel: AttentionKernel = "fused", vae_on_the_fly: bool = False, text_on_the_fly: bool = False,
    encode: DecodeSchedule | None = None,
) -> TrainingMemoryBasis:
    """The layout-independent inputs of ``training_memory`` (see ``layout_memory``); ``encode``: how the VAE encodes
    on the fly (None: the family's official schedule, ``official_encode_schedule``)."""
    model, video, lat = w.model, w.video, w.latent
    dit = model.dit
    grid = (lat.tokens_t, lat.tokens_h, lat.tokens_w)
    L = w.text_tokens
    dt = ActivationDtypes(precision.act_bytes, 4)
    mb = micro_batch
    saved = dit_saved(dit, grid, L, mb, checkpointing, kernel, dt)
    full_block = max(sum(dit_block_saved(dit, grid, L, mb, mode, "none", kernel, dt).values())
                     for mode in saved.blocks)
    resident: dict[str, int] = {}
    transient: dict[str, int] = {}  # none besides the block's backward (added per layout)
    before: dict[str, int] = {}
    if vae_on_the_fly:
        resident["frozen VAE encoder weights"] = vae_params(model.vae)[0] * precision.weight_bytes
        before["VAE encode of the micro-batch"] = encode_schedule_peak(
            model.vae, (video.num_frames, video.height, video.width),
            encode if encode is not None else official_encode_schedule(model.vae.family, model.name), mb,
            precision.act_bytes)
    if text_on_the_fly and model.text_encoders:
        resident["frozen text encoder weights"] = (sum(text_encoder_params(e) for e in model.text_encoders)
                                                   * precision.weight_bytes)
        before["text encode of the micro-batch"] = max(
            text_encoder_peak(e, n, mb, precision.act_bytes)
            for e, n in zip(model.text_encoders, model.text_encoder_tokens(), strict=True))
    return TrainingMemoryBasis(dit_params(dit), dit_block_params(dit), dit.num_blocks,
                               max(saved.per_block_bytes.values()), sum(saved.outside.values()), full_block,
                               resident, transient, before)


def _zero_group(zero: Any, stage: int, group: Any) -> Any:
    """The ZeRO shard group of a state sharded from ``stage`` on: ``group`` (DP x CP ranks) or 1."""
    return np.where(np.asarray(zero) >= stage, group, 1)


_OVERHEADS = yaml.safe_load(resources.files("sora_compute.data").joinpath("memory_overheads.yaml").read_text())
_DS_BUCKET = int(_OVERHEADS["deepspeed_reduce_bucket_elements"])  # elements
_FSDP_UNITS = int(_OVERHEADS["fsdp_gathered_units"])
DS_BUCKET = "DeepSpeed gradient bucket (ZeRO-1/2 reduce_bucket_size)"
FSDP_GRAD = "FSDP unsharded gradient of one block (before its reduce-scatter)"
DDP_BUCKETS = "DDP gradient buckets (ZeRO-0: a copy of the gradients)"
#: components absent while an on-the-fly encode runs before the forward (gradients freed by zero_grad)
_STEP_ONLY = ("gradients", "saved activations (DiT blocks)", "saved activations (embedders, final layer)",
              "FSDP gather buffers (2 blocks)", FSDP_GRAD, DS_BUCKET, DDP_BUCKETS)


def layout_peak(basis: TrainingMemoryBasis, dp: Any, tp: Any, cp: Any, pp: Any, zero: Any,
                precision: PrecisionPolicy = MIXED_ADAMW) -> Any:
    """Allocated peak bytes per GPU of ``layout_memory``'s layouts: every resident component plus the largest
    transient (float64; an array for array layouts)."""
    comps, trans = layout_memory(basis, dp, tp, cp, pp, zero, precision)
    shape = np.broadcast_shapes(*(np.shape(v) for v in (*comps.values(), *trans.values())))
    return sum(np.asarray(v, dtype=np.float64) for v in comps.values()) + np.max(
        np.stack([np.broadcast_to(np.asarray(v, dtype=np.float64), shape) for v in trans.values()]), axis=0)


def layout_memory(basis: TrainingMemoryBasis, dp: Any, tp: Any, cp: Any, pp: Any, zero: Any,
                  precision: PrecisionPolicy = MIXED_ADAMW) -> tuple[dict[str, Any], dict[str, Any]]:
    """(resident components, transient alternatives) in bytes per GPU for layouts given as ints or equal-length
    int arrays (the layout search evaluates thousands at once).

    Model states are split by TP x PP and, as far as the ZeRO stage goes, sharded over the DP x CP ranks (Megatron's
    distributed optimizer shards over DP x CP; FSDP over the whole world with the Ulysses/ring groups inside it):
    stage >= 1 the fp32 master, optimizer moments and EMA; >= 2 the gradients; 3 the weights. Saved activations:
    the blocks of one pipeline stage x the pp micro-batches in flight (1F1B), divided by TP x CP (sequence
    parallel and context parallel split the tokens). Communication buffers (``data/memory_overheads.yaml``, sourced):
    ZeRO-0 read as PyTorch DDP's, buckets holding a copy of the gradients; ZeRO-1/2 as DeepSpeed's, one gradient bucket
    of reduce_bucket_size elements in the 16-bit dtype for the backward; ZeRO-3 as FSDP's, two gathered blocks and one
    block's unsharded gradient before its reduce-scatter."""
    shard_group = np.asarray(dp) * np.asarray(cp)
    p_local = _shard(basis.params, np.asarray(tp) * np.asarray(pp))
    comps: dict[str, Any] = {
        "DiT weights": _shard(p_local * precision.weight_bytes, _zero_group(zero, 3, shard_group)),
        "gradients": _shard(p_local * precision.grad_bytes, _zero_group(zero, 2, shard_group)),
        "fp32 master weights": _shard(p_local * precision.master_bytes, _zero_group(zero, 1, shard_group)),
        "optimizer state": _shard(p_local * precision.optimizer_bytes, _zero_group(zero, 1, shard_group)),
    }
    if precision.ema:
        comps["EMA weights"] = _shard(p_local * precision.ema_bytes, _zero_group(zero, 1, shard_group))
    split = np.asarray(tp) * np.asarray(cp)
    blocks_per_stage = _shard(basis.blocks, np.asarray(pp))
    in_flight = np.asarray(pp)  # 1F1B: the first stage holds pp micro-batches
    comps["saved activations (DiT blocks)"] = _shard(basis.per_block_saved * blocks_per_stage * in_flight, split)
    comps["saved activations (embedders, final layer)"] = _shard(basis.outside_saved * in_flight, split)
    block = _shard(basis.block_params, np.asarray(tp))
    fsdp = np.asarray(zero) >= 3
    comps["FSDP gather buffers (2 blocks)"] = np.where(fsdp, _FSDP_UNITS * block * precision.weight_bytes, 0)
    comps[FSDP_GRAD] = np.where(fsdp, block * precision.grad_bytes, 0)
    comps[DS_BUCKET] = np.where(fsdp | (np.asarray(zero) == 0), 0, _DS_BUCKET * precision.weight_bytes)
    comps[DDP_BUCKETS] = np.where(np.asarray(zero) == 0, p_local * precision.grad_bytes, 0)
    comps.update(basis.resident)
    transient: dict[str, Any] = {
        "one block's activations in backward (recomputed or live)": _shard(basis.full_block, split),
        **basis.transient}
    return comps, transient


def training_memory(
    model: ModelSpec | Workload,
    video: VideoSpec | None,
    layout: ParallelLayout = SINGLE_GPU,
    gpu: str | GPUSpec = "h100-sxm",
    precision: PrecisionPolicy = MIXED_ADAMW,
    checkpointing: Checkpointing = "none",
    kernel: AttentionKernel = "fused",
    vae_on_the_fly: bool = False,
    text_on_the_fly: bool = False,
    usable_fraction: float = USABLE_FRACTION,
    encode: DecodeSchedule | None = None,
) -> MemoryBreakdown:
    """Training memory per GPU for one video shape under a parallel layout (``model`` may be a Workload, with
    ``video`` None); ZeRO shards over the DP x CP ranks (``layout_memory``). ``encode``: the VAE encode schedule of
    latents made on the fly (None: the family's official one)."""
    _one_of("checkpointing", checkpointing, Checkpointing)
    _one_of("kernel", kernel, AttentionKernel)
    if not 0 < usable_fraction <= 1:
        raise ValueError(f"usable_fraction: expected a number in (0, 1], got {usable_fraction!r}")
    wl = as_workload(model, video)
    dit = wl.model.dit
    notes = []
    if layout.pp > dit.num_blocks:
        raise ValueError(f"pp={layout.pp} exceeds the DiT's {dit.num_blocks} blocks")
    if layout.tp > 1 and dit.num_heads % layout.tp:
        raise ValueError(f"tp={layout.tp} must divide num_heads={dit.num_heads}")
    if layout.cp_mode == "ulysses" and dit.num_heads % (layout.tp * layout.cp):
        raise ValueError(f"Ulysses context parallelism needs tp x cp = {layout.tp * layout.cp} to divide "
                         f"num_heads={dit.num_heads}; use cp_mode='ring'")
    basis = training_memory_basis(wl, layout.micro_batch, precision, checkpointing, kernel, vae_on_the_fly,
                                  text_on_the_fly, encode)
    comps, transient = layout_memory(basis, layout.dp, layout.tp, layout.cp, layout.pp, layout.zero, precision)
    comps = {k: int(v) for k, v in comps.items() if int(v) or k not in _STEP_ONLY[3:]}
    if layout.cp > 1 and layout.cp_mode == "ring":
        notes.append("ring attention: K/V chunks in flight add ~2 x (tokens/cp) x d per layer (not counted)")
    spec = resolve_gpu(gpu)
    mem = MemoryBreakdown(comps, {k: int(v) for k, v in transient.items()}, spec, usable_fraction, tuple(notes),
                          dict(basis.before_forward), tuple(k for k in comps if k not in _STEP_ONLY))
    if mem.fits and mem.reserved_bytes > spec.hbm_bytes:
        notes.append(f"the allocated peak fits the usable {usable_fraction:.0%} of HBM, but reserved bytes (allocator "
                     "margin, CUDA context, cuBLAS workspace) exceed the GPU's memory")
        mem = MemoryBreakdown(comps, mem.transient, spec, usable_fraction, tuple(notes), mem.before_forward, mem.states)
    return mem


def _divisors(n: int, cap: int) -> list[int]:
    return [k for k in range(1, min(n, cap) + 1) if n % k == 0]


def search_layouts(
    model: ModelSpec | Workload,
    video: VideoSpec | None,
    gpu: str | GPUSpec = "h100-sxm",
    gpus: int = 1024,
    precision: PrecisionPolicy = MIXED_ADAMW,
    checkpointing: Checkpointing = "full",
    kernel: AttentionKernel = "fused",
    zero_stages: tuple[int, ...] = (1, 2, 3),
    micro_batch: int = 1,
    max_tp: int = 8,
    max_cp: int = 64,
    max_pp: int = 16,
) -> pd.DataFrame:
    """Every layout TP x CP x PP x DP (x ZeRO stage) of ``gpus`` GPUs considered, with its peak memory per GPU
    and whether it fits; sorted so the first fitting row is the smallest model-parallel layout (then the
    least memory). TP divides the heads and stays within a node (<= 8); CP and PP are powers of two."""
    _one_of("checkpointing", checkpointing, Checkpointing)
    _one_of("kernel", kernel, AttentionKernel)
    w = as_workload(model, video)  # the latent shape, once for every layout
    spec = resolve_gpu(gpu)  # the GPU, once for every layout
    rows = []
    heads, depth = w.model.dit.num_heads, w.model.dit.num_blocks
    pows = [2**k for k in range(0, 12)]
    for tp in _divisors(heads, max_tp):
        for cp in (c for c in pows if c <= max_cp):
            for pp in (p for p in pows if p <= min(max_pp, depth)):
                mp = tp * cp * pp
                if gpus % mp:
                    continue
                for zero in zero_stages:
                    layout = ParallelLayout.model_validate({"dp": gpus // mp, "tp": tp, "cp": cp, "pp": pp,
                                                            "zero": zero, "micro_batch": micro_batch})
                    mem = training_memory(w, None, layout, spec, precision, checkpointing, kernel)
                    rows.append({"layout": layout.label(), "tp": tp, "cp": cp, "pp": pp, "dp": layout.dp,
                                 "zero": zero, "model_parallel": mp, "peak_GiB": mem.peak_bytes / GiB,
                                 "capacity_GiB": mem.capacity_bytes / GiB, "fits": mem.fits})
    df = pd.DataFrame(rows)
    if df.empty:
        return df
    return df.sort_values(["fits", "model_parallel", "peak_GiB"], ascending=[False, True, True], ignore_index=True)


def max_feasible(
    model: ModelSpec,
    video: VideoSpec,
    what: Literal["micro_batch", "num_frames", "resolution"],
    layout: ParallelLayout = SINGLE_GPU,
    gpu: str | GPUSpec = "h100-sxm",
    precision: PrecisionPolicy = MIXED_ADAMW,
    checkpointing: Checkpointing = "full",
    kernel: AttentionKernel = "fused",
    limit: int = 1 << 16,
) -> VideoSpec | int | None:
    """The largest micro-batch, frame count (same resolution) or resolution (same aspect, same frames) that
    fits ``layout`` on ``gpu``; None when even the smallest does not."""
    spec = resolve_gpu(gpu)  # once for every probe

    def fits_at(k: int) -> bool:
        try:
            if what == "micro_batch":
                lay, v = layout.model_copy(update={"micro_batch": k}), video
            elif what == "num_frames":
                lay, v = layout, video.model_copy(update={"num_frames": model.snap_frames(k)})
            else:
                lay, v = layout, _scaled(model, video, k)
            return training_memory(model, v, lay, spec, precision, checkpointing, kernel).fits
        except (VideoShapeError, ValueError):
            return False

    lo, hi = 1, 1
    if not fits_at(lo):
        return None
    while hi < limit and fits_at(hi * 2):
        hi *= 2
    lo, hi = hi, min(hi * 2, limit)
    while hi - lo > 1:  # fits(lo), not fits(hi)
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if fits_at(mid) else (lo, mid)
    if what == "micro_batch":
        return lo
    if what == "num_frames":
        return video.model_copy(update={"num_frames": model.snap_frames(lo)})
    return _scaled(model, video, lo)


def _scaled(model: ModelSpec, video: VideoSpec, k: int) -> VideoSpec:
    """The video at height k x step (step = spatial compression x patch), width by the same aspect."""
    step = model.vae.spatial_compression * model.dit.patch_size[1]
    step_w = model.vae.spatial_compression * model.dit.patch_size[2]
    h = k * step
    w = max(step_w, round(h * video.width / video.height / step_w) * step_w)
    return video.model_copy(update={"width": w, "height": h})


# ------------------------------------------------------------------------------------------------
# Inference
# ------------------------------------------------------------------------------------------------

InferenceStage = Literal["all", "text", "dit", "vae_decode"]


def inference_memory(
    model: ModelSpec | Workload,
    video: VideoSpec | None,
    gpu: str | GPUSpec = "h100-sxm",
    stage: InferenceStage = "all",
    cfg_batch: int = 2,
    weight_bytes: int = 2,
    act_bytes: int = 2,
    kernel: AttentionKernel = "fused",
    tile_latent: tuple[int, int, int] | None = None,
    usable_fraction: float = USABLE_FRACTION,
    decode: DecodeSchedule | None = None,
) -> MemoryBreakdown:
    """Memory of generating one video on one GPU. ``stage="all"``: every model resident, the text encoder,
    the DiT (CFG pair batched) and the VAE decoder run one after another, so the largest activation peak is
    the transient; ``"text"``, ``"dit"`` or ``"vae_decode"``: that stage alone (e.g. decoding on its own GPU).
    ``decode``: how the VAE decodes (whole / tiled / chunked; None: the preset's official schedule,
    ``official_decode_schedule``). ``tile_latent`` = (frames, height, width) of a latent tile without overlap: decode
    tile by tile, output kept on the GPU (``recommend_vae_tiling``'s search; overrides ``decode``)."""
    _one_of("stage", stage, InferenceStage)
    _one_of("kernel", kernel, AttentionKernel)
    if cfg_batch not in (1, 2, 3):
        raise ValueError(f"cfg_batch: expected 1 (no CFG pair), 2 (CFG pair batched) or 3 (three guidance branches "
                         f"batched: Open-Sora 2.0), got {cfg_batch!r}")
    wl = as_workload(model, video)
    model, video, lat = wl.model, wl.video, wl.latent
    grid = (lat.tokens_t, lat.tokens_h, lat.tokens_w)
    comps: dict[str, int] = {}
    transient: dict[str, int] = {}
    notes: list[str] = []
    has_text = bool(model.text_encoders)
    latents = model.vae.latent_channels * lat.frames * lat.height * lat.width * act_bytes
    if stage in ("all", "text") and has_text:
        comps["text encoder weights"] = sum(text_encoder_params(e) for e in model.text_encoders) * weight_bytes
        transient["text encode"] = max(text_encoder_peak(e, n, cfg_batch, act_bytes)  # encoders run one by one
                                       for e, n in zip(model.text_encoders, model.text_encoder_tokens(), strict=True))
    if stage in ("all", "dit"):
        comps["DiT weights"] = dit_params(model.dit) * weight_bytes
        comps["latents (CFG pair)"] = latents * cfg_batch
        transient[f"DiT forward (batch {cfg_batch})"] = dit_inference_peak(
            model.dit, grid, model.num_text_tokens, cfg_batch, kernel, act_bytes)
    if stage in ("all", "vae_decode"):
        comps["VAE decoder weights"] = vae_params(model.vae)[1] * weight_bytes
        if stage == "vae_decode":
            comps["latents"] = latents
        if tile_latent is None:
            sched = decode if decode is not None else official_decode_schedule(model.vae.family, model.name)
            name = "VAE decode (untiled)" if sched.mode == "whole" else f"VAE decode ({sched.label()})"
            transient[name] = decode_schedule_peak(model.vae, (lat.frames, lat.height, lat.width), sched, 1,
                                                   act_bytes)
        else:
            t, h, w = (min(a, b) for a, b in zip(tile_latent, (lat.frames, lat.height, lat.width), strict=True))
            comps["decoded video (assembled on GPU)"] = model.vae.in_channels * video.pixels * act_bytes
            transient[f"VAE decode, tile {t}x{h}x{w} latent"] = vae_decode_peak(model.vae, (t, h, w), 1, act_bytes)
            notes.append(f"{math.ceil(lat.frames / t) * math.ceil(lat.height / h) * math.ceil(lat.width / w)} "
                         "tiles (without overlap)")
    return MemoryBreakdown(comps, transient, resolve_gpu(gpu), usable_fraction, tuple(notes))


def recommend_vae_tiling(
    model: ModelSpec | Workload, video: VideoSpec | None, gpu: str | GPUSpec = "h100-sxm", act_bytes: int = 2,
    weight_bytes: int = 2,
) -> tuple[tuple[int, int, int] | None, MemoryBreakdown]:
    """The latent tile (frames, height, width) with the largest volume (fewest tiles) whose decode fits the
    GPU with the decoder weights, latents and assembled video resident. Candidates: spatial tiles of the
    full latent or 64/32/16/8 latent pixels a side, temporal tiles of all frames or 64 ... 1 latent frames.
    (None, untiled breakdown) when untiled decoding fits; raises ValueError when no tile fits."""
    wl, spec = as_workload(model, video), resolve_gpu(gpu)

    def mem(tile: tuple[int, int, int] | None) -> MemoryBreakdown:
        return inference_memory(wl, None, spec, "vae_decode", weight_bytes=weight_bytes, act_bytes=act_bytes,
                                tile_latent=tile, decode=DecodeSchedule() if tile is None else None)

    untiled = mem(None)
    if untiled.fits:
        return None, untiled
    lat = wl.latent
    sides = sorted({lat.height, lat.width, 64, 32, 16, 8}, reverse=True)
    spatial = sorted({(min(s, lat.height), min(s, lat.width)) for s in sides}, reverse=True)
    temporal = sorted({lat.frames, *(f for f in (64, 32, 16, 8, 4, 2, 1) if f < lat.frames)}, reverse=True)
    best: tuple[tuple[int, int, int], MemoryBreakdown] | None = None
    for h, w in spatial:
        for t in temporal:
            m = mem((t, h, w))
            if m.fits:
                if best is None or t * h * w > math.prod(best[0]):
                    best = ((t, h, w), m)
                break  # smaller temporal tiles of this spatial size only add tiles
    if best is None:
        name = gpu if isinstance(gpu, str) else spec.key
        raise ValueError(f"no VAE tiling fits {name}: even a 1x8x8 latent tile needs "
                         f"{mem((1, 8, 8)).peak_bytes / GiB:,.1f} GiB with what stays resident")
    return best
