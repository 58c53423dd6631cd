"""Issue 18: compute demand of a market of generated video. Every expected value is derived by hand from the
inputs (the preset's published figures, the FLOPs counts, the GPU catalog), never captured from a run."""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from sora_compute import estimate_demand, estimate_inference, load_demand, plan_serving
from sora_compute.flops import MATMUL_ONLY, count_dit, count_text_encoder, count_vae_decode
from sora_compute.planning.demand import break_even_days, cumulative_minutes, serving_units
from sora_compute.planning.demand_analysis import demand_sensitivity, gpus_vs_share, throughput_gap
from sora_compute.planning.demand_spec import MAX_FLEET_GPUS, DemandScenario, DemandSource
from sora_compute.presets import load_preset
from tests.clirun import assert_one_line_error, main

FF = "factorial-funds-2024"
H100_PEAK, H100_MFU, H100_W = 989e12, 0.40, 700.0  # sora_compute/hardware/gpus.yaml: h100-sxm


def market(**kw: object) -> DemandScenario:
    """A one-source market on the sora preset, no training reference unless given (fast)."""
    base: dict[str, object] = {"name": "t", "sources": [{"name": "a", "minutes_per_day": 1e6, "ai_share": 1.0}],
                               "model": "sora", "training": [{"name": "fleet", "gpus": 1000, "days": 10}]}
    base.update(kw)
    return DemandScenario.model_validate(base)


# ------------------------------------------------------------------------------------------------
# Factorial Funds (2024): their arithmetic, recomputed from their stated inputs
# ------------------------------------------------------------------------------------------------

def test_factorial_funds_at_their_throughput():
    est = estimate_demand(FF)
    pub = est.row("published")
    kept = 34e6 * 30 / 60 * 0.50 + 43e6 * 0.15  # TikTok 34M videos x 30 s; YouTube 43M min; 50% / 15% AI
    assert kept == 14.95e6 and est.kept_minutes_per_day == pytest.approx(kept)
    assert pub["video_minutes_per_gpu_hour"] == 5 and pub["gpu_seconds_per_video_minute"] == 720
    # 2 candidates, 50% utilisation, 2x peak: 14.95M x 2 x 720 s / (86,400 s x 0.5) = 498,333.3 -> 498,334 GPUs
    assert pub["gpus_avg"] == math.ceil(kept * 2 * 720 / (86400 * 0.5)) == 498_334
    assert pub["gpus_peak"] == math.ceil(kept * 2 * 720 * 2 / (86400 * 0.5)) == 996_667
    assert pub["mw_avg"] == pytest.approx(498_334 * H100_W * 1.2 / 1e6)  # 418.6 MW
    assert pub["mw_peak"] == pytest.approx(996_667 * H100_W * 1.2 / 1e6)  # 837.2 MW
    assert pub["gwh_per_year"] == pytest.approx(pub["mw_avg"] * 365.25 * 24 / 1e3)
    assert pub["capital_usd"] == pytest.approx(996_667 * 30_000)
    assert pub["flops_per_video_minute"] == pytest.approx(720 * H100_PEAK * H100_MFU)


def test_factorial_funds_published_figures_checked():
    pc = estimate_demand(FF).published_check.set_index("figure")
    avg = pc.loc["GPUs on average (kept minutes only)"]
    # their first figure: kept minutes / 120 minutes per H100-day = 124,583.3 -> 124,584, not the published 89,000
    assert avg["published"] == 89_000 and avg["recomputed"] == math.ceil(14.95e6 / 120) == 124_584
    assert "10,680,000 minutes a day" in avg["reading"]  # 89,000 x 120: the volume their total corresponds to
    peak = pc.loc["GPUs at peak"]
    assert peak["published"] == 720_000 and peak["recomputed"] == 996_667
    low = pc[pc.index.str.contains("low")].iloc[0]
    high = pc[pc.index.str.contains("high")].iloc[0]
    # one month = 365.25 / 12 days; 4,200 H100 x 730.5 h x 5 video-min per H100-hour
    assert low["recomputed"] == pytest.approx(4200 * 365.25 / 12 * 24 * 5) == pytest.approx(15.3405e6)
    assert high["recomputed"] == pytest.approx(10500 * 365.25 / 12 * 24 * 5) == pytest.approx(38.35125e6)
    assert (low["published"], high["published"]) == (15.3e6, 38.1e6)


