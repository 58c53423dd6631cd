"""Training/inference projections, the GPT-3 yardstick, cluster and serving arithmetic, checked by hand."""

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from sora_compute import MATMUL_ONLY, count_dit, count_text_encoder, count_vae_decode, count_vae_encode
from sora_compute.hardware import UnknownGPUError, gpu_names, load_gpu
from sora_compute.planning import (
    GPT3_6ND_FLOPS,
    GPT3_PAPER_FLOPS,
    Cluster,
    DataBucket,
    InferenceSettings,
    TrainingScenario,
    TrainingStage,
    VAETiling,
    budget_plan,
    estimate_inference,
    estimate_training,
    gpus_for_days,
    load_scenario,
    plan_cluster,
    plan_serving,
    six_nd,
    sweep,
)
from sora_compute.planning.sensitivity import published_estimates, sensitivity
from sora_compute.specs import VideoSpec

SORA = load_scenario("sora")
MODEL = SORA.model


def small_scenario(**kw) -> TrainingScenario:
    stage = TrainingStage(name="s", samples=1000,
                          buckets=(DataBucket(width=256, height=256, num_frames=17, share=0.25),
                                   DataBucket(width=512, height=256, num_frames=1, share=0.75)))
    return TrainingScenario(model=MODEL, stages=(stage,), **kw)


def fwd_flops(w, h, f):
    return 2 * count_dit(MODEL, VideoSpec(width=w, height=h, num_frames=f), convention=MATMUL_ONLY).macs


def test_training_flops_are_3x_forward_times_samples():
    est = estimate_training(small_scenario())
    by_hand = 250 * 3 * fwd_flops(256, 256, 17) + 750 * 3 * fwd_flops(512, 256, 1)
    assert est.model_flops == pytest.approx(by_hand, rel=1e-12)
    assert est.hardware_flops == est.model_flops  # no recomputation


def test_checkpointing_and_on_the_fly_encoders_add_what_they_should():
    base = estimate_training(small_scenario())
    full = estimate_training(small_scenario(checkpointing="full"))
    sel = estimate_training(small_scenario(checkpointing="selective"))
    fly = estimate_training(small_scenario(vae_on_the_fly=True, text_on_the_fly=True))
    fwd = 250 * fwd_flops(256, 256, 17) + 750 * fwd_flops(512, 256, 1)
    assert full.model_flops == base.model_flops  # recomputation is not model FLOPs (MFU) ...
    assert full.hardware_flops - base.hardware_flops == pytest.approx(fwd, rel=1e-12)  # ... but is hardware (HFU)

    def sdpa(w, h, f):
        c = count_dit(MODEL, VideoSpec(width=w, height=h, num_frames=f), convention=MATMUL_ONLY)
        return 2 * sum(t.total_macs for t in c.terms if t.op == "sdpa")
    assert sel.hardware_flops - base.hardware_flops == pytest.approx(250 * sdpa(256, 256, 17) + 750 * sdpa(512, 256, 1))
    def enc_flops(w, h, f):
        return count_vae_encode(MODEL, VideoSpec(width=w, height=h, num_frames=f), convention=MATMUL_ONLY).flops
    enc = 250 * enc_flops(256, 256, 17) + 750 * enc_flops(512, 256, 1)
    text = 1000 * count_text_encoder(MODEL, convention=MATMUL_ONLY).flops
    assert fly.model_flops - base.model_flops == pytest.approx(enc + text, rel=1e-12)


def test_sample_count_forms_agree():
    b = (DataBucket(width=256, height=256, num_frames=17),)

    def mk(**kw):
        return estimate_training(TrainingScenario(model=MODEL, stages=(TrainingStage(name="s", buckets=b, **kw),)))
    ref = mk(samples=6000).model_flops
    assert mk(videos=2000, epochs=3).model_flops == pytest.approx(ref)
    assert mk(steps=60, global_batch=100).model_flops == pytest.approx(ref)
    tokens = count_dit(MODEL, VideoSpec(width=256, height=256, num_frames=17)).shape["tokens"]
    assert mk(token_budget=6000 * tokens).model_flops == pytest.approx(ref)


def test_gpt3_by_6nd_within_1pct_of_paper():
    assert six_nd(175e9, 300e9) == GPT3_6ND_FLOPS
    assert pytest.approx(GPT3_PAPER_FLOPS, rel=0.01) == GPT3_6ND_FLOPS


def test_sora_scenario_reproduces_seed_estimate():
    est = estimate_training(SORA)
    assert est.gpt3_multiple == pytest.approx(8.2, rel=0.10)
    assert est.gpt3_multiple_6nd == pytest.approx(est.model_flops / 3.15e23)
    assert est.six_nd_multiple < est.gpt3_multiple / 2  # a parameter-count estimate misses attention
    assert set(SORA.assumptions) >= {"target", "model", "stage 3"}


