"""Multi-GPU inference schedules: seconds and memory per GPU of generating ONE video on the GPUs of a layout.

Layout (``InferenceLayout``), GPUs per video = cfg x pipefusion x ring x ulysses:

- ``cfg`` 2: the two guidance branches (conditional, unconditional) on two GPU groups (batch 2 -> 1 each); one
  all-gather of the noise prediction per step. Only for presets that sample with a CFG pair.
- ``ulysses`` u: the sequence split u ways; around every attention core that sees the whole sequence an
  all-to-all of q, k, v (a rank's send buffer: local tokens x 3 x D bytes) and one of the output (local tokens x D),
  not overlapped (xDiT runs them synchronously); the core runs on all tokens with heads / u (u must divide heads).
- ``ring`` r: the sequence split r ways; K/V blocks passed around the ring, r - 1 point-to-point steps of
  2 x (tokens / r) x D / u elements, each behind one block of the core (``evaluate/comm.py`` ``overlap``).
- ``pipefusion`` p (PipeFusion, stale activations): the DiT's blocks in p stages, the sequence in m patches
  (``patches``, default p); a slot is one stage on one patch. Warm-up steps run synchronously, the rest pipelined
  across steps with one fill:  slots = steps x m + (warmup + 1) x (p - 1);  bubble = (warmup + 1) x (p - 1) slots.
  Stages pass a patch's activations point-to-point behind the next slot's compute; attention of a patch reads the
  stale K/V of the whole sequence kept on the stage (no communication, memory instead).
- ``fsdp`` f: the DiT weights sharded over f GPUs; every block's weights all-gathered once per forward, the next
  block's gather behind this block's compute (the first one exposed).
- ``vae_parallel``: the VAE decode split spatially over the video's GPUs (launch overheads not split, the halo
  exchange not counted); otherwise one GPU decodes while the others wait (a serial part).

Per GPU the DiT runs on the SHARDED shape: the ledger (``ledger/dit.py``) at tokens / (u x r x m) for every op
that scales with the sequence (projections, MLPs, norms, elementwise work; the text tokens stay whole on every
rank, as xDiT keeps them), the stage's share of every block run (rounded up: the slowest stage), and each attention
core that needs the whole sequence as heads / u, q / (r x m), k / r in r blocks; a core whose keys are local (cross
attention to the text, factorised attention along an unsplit axis) stays as the sharded ledger gives it. Times come
from the per-op time model (``evaluate/time.py`` op_records) on those shapes; collectives from ``evaluate/comm.py``.

The text encoder runs on every GPU (its two prompts split across CFG groups): a serial part (Amdahl), as is an
unsplit VAE decode.

    latency = text + steps_run x (compute + exposed communication) per step + pipeline bubble + VAE decode

Memory per GPU: sequence parallelism (Ulysses, Ring, patches) splits the ACTIVATIONS only; the weights stay
replicated unless PipeFusion (blocks / p) or FSDP (/ f) shards them. Units: seconds, bytes, GiB (2^30), USD.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import pandas as pd
from pydantic import Field, model_validator

from sora_compute._frames import FrameRepr
from sora_compute.evaluate.comm import Group, collective_seconds, overlap
from sora_compute.evaluate.params import dit_block_params, dit_params
from sora_compute.evaluate.time import COLUMNS, op_records
from sora_compute.hardware import GPUSpec, resolve_gpu
from sora_compute.hardware.profiles import DTYPE_BYTES, HardwareProfile, load_profile
from sora_compute.ledger.dit import DiTShape, dit_ledger
from sora_compute.ledger.ops import Op, attention_op, revise
from sora_compute.memory.activations import dit_inference_peak
from sora_compute.memory.planner import GiB, MemoryBreakdown, inference_memory, recommend_vae_tiling
from sora_compute.planning.base import _Spec
from sora_compute.planning.inference import InferenceEstimate
from sora_compute.planning.timing import count_records
from sora_compute.specs import Workload

__all__ = ["InferenceLayout", "InferenceSchedule", "inference_schedule", "layout_problem", "PIPEFUSION_WARMUP_STEPS",
           "COMM_KINDS", "ScheduleContext", "ulysses_send_bytes", "ring_kv_bytes", "pipefusion_slots"]

#: Synchronous warm-up steps before PipeFusion pipelines with stale activations: xDiT's default
#: (xdit-project/xDiT xfuser/config/args.py at commit 809d1522: ``warmup_steps: int = 1``). Patches default to the
#: stage count: ASSUMED (the same file leaves ``num_pipeline_patch`` None; xDiT's PipeFusion paper runs M >= N).
PIPEFUSION_WARMUP_STEPS = 1
#: Exposed-communication kinds of the breakdown.
COMM_KINDS = ("ulysses_all_to_all", "ring_p2p", "pipefusion_p2p", "fsdp_all_gather", "cfg_all_gather",
              "sp_all_gather")
ACT_BYTES = 2  # activations in 16 bits (an fp8 run keeps bf16 activations)
T = TypeVar("T")
_SECONDS, _OP, _OVERHEAD, _FLOPS = (COLUMNS.index(c) for c in ("seconds", "op", "overhead_s", "flops"))


def ulysses_send_bytes(local_tokens: float, width: float, bytes_per_element: int) -> float:
    """Bytes a rank sends through Ulysses' two all-to-alls around one attention core: q, k, v in (3 x local
    tokens x D) and the output back (local tokens x D): 4 x local_tokens x D x bytes per element."""
    return 4 * local_tokens * width * bytes_per_element


def ring_kv_bytes(k_tokens: float, width: float, ring: int, ulysses: int, bytes_per_element: int) -> float:
    """Bytes of one Ring-attention hop: the K and V of one rank's block, 2 x (k_tokens / ring) x (D / ulysses)."""
    return 2 * k_tokens / ring * width / ulysses * bytes_per_element