def test_our_throughput_is_the_serving_plans_predicted_one():
    """One answer per question: the demand's GPU-seconds per minute are plan_serving's predicted seconds per video."""
    ours = estimate_demand(FF).row("model")
    p = load_preset("sora")
    plan = plan_serving(estimate_inference(p.model, p.video), "h100-sxm")
    assert plan.predicted_s is not None
    assert ours["gpu_seconds_per_video_minute"] == pytest.approx(plan.latency_s * 60 / p.video.duration_s, rel=1e-12)
    assert ours["gpus_avg"] == math.ceil(14.95e6 * 2 * ours["gpu_seconds_per_video_minute"] / (86400 * 0.5))


def test_factorial_funds_at_our_throughput_and_the_gap():
    # at an explicit MFU (--mfu) the time is FLOPs / (peak x MFU): the gap's factors are FLOPs ratios
    est = estimate_demand(load_demand(FF).model_copy(update={"mfu": H100_MFU}))
    ours = est.row("model")
    p = load_preset("sora")
    v = p.video  # 1280x720, 241 frames at 24 fps; sora has no published sampling: 50 steps with the CFG pair
    text = float(count_text_encoder(p.model, convention=MATMUL_ONLY).flops)
    dit = float(count_dit(p.model, v, convention=MATMUL_ONLY).flops)
    vae = float(count_vae_decode(p.model, v, convention=MATMUL_ONLY).flops)
    per_video = 2 * text + 2 * 50 * dit + vae
    seconds_per_minute = per_video / (H100_PEAK * H100_MFU) * 60 / v.duration_s
    assert ours["gpu_seconds_per_video_minute"] == pytest.approx(seconds_per_minute, rel=1e-9)
    assert ours["gpus_avg"] == math.ceil(14.95e6 * 2 * seconds_per_minute / (86400 * 0.5))
    gap = throughput_gap(load_demand(FF).model_copy(update={"mfu": H100_MFU})).set_index("step")
    assert gap.iloc[0]["gap_left"] == pytest.approx(5 / (3600 / seconds_per_minute), rel=1e-9)
    # no CFG pair: text and DiT once instead of twice, the decode once either way
    assert gap.loc["no CFG pair", "factor_alone"] == pytest.approx(per_video / (text + 50 * dit + vae), rel=1e-9)
    # then 8 steps instead of 50 (no CFG pair)
    assert gap.loc["step-distilled sampler", "factor_in_sequence"] == pytest.approx(
        (text + 50 * dit + vae) / (text + 8 * dit + vae), rel=1e-9)
    # then half of the 8 DiT evaluations cached
    assert gap.loc["feature caching (TeaCache / PAB style)", "factor_in_sequence"] == pytest.approx(
        (text + 8 * dit + vae) / (text + 4 * dit + vae), rel=1e-9)
    # the gap left shrinks by exactly the factor of each step
    left = list(gap["gap_left"])
    seq = list(gap["factor_in_sequence"])
    for i in range(1, len(left)):
        assert left[i] == pytest.approx(left[i - 1] / seq[i], rel=1e-9)


def test_cli_says_no_cfg_pair_and_shows_both_totals():
    r = main("demand", FF)
    assert r.code == 0, r.err
    assert "no CFG pair" in r.out and "no CFG\n" not in r.out and "no CFG " not in r.out.replace("no CFG pair", "")
    assert "89,000" in r.out and "124,584" in r.out and "720,000" in r.out and "996,667" in r.out
    assert "Factorial Funds" in r.out and "quote:" in r.out
    doc = json.loads(main("demand", FF, "--format", "json").out)
    assert {"summary", "platforms", "break_even", "published_check", "throughput_gap", "sensitivity"} <= set(doc)


# ------------------------------------------------------------------------------------------------
# Hand-derived arithmetic
# ------------------------------------------------------------------------------------------------

