"""Training step time under a parallel layout: compute from the time model, communication from ``evaluate/comm.py``,
the pipeline bubble, recomputation, the optimizer and EMA, with explicit overlap. Vectorised: every layout field
may be an equal-length numpy array (the layout search times thousands of layouts in one call).

Layout (Megatron's rank order, TP innermost: TP, CP-Ulysses, CP-ring, DP, PP): ``tp`` x ``cp_ulysses`` x
``cp_ring`` x ``dp`` x ``pp`` GPUs; ``zero`` stage 0-3 (3 = FSDP); ``micro_batch`` samples; ``vpp`` virtual
pipeline chunks per stage (interleaved 1F1B); checkpointing and attention kernel pick the per-sample basis.

Per micro-batch and pipeline stage (``shard`` = tp x cp: each rank computes 1/shard of a block's work):

- compute = (fwd + bwd + recompute of ``micro_batch`` samples) / (shard x pp), from ``training_times`` on one GPU;
- TP (sequence-parallel variant: reduce-scatter + all-gather moves the bytes of an all-reduce): 2 all-reduces of
  the rank's activations (mb x tokens/cp x hidden x 2 B) per block forward, 2 backward, 2 more when the block is
  recomputed; exposed (on the critical path);
- CP Ulysses: 4 all-to-alls (q, k, v in; output out) of the rank's activations / tp per block forward, 4 backward,
  4 more when recomputed; exposed. Heads must divide by tp x cp_ulysses;
- CP ring: K and V (2 x activations / tp) passed cp_ring - 1 hops per block forward (2x the bytes backward: dK,
  dV travel too), overlapped with the blockwise attention of the same pass (``overlap``);
- ZeRO-3 / FSDP: per micro-batch, the stage's weights all-gathered (prefetched) for forward and again for backward,
  gradients reduce-scattered, over the DP x CP ranks, overlapped with forward / backward compute; the first
  block's gather is exposed, and once per step the last block's reduce-scatter.

Per step (m = global_batch / (dp x micro_batch) micro-batches per pipeline):

- pipeline = (m + (pp - 1) / vpp) x t_microbatch (1F1B; bubble fraction (pp-1)/(vpp m) of the useful time);
  pipeline p2p: the stage boundary's activations sent forward and backward, exposed while the pipeline fills and
  drains: 2 (pp - 1) vpp sends;
- gradient reduction over DP x CP ranks (CP ranks hold the same weights): ZeRO-0 all-reduce, ZeRO-1/2
  reduce-scatter then an all-gather of the updated bf16 weights (Megatron's distributed optimizer); bucketed and
  overlapped with the last micro-batch's backward, the last bucket (``DDP_BUCKET_BYTES``) exposed; the weights'
  all-gather bucketed and overlapped with the next step's first forward, its first bucket exposed (the overlap
  ZeRO-3's gathers get; Megatron's ``overlap_param_gather``, which exposes one chunk: NeMo Megatron-Bridge docs,
  "Communication Overlap", docs.nvidia.com/nemo/megatron-bridge/latest/training/communication-overlap.html);
- optimizer (memory bound, ZeRO shards) and the EMA update (memory bound).

Outputs per layout: step seconds and its breakdown (compute by op class, recompute, exposed communication per kind,
bubble, optimizer, EMA), tokens/s per GPU, MFU (model FLOPs: forward + backward, no recompute).
Units: seconds, bytes, FLOPs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from sora_compute.evaluate.comm import Group, collective_seconds, overlap, topology_of
from sora_compute.evaluate.params import dit_params
from sora_compute.evaluate.time import optimizer_row, training_times
from sora_compute.flops import dit_ops
from sora_compute.hardware.profiles import HardwareProfile, load_profile
from sora_compute.specs import Workload

__all__ = [
    "TrainingBasis",
    "training_basis",
    "training_bases",
    "step_times",
    "BREAKDOWN",
    "DDP_BUCKET_BYTES",
    "EMA_BYTES_PER_PARAM",
    "COMPUTE_CLASSES",
]

#: PyTorch DDP's default gradient bucket (bucket_cap_mb=25, torch.nn.parallel.DistributedDataParallel docs).
DDP_BUCKET_BYTES = 25 * 2**20
#: EMA update per parameter: read the fp32 EMA (4 B) and the bf16 weight (2 B), write the EMA (4 B).
EMA_BYTES_PER_PARAM = 10
ACT_BYTES = 2  # bf16 activations and weights on the wire
GRAD_BYTES = 2
#: Op classes the compute breakdown names; the rest of the time model's kinds go to "other".
COMPUTE_CLASSES = {"attention": ("attention",), "matmul": ("mlp", "attention_proj", "cross_attention_proj"),
                   }
BREAKDOWN = ["compute_attention_s", "compute_matmul_s", "compute_other_s", "recompute_s", "tp_comm_s",
             "cp_comm_s", "fsdp_comm_s", "pp_p2p_s", "bubble_s", "dp_comm_s", "optimizer_s", "ema_s"]


@dataclass(frozen=True)
class TrainingBasis:
    """Per-sample quantities of one (micro-batch, checkpointing, attention kernel): the time model's seconds on one
    GPU for ``micro_batch`` samples, by pass and op class, and the model's sizes."""

    micro_batch: int
    checkpointing: str
    attention_kernel: str
    fwd_s: float
    bwd_s: float
    recompute_s: float
    attention_fwd_s: float  # the attention cores (what a ring hides its hops behind)
    attention_bwd_s: float
    by_class_s: dict[str, float]  # fwd + bwd by COMPUTE_CLASSES (+ "other")
    model_flops: float  # forward + backward of the micro-batch (no recompute)
    params: int
    blocks: int
    hidden: int
    heads: int
    tokens: int  # video tokens per sample (+ text tokens in joint-attention models' sequence)


