"""Memory over one generation, phase by phase (encode text -> denoise steps -> decode): what is resident on the GPU
at each moment under an offload mode, allocated and reserved bytes, the host-link time weight offloading costs.

Allocated = live tensors: weights resident in the phase + the state carried between phases (text embeddings,
latents) + the phase's activation peak (the liveness evaluator: text encoder, DiT forward, the VAE decode schedule).
Reserved = allocated x (1 + allocator margin) + CUDA context + cuBLAS workspace (``data/memory_overheads.yaml``,
sourced or ASSUMED); the GPU's whole HBM is the budget for reserved bytes.

Offload modes (diffusers' names in brackets): ``none`` (everything on the GPU); ``free_text`` (the text encoder moved
to the CPU after encoding); ``text_on_cpu`` (the text encoder runs on the CPU: never on the GPU; its CPU time not
modelled); ``model`` (``enable_model_cpu_offload``: only the running component on the GPU, each moved in and out once
per video); ``model_text_on_cpu`` (model offload with the text encoder run on the CPU: Wan's ``--offload_model True
--t5_cpu``); ``sequential`` (``enable_sequential_cpu_offload``: every component's weights streamed module by module,
accelerate's ``cpu_offload`` hooks: a module's own parameters come to the GPU before its forward and go when it
returns, so one module of the running component is resident at a time, the VAE's too; every DiT forward streams all DiT
weights, every decoder call all the decoder's). The liveness walk counts each op's own weights while it runs (its
``weights``: a module's own parameters; tests/test_pipeline_measured.py), so the stage's peak is where activations
and the running module's weights together are largest. ``fsdp`` = N: DiT weights sharded over N GPUs, two blocks
gathered at once.
``sequence_parallel`` = N: the DiT's activations split over N GPUs (tokens / N).
"""

from __future__ import annotations

from contextlib import suppress
from dataclasses import dataclass
from functools import cache, lru_cache
from importlib import resources
from typing import Literal

import pandas as pd
import yaml

from sora_compute._frames import FrameRepr
from sora_compute.evaluate.params import dit_block_params, dit_params, vae_params
from sora_compute.evaluate.saved import AttentionKernel
from sora_compute.hardware import GPUSpec, resolve_gpu
from sora_compute.hardware.host_link import HostLink, host_link
from sora_compute.hardware.profiles import load_profile
from sora_compute.ledger.vae_schedule import scheduled_decode
from sora_compute.memory.activations import (
    dit_inference_peak,
    text_element_bytes,
    text_encoders_peak,
    text_weight_bytes,
)
from sora_compute.memory.planner import _one_of
from sora_compute.memory.vae_schedule import decode_schedule_peak
from sora_compute.specs import ModelSpec, VideoSpec, Workload, as_workload
from sora_compute.specs.vae.schedule import DecodeSchedule, official_decode_schedule

__all__ = ["OffloadMode", "Overheads", "overheads", "Phase", "PipelineMemory", "pipeline_memory", "GiB"]

GiB = 2**30
MiB = 2**20
OffloadMode = Literal["none", "free_text", "text_on_cpu", "model", "model_text_on_cpu", "sequential"]


@dataclass(frozen=True)
class Overheads:
    """Reserved-only bytes (CUDA context, cuBLAS workspace, attention workspace) and the allocator's margin over
    allocated bytes, each with its source."""

    context_bytes: int
    workspace_bytes: int
    margin: float
    sources: dict[str, str]

    def reserved(self, allocated: int) -> int:
        """reserved = allocated x (1 + margin) + context + workspaces."""
        return int(allocated * (1 + self.margin)) + self.context_bytes + self.workspace_bytes


@cache
def _overhead_data() -> dict[str, object]:
    data: dict[str, object] = yaml.safe_load(
        resources.files("sora_compute.data").joinpath("memory_overheads.yaml").read_text())
    return data


