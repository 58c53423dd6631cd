"""Predicted training time (planning/training_time.py, the grid passes of evaluate/time_grid.py, ClusterPlan's
predicted path): numbers derived by hand on made-up or table-less profiles, the grid equal to the per-call model in
every pass, and properties (ideal scaling, the --mfu override reproducing FLOPs / (peak x MFU) exactly)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sora_compute.evaluate.eager import eager_extra
from sora_compute.evaluate.params import dit_params
from sora_compute.evaluate.time import ADAMW_BYTES_PER_PARAM, training_times
from sora_compute.evaluate.time_grid import pass_seconds, training_seconds
from sora_compute.flops import VideoGrid, dit_ops
from sora_compute.hardware.profiles import load_profile
from sora_compute.ledger.ops import attention_op, linear_op
from sora_compute.planning import Cluster, estimate_training, gpus_for_days, plan_cluster
from sora_compute.planning.training_time import (
    ASSUMED_GLOBAL_BATCH_TOKENS,
    ASSUMED_MICRO_BATCH_TOKENS,
    sample_seconds,
    training_time,
)
from sora_compute.presets import load_preset
from sora_compute.specs import VideoSpec, Workload
from tests.test_project import small_scenario
from tests.test_time import _attn, make_profile


def test_grid_passes_of_one_linear_and_one_attention_op_by_hand():
    # toy profile: 100 TFLOP/s, every GEMM at 50%, 1 TB/s at 50%, 10 us launch; fa2 fwd 40 TFLOP/s, bwd 20 TFLOP/s
    prof = make_profile(attention=[_attn("fa2", 128, 1024, 40), _attn("fa2", 128, 1024, 20, "bwd")])
    lin = [linear_op("blocks.{i}.fc", "mlp", 4096, 4096, 4096, blocks=range(1))]
    gemm = 2 * 4096**3 / (100e12 * 0.5) + 10e-6  # compute bound: 2.7488 ms + launch, in every pass
    for p in ("fwd", "bwd_activation", "bwd_weight", "recompute"):
        assert pass_seconds(lin, prof, pass_=p)[0] == pytest.approx(gemm, rel=1e-12)
    core = [attention_op("blocks.{i}.attn", "attention", 1, 8, 1024, 1024, 128, blocks=range(1))]
    fwd_flops = 4 * 8 * 1024 * 1024 * 128  # 4 B h Lq Lk d
    # forward and recomputation also run the eager extras of data/eager_ops.yaml (extra kernels at the launch floor
    # on a GPU profile; the core stays compute bound): 10 us each
    launches = 1 + eager_extra(core[0]).kernels
    assert pass_seconds(core, prof)[0] == pytest.approx(fwd_flops / 40e12 + launches * 10e-6, rel=1e-12)
    assert pass_seconds(core, prof, pass_="bwd_activation")[0] == pytest.approx(2.5 * fwd_flops / 20e12 + 10e-6,
                                                                                rel=1e-12)
    assert pass_seconds(core, prof, pass_="bwd_weight")[0] == 0.0  # no weights
    step = training_seconds(lin + core, prof, checkpointing="selective")
    assert step["recompute"][0] == pytest.approx(fwd_flops / 40e12 + launches * 10e-6, rel=1e-12)  # the core again


CASES = [("sora", "h100-sxm", "bf16", "fa2"), ("wan2.1-1.3b", "a100-80gb", "bf16", "math"),
         ("open-sora-plan", "h100-sxm", "fp8", "fa2"), ("ltx-video", "h200", "bf16", "fa3"),
         ("hunyuanvideo", "l20", "bf16", "fa2")]


@settings(max_examples=10, deadline=None)
@given(st.lists(st.tuples(st.integers(2, 40), st.integers(2, 30), st.integers(0, 20), st.integers(1, 4)),
                min_size=1, max_size=4), st.sampled_from(CASES), st.sampled_from(["none", "selective", "full"]))
def test_grid_training_passes_equal_the_per_call_model(shapes, case, checkpointing):
    name, gpu, dtype, kernel = case
    m = load_preset(name).model
    s = m.vae.spatial_compression * m.dit.patch_size[1]
    videos = [VideoSpec(width=w * s, height=h * s, num_frames=int(m.snap_frames(4 * f + 1))) for w, h, f, _ in shapes]
    batch = np.array([b for *_, b in shapes], dtype=np.float64)
    grid = VideoGrid(*(np.array([getattr(v, a) for v in videos], float) for a in ("width", "height", "num_frames")))
    got = training_seconds(dit_ops(m, grid, batch=batch), gpu, dtype, kernel, checkpointing)  # type: ignore[arg-type]
    for i, v in enumerate(videos):
        df = training_times(dit_ops(m, v, batch=int(batch[i])), gpu, dtype, kernel, checkpointing, optimizer=False)
        want = df.groupby("pass")["seconds"].sum()
        for p, arr in got.items():
            assert arr[i] == pytest.approx(float(want.get(p, 0.0)), rel=1e-12)


def test_sample_seconds_parts_and_the_optimizer_by_hand():
    """l20 has no kernel tables: memory ops at the ASSUMED 90% of 0.864 TB/s, 4 us launch (hardware/profiles)."""
    model = load_preset("wan2.1-1.3b").model
    w = Workload.of(model, VideoSpec(width=832, height=480, num_frames=81, fps=16))
    got = sample_seconds(w, "l20", checkpointing="full")
    assert got["micro_batch"] == max(1, math.ceil(ASSUMED_MICRO_BATCH_TOKENS / w.tokens)) == 1  # 32,760 tokens
    assert got["global_batch"] == pytest.approx(ASSUMED_GLOBAL_BATCH_TOKENS / w.tokens)
    step = training_times(dit_ops(w), "l20", checkpointing="full", optimizer=False).groupby("pass")["seconds"].sum()
    assert got["dit_fwd_s"] == pytest.approx(step["fwd"], rel=1e-12)
    assert got["recompute_s"] == pytest.approx(step["fwd"], rel=1e-3)  # full: the blocks again (not embed/head)
    optimizer = dit_params(model.dit) * ADAMW_BYTES_PER_PARAM / (0.864e12 * 0.9) + 4e-6  # one step, one GPU
    assert got["optimizer_s"] == pytest.approx(optimizer / got["global_batch"], rel=1e-12)
    parts = ("dit_fwd_s", "dit_bwd_activation_s", "dit_bwd_weight_s", "recompute_s", "vae_encode_s",
             "text_encode_s", "optimizer_s")
    assert got["seconds"] == pytest.approx(sum(got[k] for k in parts), rel=1e-12)
    assert got["vae_encode_s"] == got["text_encode_s"] == 0.0
    fly = sample_seconds(w, "l20", vae_on_the_fly=True, text_on_the_fly=True)
    assert fly["vae_encode_s"] > 0 and fly["text_encode_s"] > 0
    # an image batch: ceil(8192 / tokens) samples per micro-batch; seconds per sample = step / micro-batch
    img = Workload.of(model, VideoSpec(width=256, height=256, num_frames=1, fps=1))
    mb = math.ceil(ASSUMED_MICRO_BATCH_TOKENS / img.tokens)  # 256 tokens: 32 images
    one = sample_seconds(img, "h100-sxm")
    assert one["micro_batch"] == mb == 32
    step = training_times(dit_ops(img, batch=mb), "h100-sxm", optimizer=False)
    assert one["dit_fwd_s"] == pytest.approx(float(step.loc[step["pass"] == "fwd", "seconds"].sum()) / mb, rel=1e-12)


def test_predicted_cluster_plan_by_hand():
    est = estimate_training(small_scenario(checkpointing="selective"))
    c = Cluster(gpu="h100-sxm", count=64, price_usd_per_hour=2.5, pue=1.3)
    plan = plan_cluster(est, c, parallel=False)  # ideal scaling (tests/test_scaling.py: the parallel efficiency)
    per = {}
    for v in (VideoSpec(width=256, height=256, num_frames=17), VideoSpec(width=512, height=256, num_frames=1)):
        per[v.width] = sample_seconds(Workload.of(est.scenario.model, v), "h100-sxm", checkpointing="selective")
    gpu_seconds = 250 * per[256]["seconds"] + 750 * per[512]["seconds"]  # 1,000 samples, shares 0.25 / 0.75
    assert plan.time is not None and plan.time.gpu_seconds == pytest.approx(gpu_seconds, rel=1e-12)
    assert plan.seconds == pytest.approx(gpu_seconds / 64, rel=1e-12)  # ideal scaling
    assert plan.gpu_hours == pytest.approx(gpu_seconds / 3600, rel=1e-12)
    assert plan.cost_usd == pytest.approx(gpu_seconds / 3600 * 2.5, rel=1e-12)  # seconds x GPUs x price
    assert plan.energy_mwh == pytest.approx(gpu_seconds / 3600 * 700 * 1.3 / 1e6, rel=1e-12)  # H100 SXM 700 W
    assert plan.mfu == pytest.approx(est.model_flops / (gpu_seconds * 989e12), rel=1e-12)
    assert plan.hfu == pytest.approx(est.hardware_flops / (gpu_seconds * 989e12), rel=1e-12)
    assert plan.summary()["time_basis"] == "predicted"
    assert "ideal scaling over 64 GPUs" in plan.time_basis


@settings(max_examples=15, deadline=None)
@given(st.integers(1, 100_000), st.integers(1, 100_000), st.sampled_from(["h100-sxm", "b200", "a100-80gb"]))
def test_more_gpus_never_more_gpu_days_under_ideal_scaling(n1, n2, gpu):
    est = _EST
    time = training_time(est, gpu)
    lo, hi = sorted((n1, n2))
    a, b = (plan_cluster(est, Cluster(gpu=gpu, count=n), time=time, parallel=False) for n in (lo, hi))
    assert b.gpu_days <= a.gpu_days * (1 + 1e-12)
    assert b.days <= a.days


_EST = estimate_training(small_scenario(checkpointing="full"))


@settings(max_examples=20, deadline=None)
@given(st.floats(0.01, 1.0), st.integers(1, 10_000), st.sampled_from(["h100-sxm", "b200", "l40s"]))
def test_mfu_override_reproduces_flops_over_peak_times_mfu_exactly(mfu, n, gpu):
    plan = plan_cluster(_EST, Cluster(gpu=gpu, count=n, mfu=mfu))
    peak = load_profile(gpu).peak_flops("bf16")
    assert plan.seconds == _EST.model_flops / (n * peak * mfu)
    assert plan.time is None and plan.time_basis == (f"time from assumed MFU {mfu:.2f} (given); "
                                                  f"ideal scaling over {n:,} GPUs")
    assert gpus_for_days(_EST, gpu, 10, mfu=mfu) == max(1, math.ceil(_EST.model_flops / (peak * mfu * 10 * 86400)
                                                                      - 1e-9))


def test_gpus_for_days_predicted_is_the_fewest_that_finish():
    est = estimate_training("wan2.1-14b")
    time = training_time(est, "h100-sxm")
    n = gpus_for_days(est, "h100-sxm", days=30, time=time)
    assert n == gpus_for_days(est, "h100-sxm", days=30)  # computed there when not given
    assert plan_cluster(est, Cluster(gpu="h100-sxm", count=n), time=time).days <= 30
    assert plan_cluster(est, Cluster(gpu="h100-sxm", count=n - 1), time=time).days > 30


def test_no_prediction_falls_back_to_the_planning_mfu_and_says_why():
    # cuDNN attention has no points for the A100 tables: the time model cannot predict it
    plan = plan_cluster(_EST, Cluster(gpu="a100-80gb", count=8, attention_kernel="cudnn"))
    assert plan.time is None and plan.mfu == 0.40
    assert plan.time_basis.startswith("time from assumed MFU 0.40 (the GPU's planning MFU: attention kernel 'cudnn'")
    flops = plan_cluster(1e24, Cluster(gpu="h100-sxm", count=8))
    assert flops.time_basis == ("time from assumed MFU 0.40 (the GPU's planning MFU: bare FLOPs, no workload to "
                                "predict); ideal scaling over 8 GPUs")