def _sequence(w: Workload) -> int:
    """Tokens per sample in the DiT's sequence: video tokens, plus the text in a joint-attention (MMDiT) stream."""
    return int(w.latent.tokens)


def training_bases(w: Workload, profile: HardwareProfile | str, micro_batches: tuple[int, ...] = (1,),
                   checkpointing: tuple[str, ...] = ("full",), kernels: tuple[str, ...] = ("fa2",),
                   dtype: str = "bf16") -> dict[tuple[int, str, str], TrainingBasis]:
    """``training_basis`` for every (micro-batch, checkpointing, kernel): one time-model walk per (micro-batch,
    kernel) with full recomputation, from which ``selective`` keeps the attention cores' recompute rows and ``none``
    none. A kernel the profile's tables cannot time (ValueError) is left out."""
    p = profile if isinstance(profile, HardwareProfile) else load_profile(profile)
    out = {}
    for mb in micro_batches:
        ops = dit_ops(w, batch=mb)
        for ker in kernels:
            try:
                df = training_times(ops, p, dtype, ker, "full", optimizer=False)
            except ValueError:
                continue
            for ck in checkpointing:
                keep = {"none": df["pass"] != "recompute", "full": df["pass"] == df["pass"],
                        "selective": (df["pass"] != "recompute") | (df["op"] == "sdpa")}[ck]
                out[(mb, ck, ker)] = _basis(w, df[keep], mb, ck, ker)
    return out


def training_basis(w: Workload, profile: HardwareProfile | str, micro_batch: int = 1, checkpointing: str = "full",
                   attention_kernel: str = "fa2", dtype: str = "bf16") -> TrainingBasis:
    """The time model over one micro-batch of ``w`` on one GPU (``training_times``), summed by pass and op class."""
    p = profile if isinstance(profile, HardwareProfile) else load_profile(profile)
    df = training_times(dit_ops(w, batch=micro_batch), p, dtype, attention_kernel, checkpointing, optimizer=False)
    return _basis(w, df, micro_batch, checkpointing, attention_kernel)


def _basis(w: Workload, df: pd.DataFrame, micro_batch: int, checkpointing: str, attention_kernel: str
           ) -> TrainingBasis:
    by_pass = df.groupby("pass")["seconds"].sum()
    fb = df[df["pass"] != "recompute"]
    attn = df[df["op"] == "sdpa"].groupby("pass")["seconds"].sum()
    classes = {}
    for name, kinds in COMPUTE_CLASSES.items():
        classes[name] = float(fb.loc[fb["kind"].isin(kinds), "seconds"].sum())
    classes["other"] = float(fb["seconds"].sum()) - sum(classes.values())
    dit = w.model.dit
    return TrainingBasis(
        micro_batch, checkpointing, attention_kernel, float(by_pass.get("fwd", 0.0)),
        float(by_pass.get("bwd_activation", 0.0) + by_pass.get("bwd_weight", 0.0)),
        float(by_pass.get("recompute", 0.0)), float(attn.get("fwd", 0.0)), float(attn.get("bwd_activation", 0.0)),
        classes, float(fb["flops"].sum()), dit_params(dit), dit.num_blocks, dit.hidden_size, dit.num_heads,
        _sequence(w))