def overheads(gpu: GPUSpec) -> Overheads:
    """The overheads on ``gpu`` (its architecture picks the cuBLAS workspace)."""
    d = _overhead_data()
    arch: str = "default"
    with suppress(KeyError, ValueError):  # a profile file path: no catalog architecture
        arch = load_profile(gpu.key).architecture
    ws: dict[str, float] = d["cublas_workspace_mib"]  # type: ignore[assignment]
    workspace = ws.get(arch, ws["default"]) + float(d["attention_workspace_mib"])  # type: ignore[arg-type]
    return Overheads(int(float(d["cuda_context_mib"]) * MiB), int(workspace * MiB),  # type: ignore[arg-type]
                     float(d["allocator_margin"]),  # type: ignore[arg-type]
                     {k[:-7]: str(v) for k, v in d.items() if k.endswith("_source")})


@dataclass(frozen=True)
class Phase:
    """One moment of the pipeline: resident tensors (name -> bytes), the running stage's activation peak, and the
    bytes moved over the host link in this phase (per video)."""

    name: str
    resident: dict[str, int]
    activation: tuple[str, int]
    h2d_bytes: int = 0
    d2h_bytes: int = 0

    @property
    def allocated(self) -> int:
        return sum(self.resident.values()) + self.activation[1]


@dataclass(frozen=True, repr=False)
class PipelineMemory(FrameRepr):
    """The phases of one generation on one GPU (of ``gpus``), with allocated and reserved peaks and the verdict's
    inputs; ``to_frame()`` is the timeline."""

    phases: tuple[Phase, ...]
    gpu: GPUSpec
    overheads: Overheads
    link: HostLink
    offload: OffloadMode
    decode: DecodeSchedule
    fsdp: int = 1
    sequence_parallel: int = 1
    notes: tuple[str, ...] = ()

    @property
    def allocated_peak(self) -> int:
        return max(p.allocated for p in self.phases)

    @property
    def reserved_peak(self) -> int:
        return self.overheads.reserved(self.allocated_peak)

    @property
    def capacity_bytes(self) -> float:
        return self.gpu.hbm_bytes

    @property
    def fits(self) -> bool:
        return self.reserved_peak <= self.capacity_bytes

    @property
    def transfer_s(self) -> float:
        """Host-link seconds per video (weights moved in and out)."""
        return sum(self.link.seconds(p.h2d_bytes, p.d2h_bytes) for p in self.phases)

    @property
    def peak_phase(self) -> str:
        return max(self.phases, key=lambda p: p.allocated).name

    def to_frame(self) -> pd.DataFrame:
        """The timeline: one row per phase, resident GiB by what, activations, allocated and reserved GiB (2^30),
        host-link seconds."""
        names = list(dict.fromkeys(k for p in self.phases for k in p.resident))
        rows = []
        for p in self.phases:
            row: dict[str, object] = {"phase": p.name}
            row.update({f"{k} [allocated GiB]": p.resident.get(k, 0) / GiB for k in names})
            row["activations [allocated GiB]"] = p.activation[1] / GiB
            row["activations of"] = p.activation[0]
            row["allocated_GiB"] = p.allocated / GiB
            row["reserved_GiB"] = self.overheads.reserved(p.allocated) / GiB
            row["host_link_s"] = self.link.seconds(p.h2d_bytes, p.d2h_bytes)
            rows.append(row)
        return pd.DataFrame(rows)

    def summary(self) -> dict[str, object]:
        return {"gpu": self.gpu.key, "offload": self.offload, "decode": self.decode.label(), "fsdp": self.fsdp,
                "sequence_parallel": self.sequence_parallel, "allocated_peak_GiB": self.allocated_peak / GiB,
                "reserved_peak_GiB": self.reserved_peak / GiB, "capacity_GiB": self.capacity_bytes / GiB,
                "fits": self.fits, "peak_phase": self.peak_phase, "host_link_s": self.transfer_s}

    def __repr__(self) -> str:
        return (f"PipelineMemory({self.reserved_peak / GiB:,.1f} GiB reserved at '{self.peak_phase}' on "
                f"{self.gpu.key}: {'fits' if self.fits else 'does NOT fit'} {self.capacity_bytes / GiB:,.1f} GiB)")