def test_sensitivity_brackets_the_base_and_ranks_by_swing():
    s = sensitivity(SORA)
    assert s["multiple_base"].tolist() == pytest.approx([estimate_training(SORA).gpt3_multiple] * len(s))
    assert (s["multiple_low"] <= s["multiple_base"] + 1e-9).all() and (s["multiple_high"] >= s["multiple_base"]).all()
    assert list(s["swing"]) == sorted(s["swing"], reverse=True)
    assert "DiT size" in set(s["assumption"])


def test_published_estimates_land_where_the_arithmetic_says():
    p = published_estimates(mfu=0.4).set_index("source")
    assert p.loc["China Galaxy Securities (brokerage)", "gpt3_multiple"] == pytest.approx(2.7, rel=0.02)
    ff = 4200 * 989e12 * 0.4 * 30 * 86400
    assert p.loc["Factorial Funds (2024), low", "flops"] == pytest.approx(ff)
    assert p.loc["seed report", "ratio_to_ours"] == pytest.approx(1, rel=0.1)


# ------------------------------------------------------------------------------------------------

def test_cluster_arithmetic_by_hand():
    c = Cluster(gpu="h100-sxm", count=4096, mfu=0.4, pue=1.2, price_usd_per_hour=2.0)
    plan = plan_cluster(1e24, c)
    seconds = 1e24 / (4096 * 989e12 * 0.4)
    assert plan.days == pytest.approx(seconds / 86400)
    assert plan.gpu_hours == pytest.approx(4096 * seconds / 3600)
    assert plan.cost_usd == pytest.approx(4096 * seconds / 3600 * 2.0)
    assert plan.energy_mwh == pytest.approx(4096 * seconds / 3600 * 700 * 1.2 / 1e6)
    assert plan.hfu == pytest.approx(0.4)


def test_hfu_exceeds_mfu_with_recomputation():
    est = estimate_training(small_scenario(checkpointing="full"))
    # an assumed MFU (full recomputation adds one forward to the three of training: HFU = MFU x 4 / 3)
    plan = plan_cluster(est, Cluster(gpu="b200", count=8, mfu=0.4))
    assert plan.hfu == pytest.approx(0.4 * 4 / 3)
    assert plan.summary()["basis"] == "time from assumed MFU 0.40 (given); ideal scaling over 8 GPUs"
    # predicted: the time model's MFU, and HFU by the same FLOPs ratio
    plan = plan_cluster(est, Cluster(gpu="b200", count=8))
    assert plan.hfu == pytest.approx(plan.mfu * 4 / 3)
    assert plan.summary()["basis"].startswith("predicted by the time model")


def test_inverse_queries():
    flops = 2.6e24
    n = gpus_for_days(flops, "h100-sxm", days=90, mfu=0.4)
    assert plan_cluster(flops, Cluster(gpu="h100-sxm", count=n, mfu=0.4)).days <= 90
    assert plan_cluster(flops, Cluster(gpu="h100-sxm", count=n - 1, mfu=0.4)).days > 90
    c = Cluster(gpu="h100-sxm", count=1000, mfu=0.4, price_usd_per_hour=2.0)
    b = budget_plan(flops, c, budget_usd=1e6)
    assert b["affordable_days"] == pytest.approx(1e6 / (1000 * 2.0 * 24))
    assert b["budget_needed_usd"] == pytest.approx(plan_cluster(flops, c).cost_usd)


@given(st.integers(1, 10_000), st.integers(1, 10_000), st.floats(0.05, 1.0))
def test_more_gpus_never_take_longer(n1, n2, mfu):
    lo, hi = sorted((n1, n2))
    days = [plan_cluster(1e23, Cluster(gpu="a100-80gb", count=n, mfu=mfu)).days for n in (lo, hi)]
    assert days[1] <= days[0]


@given(st.integers(0, 6), st.integers(0, 6), st.integers(1, 4), st.integers(1, 4), st.integers(1, 3))
def test_more_frames_pixels_epochs_never_cost_less(k1, k2, s1, s2, epochs):
    f1, f2 = sorted((1 + 4 * k1, 1 + 4 * k2))
    a, b = sorted((s1, s2))

    def cost(frames, scale, ep):
        stage = TrainingStage(name="s", videos=10, epochs=ep,
                              buckets=(DataBucket(width=64 * scale, height=64 * scale, num_frames=frames),))
        return estimate_training(TrainingScenario(model=MODEL, stages=(stage,))).model_flops

    assert cost(f1, a, epochs) <= cost(f2, a, epochs)
    assert cost(f1, a, epochs) <= cost(f1, b, epochs)
    assert cost(f1, a, epochs) <= cost(f1, a, epochs + 1)


