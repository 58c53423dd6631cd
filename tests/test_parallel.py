"""Training schedules (planning/parallel.py) on a made-up basis and topology, every number derived by hand: DP's
bucketed, overlapped all-reduce; the 1F1B bubble (p-1)/m and its interleaved (p-1)/(v m); TP's all-reduces; Ulysses'
all-to-alls; the ring's hops behind blockwise attention; ZeRO-3 over DP x CP; the memory planner's ZeRO sharding
over DP x CP (HunyuanVideo, ZeRO-3, CP=4, DP=1)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sora_compute.evaluate.comm import COMM_COMPUTE_SLOWDOWN as S
from sora_compute.hardware.profiles import Topology, load_profile
from sora_compute.memory.planner import (
    GiB,
    ParallelLayout,
    layout_memory,
    training_memory,
    training_memory_basis,
)
from sora_compute.planning.parallel import BREAKDOWN, DDP_BUCKET_BYTES, TrainingBasis, step_times
from sora_compute.presets import load_preset
from sora_compute.specs import Workload

# 8 GPUs per node at 100 GB/s and 10 us; 8 NICs of 10 GB/s; 10 us per doubling of nodes
TOPO = Topology(gpus_per_node=8, intra_link="nvswitch", intra_busbw_gbps=100, intra_latency_us=10, nics_per_node=8,
                nic_gbps=10, inter_latency_us=10, sources={"all": "made up for the test"})
PROFILE = load_profile("h100-sxm").model_copy(update={"topology": TOPO})
# one sample: forward 1 s (attention 0.5 s), backward 2 s (attention 1 s); 1e9 parameters, 10 blocks, width 1000,
# 8 heads, 10,000 tokens
BASIS = TrainingBasis(micro_batch=1, checkpointing="none", attention_kernel="fa2", fwd_s=1.0, bwd_s=2.0,
                      recompute_s=0.0, attention_fwd_s=0.5, attention_bwd_s=1.0,
                      by_class_s={"attention": 1.5, "matmul": 1.2, "other": 0.3}, model_flops=3e15,
                      params=10**9, blocks=10, hidden=1000, heads=8, tokens=10_000)


def run(global_batch: int, dp: int = 1, tp: int = 1, cu: int = 1, cr: int = 1, pp: int = 1, zero: int = 0,
        vpp: int = 1, basis: TrainingBasis = BASIS):
    return step_times([basis], [0], PROFILE, global_batch, dp, tp, cu, cr, pp, zero, vpp).iloc[0]


def test_data_parallel_all_reduce_is_bucketed_and_overlapped():
    r = run(8, dp=8)
    assert r["micro_batches"] == 1
    assert (r["compute_attention_s"], r["compute_matmul_s"], r["compute_other_s"]) == pytest.approx((1.5, 1.2, 0.3))
    # gradients 1e9 x 2 B all-reduced over 8 GPUs in a node: 10 us + 1.75 x 2e9 / 100e9 = 0.03501 s
    ar = 10e-6 + 1.75 * 2e9 / 100e9
    last = DDP_BUCKET_BYTES / 2e9  # the last 25 MiB bucket waits for the backward to end
    # the rest runs behind the 2 s backward, which slows by S x that comm
    assert r["dp_comm_s"] == pytest.approx(S * ar * (1 - last) + ar * last)
    assert r["step_s"] == pytest.approx(3.0 + r["dp_comm_s"] + r["optimizer_s"])
    assert r["step_s"] == pytest.approx(sum(r[k] for k in BREAKDOWN))


def test_one_f_one_b_bubble_is_p_minus_1_over_m():
    r = run(16, dp=2, pp=4)  # m = 16 / 2 = 8 micro-batches, 4 stages of 0.75 s per micro-batch
    assert r["micro_batches"] == 8 and r["bubble_fraction"] == pytest.approx(3 / 8)
    assert r["bubble_s"] == pytest.approx(3 * 0.75)
    assert r["bubble_s"] / (r["compute_attention_s"] + r["compute_matmul_s"] + r["compute_other_s"]) == \
        pytest.approx(3 / 8)
    v = run(16, dp=2, pp=4, vpp=2)  # interleaved, 2 chunks per stage: (p-1)/(v m)
    assert v["bubble_fraction"] == pytest.approx(3 / 16) and v["bubble_s"] == pytest.approx(1.5 * 0.75)
    # pipeline p2p: stage activations 1 x 10,000 x 1000 x 2 B = 2e7 B, 2 (p-1) v sends while filling/draining;
    # the PP group has stride 2 (DP) -> 4 stages in one node: 10 us + 2e7 / 100e9 each
    assert r["pp_p2p_s"] == pytest.approx(2 * 3 * (10e-6 + 2e7 / 100e9))
    assert v["pp_p2p_s"] == pytest.approx(2 * r["pp_p2p_s"])


def test_tensor_parallel_two_all_reduces_per_block_each_way():
    r = run(1, tp=2)
    # activations 1 x 10,000 x 1000 x 2 B = 2e7 B; all-reduce on 2 GPUs: 10 us + 2 x 1/2 x 2e7 / 100e9 = 2.1e-4 s;
    # 4 per block (2 forward, 2 backward) x 10 blocks
    assert r["tp_comm_s"] == pytest.approx(40 * 2.1e-4)
    assert r["compute_attention_s"] == pytest.approx(1.5 / 2)
    full = run(1, tp=2, basis=BASIS.__class__(**{**BASIS.__dict__, "checkpointing": "full", "recompute_s": 1.0}))
    assert full["tp_comm_s"] == pytest.approx(60 * 2.1e-4)  # the recomputed forward all-reduces again
    assert full["recompute_s"] == pytest.approx(0.5)


def test_ulysses_four_all_to_alls_per_block_each_way():
    r = run(1, cu=4)
    # a rank's activations 10,000 / 4 x 1000 x 2 B = 5e6 B; all-to-all on 4 GPUs: 10 us + 3/4 x 5e6 / 100e9
    assert r["cp_comm_s"] == pytest.approx(80 * (10e-6 + 0.75 * 5e6 / 100e9))


def test_ring_hops_hide_behind_blockwise_attention():
    r = run(1, cr=4)
    # K and V of a rank: 2 x 5e6 B = 1e7 B per hop, 10 us + 1e7 / 100e9 = 1.1e-4 s, 3 hops = 3.3e-4 s forward,
    # twice that backward; behind 0.5 / 4 / 10 = 0.0125 s (forward) and 0.025 s (backward) of attention per block:
    # only the slowdown S x comm shows
    hop3 = 3 * 1.1e-4
    assert r["cp_comm_s"] == pytest.approx(10 * S * (hop3 + 2 * hop3))
    # with almost no attention to hide behind, the hops show in full minus the attention time
    thin = BASIS.__class__(**{**BASIS.__dict__, "attention_fwd_s": 4e-5, "attention_bwd_s": 8e-5})
    t = run(1, cr=4, basis=thin)
    attn_f, attn_b = 4e-5 / 4 / 10, 8e-5 / 4 / 10
    assert t["cp_comm_s"] == pytest.approx(10 * ((hop3 - attn_f) + (2 * hop3 - attn_b)))


def test_zero3_gathers_over_dp_times_cp_every_micro_batch():
    r = run(2, dp=2, cu=2, zero=3)
    # weights 1e9 x 2 B gathered over the DP x CP = 4 ranks (one node): 10 us + 3/4 x 2e9 / 100e9 = 0.01501 s;
    # gradients reduce-scattered alike; forward gather behind 1 / 2 s of forward, gather + reduce-scatter behind
    # 2 / 2 s of backward, but for the last block's reduce-scatter (1/10 of it), exposed after the backward as is
    # the first block's gather (1/10 of it)
    ag = 10e-6 + 0.75 * 2e9 / 100e9
    assert r["fsdp_comm_s"] == pytest.approx(S * ag + S * (ag + 0.9 * ag) + ag / 10 + ag / 10)
    assert r["dp_comm_s"] == 0.0
    # distributed optimizer: reduce-scatter behind the backward, the updated weights' gather behind the next step's
    # forward, both bucketed, the last (first) 25 MiB bucket exposed
    z1 = run(2, dp=2, cu=2, zero=1)
    last = DDP_BUCKET_BYTES / 2e9
    assert z1["dp_comm_s"] == pytest.approx(2 * (S * ag * (1 - last) + ag * last))
    assert z1["fsdp_comm_s"] == 0.0


@pytest.mark.parametrize("dp,cu", [(2, 2), (16, 1), (4, 4)])
def test_zero3_never_beats_zero2_on_the_same_layout(dp, cu):
    # ZeRO-3 moves the ZeRO-2 collectives plus a second weight gather, with the same overlap: a block (2e8 B) is
    # larger than a bucket (25 MiB), so its exposed tails are too; the optimizer shard is the same (dp x cp)
    z2, z3 = run(dp * 2, dp=dp, cu=cu, zero=2), run(dp * 2, dp=dp, cu=cu, zero=3)
    assert z3["optimizer_s"] == z2["optimizer_s"]
    assert z3["step_s"] > z2["step_s"]


def test_cross_node_data_parallel_rides_the_nics():
    r = run(16, dp=16)
    # 16 ranks, 8 per node: busbw min(100, 8 x 10) = 80 GB/s; latency 10 + 10 x log2(2) = 20 us
    ar = 20e-6 + 2 * 15 / 16 * 2e9 / 80e9
    last = DDP_BUCKET_BYTES / 2e9
    assert r["dp_comm_s"] == pytest.approx(S * ar * (1 - last) + ar * last)


def test_mfu_and_tokens_per_gpu():
    r = run(8, dp=8)
    assert r["tokens_per_s_per_gpu"] == pytest.approx(8 * 10_000 / r["step_s"] / 8)
    assert r["mfu"] == pytest.approx(8 * 3e15 / (r["step_s"] * 8 * 989e12))


@settings(max_examples=30, deadline=None)
@given(tp=st.sampled_from([1, 2]), cu=st.sampled_from([1, 2]), cr=st.sampled_from([1, 2]),
       pp=st.sampled_from([1, 2]), zero=st.sampled_from([0, 1, 3]), k=st.integers(0, 4))
def test_more_gpus_never_raise_a_fixed_layouts_compute_share(tp, cu, cr, pp, zero, k):
    # a fixed layout (all but DP), global batch 64: doubling DP halves the micro-batches per rank
    dps = [2**k, 2 ** (k + 1)]
    shares = []
    for dp in dps:
        r = run(64, dp=dp, tp=tp, cu=cu, cr=cr, pp=pp, zero=zero)
        shares.append((r["compute_attention_s"] + r["compute_matmul_s"] + r["compute_other_s"]) / r["step_s"])
    assert shares[1] <= shares[0] + 1e-12


HUNYUAN = load_preset("hunyuanvideo")


def test_zero3_shards_over_dp_times_cp_hunyuanvideo():
    w = Workload.of(HUNYUAN.model, HUNYUAN.video)
    P = 12_821_012_544  # HunyuanVideo DiT parameters (evaluate/params.py)
    # before: weights/grads/master/Adam = 16 B x P = 191.0 GiB on each GPU; sharded over DP x CP = 4: a quarter
    assert 16 * P / GiB == pytest.approx(191.04, abs=0.01)
    mem = training_memory(w, None, ParallelLayout(dp=1, cp=4, zero=3), "h100-sxm", checkpointing="full")
    states = sum(mem.components[k] for k in ("DiT weights", "gradients", "fp32 master weights", "optimizer state"))
    assert states == 2 * -(-P * 2 // 4) + -(-P * 4 // 4) + -(-P * 8 // 4)  # ceil shards of 2+2+4+8 bytes
    assert states / GiB == pytest.approx(47.76, abs=0.01)
    assert mem.fits  # what fine-tuning scripts run on four 80 GB GPUs
    dp4 = training_memory(w, None, ParallelLayout(dp=4, cp=1, zero=3), "h100-sxm", checkpointing="full")
    assert sum(dp4.components[k] for k in ("DiT weights", "gradients", "fp32 master weights",
                                           "optimizer state")) == states
    z0 = training_memory(w, None, ParallelLayout(dp=1, cp=4, zero=0), "h100-sxm", checkpointing="full")
    assert sum(z0.components[k] for k in ("DiT weights", "gradients", "fp32 master weights",
                                          "optimizer state")) == 16 * P


@settings(max_examples=25, deadline=None)
@given(dp=st.sampled_from([1, 2, 3, 8]), tp=st.sampled_from([1, 2, 3]), cp=st.sampled_from([1, 2, 4]),
       pp=st.sampled_from([1, 2, 3]), zero=st.sampled_from([0, 1, 2, 3]), mb=st.sampled_from([1, 2]))
def test_vectorised_layout_memory_equals_training_memory(dp, tp, cp, pp, zero, mb):
    import numpy as np

    p = load_preset("dit-s-2")  # 6 heads, 12 blocks
    w = Workload.of(p.model, p.video)
    lay = ParallelLayout(dp=dp, tp=tp, cp=cp, pp=pp, zero=zero, micro_batch=mb)
    one = training_memory(w, None, lay, "h100-sxm", checkpointing="selective")
    basis = training_memory_basis(w, mb, checkpointing="selective")
    comps, trans = layout_memory(basis, np.array([dp, 1]), np.array([tp, 1]), np.array([cp, 1]), np.array([pp, 1]),
                                 np.array([zero, 0]))
    peak = sum(int(v[0]) for v in comps.values()) + max(int(np.broadcast_to(v, (2,))[0]) for v in trans.values())
    assert peak == one.peak_bytes


def test_optimizer_and_ema_are_memory_bound_over_the_zero_shard():
    # no kernel tables: memory efficiency 0.5 of 3.35 TB/s, 10 us per kernel; ZeRO-1 over DP = 8 shards of 1e9
    p = PROFILE.model_copy(update={"kernels": [], "tables": [], "memory_efficiency": 0.5, "launch_overhead_us": 10.0})
    r = step_times([BASIS], [0], p, 8, 8, 1, 1, 1, 1, 1, 1, ema=True).iloc[0]
    # AdamW 30 B per parameter, EMA 10 B (read fp32 EMA + bf16 weight, write the EMA)
    assert r["optimizer_s"] == pytest.approx(1e9 / 8 * 30 / (3.35e12 * 0.5) + 10e-6)
    assert r["ema_s"] == pytest.approx(1e9 / 8 * 10 / (3.35e12 * 0.5) + 10e-6)
    z0 = step_times([BASIS], [0], p, 8, 8, 1, 1, 1, 1, 0, 1, ema=True).iloc[0]  # ZeRO-0: every GPU updates all
    assert z0["optimizer_s"] == pytest.approx(1e9 * 30 / (3.35e12 * 0.5) + 10e-6)