def test_gpus_equal_minutes_times_seconds_over_a_day_at_utilisation():
    sc = market(utilisation=0.8, peak_to_average=3, candidates=4, shapes=[
        {"width": 1280, "height": 720, "duration_s": 10, "fps": 24, "share": 1}])
    r = estimate_demand(sc).row()
    s = r["gpu_seconds_per_video_minute"]
    assert r["generated_minutes_per_day"] == 4e6
    assert r["gpus_avg"] == math.ceil(4e6 * s / (86400 * 0.8) - 1e-9)
    assert r["gpus_peak"] == math.ceil(3 * 4e6 * s / (86400 * 0.8) - 1e-9)
    assert r["rental_usd_per_year"] == pytest.approx(r["gpus_avg"] * 2.5 * 365.25 * 24)  # catalog $2.5/H100-hour


def test_users_videos_and_length():
    s = DemandSource(name="app", users=2e6, videos_per_user_per_day=3, seconds_per_video=20, ai_share=0.5)
    assert s.minutes == 2e6 * 3 * 20 / 60 and s.ai_minutes == 1e6


def test_shape_mix_weights_minutes():
    one = estimate_demand(market(shapes=[{"width": 1280, "height": 720, "duration_s": 10}])).row()
    two = estimate_demand(market(shapes=[{"width": 848, "height": 480, "duration_s": 10}])).row()
    mix = estimate_demand(market(shapes=[{"width": 1280, "height": 720, "duration_s": 10, "share": 0.25},
                                         {"width": 848, "height": 480, "duration_s": 10, "share": 0.75}])).row()
    expected = 0.25 * one["gpu_seconds_per_video_minute"] + 0.75 * two["gpu_seconds_per_video_minute"]
    assert mix["gpu_seconds_per_video_minute"] == pytest.approx(expected, rel=1e-12)


def test_break_even_against_a_fleet_and_in_days():
    sc = market(training=[{"name": "fleet", "gpus": 1000, "days": 10}], mfu=H100_MFU)
    est = estimate_demand(sc)
    be = est.break_even.iloc[0]
    r = est.row()
    fleet_flops = 1000 * 10 * 86400 * H100_PEAK * H100_MFU
    assert be["training_flops"] == pytest.approx(fleet_flops)
    assert be["break_even_minutes"] == pytest.approx(fleet_flops / r["flops_per_video_minute"])
    # same GPU, same MFU: minutes = fleet GPU-seconds / GPU-seconds per minute
    assert be["break_even_minutes"] == pytest.approx(1000 * 10 * 86400 / r["gpu_seconds_per_video_minute"])
    assert be["break_even_days"] == pytest.approx(be["break_even_minutes"] / 1e6)


def test_growth_cumulates_and_inverts():
    assert cumulative_minutes(100, 365.25, 0.0) == pytest.approx(36525)
    assert cumulative_minutes(100, 365.25, 1.0) == pytest.approx(100 * 365.25 * (2 - 1) / math.log(2))
    for g in (0.0, 0.3, 5.0):
        assert break_even_days(cumulative_minutes(1e6, 200, g), 1e6, g) == pytest.approx(200)
    est = estimate_demand(market(growth_per_year=0.5))
    assert est.growth["generated_minutes_per_day_model"].iloc[2] == pytest.approx(1e6 * 1.5**2)


def test_serving_units_and_the_bound():
    assert serving_units(0, 8) == 0 and serving_units(0.1, 8) == 8 and serving_units(8.0, 8) == 8
    assert serving_units(8.5, 8) == 16
    with pytest.raises(ValueError, match="more than"):
        serving_units(MAX_FLEET_GPUS * 2, 1)


def test_gpus_vs_share_is_linear_in_the_share_and_zero_at_zero():
    df = gpus_vs_share(market(), ["h100-sxm", "b200"], [0.0, 0.5, 1.0])
    for _, g in df.groupby("gpu"):
        assert list(g["gpus_avg"])[0] == 0 and list(g["gpus_avg"])[2] <= 2 * list(g["gpus_avg"])[1]
    h, b = (df[(df["gpu"] == k) & (df["ai_share"] == 1.0)]["gpus_avg"].iloc[0] for k in ("h100-sxm", "b200"))
    assert b < h  # 2,250 vs 989 dense TFLOP/s at the same default MFU