def pipefusion_slots(steps: int, patches: int, stages: int, warmup: int = 1) -> tuple[int, int]:
    """(slots per video, bubble slots) of PipeFusion: a synchronous warm-up step takes patches + stages - 1
    slots, a pipelined one ``patches``, plus one fill of stages - 1 when pipelining starts:
    slots = steps x patches + (warmup + 1) x (stages - 1) (warm-up capped at the steps; no bubble with 1 stage)."""
    bubble = (min(warmup, steps) + 1) * (stages - 1) if stages > 1 else 0
    return steps * patches + bubble, bubble


class InferenceLayout(_Spec):
    """How one video is split over GPUs: cfg x pipefusion x ring x ulysses GPUs (see the module docstring)."""

    cfg: int = Field(default=1, ge=1, le=2, description="guidance branches on separate GPU groups (1 or 2)")
    ulysses: int = Field(default=1, ge=1, description="Ulysses sequence-parallel degree (divides the heads)")
    ring: int = Field(default=1, ge=1, description="Ring-attention sequence-parallel degree")
    pipefusion: int = Field(default=1, ge=1, description="PipeFusion stages (DiT blocks split p ways)")
    patches: int | None = Field(default=None, ge=1, description="PipeFusion patches (default: the stages)")
    fsdp: int = Field(default=1, ge=1, description="GPUs the DiT weights are sharded over (divides cfg x ring x "
                                                   "ulysses: the GPUs that hold the same blocks)")
    vae_parallel: bool = Field(default=False, description="decode split spatially over the video's GPUs")

    @model_validator(mode="after")
    def _check(self) -> InferenceLayout:
        if self.patches is not None and self.pipefusion == 1 and self.patches > 1:
            raise ValueError("patches: only PipeFusion (pipefusion > 1) splits the sequence into patches")
        if self.patches is not None and self.patches < self.pipefusion:
            raise ValueError(f"patches ({self.patches}) must be at least the PipeFusion stages ({self.pipefusion})")
        if (self.cfg * self.ring * self.ulysses) % self.fsdp:
            raise ValueError(f"fsdp ({self.fsdp}) must divide cfg x ring x ulysses "
                             f"({self.cfg * self.ring * self.ulysses})")
        return self

    @property
    def gpus(self) -> int:
        return self.cfg * self.pipefusion * self.ring * self.ulysses

    @property
    def sequence_parallel(self) -> int:
        return self.ulysses * self.ring

    @property
    def patch_count(self) -> int:
        return self.patches if self.patches is not None else self.pipefusion

    def label(self) -> str:
        parts = [f"{k}{v}" for k, v in (("cfg", self.cfg), ("ulysses", self.ulysses), ("ring", self.ring),
                                          ("pipefusion", self.pipefusion), ("fsdp", self.fsdp)) if v > 1]
        if self.pipefusion > 1 and self.patch_count != self.pipefusion:
            parts.append(f"patches{self.patch_count}")
        if self.vae_parallel:
            parts.append("vae-parallel")
        return " x ".join(parts) or "1 GPU"