@lru_cache(maxsize=64)
def _weights(m: ModelSpec, w: int) -> tuple[int, int, int, int]:
    """Bytes of (text encoders, DiT, the DiT's largest block, the whole VAE)."""
    text_w = text_weight_bytes(m, w)  # each encoder in its own dtype where it has one
    vae_w = sum(vae_params(m.vae)) * w  # pipelines load the whole VAE (encoder too: diffusers, Wan's WanVAE)
    return text_w, dit_params(m.dit) * w, dit_block_params(m.dit) * w, vae_w


def _decode_stream_bytes(m: ModelSpec, latent: tuple[int, int, int], sched: DecodeSchedule, w: int) -> int:
    """Sequential offload: the bytes a decode streams in, the decoder's weights once per decoder call of the schedule
    (each tile or chunk)."""
    calls = 1 if sched.mode == "whole" else scheduled_decode(m.vae, latent, sched).n_calls
    return vae_params(m.vae)[1] * w * calls


@lru_cache(maxsize=256)
def _peaks(m: ModelSpec, latent: tuple[int, int, int], grid: tuple[int, int, int], sched: DecodeSchedule,
           cfg_batch: int, kernel: AttentionKernel, act_bytes: int, streamed: int = 0) -> tuple[int, int, int]:
    """Activation peaks (bytes) of the text encoders (the largest, run one by one), one DiT forward, the decode;
    ``streamed``: each module's weights live while it runs, at that many bytes per element (sequential offload)."""
    text = text_encoders_peak(m, cfg_batch, act_bytes, streamed)
    dit = dit_inference_peak(m.dit, grid, m.num_text_tokens, cfg_batch, kernel, act_bytes, streamed)
    return text, dit, decode_schedule_peak(m.vae, latent, sched, 1, act_bytes, streamed)


