"""Issue 17: training recipes. Hand-checked iteration and bucket arithmetic (samples, images/videos, latent tokens per
stage, exact), the goodput and cost arithmetic of the time part, file round trips and one-line errors."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from sora_compute.evaluate.time import training_times
from sora_compute.flops import MATMUL_ONLY, count_dit, count_text_encoder, count_vae_encode, dit_ops
from sora_compute.hardware import load_gpu
from sora_compute.hardware.profiles import load_profile
from sora_compute.planning.recipe import bucket_samples, recipe_counts
from sora_compute.planning.recipe_plans import compare_gpu_types, scale_recipe
from sora_compute.planning.recipe_spec import (
    Recipe,
    RecipeFileError,
    RecipeStage,
    UnknownRecipeError,
    dump_recipe,
    load_recipe,
    load_recipe_file,
    recipe_from_dict,
    recipe_names,
)
from sora_compute.planning.recipe_time import estimate_recipe
from sora_compute.planning.recipe_validate import recipe_comparison
from sora_compute.planning.validate import validate
from sora_compute.planning.validation import ValidationEntry
from sora_compute.presets import load_preset
from sora_compute.specs import VideoSpec, Workload
from tests.clirun import main

IMG = {"name": "img", "width": 256, "height": 256, "num_frames": 1}
VID = {"name": "vid", "width": 256, "height": 256, "num_frames": 129}


def _recipe(**stage: object) -> Recipe:
    base = {"name": "s", "iterations": 10, "gpus": 8, "cp": 2, "checkpointing": "none",
            "buckets": [{**IMG, "weight": 1, "batch_per_rank": 4}, {**VID, "weight": 3, "batch_per_rank": 2}]}
    return recipe_from_dict({"preset": "open-sora-2.0", "gpu": "h200", "stages": [{**base, **stage}]}, "t")


def test_bucket_table_samples_images_videos_tokens_by_hand():
    # 8 GPUs, cp 2 -> dp = 4 ranks; weights 1 : 3 -> 0.25, 0.75.
    # images: 10 iterations x 4 ranks x 0.25 x 4 per rank = 40; videos: 10 x 4 x 0.75 x 2 = 60.
    # Open-Sora 2.0 (HunyuanVideo VAE 8x spatial, 4x causal temporal; patch 1x2x2): a 256x256 image is
    # 1 latent frame x (256/16)^2 = 256 tokens; 129 frames -> (129-1)/4+1 = 33 latent frames x 256 = 8,448 tokens.
    rc = _recipe()
    assert rc.stages[0].dp == 4
    c = recipe_counts(rc)
    assert list(c["samples"]) == [40.0, 60.0]
    assert list(c["images"]) == [40.0, 0.0] and list(c["videos"]) == [0.0, 60.0]
    assert list(c["video_tokens"]) == [256, 8448] and list(c["latent_frames"]) == [1, 33]
    assert c["tokens"].sum() == 40 * 256 + 60 * 8448 == 517_120


def test_global_batch_samples_by_hand():
    # 100 iterations x 64 samples, weights 1 : 1 -> 3,200 each; per rank 64 / dp 4 = 16 samples.
    rc = _recipe(global_batch=64, buckets=[IMG, VID])
    c = recipe_counts(rc)
    assert bucket_samples(rc.stages[0]) == [320.0, 320.0]  # 10 iterations here
    assert list(c["rank_batch"]) == [1, 1]  # micro-batches of the stage's micro_batch (default 1)
    rc = _recipe(iterations=100, global_batch=64, buckets=[IMG, VID])
    assert list(recipe_counts(rc)["samples"]) == [3200.0, 3200.0]


def test_flops_come_from_the_ledger_counts():
    # model FLOPs per sample = 3 x DiT forward + VAE encode + text encode (both on the fly by default), each from
    # the ledger's counts on the Workload; no recomputation with checkpointing none.
    rc = _recipe()
    c = recipe_counts(rc)
    m = rc.model
    w = Workload.of(m, VideoSpec(width=256, height=256, num_frames=129))
    per = 3 * count_dit(w, convention=MATMUL_ONLY).flops + count_vae_encode(w, convention=MATMUL_ONLY).flops + \
        count_text_encoder(m, convention=MATMUL_ONLY).flops
    assert c["model_flops"].iloc[1] == pytest.approx(60 * per, rel=1e-12)
    assert c["hardware_flops"].iloc[1] == c["model_flops"].iloc[1]
    pre = recipe_counts(_recipe(latents="precomputed", text="precomputed"))
    assert pre["model_flops"].iloc[1] == pytest.approx(60 * 3 * count_dit(w, convention=MATMUL_ONLY).flops,
                                                       rel=1e-12)


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 10**6), st.sampled_from([1, 2, 4]), st.integers(1, 64),
       st.lists(st.tuples(st.integers(1, 100), st.integers(1, 64)), min_size=1, max_size=4))
def test_bucket_samples_sum_to_iterations_x_ranks_x_mean_batch(iterations, cp, ranks, table):
    # sum over buckets of iterations x dp x w x batch = iterations x dp x (sum w batch) / (sum w)
    stage = RecipeStage(name="s", iterations=iterations, gpus=cp * ranks, cp=cp, buckets=[
        {**IMG, "weight": w, "batch_per_rank": b} for w, b in table])
    expected = iterations * ranks * sum(w * b for w, b in table) / sum(w for w, _ in table)
    assert sum(bucket_samples(stage)) == pytest.approx(expected, rel=1e-12)


def test_time_goodput_cost_by_hand():
    # goodput: wall = productive / ((1 - 0.5)(1 - 0.5)) = 4 x productive; cost = GPU-hours x $3.
    rc = _recipe(checkpointing="full", latents="precomputed", text="precomputed").model_copy(update={
        "price_usd_per_hour": 3.0, "goodput": recipe_from_dict({"preset": "dit-s-2", "goodput": {
            "evaluation": {"fraction": 0.5, "source": "test"}, "failures": {"fraction": 0.5, "source": "test"}},
            "stages": _recipe().model_dump()["stages"]}).goodput})
    est = estimate_recipe(rc)
    s = est.stages.iloc[0]
    # dp 4 ranks of cp 2: a rank's 2-sample micro-batch (one per iteration) is split over its 2 GPUs, so the DiT
    # GPU-seconds = iterations x gpus x weight x T(2) / 2 = 10 x 8 x 0.75 x T / 2 = (60 samples / 2) x T, T the
    # time model's fwd + bwd + full recompute of 2 samples on one GPU
    w = Workload.of(rc.model, VideoSpec(width=256, height=256, num_frames=129))
    t2 = float(training_times(dit_ops(w, batch=2), load_profile("h200"), "bf16", "fa2", "full",
                              optimizer=False)["seconds"].sum())
    assert est.buckets["dit_gpu_s"].iloc[1] == pytest.approx(60 / 2 * t2, rel=1e-9)
    assert s["vae_encode_gpu_s"] == 0 and s["text_encode_gpu_s"] == 0
    assert s["gpu_seconds"] == pytest.approx(4 * s["productive_gpu_seconds"], rel=1e-12)
    assert s["evaluation_gpu_s"] == pytest.approx(s["productive_gpu_seconds"], rel=1e-12)  # 2x - 1x
    assert s["failures_gpu_s"] == pytest.approx(2 * s["productive_gpu_seconds"], rel=1e-12)  # 4x - 2x
    assert s["cost_usd"] == pytest.approx(s["gpu_seconds"] / 3600 * 3.0, rel=1e-12)
    assert s["wall_days"] == pytest.approx(s["gpu_seconds"] / 8 / 86400, rel=1e-12)
    assert s["energy_mwh"] == pytest.approx(s["gpu_seconds"] / 3600 * load_gpu("h200").tdp_w * 1.2 / 1e6)
    bd = est.breakdown()
    assert bd.groupby("stage")["share"].sum().iloc[0] == pytest.approx(1.0)


def test_scaling_keeps_samples():
    rc = _recipe(iterations=1000)
    big = scale_recipe(rc, 2.0)
    assert big.stages[0].gpus == 16 and big.stages[0].iterations == 500
    assert sum(bucket_samples(big.stages[0])) == sum(bucket_samples(rc.stages[0]))


@pytest.mark.parametrize("name", recipe_names())
def test_presets_round_trip_yaml_and_json(name, tmp_path):
    rc = load_recipe(name)
    for fmt in ("yaml", "json"):
        p = tmp_path / f"r.{fmt}"
        p.write_text(dump_recipe(rc, fmt))  # type: ignore[arg-type]
        assert load_recipe_file(p) == rc


def test_open_sora_2_preset_reads_the_configs():
    rc = load_recipe("open-sora-2.0")
    s1, _, s3 = rc.stages
    # configs/diffusion/train/stage1.py: 33 frame buckets at 256px + 768px and 1024px images; 85k iterations, 224 GPUs
    assert (s1.iterations, s1.gpus, len(s1.buckets)) == (85_000, 224, 35)
    assert {b.num_frames: b.batch_per_rank for b in s1.buckets if b.name == "256px"}[129] == 3
    # stage2.py: sp_size 4 -> cp 4, 192 GPUs -> 48 data-parallel ranks
    assert (s3.cp, s3.dp) == (4, 48)
    assert rc.model == load_preset("open-sora-2.0").model


def test_step_video_preset_gives_back_the_reports_seen_samples():
    # Step-Video-T2V report Table 6: #iters and #seen samples per row; the preset's global batch is nodes x bs/node
    # (375 or 250 nodes derived), so iterations x global batch must give each row's published (rounded) count back.
    published = {"t2i-256px-a": 0.8e9, "t2i-256px-b": 3e9, "t2vi-192px-a": 256e6, "t2vi-192px-b": 151e6,
                 "t2vi-192px-c": 237e6, "t2vi-540px-a": 17.3e6, "t2vi-540px-b": 8.5e6, "t2vi-540px-c": 1.5e6}
    rc = load_recipe("step-video-t2v")
    assert [s.name for s in rc.stages] == list(published)
    for s in rc.stages:
        samples = sum(bucket_samples(s))
        assert samples == s.iterations * s.global_batch  # e.g. 200,000 x 15,000 = 3.0e9 exactly
        assert samples == pytest.approx(published[s.name], rel=0.01), s.name  # 53k x 15,000 = 0.795e9 ~ 0.8B
    # bs/node with one data-parallel rank per 8-GPU node (tp 8): 3,000 GPUs -> 375 ranks x 40 = 15,000
    assert (rc.stages[1].dp, rc.stages[1].global_batch // rc.stages[1].dp) == (375, 40)


@pytest.mark.parametrize("text, field", [
    ("iterations: .inf", "iterations"), ("iterations: 0", "iterations"),
    ("iterations: 1\n    gpus: 3\n    cp: 2", "gpus=3"),
    ("iterations: 1\n    global_batch: 8", "not both"), ("iterations: 1\n    bogus: 1", "bogus"),
])
def test_bad_files_are_one_line_errors(tmp_path, text, field):
    body = ("preset: dit-s-2\nstages:\n  - name: a\n    gpus: 4\n    " + text + "\n    buckets: [{width: 256, "
            "height: 256, num_frames: 1, batch_per_rank: 2}]\n")
    if "gpus: 3" in text:
        body = body.replace("    gpus: 4\n", "")
    p = tmp_path / "r.yaml"
    p.write_text(body)
    with pytest.raises((ValidationError, RecipeFileError)):
        load_recipe_file(p)
    r = main("recipe", str(p))
    assert r.code == 2 and len(r.err.strip().splitlines()) == 1 and field in r.err, r.err
    assert "after validation" not in r.err  # pydantic's 'stages: at least 1 item' echo of the item's error


def test_a_global_batch_that_does_not_split_over_dp_is_refused():
    # 64 samples over dp = 3 ranks: 21.33 per rank; the time path would run fractional samples
    with pytest.raises(ValidationError, match="does not split into whole samples over dp = 3"):
        _tiny(global_batch=64, gpus=3)
    assert _tiny(global_batch=63, gpus=3).stages[0].dp == 3


def test_nan_in_json_and_unknown_names(tmp_path):
    p = tmp_path / "r.json"
    p.write_text(json.dumps({"preset": "dit-s-2", "stages": [{"name": "a", "iterations": 1, "gpus": 1, "buckets": [
        {"width": 256, "height": 256, "num_frames": 1, "batch_per_rank": 1, "weight": float("nan")}]}]}))
    r = main("recipe", str(p))
    assert r.code == 2 and "weight" in r.err
    with pytest.raises(UnknownRecipeError, match="did you mean"):
        load_recipe("open-sora-2")
    r = main("recipe", "open-sora-2")
    assert r.code == 2 and "unknown recipe" in r.err


def _entry(**kw: object) -> ValidationEntry:
    base = {"id": "r", "model": "open-sora-2.0", "kind": "training", "scope": "training_run", "gpu": "h200",
            "gpu_as_published": "H200", "gpus": 8, "source": "test", "quote": "test"}
    return ValidationEntry.model_validate({**base, **kw})


def test_validation_entries_of_training_runs(tmp_path):
    p = tmp_path / "tiny.yaml"
    p.write_text(dump_recipe(_recipe()))
    # published 10 GPU-hours on 8 GPUs = 10 x 3600 / 8 = 4,500 s of wall-clock; predicted = GPU-seconds / 8
    row = recipe_comparison(_entry(gpu_hours=10, recipe=str(p), stage="s"))
    gpu_s = float(estimate_recipe(str(p)).stages["gpu_seconds"].iloc[0])
    assert row["published_s"] == 4500.0 and row["predicted_s"] == pytest.approx(gpu_s / 8, rel=1e-12)
    assert row["error"] == pytest.approx(gpu_s / 8 / 4500 - 1, rel=1e-12) and row["status"] == "compared"
    step = recipe_comparison(_entry(scope="training_step", seconds=2.0, recipe=str(p), stage="s"))
    per_iter = float(estimate_recipe(str(p)).stages["seconds_per_iteration"].iloc[0])
    assert step["error"] == pytest.approx(per_iter / 2.0 - 1, rel=1e-12)
    assert recipe_comparison(_entry(gpu_hours=1, recipe=str(p), stage="nope"))["status"] == "no stage"
    assert recipe_comparison(_entry(gpu_hours=1, recipe="nope"))["status"] == "no recipe"
    with pytest.raises(ValidationError, match="gpu_hours or cost_usd"):
        _entry(recipe="open-sora-2.0")
    with pytest.raises(ValidationError, match="give recipe too"):
        _entry(gpu_hours=1, stage="s")


def test_packaged_training_runs_are_compared():
    t = validate().table
    rows = t[t["id"].str.startswith(("opensora2-train", "opensora12-train"))]
    assert len(rows) >= 6 and set(rows["status"]) == {"compared"}


def test_gpu_types_fall_back_to_fa2_and_global_batch_round_trip(tmp_path):
    # 32 GPUs: the 11B DiT's ZeRO-2 states over dp x cp = 32 ranks fit an 80 GB GPU (over 8 they need 80.3 GiB)
    rc = _recipe(global_batch=64, gpus=32, buckets=[IMG, VID],
                 goodput={"failures": {"fraction": 0.1, "source": "x"}})
    rc = rc.model_copy(update={"attention_kernel": "fa3"})
    p = tmp_path / "g.json"
    p.write_text(dump_recipe(rc, "json"))
    assert load_recipe_file(p) == rc
    cmp = compare_gpu_types(rc, ["a100-80gb", "h100-sxm"])
    assert dict(zip(cmp["gpu"], cmp["attention_kernel"], strict=True)) == {"a100-80gb": "fa2", "h100-sxm": "fa3"}
    assert cmp["cheapest"].sum() == 1 and cmp["cost_usd"].is_monotonic_increasing


@pytest.mark.parametrize("gpu", ["mi300x", "tpu-v5p"])
def test_a_gpu_without_attention_tables_is_labelled_with_the_default_mfu_that_timed_it(gpu):
    # cdna3.yaml has no attention points and a TPU no kernel tables: FA3's cores there are timed at the profile's
    # default_mfu (the time model's basis says so), which the comparison names instead of 'fa3'
    rc = _recipe(global_batch=64, gpus=32, buckets=[IMG, VID]).model_copy(update={"attention_kernel": "fa3"})
    prof = load_profile(gpu)
    w = Workload.of(rc.model, VideoSpec(width=256, height=256, num_frames=129))
    rows = training_times(dit_ops(w, batch=1), prof, "bf16", "fa3", "none", optimizer=False)
    assert set(rows.loc[rows["op"] == "sdpa", "basis"]) == {"default (no attention points)"}
    cmp = compare_gpu_types(rc, ["h100-sxm", gpu])
    assert dict(zip(cmp["gpu"], cmp["attention_kernel"], strict=True)) == {
        "h100-sxm": "fa3", gpu: f"default MFU {prof.default_mfu:.0%}"}



def test_one_gpu_has_no_communication_and_no_bubble():
    rc = recipe_from_dict({"preset": "dit-s-2", "gpu": "h100-sxm", "stages": [
        {"name": "a", "iterations": 5, "gpus": 1, "buckets": [{**IMG, "batch_per_rank": 8}]}]})
    s = estimate_recipe(rc).stages.iloc[0]
    assert s["communication_gpu_s"] == 0 and s["bubble_gpu_s"] == 0 and s["optimizer_gpu_s"] > 0


def test_expected_slowest_rank_by_hand():
    from sora_compute.planning.recipe_time import expected_slowest

    # two buckets, 1 s and 3 s, drawn with probability 1/2 each by 2 ranks: the iteration takes 1 s only when both
    # draw the fast one (1/4): E = 1 x 1/4 + 3 x 3/4 = 2.5 s; one rank: the mean, 2 s
    assert expected_slowest([3.0, 1.0], [0.5, 0.5], 2) == pytest.approx(2.5, rel=1e-15)
    assert expected_slowest([3.0, 1.0], [0.5, 0.5], 1) == pytest.approx(2.0, rel=1e-15)
    assert expected_slowest([3.0, 1.0], [0.5, 0.5], 2**53) == pytest.approx(3.0, rel=1e-15)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.floats(0.01, 100), st.floats(0.01, 10)), min_size=1, max_size=6),
       st.integers(1, 10_000))
def test_expected_slowest_lies_between_mean_and_max(table, ranks):
    t = [a for a, _ in table]
    w = [b / sum(b for _, b in table) for _, b in table]
    from sora_compute.planning.recipe_time import expected_slowest

    e = expected_slowest(t, w, ranks)
    mean = sum(a * b for a, b in zip(t, w, strict=True))
    assert mean * (1 - 1e-9) <= e <= max(t) * (1 + 1e-9)
    assert expected_slowest(t, w, ranks + 1) >= e * (1 - 1e-12)


def test_sora_recipe_preset_is_the_sora_scenario_written_as_a_recipe():
    """presets/recipes/sora.yaml is what `estimate sora` times: the scenario converted (recipe_scenario), the same
    stages field by field (sources aside); iterations = ceil(samples / global batch), by hand."""
    from sora_compute.planning.recipe_scenario import scenario_recipe
    from sora_compute.planning.scenarios import load_scenario

    preset, converted = load_recipe("sora"), scenario_recipe(load_scenario("sora"), "h100-sxm", 4096)
    strip = {"source"}
    assert [s.model_dump(exclude=strip) for s in preset.stages] == [s.model_dump(exclude=strip)
                                                                    for s in converted.stages]
    assert preset.model == converted.model and preset.gpu == converted.gpu
    # 2e9 images / 16,384 = 122,070.3 -> 122,071 iterations; 50M clips x 2 epochs / 128; 8M x 3 epochs / 16
    assert [s.iterations for s in preset.stages] == [122_071, 781_250, 1_500_000]
    counts = recipe_counts(preset).groupby("stage", sort=False)["samples"].sum()
    assert list(counts) == [122_071 * 16_384, 1e8, 2.4e7]


def test_the_main_jobs_days_are_the_recipe_time_paths():
    """One training-time source: plan_cluster on the sora scenario (the main job, the report's headline) gives the
    wall-clock days, GPU-days and cost of the sora recipe through estimate_recipe."""
    from sora_compute.planning import Cluster, estimate_training, plan_cluster

    plan = plan_cluster(estimate_training("sora"), Cluster(gpu="h100-sxm", count=4096))
    t = estimate_recipe("sora").total
    assert plan.days == pytest.approx(t["wall_days"], rel=1e-12)
    assert plan.gpu_days == pytest.approx(t["gpu_days"], rel=1e-12)
    assert plan.cost_usd == pytest.approx(t["cost_usd"], rel=1e-12)


def _tiny(**stage: object) -> Recipe:
    """DiT-S/2 on 256x256 images: a recipe the layout search and the time path answer in milliseconds."""
    base = {"name": "a", "iterations": 100, "gpus": 4, "checkpointing": "none",
            "buckets": [{"width": 256, "height": 256, "num_frames": 1}]}
    return recipe_from_dict({"preset": "dit-s-2", "gpu": "h100-sxm", "stages": [{**base, **stage}]}, "tiny")


def test_deadline_scaling_arithmetic_by_hand():
    # global batch 64 on dp 4: x3 asks for dp 12 -> the smallest divisor of 64 at or above 12 is 16; the batch and
    # the iterations stay (strong scaling)
    s = scale_recipe(_tiny(global_batch=64), 3.0).stages[0]
    assert (s.gpus, s.dp, s.iterations, s.global_batch) == (16, 16, 100, 64)
    # a bucket table keeps its per-rank batch: dp 4 -> ceil(4 x 1.5) = 6 ranks, ceil(100 x 4 / 6) = 67 iterations
    t = scale_recipe(_tiny(buckets=[{"width": 256, "height": 256, "num_frames": 1, "batch_per_rank": 8}]), 1.5)
    assert (t.stages[0].gpus, t.stages[0].iterations) == (6, 67)
    # a searched stage grows to the power of two at or above 4 x 1.5 = 6: 8
    assert scale_recipe(_tiny(global_batch=64, layout="search"), 1.5).stages[0].gpus == 8
    # past a node (8 H100s) whole nodes: a bucket table's dp 8 x 1.3 = 10.4 -> 11 -> 16 ranks, ceil(100 x 8 / 16) =
    # 50 iterations; with cp 2 a rank is 2 GPUs: dp 4 x 1.3 -> 6 ranks = 12 GPUs -> 8 ranks = 16 GPUs
    bt = [{"width": 256, "height": 256, "num_frames": 1, "batch_per_rank": 8}]
    u = scale_recipe(_tiny(buckets=bt, gpus=8), 1.3).stages[0]
    assert (u.gpus, u.iterations) == (16, 50)
    assert scale_recipe(_tiny(buckets=bt, gpus=8, cp=2), 1.3).stages[0].gpus == 16
    # a global batch of 96 on dp 8 x 1.3 -> 11: the divisors of 96 at or above 11 are 12, 16, ...: 16 fills 2 nodes
    assert scale_recipe(_tiny(global_batch=96, gpus=8), 1.3).stages[0].dp == 16


def test_deadline_is_met_with_the_fewest_gpus_and_less_efficiently():
    from sora_compute.planning.recipe_plans import recipe_gpus_for_days

    rc = _tiny(global_batch=64, iterations=200_000)
    base = estimate_recipe(rc).total["wall_days"]
    plan = recipe_gpus_for_days(rc, base / 3)
    dp = plan.recipe.stages[0].dp
    assert plan.estimate.total["wall_days"] <= base / 3 and dp in (16, 32, 64)  # divisors of 64 above 4 x 3
    smaller = {16: 8, 32: 16, 64: 32}[dp]  # the divisor below misses the deadline
    slower = estimate_recipe(rc.model_copy(update={"stages": (rc.stages[0].model_copy(update={"gpus": smaller}),)}))
    assert slower.total["wall_days"] > base / 3
    assert plan.efficiency < 1  # the same samples cost more GPU-days on more GPUs
    assert plan.estimate.total["samples"] == estimate_recipe(rc).total["samples"]


def test_a_deadline_the_batch_cannot_meet_says_so():
    from sora_compute.planning.recipe_plans import DeadlineError, recipe_gpus_for_days

    rc = _tiny(global_batch=4)  # at most 4 data-parallel ranks: 4 GPUs is as fast as it gets
    with pytest.raises(DeadlineError, match="cannot be met"):
        recipe_gpus_for_days(rc, estimate_recipe(rc).total["wall_days"] / 10)
    with pytest.raises(ValueError, match="days"):
        recipe_gpus_for_days(rc, 1e300)


def test_a_deadline_past_every_layout_names_the_fastest_finite_plan():
    from sora_compute.planning.recipe_plans import DeadlineError, recipe_gpus_for_days

    # a millionth of the days asks for ~4M GPUs: no layout splits a batch of 64 there; the search comes back down
    rc = _tiny(global_batch=64, layout="search")
    with pytest.raises(DeadlineError) as e:
        recipe_gpus_for_days(rc, estimate_recipe(rc).total["wall_days"] / 1e6)
    assert "inf" not in str(e.value) and "nan" not in str(e.value) and "(a 256 GPUs)" in str(e.value)


def test_a_long_deadline_keeps_only_layouts_that_fit_in_memory():
    from sora_compute.planning.recipe_layouts import memory_misfit
    from sora_compute.planning.recipe_plans import recipe_gpus_for_days, scale_recipe

    # an 11B DiT at ZeRO-3: 16 bytes per parameter sharded over dp, ~89 GiB of model states at dp 2 > 68.5 GiB usable
    # on an H100 (0.92 x 80 GB); dp 4 fits. A deadline of 100x the days would shrink it to dp 1 were memory ignored
    rc = _big()
    two = scale_recipe(rc, 0.25)
    assert two.stages[0].dp == 2 and _needs_gib(memory_misfit(two, two.stages[0])) >= _states_gib(2)
    plan = recipe_gpus_for_days(rc, estimate_recipe(rc).total["wall_days"] * 100)
    assert plan.recipe.stages[0].dp == 4 and memory_misfit(plan.recipe, plan.recipe.stages[0]) == ""
    assert plan.efficiency > 1  # fewer GPUs for the same samples: fewer GPU-days


def _states_gib(dp: int) -> float:
    """Model states of Open-Sora 2.0's DiT per GPU at ZeRO-3 over dp ranks: parameters x 16 bytes (bf16 weights and
    gradients, fp32 master weights and two Adam moments) / dp, in GiB (2^30 bytes)."""
    from sora_compute.evaluate.params import dit_params

    return dit_params(load_recipe("open-sora-2.0").model.dit) * 16 / dp / 2**30


def _needs_gib(why: str) -> float:
    """The GiB per GPU a ``memory_misfit`` message says a layout needs (asserting it names the H100's 68.5 usable:
    0.92 x 80e9 bytes / 2^30)."""
    import re

    m = re.search(r"needs ([\d,.]+) GiB per GPU of 68\.5 GiB usable on h100-sxm", why)
    assert m is not None, why
    return float(m.group(1).replace(",", ""))


def _big(gpus: int = 8) -> Recipe:
    """An 11B DiT (Open-Sora 2.0's) at ZeRO-3 on 256x256 images: 178.8 GiB of model states at dp 1."""
    return recipe_from_dict({"preset": "open-sora-2.0", "gpu": "h100-sxm", "stages": [{
        "name": "a", "iterations": 1000, "gpus": gpus, "global_batch": 64, "zero": 3, "checkpointing": "full",
        "buckets": [{"width": 256, "height": 256, "num_frames": 1}]}]}, "big")


def test_given_layouts_that_do_not_fit_are_said_and_not_priced():
    from sora_compute.planning.recipe_layouts import memory_misfit

    # dp 2: ~89 GiB of model states per GPU > 68.5 GiB usable on an H100; dp 8 fits an H100, not an RTX 4090
    notes = [n for n in estimate_recipe(_big(gpus=2)).notes if "the layout as given does not fit in memory" in n]
    assert len(notes) == 1 and _needs_gib(notes[0]) >= _states_gib(2) > 68.5
    assert not any("does not fit" in n for n in estimate_recipe(_big()).notes)
    cmp = compare_gpu_types(_big(), ["h100-sxm", "rtx-4090"])
    assert list(cmp["gpu"]) == ["h100-sxm"]
    # a searched stage is checked by its search, not at its unsearched fields (ZeRO-0 on 8: 178.8 GiB of states)
    stage = _big().stages[0].model_copy(update={"layout": "search", "zero": 0})
    searched = _big().model_copy(update={"stages": (stage,)})
    assert "needs" in memory_misfit(searched, stage) and list(compare_gpu_types(searched, ["h100-sxm"])["gpu"]) == [
        "h100-sxm"]
    assert [x["gpu"] for x in cmp.attrs["skipped"]] == ["rtx-4090"] and "usable on rtx-4090" in \
        cmp.attrs["skipped"][0]["why"]


def test_deadline_prose_says_why_in_the_direction_of_the_change():
    from sora_compute.cli_recipe import _why_less

    rc = _tiny(global_batch=64)
    assert _why_less(rc, 1.0) == "" and "fewer GPUs" in _why_less(rc, 1.5)
    assert "slowest" not in _why_less(rc, 1.5)  # a global batch: no bucket draw to wait for
    assert "each GPU gets less of a step" in _why_less(rc, 0.5)


def test_fastest_layout_is_the_searchs_best():
    from sora_compute.memory.planner import PrecisionPolicy
    from sora_compute.planning.layouts import search_training_layouts
    from sora_compute.planning.recipe_plans import fastest_layouts

    rc = _tiny(global_batch=64, gpus=8, tp=2, latents="precomputed", text="precomputed")  # the DiT step alone
    est, table = fastest_layouts(rc)
    best = search_training_layouts(rc.model, VideoSpec(width=256, height=256, num_frames=1), "h100-sxm", 8, 64,
                                   PrecisionPolicy(), pin={"checkpointing": "none", "attention_kernel": "fa2",
                                                           "micro_batch": 1}).best
    s = est.recipe.stages[0]
    assert best is not None and (s.tp, s.pp, s.zero, s.dp) == (best["tp"], best["pp"], best["zero"], best["dp"])
    assert est.stages["seconds_per_iteration"].iloc[0] == pytest.approx(float(best["step_s"]), rel=1e-9)
    assert table["fastest_s_per_iteration"].iloc[0] <= table["given_s_per_iteration"].iloc[0]


def test_cheapest_gpu_type_with_searched_layouts():
    cmp = compare_gpu_types(_tiny(global_batch=64), ["h100-sxm", "a100-80gb", "b200"], search=True)
    assert sorted(cmp["gpu"]) == ["a100-80gb", "b200", "h100-sxm"]
    assert cmp["cost_usd"].is_monotonic_increasing and list(cmp["cheapest"]) == [True, False, False]
    # cost = GPU-days x 24 x the catalog price
    for r in cmp.to_dict(orient="records"):
        assert r["cost_usd"] == pytest.approx(r["gpu_days"] * 24 * load_gpu(r["gpu"]).price_usd_per_hour, rel=1e-12)


def test_searching_a_bucket_tables_layout_keeps_its_ranks_and_samples():
    from sora_compute.planning.recipe_layouts import search_stage

    rc = _tiny(gpus=8, tp=2, buckets=[{"width": 256, "height": 256, "num_frames": 1, "batch_per_rank": 16}])
    laid, words = search_stage(rc, rc.stages[0])
    assert laid.dp == rc.stages[0].dp == 4 and laid.gpus == 8 and "DP4" in words
    assert sum(bucket_samples(laid)) == sum(bucket_samples(rc.stages[0])) == 100 * 4 * 16


def test_a_searched_stage_with_more_gpus_than_its_batch_can_use_says_so():
    # 64 samples at micro-batch 1: dp <= 64, tp <= 8, cp <= 256, pp <= 16: at most 2,097,152 GPUs; the message
    # said 'fits ... in memory' for 2^40 GPUs
    with pytest.raises(ValueError, match=r"are more than any layout .* \(at most 2,097,152"):
        estimate_recipe(_tiny(global_batch=64, layout="search", gpus=1 << 40))


def test_energy_on_a_gpu_without_board_power_is_unknown_not_zero():
    import math

    # the TPU v5e has no board power in the catalog: each stage's energy is NaN, and so the total (it summed to 0)
    t = estimate_recipe(_tiny(global_batch=64), gpu="tpu-v5e").total
    assert math.isnan(t["energy_mwh"]) and t["gpu_days"] > 0
    assert "n/a MWh" in main("recipe", "open-sora-1.2", "--gpu", "tpu-v5e").out