def layout_problem(layout: InferenceLayout, estimate: InferenceEstimate) -> str | None:
    """Why ``layout`` cannot run ``estimate`` ('' free text), or None when it can: CFG parallel needs a CFG pair;
    Ulysses needs u to divide the heads; PipeFusion needs at least one block per stage of every block run."""
    dit, s = estimate.model.dit, estimate.settings
    if layout.cfg > 1 and not s.cfg:
        return "cfg 2: the model samples without a CFG pair (guidance-distilled or --no-cfg)"
    if layout.cfg > 1 and s.guidance_branches % layout.cfg:
        return f"cfg {layout.cfg} does not divide the {s.guidance_branches} guidance branches of a step"
    if dit.num_heads % layout.ulysses:
        return f"ulysses {layout.ulysses} does not divide the {dit.num_heads} heads"
    shortest = min(len(r) for _, r in dit.block_schedule())
    if layout.pipefusion > shortest:
        return f"pipefusion {layout.pipefusion}: a block run has only {shortest} blocks"
    return None


@dataclass(frozen=True, repr=False)
class InferenceSchedule(FrameRepr):
    """Seconds, throughput, cost and memory per GPU of one video under one layout."""

    estimate: InferenceEstimate
    layout: InferenceLayout
    gpu: GPUSpec
    price_usd_per_hour: float
    text_s: float  # text encoding, per video (runs on every GPU: serial)
    vae_s: float  # VAE decode, per video (serial unless vae_parallel)
    steps_run: float  # denoising steps that run a DiT forward (steps x (1 - cache skip))
    compute_per_step: dict[str, float]  # DiT compute per step on one GPU by op class (attention, linear, other)
    comm_per_step: dict[str, float]  # exposed communication per step by kind (COMM_KINDS)
    bubble_s: float  # PipeFusion fill and warm-up, per video
    memory: MemoryBreakdown
    dit_flops_per_step: float  # DiT FLOPs one GPU runs per step (2 x MACs)
    notes: tuple[str, ...] = field(default=())
    text_dtype: str = ""  # the dtype the text encoders run in (``ModelSpec.text_encoder_dtypes``)

    @property
    def step_s(self) -> float:
        """Seconds per denoising step: DiT compute + exposed communication (bubble amortised over the steps)."""
        extra = self.bubble_s / self.steps_run if self.steps_run else 0.0
        return sum(self.compute_per_step.values()) + sum(self.comm_per_step.values()) + extra

    @property
    def dit_s(self) -> float:
        return self.steps_run * self.step_s

    @property
    def latency_s(self) -> float:
        """Seconds per video = text + steps x per step (bubble included) + VAE decode."""
        return self.text_s + self.dit_s + self.vae_s

    @property
    def serial_s(self) -> float:
        """Seconds that do not shrink with the GPUs: the text encoder, the VAE decode unless split."""
        return self.text_s + (0.0 if self.layout.vae_parallel else self.vae_s)

    @property
    def videos_per_gpu_hour(self) -> float:
        return 3600 / (self.latency_s * self.layout.gpus)

    @property
    def cost_per_video_usd(self) -> float:
        return self.price_usd_per_hour * self.layout.gpus * self.latency_s / 3600

    def breakdown(self) -> pd.DataFrame:
        """Seconds per video by part: compute by component (text, DiT by op class, VAE), exposed communication by
        kind, the pipeline bubble; ``serial`` marks what does not shrink with the GPUs."""
        rows = [("compute", f"text_encode ({self.text_dtype})" if self.text_dtype else "text_encode", self.text_s,
                 True)]
        rows += [("compute", f"dit_{k}", v * self.steps_run, False) for k, v in self.compute_per_step.items()]
        rows += [("compute", "vae_decode", self.vae_s, not self.layout.vae_parallel)]
        rows += [("communication", k, v * self.steps_run, False) for k, v in self.comm_per_step.items() if v]
        if self.bubble_s:
            rows.append(("bubble", "pipefusion_bubble", self.bubble_s, False))
        df = pd.DataFrame(rows, columns=["part", "what", "seconds", "serial"])
        df["share"] = df["seconds"] / self.latency_s if self.latency_s else 0.0
        return df

    def summary(self) -> dict[str, Any]:
        lay = self.layout
        comm = sum(self.comm_per_step.values()) * self.steps_run
        return {"layout": lay.label(), "gpus": lay.gpus, "cfg": lay.cfg, "ulysses": lay.ulysses, "ring": lay.ring,
                "pipefusion": lay.pipefusion, "patches": lay.patch_count, "fsdp": lay.fsdp,
                "vae_parallel": lay.vae_parallel, "gpu": self.gpu.key, "latency_s": self.latency_s,
                "step_s": self.step_s, "dit_s": self.dit_s, "text_s": self.text_s, "vae_s": self.vae_s,
                "serial_s": self.serial_s, "comm_exposed_s": comm, "bubble_s": self.bubble_s,
                "videos_per_gpu_hour": self.videos_per_gpu_hour, "cost_per_video_usd": self.cost_per_video_usd,
                "peak_GiB": self.memory.peak_bytes / GiB, "capacity_GiB": self.memory.capacity_bytes / GiB,
                "fits": self.memory.fits}

    def to_frame(self) -> pd.DataFrame:
        return self.breakdown()

    def __repr__(self) -> str:
        fit = "fits" if self.memory.fits else "does NOT fit"
        return (f"InferenceSchedule({self.layout.label()} on {self.layout.gpus} x {self.gpu.key}: "
                f"{self.latency_s:,.1f} s per video, {self.step_s:.3g} s per step, "
                f"{self.memory.peak_bytes / GiB:,.1f} GiB per GPU ({fit}))")