def pipeline_memory(
    model: ModelSpec | Workload,
    video: VideoSpec | None = None,
    gpu: str | GPUSpec = "h100-sxm",
    offload: OffloadMode = "none",
    decode: DecodeSchedule | None = None,
    cfg_batch: int = 2,
    steps: int = 50,
    fsdp: int = 1,
    sequence_parallel: int = 1,
    kernel: AttentionKernel = "fused",
    weight_bytes: int = 2,
    act_bytes: int = 2,
    dtype: str = "bf16",
) -> PipelineMemory:
    """The phases of generating one video (``model`` may be a Workload, with ``video`` None). ``decode``: the VAE
    decode schedule (None: the preset's official one); ``steps``: denoising steps (host-link time of sequential
    offload); ``fsdp`` / ``sequence_parallel``: GPUs the DiT's weights / activations are split over. ``dtype``: the
    run's dtype as named in the text encoder's rows (its bytes are ``weight_bytes`` and ``act_bytes``); a text encoder
    with an ``inference_dtype`` is priced and named in that one."""
    _one_of("offload", offload, OffloadMode)
    if cfg_batch not in (1, 2):
        raise ValueError(f"cfg_batch: expected 1 or 2, got {cfg_batch!r}")
    for name, v in (("steps", steps), ("fsdp", fsdp), ("sequence_parallel", sequence_parallel)):
        if not isinstance(v, int) or v < 1:
            raise ValueError(f"{name}: expected a positive integer, got {v!r}")
    wl = as_workload(model, video)
    spec = resolve_gpu(gpu)
    m, lat = wl.model, wl.latent
    sched = decode if decode is not None else official_decode_schedule(m.vae.family, m.name)
    text_w, dit_w, block_w, vae_w = _weights(m, weight_bytes)
    tokens = m.text_encoder_tokens()
    embed = sum(n * e.d_model * text_element_bytes(e, act_bytes)  # each encoder's output, in its dtype
                for e, n in zip(m.text_encoders, tokens, strict=True)) * cfg_batch
    latents = m.vae.latent_channels * lat.frames * lat.height * lat.width * act_bytes  # one video's
    text_peak, dit_full, vae_peak = _peaks(m, (lat.frames, lat.height, lat.width), (lat.tokens_t, lat.tokens_h,
                                                                                   lat.tokens_w), sched, cfg_batch,
                                           kernel, act_bytes, weight_bytes if offload == "sequential" else 0)
    dit_peak = -(-dit_full // sequence_parallel)
    dit_res = dit_w if fsdp == 1 else -(-dit_w // fsdp) + 2 * block_w
    notes = []
    if fsdp > 1:
        notes.append(f"FSDP over {fsdp} GPUs: DiT weights / {fsdp} + 2 gathered blocks per GPU; the all-gathers' time "
                     "is not in the host-link time")
    if sequence_parallel > 1:
        notes.append(f"sequence parallel over {sequence_parallel} GPUs: the DiT forward's activations / "
                     f"{sequence_parallel} (tokens split; attention's all-to-all buffers not counted)")
    text_on_cpu = offload in ("text_on_cpu", "model_text_on_cpu")
    if text_on_cpu:
        notes.append("the text encoder runs on the CPU: its time there is not modelled")

    decode_stream = (_decode_stream_bytes(m, (lat.frames, lat.height, lat.width), sched, weight_bytes)
                     if offload == "sequential" else 0)
    # weights resident per phase: (text, dit, vae) under each mode
    on = {"none": ((text_w, dit_res, vae_w),) * 3,
          "free_text": ((text_w, dit_res, vae_w), (0, dit_res, vae_w), (0, dit_res, vae_w)),
          "text_on_cpu": ((0, dit_res, vae_w),) * 3,
          "model": ((text_w, 0, 0), (0, dit_res, 0), (0, 0, vae_w)),
          "model_text_on_cpu": ((0, 0, 0), (0, dit_res, 0), (0, 0, vae_w)),
          "sequential": ((0, 0, 0),) * 3}[offload]  # streamed: each module's weights in its stage's peak
    # host-link bytes per phase (h2d, d2h), per video
    evals = steps * (2 if cfg_batch == 1 and m.text_encoders else 1)  # CFG run as two passes streams twice
    moves = {"none": ((0, 0),) * 3,
             "free_text": ((text_w, 0), (0, text_w), (0, 0)),
             "text_on_cpu": ((0, 0),) * 3,
             "model": ((text_w, 0), (dit_res, text_w), (vae_w, dit_res)),
             "model_text_on_cpu": ((0, 0), (dit_res, 0), (vae_w, dit_res)),
             "sequential": ((text_w, 0), (dit_w * evals, 0), (decode_stream, 0))}[offload]
    text_dtype = m.text_encoder_dtypes(dtype)
    names = (f"text encoder weights ({text_dtype})", "DiT weights", "VAE weights")
    has_text = bool(m.text_encoders)
    phases = []
    each = ", each module's weights streamed in" if offload == "sequential" else ""
    acts = ((f"text encode ({text_dtype}, batch {cfg_batch}){each}", text_peak if not text_on_cpu else 0),
            (f"DiT forward (batch {cfg_batch}){each}", dit_peak), (f"VAE decode, {sched.label()}{each}", vae_peak))
    # diffusers' __call__: the latents, and each step the CFG batch made of them (torch.cat([latents] * 2)); the prompt
    # embeddings held to the end (made on the CPU: moved to the GPU in the text phase)
    state: tuple[dict[str, int], ...] = ({"text embeddings": embed if text_on_cpu else 0},
                                         {"text embeddings": embed, "latents": latents,
                                          "CFG batch of the latents": latents * cfg_batch if cfg_batch > 1 else 0},
                                         {"text embeddings": embed, "latents": latents})
    for k, phase in enumerate(("encode text", f"denoise (each of {steps} steps)", "decode")):
        if k == 0 and not has_text:
            continue
        resident = {n: b for n, b in zip(names, on[k], strict=True) if b}
        resident.update({n: b for n, b in state[k].items() if b})
        phases.append(Phase(phase, resident, acts[k], *moves[k]))
    return PipelineMemory(tuple(phases), spec, overheads(spec), host_link(spec.key), offload, sched, fsdp,
                          sequence_parallel, tuple(notes))