def _col(bases: list[TrainingBasis], idx: np.ndarray, get: Any) -> np.ndarray:
    return np.asarray([get(b) for b in bases], dtype=float)[idx]


def step_times(bases: list[TrainingBasis], basis_index: Any, profile: HardwareProfile | str, global_batch: int,
               dp: Any, tp: Any, cp_ulysses: Any, cp_ring: Any, pp: Any, zero: Any, vpp: Any = 1,
               ema: bool = False) -> pd.DataFrame:
    """Step time and its breakdown for layouts given as ints or equal-length arrays (module docstring).
    ``bases[basis_index[i]]`` is layout i's per-micro-batch basis (its micro-batch, checkpointing, kernel)."""
    p = profile if isinstance(profile, HardwareProfile) else load_profile(profile)
    topo = topology_of(p)
    G = topo.gpus_per_node
    idx = np.atleast_1d(np.asarray(basis_index, dtype=int))
    n = len(idx)

    def arr(x: Any) -> np.ndarray:
        return np.broadcast_to(np.asarray(x, dtype=np.int64), (n,)).copy()

    dp, tp, cu, cr, pp, zero, vpp = (arr(x) for x in (dp, tp, cp_ulysses, cp_ring, pp, zero, vpp))
    cp = cu * cr
    shard = tp * cp
    gpus = dp * shard * pp
    mb = _col(bases, idx, lambda b: b.micro_batch)
    m = global_batch / (dp * mb)  # micro-batches per pipeline per step
    fwd, bwd, rec = (_col(bases, idx, lambda b, k=k: getattr(b, k)) for k in ("fwd_s", "bwd_s", "recompute_s"))
    a_f, a_b = _col(bases, idx, lambda b: b.attention_fwd_s), _col(bases, idx, lambda b: b.attention_bwd_s)
    full = _col(bases, idx, lambda b: b.checkpointing == "full") > 0
    params = _col(bases, idx, lambda b: b.params)
    blocks = _col(bases, idx, lambda b: b.blocks)
    hidden = _col(bases, idx, lambda b: b.hidden)
    tokens = _col(bases, idx, lambda b: b.tokens)
    per = shard * pp  # each rank's share of a micro-batch's work
    c_mb = (fwd + bwd) / per
    r_mb = rec / per
    blocks_stage = np.ceil(blocks / pp)
    act = mb * tokens / cp * hidden * ACT_BYTES  # a rank's activations of one block boundary, bytes

    # tensor parallel: 2 all-reduces per block forward, 2 backward, 2 again when recomputed
    tp_g = Group.placed(tp, 1, G)
    n_ar = 4 + 2 * full
    tp_mb = blocks_stage * n_ar * collective_seconds("all_reduce", act, tp_g, topo)
    # Ulysses: 4 all-to-alls of the rank's activations / tp per block forward, 4 backward, 4 when recomputed
    cu_g = Group.placed(cu, tp, G)
    n_a2a = 8 + 4 * full
    ulysses_mb = blocks_stage * n_a2a * collective_seconds("all_to_all", act / tp, cu_g, topo)
    # ring: K, V passed cr - 1 hops per block, behind the blockwise attention of the pass
    cr_g = Group.placed(cr, tp * cu, G)
    hop = collective_seconds("p2p", 2 * act / tp, cr_g, topo)
    ring_f = (cr - 1) * hop
    attn_f_blk = a_f / shard / blocks
    attn_b_blk = a_b / shard / blocks
    _, exp_f = overlap(attn_f_blk, ring_f)
    _, exp_b = overlap(attn_b_blk, 2 * ring_f)
    ring_mb = blocks_stage * (exp_f * (1 + full) + exp_b)
    cp_mb = ulysses_mb + ring_mb

    # ZeRO-3 / FSDP: gather the stage's weights forward and backward, reduce-scatter gradients, every micro-batch
    shard_g = Group.placed(dp * cp, tp, G)
    w_stage = params / (tp * pp) * ACT_BYTES
    g_stage = params / (tp * pp) * GRAD_BYTES
    ag = collective_seconds("all_gather", w_stage, shard_g, topo)
    rs = collective_seconds("reduce_scatter", g_stage, shard_g, topo)
    f_stage, b_stage = fwd / per, (bwd + rec) / per
    _, fsdp_f = overlap(f_stage, ag)
    _, fsdp_b = overlap(b_stage, ag + rs * (1 - 1 / blocks_stage))
    z3 = zero >= 3
    fsdp_mb = np.where(z3, fsdp_f + fsdp_b + ag / blocks_stage, 0.0)
    fsdp_tail = np.where(z3, rs / blocks_stage, 0.0)  # the last block's reduce-scatter, after the step's backward

    t_mb = c_mb + r_mb + tp_mb + cp_mb + fsdp_mb
    chunks = np.where(pp > 1, vpp, 1)
    bubble = (pp - 1) / chunks * t_mb
    pp_g = Group.placed(pp, dp * shard, G)
    p2p = np.where(pp > 1, 2 * (pp - 1) * chunks * collective_seconds("p2p", act / tp, pp_g, topo), 0.0)

    # gradient reduction over DP x CP (ZeRO 0-2), bucketed, behind the last micro-batch's backward; ZeRO-1/2's
    # gather of the updated weights bucketed behind the next step's first forward (the overlap ZeRO-3's gathers get)
    grad_comm = np.where(zero == 0, collective_seconds("all_reduce", g_stage, shard_g, topo), rs)
    last = np.minimum(1.0, DDP_BUCKET_BYTES / np.maximum(g_stage, 1.0))
    _, hidden_part = overlap(b_stage, grad_comm * (1 - last))
    _, gather_hidden = overlap(f_stage, ag * (1 - last))
    gather = np.where((zero == 1) | (zero == 2), gather_hidden + ag * last, 0.0)
    dp_comm = np.where(z3, 0.0, hidden_part + grad_comm * last + gather)

    shards = np.where(zero >= 1, dp * cp, 1)
    opt = _memory_bound(params / (tp * pp), shards, p, None)
    ema_s = _memory_bound(params / (tp * pp), shards, p, EMA_BYTES_PER_PARAM) if ema else np.zeros(n)

    frac = {k: _col(bases, idx, lambda b, k=k: b.by_class_s[k]) for k in ("attention", "matmul", "other")}
    out = pd.DataFrame({
        "compute_attention_s": m * frac["attention"] / per,
        "compute_matmul_s": m * frac["matmul"] / per,
        "compute_other_s": m * frac["other"] / per,
        "recompute_s": m * r_mb,
        "tp_comm_s": m * tp_mb,
        "cp_comm_s": m * cp_mb,
        "fsdp_comm_s": m * fsdp_mb + fsdp_tail,
        "pp_p2p_s": p2p,
        "bubble_s": bubble,
        "dp_comm_s": dp_comm,
        "optimizer_s": opt,
        "ema_s": ema_s,
    })
    out.insert(0, "step_s", out[BREAKDOWN].sum(axis=1))
    flops = _col(bases, idx, lambda b: b.model_flops) / mb  # per sample
    step = out["step_s"].to_numpy()
    out["micro_batches"] = m
    out["bubble_fraction"] = (pp - 1) / (chunks * m)
    out["tokens_per_s_per_gpu"] = global_batch * tokens / step / gpus
    out["mfu"] = global_batch * flops / (step * gpus * p.peak_flops("bf16"))
    out["gpus"] = gpus
    return out


def _memory_bound(params: np.ndarray, shards: np.ndarray, p: HardwareProfile, bytes_per_param: int | None
                  ) -> np.ndarray:
    """The optimizer step (or an EMA update at ``bytes_per_param``) over the rank's parameter shard, memory bound:
    ``optimizer_row`` for each distinct (parameters, shards)."""
    out = np.empty(len(params))
    keys = np.stack([params, shards.astype(float)], axis=1)
    uniq, inv = np.unique(keys, axis=0, return_inverse=True)
    for i, (pr, sh) in enumerate(uniq):
        row = (optimizer_row(pr, p, shards=int(sh)) if bytes_per_param is None
               else optimizer_row(pr, p, bytes_per_param=bytes_per_param, shards=int(sh)))
        out[inv.ravel() == i] = row[10]
    return out