def _seconds(records: Iterable[tuple]) -> float:
    return float(sum(r[_SECONDS] for r in records))


def _op_class(op: str) -> str:
    return {"sdpa": "attention", "linear": "linear"}.get(op, "other")


@dataclass(frozen=True)
class _Core:
    """A sequence-split attention core on one GPU for one patch call: its op, the full core it came from, and the
    seconds of one of its instances' r blocks (Ring)."""

    op: Op
    full: Op
    block_s: float


class ScheduleContext:
    """One estimate on one GPU at one precision and attention kernel, with the work every layout shares (sharded
    ledgers and their op times, memory pieces) kept: a search builds one and schedules every layout on it."""

    def __init__(self, estimate: InferenceEstimate, gpu: str | HardwareProfile, precision: str = "bf16",
                 attention_kernel: str = "fa2") -> None:
        if precision not in DTYPE_BYTES:
            raise ValueError(f"precision: expected one of {', '.join(DTYPE_BYTES)}, got {precision!r}")
        self.estimate, self.precision, self.kernel = estimate, precision, attention_kernel
        self.profile = gpu if isinstance(gpu, HardwareProfile) else load_profile(gpu)
        self.spec = resolve_gpu(self.profile)
        self.workload = Workload.of(estimate.model, estimate.video)
        self.bpe = DTYPE_BYTES[precision]
        self._store: dict[tuple, Any] = {}

    def _get(self, key: tuple, make: Callable[[], T]) -> T:
        if key not in self._store:
            self._store[key] = make()
        return self._store[key]

    def call(self, batch: int, lay: InferenceLayout) -> tuple[list[tuple], list[_Core]]:
        """Op records of one patch call on one GPU, and its sequence-split attention cores (cached by shape)."""
        key = ("call", batch, lay.ulysses, lay.ring, lay.patch_count, lay.pipefusion)
        return self._get(key, lambda: self._call(batch, lay))

    def _call(self, batch: int, lay: InferenceLayout) -> tuple[list[tuple], list[_Core]]:
        ops, cores = _sharded_ops(self.workload, batch, lay)
        timed = [_Core(c.op, c.full, _seconds(op_records([revise(c.op, blocks=None)], self.profile, self.precision,
                                                          self.kernel)) / lay.ring) for c in cores]
        return op_records(ops, self.profile, self.precision, self.kernel), timed

    def component_s(self, name: str, split: int = 1) -> float:
        """Seconds of one call of a component's ops (``estimate.counts``), its work divided over ``split`` GPUs
        (launch overheads not)."""
        def make() -> float:
            records = count_records(self.estimate, name, self.profile, self.precision, self.kernel)
            overhead = float(sum(rec[_OVERHEAD] for rec in records))
            return (_seconds(records) - overhead) / split + overhead
        return self._get(("component", name, split), make)

    def base_memory(self, batch: int, act_bytes: int) -> MemoryBreakdown:
        att = "fused" if self.kernel != "math" else "materialized"
        return self._get(("memory", batch, act_bytes), lambda: inference_memory(
            self.workload, None, self.spec, "all", cfg_batch=batch, weight_bytes=self.bpe, act_bytes=act_bytes,
            kernel=att, dtype=self.precision))  # type: ignore[arg-type]

    def dit_peak(self, split: int, batch: int, act_bytes: int) -> int:
        w, att = self.workload, "fused" if self.kernel != "math" else "materialized"
        grid = (w.latent.tokens_t, w.latent.tokens_h, w.latent.tokens_w / split)
        return self._get(("peak", split, batch, act_bytes), lambda: int(dit_inference_peak(
            w.model.dit, grid, w.model.num_text_tokens, batch, att, act_bytes)))  # type: ignore[arg-type]

    def vae_tiled(self, other_bytes: float, usable: float, act_bytes: int) -> MemoryBreakdown | None:
        """The VAE decode stage in the largest latent tile that fits beside ``other_bytes`` held by everything
        else (``recommend_vae_tiling`` on the GPU's memory less those bytes); None when no tile fits."""
        # whole GiB left (rounded down: a tile chosen for less memory fits), so layouts share the few answers
        left_gb = math.floor((self.spec.hbm_bytes - other_bytes / usable) / 2**30) * 2**30 / 1e9

        def make() -> MemoryBreakdown | None:
            if left_gb <= 0:
                return None
            try:
                tile, stage = recommend_vae_tiling(self.workload, None, self.spec.model_copy(
                    update={"hbm_gb": left_gb}), act_bytes, self.bpe)
            except ValueError:
                return None
            return stage if tile is not None else None
        return self._get(("vae_tile", left_gb, act_bytes), make)