def test_sensitivity_rows_move_the_count():
    sc = market(candidates=2, peak_to_average=2, utilisation=0.5)
    r = estimate_demand(sc).row()
    sens = demand_sensitivity(sc).set_index("assumption")
    raw_peak = r["gpu_equivalents"] * 2  # GPU-equivalents at peak
    assert sens["gpus_peak_base"].iloc[0] == r["gpus_peak"] == math.ceil(raw_peak - 1e-9)
    assert sens.loc["candidates per kept video", "gpus_peak_low"] == math.ceil(raw_peak / 2 - 1e-9)  # 2 -> 1
    assert sens.loc["candidates per kept video", "gpus_peak_high"] == math.ceil(raw_peak * 2 - 1e-9)  # 2 -> 4
    assert sens.loc["peak-to-average", "gpus_peak_low"] == math.ceil(raw_peak / 2 - 1e-9)  # 2 -> 1
    assert sens.loc["target utilisation", "gpus_peak_high"] == math.ceil(raw_peak * 2 - 1e-9)  # 50% -> 25%
    assert list(sens["swing"]) == sorted(sens["swing"], reverse=True)


# ------------------------------------------------------------------------------------------------
# Properties
# ------------------------------------------------------------------------------------------------

def _peak(**kw: object) -> int:
    return int(estimate_demand(market(**kw)).row()["gpus_peak"])


@settings(max_examples=25, deadline=None, derandomize=True)
@given(st.floats(1, 1e9), st.floats(1, 1e3))
def test_more_minutes_never_fewer_gpus(m, factor):
    src = [{"name": "a", "minutes_per_day": m, "ai_share": 0.3}]
    more = [{"name": "a", "minutes_per_day": min(1e12, m * factor), "ai_share": 0.3}]
    assert _peak(sources=more) >= _peak(sources=src)


@settings(max_examples=25, deadline=None, derandomize=True)
@given(st.integers(1, 200), st.integers(0, 200), st.floats(1, 100), st.floats(0, 100))
def test_more_steps_or_candidates_never_fewer_gpus(steps, more_steps, candidates, more_candidates):
    a = _peak(sampling={"steps": steps}, candidates=candidates)
    assert _peak(sampling={"steps": steps + more_steps}, candidates=candidates) >= a
    assert _peak(sampling={"steps": steps}, candidates=min(1000, candidates + more_candidates)) >= a


@settings(max_examples=20, deadline=None, derandomize=True)
@given(st.integers(1, 60), st.integers(0, 60), st.integers(1, 40))
def test_more_resolution_never_fewer_gpus(w16, more, h16):
    shape = {"width": 16 * w16, "height": 16 * h16, "duration_s": 4}
    bigger = {**shape, "width": 16 * (w16 + more)}
    assert _peak(shapes=[bigger]) >= _peak(shapes=[shape])


@settings(max_examples=25, deadline=None, derandomize=True)
@given(st.floats(1, 1e8), st.integers(1, 64))
def test_gpus_per_video_never_below_the_serial_limit(minutes, gpv):
    src = [{"name": "a", "minutes_per_day": minutes, "ai_share": 1.0}]
    one = estimate_demand(market(sources=src)).row()
    many = estimate_demand(market(sources=src, gpus_per_video=gpv)).row()
    assert many["gpus_avg"] >= one["gpus_avg"] and many["gpus_peak"] >= one["gpus_peak"]
    assert many["gpus_avg"] % gpv == 0 and many["gpus_avg"] >= gpv