@given(st.integers(1, 100), st.integers(1, 100))
def test_more_steps_never_cost_less(s1, s2):
    lo, hi = sorted((s1, s2))
    v = VideoSpec(width=256, height=256, num_frames=17)
    assert (estimate_inference(MODEL, v, InferenceSettings(steps=lo)).flops_per_video
            <= estimate_inference(MODEL, v, InferenceSettings(steps=hi)).flops_per_video)


# ------------------------------------------------------------------------------------------------

def test_inference_per_video_by_hand():
    v = VideoSpec(width=1280, height=720, num_frames=241)
    e = estimate_inference(MODEL, v, InferenceSettings(steps=50, cfg=True))
    fwd = 2 * count_dit(MODEL, v, convention=MATMUL_ONLY).macs
    text = 2 * count_text_encoder(MODEL, convention=MATMUL_ONLY).macs
    dec = 2 * count_vae_decode(MODEL, v, convention=MATMUL_ONLY).macs
    assert e.flops_per_video == pytest.approx(2 * text + 100 * fwd + dec, rel=1e-12)
    assert e.flops_per_minute == pytest.approx(e.flops_per_video * 60 / (241 / 24))
    assert e.flops_per_1k_videos == pytest.approx(1000 * e.flops_per_video)
    seq = estimate_inference(MODEL, v, InferenceSettings(steps=50, cfg_mode="sequential"))
    assert seq.flops_per_video == pytest.approx(e.flops_per_video, rel=1e-12)  # batching changes bytes, not FLOPs
    cached = estimate_inference(MODEL, v, InferenceSettings(steps=50, cache_skip_fraction=0.5))
    assert cached.flops_by_component["dit"] == pytest.approx(50 * fwd)
    distilled = estimate_inference(MODEL, v, InferenceSettings(steps=4, cfg=False))
    assert distilled.flops_by_component["dit"] == pytest.approx(4 * fwd)


def test_vae_tiling_costs_the_overlap():
    v = VideoSpec(width=1280, height=720, num_frames=241)
    untiled = estimate_inference(MODEL, v).flops_by_component["vae_decode"]
    big_tile = estimate_inference(MODEL, v, InferenceSettings(vae_tiling=VAETiling(tile_px=2048)))
    assert big_tile.flops_by_component["vae_decode"] == pytest.approx(untiled)
    tiled = estimate_inference(MODEL, v, InferenceSettings(vae_tiling=VAETiling(tile_px=256, overlap_px=64)))
    # diffusers' tiled_decode: 720/8 = 90 latent rows, tiles of 32 every 24 -> starts 0, 24, 48, 72: heights 32, 32, 32,
    # 18; 160 cols -> starts 0, 24, ..., 144: widths 32 x 6, 16 (edge tiles cut short, not counted at full size)
    lat = MODEL.latent_shape(v)
    vae_only = MODEL.model_copy(update={"dit": MODEL.dit.model_copy(update={"patch_size": (1, 1, 1)})})
    s, frames = MODEL.vae.spatial_compression, v.num_frames
    by_hand = sum(count_vae_decode(vae_only, VideoSpec(width=w * s, height=h * s, num_frames=frames),
                                   convention=MATMUL_ONLY).flops
                  for h in (32, 32, 32, 18) for w in (32,) * 6 + (16,))
    assert lat.height == 90 and lat.width == 160
    assert tiled.counts["vae_decode"].shape["decoder_calls"] == 4 * 7
    assert tiled.flops_by_component["vae_decode"] == pytest.approx(by_hand, rel=1e-12)
    assert tiled.flops_by_component["vae_decode"] > untiled
    with pytest.raises(ValidationError, match="overlap_px"):
        VAETiling(tile_px=64, overlap_px=64)


def test_serving_plan_bounds():
    e = estimate_inference("sora")
    s = plan_serving(e, "h100-sxm", gpus_per_video=8, mfu=0.4)
    assert s.latency_s == pytest.approx(e.flops_per_video / (8 * 989e12 * 0.4))
    assert s.latency_lower_bound_s >= e.flops_per_video / (8 * 989e12) * (1 - 1e-9)
    assert s.videos_per_gpu_hour == pytest.approx(3600 / (s.latency_s * 8))
    assert s.gpus_for(10_000) == math.ceil(10_000 * s.latency_s * 8 / 86400)