def _sharded_ops(w: Workload, batch: int, lay: InferenceLayout) -> tuple[list[Op], list[_Core]]:
    """The ops one GPU runs for one patch call of one forward: the ledger at tokens / (u r m), the stage's share of
    every block run, and each attention core that needs the whole sequence re-shaped for Ulysses and Ring."""
    dit, lat = w.model.dit, w.latent
    L = w.model.num_text_tokens if dit.text_conditioned else 0
    split = lay.sequence_parallel * lay.patch_count
    full = dit_ledger(dit, DiTShape(batch, lat.tokens_t, lat.tokens_h, lat.tokens_w, L))
    part = dit_ledger(dit, DiTShape(batch, lat.tokens_t, lat.tokens_h, lat.tokens_w / split, L)) if split > 1 \
        else full
    ops: list[Op] = []
    cores: list[_Core] = []
    u, r, m = lay.ulysses, lay.ring, lay.patch_count
    for f, s in zip(full, part, strict=True):
        if s.blocks is not None and lay.pipefusion > 1:
            s = revise(s, blocks=range(math.ceil(len(s.blocks) / lay.pipefusion)))
        if s.op == "sdpa" and split > 1 and float(s.dims["k_len"]) != float(f.dims["k_len"]):
            d = f.dims
            s = attention_op(s.path, s.kind, d["groups"] * r, d["heads"] // u, d["q_len"] / (r * m),
                             d["k_len"] / r, d["head_dim"], s.blocks)
            cores.append(_Core(s, f, 0.0))
        ops.append(s)
    return ops, cores