# ------------------------------------------------------------------------------------------------
# Bad input: one line, exit 2
# ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("args, needle", [
    (["--candidates", "nan"], "--candidates"),
    (["--candidates", "1e9"], "--candidates"),
    (["--utilisation", "0"], "--utilisation"),
    (["--peak", "-1"], "--peak"),
    (["--ai-share", "-0.1"], "--ai-share"),
    (["--ai-share", "TikTok=inf"], "--ai-share"),
    (["--ai-share", "Vimeo=0.1"], "Vimeo"),
    (["--gpu", "h1000"], "h1000"),
    (["--model", "soar"], "soar"),
    (["--scenario", "nope"], "nope"),
    (["--resolution", "7x7"], ""),
    (["--growth", "1e308"], "--growth"),
    (["--gpu-price", "inf"], "--gpu-price"),
    (["nope"], "nope"),
])
def test_bad_options_are_one_line(args, needle):
    assert_one_line_error(main("demand", *args), needle)


@pytest.mark.parametrize("text, needle", [
    ("sources: [{name: a, minutes_per_day: .inf, ai_share: 0.5}]", "minutes_per_day"),
    ("sources: [{name: a, minutes_per_day: -5, ai_share: 0.5}]", "minutes_per_day"),
    ("sources: [{name: a, minutes_per_day: 1.0e300, ai_share: 0.5}]", "minutes_per_day"),
    ("sources: [{name: a, users: 1.0e10, videos_per_user_per_day: 1.0e4, seconds_per_video: 86400, ai_share: 1}]",
     "more than"),
    ("sources: [{name: a, minutes_per_day: 10, ai_share: 0.5}]\ncandidates: 1.0e12", "candidates"),
    ("sources: [{name: a, minutes_per_day: 10, ai_share: 0.5}]\nbogus: 1", "bogus"),
    ("sources: [{name: a, videos_per_day: 10, ai_share: 0.5}]", "seconds_per_video"),
    ("sources: []", "sources"),
    ("sources: [\n", "not valid YAML"),
    ("- 1\n", "expected a mapping"),
])
def test_bad_files_are_one_line(tmp_path, text, needle):
    path = tmp_path / "market.yaml"
    path.write_text(text)
    assert_one_line_error(main("demand", str(path)), needle)


def test_a_market_file_runs(tmp_path):
    path = tmp_path / "app.yaml"
    path.write_text("my-app:\n  sources: [{name: app, users: 1.0e6, videos_per_user_per_day: 2, "
                    "seconds_per_video: 15, ai_share: 1}]\n  model: wan2.1-1.3b\n  gpu: b200\n")
    r = main("demand", str(path), "--format", "json")
    assert r.code == 0, r.err
    doc = json.loads(r.out)
    assert doc["summary"][0]["kept_minutes_per_day"] == pytest.approx(1e6 * 2 * 15 / 60)
    assert doc["query"]["demand"] == "my-app"


def test_validation_names_the_field():
    with pytest.raises(ValidationError, match="ai_share"):
        DemandSource(name="a", minutes_per_day=1, ai_share=1.5)
    assert load_demand(FF).published is not None


def test_sensitivity_marks_values_beyond_the_bound():
    sc = market(sources=[{"name": "a", "minutes_per_day": 5e7, "ai_share": 1}], candidates=500, peak_to_average=50)
    r = estimate_demand(sc).row()
    assert r["gpus_peak"] < MAX_FLEET_GPUS < 2 * r["gpu_equivalents"] * 50  # base fits; 1,000 candidates do not
    sens = demand_sensitivity(sc).set_index("assumption")
    assert math.isnan(sens.loc["candidates per kept video", "gpus_peak_high"])
    assert sens.loc["candidates per kept video", "high"] == "1000"  # capped at MAX_CANDIDATES


def test_a_scenario_training_run_is_the_time_models_cluster_like_plan_days():
    # the sora scenario's training GPUs: the fewest that finish it in the reference's days at the predicted parallel
    # efficiency (the recipe time path, as `plan --days`), not model FLOPs at an assumed MFU
    from sora_compute.planning import estimate_training, gpus_for_days

    be = estimate_demand(FF).break_even
    row = be[be["training"].str.contains("sora scenario")].iloc[0]
    assert row["training_gpus"] == gpus_for_days(estimate_training("sora"), "h100-sxm", row["training_days"])
    assert "predicted by the time model" in row["detail"]
