"""Parallel efficiency (planning/scaling.py): a DP-only layout's efficiency derived by hand, properties (in (0, 1],
non-increasing in N at a fixed global batch), and one answer: the plan's headline days = steps x the best layout's
step time, the row `plan --layouts` shows first."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sora_compute.evaluate.comm import COMM_COMPUTE_SLOWDOWN as S
from sora_compute.evaluate.params import dit_params
from sora_compute.evaluate.time import optimizer_row
from sora_compute.planning import Cluster, TrainingScenario, estimate_training, plan_cluster
from sora_compute.planning.layouts import search_training_layouts
from sora_compute.planning.parallel import DDP_BUCKET_BYTES
from sora_compute.planning.scaling import search_pins, stage_efficiency
from sora_compute.planning.scenarios import DataBucket, TrainingStage
from sora_compute.planning.training_time import micro_batch_for, sample_seconds
from sora_compute.presets import load_preset
from sora_compute.specs import VideoSpec, Workload
from tests.test_parallel import PROFILE  # h100-sxm with a made-up topology: 8 per node, 100 GB/s, 10 us

MODEL = load_preset("cogvideox-2b").model  # 1.69e9 parameters: replicated (ZeRO-0) it fits an 80 GB GPU
VIDEO = VideoSpec(width=256, height=256, num_frames=17)  # 1,280 tokens: micro-batch 7 (8,192 tokens)
W = Workload.of(MODEL, VIDEO)


def test_data_parallel_only_efficiency_by_hand():
    """8 GPUs in one node, DP8, ZeRO-0, no recomputation: the overheads are the exposed DP all-reduce and the
    optimizer step every replica repeats."""
    n, batch = 8, 112  # m = 112 / (8 GPUs x micro-batch 7) = 2 micro-batches per step
    e = stage_efficiency(W, PROFILE, n, batch, checkpointing="none",
                         pin={"tp": 1, "cp_ulysses": 1, "cp_ring": 1, "pp": 1, "zero": 0})
    assert e.layout is not None and e.layout.startswith("TP1 CP1u1r PP1 DP8 ZeRO-0")
    mb = micro_batch_for(W.tokens)
    ideal = sample_seconds(W, PROFILE, checkpointing="none", micro_batch=mb, global_batch=batch)
    dit = ideal["dit_fwd_s"] + ideal["dit_bwd_activation_s"] + ideal["dit_bwd_weight_s"]  # one sample, one GPU
    opt_full = optimizer_row(dit_params(MODEL.dit), PROFILE)[10]  # one replica's whole AdamW step, seconds
    assert ideal["seconds"] == pytest.approx(dit + opt_full / batch, rel=1e-12)
    grad = dit_params(MODEL.dit) * 2  # bf16 gradients, bytes
    ar = 10e-6 + 2 * 7 / 8 * grad / 100e9  # all-reduce over 8 in a node: latency + 2(n-1)/n x bytes / busbw
    last = DDP_BUCKET_BYTES / grad  # the last bucket waits for the backward; the rest hides, slowing it by S
    b_stage = (ideal["dit_bwd_activation_s"] + ideal["dit_bwd_weight_s"]) * mb  # one micro-batch's backward
    assert ar * (1 - last) < b_stage  # (so the rest hides behind it)
    dp_exposed = S * ar * (1 - last) + ar * last
    # per step: m = 112 / (8 mb) micro-batches of compute, + exposed all-reduce + the full optimizer on each GPU
    step = batch / (n * mb) * dit * mb + dp_exposed + opt_full
    assert e.step_s == pytest.approx(step, rel=1e-9)
    predicted = step * n / batch  # GPU-seconds per sample
    assert e.efficiency == pytest.approx((dit + opt_full / batch) / predicted, rel=1e-9)
    assert 0.9 < e.efficiency < 1


@settings(max_examples=6, deadline=None)
@given(st.sampled_from(["h100-sxm", "a100-80gb", "b200"]), st.sampled_from([448, 1792]))  # 7 x 64, 7 x 256
def test_efficiency_in_0_1_and_non_increasing_in_gpus_at_a_fixed_batch(gpu, batch):
    effs = [stage_efficiency(W, Cluster(gpu=gpu, count=1).profile, n, batch, checkpointing="full").efficiency
            for n in (1, 4, 16, 64)]
    assert all(0 < x <= 1 + 1e-12 for x in effs)
    assert all(b <= a * (1 + 1e-9) for a, b in zip(effs, effs[1:], strict=False))


def test_plan_headline_is_steps_times_the_best_layouts_step():
    """One stage, one bucket, steps x global batch: days = steps x step seconds of the best fitting layout of the
    search `plan --layouts` runs (same pins, same batch)."""
    steps, batch, n = 1000, 224, 32  # 224 = 7 x 32
    stage = TrainingStage(name="s", steps=steps, global_batch=batch,
                          buckets=(DataBucket(width=256, height=256, num_frames=17, share=1.0),))
    sc = TrainingScenario(model=MODEL, stages=(stage,), checkpointing="full")
    plan = plan_cluster(estimate_training(sc), Cluster(gpu="h100-sxm", count=n))
    best = search_training_layouts(MODEL, VIDEO, "h100-sxm", n, batch, pin=search_pins(W, "full", "fa2")).best
    assert best is not None and plan.scaling is not None
    assert plan.scaling.stages[0].layout == best["layout"]
    assert plan.days == pytest.approx(steps * float(best["step_s"]) / 86400, rel=1e-9)
    assert plan.efficiency < 1 and best["layout"] in plan.time_basis
    ideal = plan_cluster(estimate_training(sc), Cluster(gpu="h100-sxm", count=n), parallel=False)
    assert plan.days == pytest.approx(ideal.days / plan.efficiency, rel=1e-12)


def test_a_count_that_cannot_split_the_batch_runs_on_the_largest_power_of_two_and_pays_the_rest():
    h100 = Cluster(gpu="h100-sxm", count=1).profile
    # 7 GPUs: TP7 does not divide the 30 heads, DP7 x micro-batch 7 does not divide 448 = 7 x 64, CP and PP are
    # powers of two: no layout of 7
    four, seven = (stage_efficiency(W, h100, n, 448) for n in (4, 7))
    assert seven.layout == f"{four.layout} on 4 of the 7 GPUs" and seven.step_s == four.step_s
    # the same step on 4 GPUs, 7 paid: GPU-seconds per sample x 7 / 4, efficiency x 4 / 7
    assert seven.efficiency == pytest.approx(four.efficiency * 4 / 7, rel=1e-12)


def test_more_gpus_than_the_batch_splits_run_on_the_most_that_do_not_ideally():
    h100 = Cluster(gpu="h100-sxm", count=1).profile
    # a global batch of 28 at micro-batch 7: dp <= 4, tp <= 8, cp <= 256, pp <= 16 at most; 2^30 GPUs split it in
    # no layout: the stage runs on the largest power of two a layout fits, all 2^30 paid (it was scaled ideally: 100%)
    big = stage_efficiency(W, h100, 1 << 30, 28)
    assert big.layout is not None and "of the 1,073,741,824 GPUs (no layout of more splits the batch)" in big.layout
    used = int(big.layout.split(" on ")[1].split(" of ")[0].replace(",", ""))
    laid = stage_efficiency(W, h100, used, 28)
    assert used < 1 << 30 and big.step_s == laid.step_s
    assert big.efficiency == pytest.approx(laid.efficiency * used / (1 << 30), rel=1e-12)


def test_a_deadline_past_any_cluster_is_refused_not_met_ideally():
    from sora_compute.planning import gpus_for_days

    # sora in 1e-3 days needs 118M GPUs even at ideal scaling: past the 2^20 the search tries (it answered 118M)
    with pytest.raises(ValueError, match="even ideal scaling needs"):
        gpus_for_days(estimate_training("sora"), "h100-sxm", 1e-3)


def test_a_long_deadline_needs_a_cluster_every_stage_fits_on():
    from sora_compute.planning import gpus_for_days, training_time
    from sora_compute.planning.scaling import scenario_scaling

    # sora in 30,000 days: ideally 4 H100s, but no layout of 4 fits the 11.9B DiT's 1280x720 10 s stage in memory
    # (it answered 4, that stage 'ideal'); 8 GPUs lay every stage out, 7 (4 used) do not
    time = training_time(estimate_training("sora"), "h100-sxm")
    n = gpus_for_days(estimate_training("sora"), "h100-sxm", 30000, time=time)
    assert n == 8 and all(s.layout is not None for s in scenario_scaling(time, n).stages)
    assert any(s.layout is None for s in scenario_scaling(time, n - 1).stages)