def _dit_step(ctx: ScheduleContext, lay: InferenceLayout, batch: int, forwards: float
              ) -> tuple[dict[str, float], dict[str, float], float, list[_Core], float]:
    """(compute by op class, exposed communication by kind, both per step; one slot's seconds (one patch call of
    the stage); the sequence-split attention cores; DiT FLOPs per step) on one GPU."""
    topo, w, bpe = ctx.profile, ctx.workload, ctx.bpe  # the profile's topology: the link tiers crossed
    gpn = topo.topology.gpus_per_node if topo.topology is not None else 1
    records, cores = ctx.call(batch, lay)
    call_s = _seconds(records)
    m = lay.patch_count
    calls = m * forwards  # patch calls per step
    compute = {"attention": 0.0, "linear": 0.0, "other": 0.0}
    flops = 0.0
    for rec in records:
        compute[_op_class(rec[_OP])] += rec[_SECONDS] * calls
        flops += rec[_FLOPS] * calls
    comm = dict.fromkeys(COMM_KINDS, 0.0)
    u, r, p, c = lay.ulysses, lay.ring, lay.pipefusion, lay.cfg
    g_u, g_r = Group.placed(u, 1, gpn), Group.placed(r, u, gpn)
    g_p, g_c = Group.placed(p, u * r, gpn), Group.placed(c, u * r * p, gpn)
    for core in cores:
        d = core.full.dims
        width = d["heads"] * d["head_dim"]  # D of the attention
        local = d["groups"] * d["q_len"] / (u * r * m)  # tokens a rank holds before the all-to-all
        n = core.op.instances
        if u > 1:
            qkv_out = ulysses_send_bytes(local, width, bpe)
            a2a = (collective_seconds("all_to_all", 0.75 * qkv_out, g_u, topo)
                   + collective_seconds("all_to_all", 0.25 * qkv_out, g_u, topo))
            comm["ulysses_all_to_all"] += a2a * n * calls
        if r > 1:
            hop = collective_seconds("p2p", ring_kv_bytes(d["groups"] * d["k_len"], width, r, u, bpe), g_r, topo)
            comm["ring_p2p"] += (r - 1) * overlap(core.block_s, hop)[1] * n * calls
    slot_s = call_s  # one stage on one patch
    if p > 1:
        act = batch * w.tokens / (u * r * m) * w.model.dit.hidden_size * bpe
        comm["pipefusion_p2p"] = overlap(slot_s, collective_seconds("p2p", act, g_p, topo))[1] * calls
    if lay.fsdp > 1:
        g_f = Group.placed(lay.fsdp, 1, gpn)
        blocks = sum(len(r_) for _, r_ in w.model.dit.block_schedule())
        stage_blocks = math.ceil(blocks / p)
        gather = collective_seconds("all_gather", dit_block_params(w.model.dit) * bpe, g_f, topo)
        block_s = call_s * m / stage_blocks
        comm["fsdp_all_gather"] = (gather + (stage_blocks - 1) * overlap(block_s, gather)[1]) * forwards
    latent = w.model.vae.latent_channels * w.latent.frames * w.latent.height * w.latent.width * bpe
    if c > 1:  # the other branch's noise prediction
        comm["cfg_all_gather"] = collective_seconds("all_gather", c * batch * latent, g_c, topo) * forwards
    if u * r > 1:  # the denoised latent gathered from the sequence shards for the scheduler step
        g_sp = Group.placed(u * r, 1, gpn)
        comm["sp_all_gather"] = collective_seconds("all_gather", batch * latent, g_sp, topo) * forwards
    return compute, comm, slot_s, cores, flops