def test_gpu_catalog_has_the_required_parts_with_sources():
    required = {"a100-40gb", "a100-80gb", "h100-sxm", "h100-pcie", "h200", "b200", "gb200", "mi300x", "mi325x",
                "l40s", "tpu-v5e", "tpu-v5p"}
    assert required <= set(gpu_names())
    h100 = load_gpu("h100-sxm")
    assert (h100.bf16_tflops, h100.hbm_tbps, h100.tdp_w) == (989, 3.35, 700)  # anchors.md table
    assert all(load_gpu(k).source for k in gpu_names())
    with pytest.raises(UnknownGPUError, match="did you mean 'h100-sxm'"):
        load_gpu("h100")
    with pytest.raises(ValueError, match="no FP8"):
        Cluster(gpu="a100-80gb", count=8, precision="fp8")


def test_sweep_rows_and_values_match_scalar_api():
    df = sweep(["sora"], [(1280, 720), (1920, 1088)], [5, 10], fps=[24], gpus=["h100-sxm", "b200"],
               gpu_counts=[1024, 4096], samples=1e6)
    assert len(df) == 2 * 2 * 2 * 2
    row = df[(df.width == 1280) & (df.duration_s > 9) & (df.gpu == "b200") & (df.gpus == 4096)].iloc[0]
    assert row["num_frames"] == 241
    assert row["dit_forward_flops"] == pytest.approx(fwd_flops(1280, 720, 241))
    assert row["train_flops"] == pytest.approx(3e6 * fwd_flops(1280, 720, 241))
    # the same training as a one-bucket scenario through the scalar API: the same predicted seconds
    one = TrainingStage(name="s", samples=1e6, buckets=(DataBucket(width=1280, height=720, num_frames=241, fps=24),))
    est = estimate_training(TrainingScenario(model=MODEL, stages=(one,)))
    assert row["train_flops"] == pytest.approx(est.model_flops, rel=1e-12)
    plan = plan_cluster(est, Cluster(gpu="b200", count=4096), parallel=False)  # the sweep scales ideally
    assert plan.time is not None and row["time_basis"] == "predicted"
    assert row["train_days"] == pytest.approx(plan.days, rel=1e-9)
    assert row["cost_usd"] == pytest.approx(plan.cost_usd, rel=1e-9)
    assert row["mfu"] == pytest.approx(plan.mfu, rel=1e-9)
    # --mfu: FLOPs / (GPUs x peak x MFU), exactly as before the time model
    at = sweep(["sora"], [(1280, 720)], [10], fps=[24], gpus=["b200"], gpu_counts=[4096], samples=1e6, mfu=0.35)
    assumed = plan_cluster(row["train_flops"], Cluster(gpu="b200", count=4096, mfu=0.35))
    assert at["train_days"][0] == row["train_flops"] / (4096 * 2250e12 * 0.35) / 86400 == assumed.days
    assert at["latency_s_1gpu"][0] == row["inference_flops_per_video"] / (2250e12 * 0.35)
    assert at["time_basis"][0] == "assumed_mfu" and at["mfu"][0] == 0.35
    inf = estimate_inference(MODEL, VideoSpec(width=1280, height=720, num_frames=241))
    assert row["inference_flops_per_video"] == pytest.approx(inf.flops_per_video)
    assert np.isfinite(df["energy_mwh"]).all()


def test_published_inference_anchor_arithmetic():
    from sora_compute.planning.sensitivity import published_inference

    df = published_inference(mfu=0.4).set_index("source")
    theirs = df.loc["Factorial Funds (2024)", "flops_per_video_minute"]
    assert theirs == pytest.approx(989e12 * 0.4 * 3600 / 5)
    ours = df.loc["sora-compute, sora preset", "flops_per_video_minute"]
    assert ours == pytest.approx(estimate_inference("sora").flops_per_minute)
    # our throughput is the serving plan's predicted one (one answer per question)
    plan = plan_serving(estimate_inference("sora"), "h100-sxm")
    assert df.loc["sora-compute, sora preset", "video_minutes_per_h100_hour"] == plan.video_minutes_per_gpu_hour
    # a what-if's clip (estimate --resolution/--duration) is the one compared, not the preset's
    clip = estimate_inference("sora", VideoSpec(width=1920, height=1088, num_frames=481, fps=24))
    row = published_inference(inference=clip).iloc[1]
    assert row["source"] == "sora-compute, sora at 1920x1088"
    assert row["flops_per_video_minute"] == pytest.approx(clip.flops_per_minute)
    assert row["video_minutes_per_h100_hour"] == plan_serving(clip, "h100-sxm").video_minutes_per_gpu_hour
    assert "20 s clip" in row["reading"]