def _memory(ctx: ScheduleContext, lay: InferenceLayout, batch: int, cores: list[_Core], act_bytes: int,
            vae_split: int) -> tuple[MemoryBreakdown, list[str]]:
    """Memory per GPU: the one-GPU inference memory with the DiT's weights sharded (pipeline stage, FSDP), its
    activations at the sharded shape, PipeFusion's stale K/V and the ring's K/V blocks in flight; the VAE decode
    split over ``vae_split`` GPUs, and decoded in tiles when untiled it does not fit beside the rest."""
    notes: list[str] = []
    spec, weight_bytes, dit = ctx.spec, ctx.bpe, ctx.workload.model.dit
    base = ctx.base_memory(batch, act_bytes)
    comps = {k: v for k, v in base.components.items() if not k.startswith("DiT weights")}
    transient = {k: v for k, v in base.transient.items() if not k.startswith("DiT forward")}
    P = dit_params(dit)
    comps["DiT weights"] = math.ceil(P * weight_bytes / lay.pipefusion / lay.fsdp)
    if lay.fsdp > 1:
        comps["FSDP gather buffers (2 blocks)"] = 2 * dit_block_params(dit) * weight_bytes
    split = lay.sequence_parallel * lay.patch_count
    transient[f"DiT forward (batch {batch}, 1/{split} of the tokens)"] = ctx.dit_peak(split, batch, act_bytes)
    if lay.pipefusion > 1:
        kv = sum(2 * c.op.dims["groups"] / lay.ring * c.op.dims["k_len"] * c.op.dims["heads"]
                 * c.op.dims["head_dim"] * c.op.instances for c in cores)
        comps["PipeFusion stale K/V (stage's layers)"] = int(kv * act_bytes)
    if lay.ring > 1:
        biggest = max((2 * c.op.dims["groups"] / lay.ring * c.op.dims["k_len"] * c.op.dims["heads"]
                       * c.op.dims["head_dim"] for c in cores), default=0)
        comps["ring K/V blocks in flight (2)"] = int(2 * biggest * act_bytes)
    if vae_split > 1:
        for k in [k for k in transient if k.startswith("VAE")]:
            transient[f"{k} / {vae_split} GPUs"] = transient.pop(k) // vae_split
    mem = MemoryBreakdown(comps, transient, spec, base.usable_fraction)
    vae_now = [k for k in transient if k.startswith("VAE")]
    if not mem.fits and vae_now and max(transient, key=lambda k: transient[k]) in vae_now:
        other = sum(v for k, v in comps.items() if not k.startswith("VAE"))
        stage = ctx.vae_tiled(other, base.usable_fraction, act_bytes)
        if stage is not None:
            for k in vae_now:
                transient.pop(k)
            transient.update({k: v for k, v in stage.transient.items() if k.startswith("VAE")})
            comps.update({k: v for k, v in stage.components.items() if k.startswith("decoded")})
            notes.append(f"VAE decode in tiles ({next(k for k in stage.transient if k.startswith('VAE'))}): "
                         "untiled it does not fit beside the rest (the time model counts the official decode schedule)")
    if split > 1 and lay.fsdp == 1 and lay.pipefusion == 1:
        notes.append("sequence parallelism splits the activations, not the weights: every GPU holds the whole DiT "
                     f"({P * weight_bytes / GiB:,.1f} GiB); FSDP or PipeFusion shards them")
    return MemoryBreakdown(comps, transient, spec, base.usable_fraction, tuple(notes)), notes


def inference_schedule(estimate: InferenceEstimate | ScheduleContext, gpu: str | HardwareProfile | None = None,
                       layout: InferenceLayout | None = None, precision: str = "bf16", attention_kernel: str = "fa2",
                       price_usd_per_hour: float | None = None,
                       warmup_steps: int = PIPEFUSION_WARMUP_STEPS) -> InferenceSchedule:
    """Seconds per video and per step, with the breakdown, throughput, cost and memory per GPU of ``estimate``
    (one video: its model, shape and sampling settings) on ``layout.gpus`` GPUs of ``gpu`` (see the module
    docstring for each schedule). ``estimate`` may be a ``ScheduleContext`` (then ``gpu``, ``precision`` and
    ``attention_kernel`` are its own). Raises ValueError when the layout cannot run the model (``layout_problem``)."""
    if isinstance(estimate, ScheduleContext):
        ctx = estimate
    else:
        if gpu is None:
            raise ValueError("gpu: give a GPU (a profile key or a HardwareProfile)")
        ctx = ScheduleContext(estimate, gpu, precision, attention_kernel)
    est, lay = ctx.estimate, layout if layout is not None else InferenceLayout()
    problem = layout_problem(lay, est)
    if problem is not None:
        raise ValueError(f"layout {lay.label()}: {problem}")
    if isinstance(warmup_steps, bool) or not isinstance(warmup_steps, int) or warmup_steps < 0:
        raise ValueError(f"warmup_steps must be an integer >= 0, got {warmup_steps!r}")
    if price_usd_per_hour is not None and not (math.isfinite(price_usd_per_hour) and price_usd_per_hour > 0):
        raise ValueError(f"price_usd_per_hour must be a finite number > 0, got {price_usd_per_hour!r}")
    if lay.gpus > 1 and ctx.profile.topology is None:
        raise ValueError(f"gpu {ctx.profile.key}: no topology in its profile; multi-GPU schedules need one")
    s = est.settings
    branches = s.guidance_branches if s.cfg else 1
    per_group = branches // lay.cfg  # samples each CFG group evaluates per step
    batch, forwards = (per_group, 1.0) if s.cfg_mode == "batched" else (1, float(per_group))
    compute, comm, slot_s, cores, flops = _dit_step(ctx, lay, batch, forwards)
    steps_run = s.steps * (1 - s.cache_skip_fraction)
    p, m = lay.pipefusion, lay.patch_count
    bubble = pipefusion_slots(s.steps, m, p, warmup_steps)[1] * slot_s * forwards
    text = ctx.component_s("text_encode") * est.multipliers["text_encode"] / lay.cfg
    vae_split = lay.gpus if lay.vae_parallel else 1
    vae = ctx.component_s("vae_decode", vae_split) * est.multipliers["vae_decode"]
    mem, notes = _memory(ctx, lay, batch, cores, ACT_BYTES, vae_split)
    if lay.vae_parallel and lay.gpus > 1:
        notes.append("parallel VAE decode: the decoder's work split evenly (halo exchange not counted)")
    if p > 1:
        notes.append(f"PipeFusion: {p} stages x {m} patches, {min(warmup_steps, s.steps)} synchronous warm-up "
                     "step(s); stale K/V of the whole sequence kept per stage")
    price = price_usd_per_hour if price_usd_per_hour is not None else ctx.spec.price_usd_per_hour
    return InferenceSchedule(est, lay, ctx.spec, price, text, vae, steps_run, compute, comm, bubble, mem, flops,
                             tuple(notes), est.model.text_encoder_dtypes(ctx.precision))
