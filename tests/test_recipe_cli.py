"""Issue 17: `estimate --recipe` and `plan --recipe` print the `recipe` command's document with the same numbers;
options that a recipe sets itself are one-line usage errors (exit 2)."""

from __future__ import annotations

import json

import pytest

from tests.clirun import main


def _payload(*args: str) -> dict:
    r = main(*args, "--format", "json")
    assert r.code == 0, r.err
    out = json.loads(r.out)
    out.pop("command")
    return out


TINY = {"preset": "dit-s-2", "gpu": "h100-sxm", "stages": [{
    "name": "a", "iterations": 100000, "gpus": 4, "global_batch": 64, "checkpointing": "none",
    "latents": "precomputed", "text": "precomputed", "buckets": [{"width": 256, "height": 256, "num_frames": 1}]}]}


@pytest.mark.parametrize(("command", "recipe", "options"), [
    ("estimate", "open-sora-2.0", []), ("estimate", "tiny", ["--gpu", "h100-sxm", "--price", "3"]),
    ("plan", "tiny", []), ("plan", "tiny", ["--gpu", "h100-sxm", "--days", "half"])])
def test_recipe_option_prints_the_recipe_command_numbers(command, recipe, options, tmp_path):
    # one published recipe (bucket tables); the options on a DiT-S/2 recipe the time path answers in milliseconds
    if recipe == "tiny":
        recipe = str(tmp_path / "tiny.json")
        (tmp_path / "tiny.json").write_text(json.dumps(TINY))
    if "half" in options:  # a deadline of half the recipe's days: the search grows its GPUs
        options = [*options[:-1], str(_payload("recipe", recipe)["total"]["wall_days"] / 2)]
    assert _payload(command, "--recipe", recipe, *options) == _payload("recipe", recipe, *options)
    table = main(command, "--recipe", recipe, *options)
    assert table.code == 0 and table.out == main("recipe", recipe, *options).out


def test_recipe_option_compares_gpu_types_like_recipe():
    a = _payload("estimate", "--recipe", "open-sora-1.2", "--gpu", "h100-sxm,h200")
    assert a == _payload("recipe", "open-sora-1.2", "--gpu", "h100-sxm,h200")
    assert sorted(row["gpu"] for row in a["gpu_types"]) == ["h100-sxm", "h200"]


def test_recipe_file_samples_by_hand(tmp_path):
    # 10 iterations x global batch 64 of one-frame 256x256 buckets = 640 images, no videos
    p = tmp_path / "r.json"
    p.write_text(json.dumps({"preset": "dit-s-2", "stages": [{"name": "a", "iterations": 10, "gpus": 4,
                                                               "global_batch": 64, "buckets": [
                                                                   {"width": 256, "height": 256, "num_frames": 1}]}]}))
    for command in ("estimate", "plan"):
        total = _payload(command, "--recipe", str(p))["total"]
        assert (total["images"], total["videos"]) == (640, 0)


@pytest.mark.parametrize(("args", "says"), [
    (["estimate", "sora", "--recipe", "open-sora-2.0"], "SCENARIO does not apply with --recipe"),
    (["estimate", "--recipe", "open-sora-2.0", "--gpus", "8"], "--gpus does not apply with --recipe"),
    (["estimate", "--recipe", "open-sora-2.0", "--no-cfg"], "does not apply with --recipe"),
    (["plan", "--recipe", "open-sora-2.0", "--mfu", "0.4"], "--mfu does not apply with --recipe"),
    (["plan", "--recipe", "open-sora-2.0", "--layouts"], "--layouts does not apply with --recipe"),
    (["plan", "--recipe", "nope"], "unknown recipe 'nope'"),
    (["estimate", "--recipe", "open-sora-2.0", "--gpu", "nope"], "nope"),
])
def test_recipe_option_errors_are_one_line(args, says):
    r = main(*args)
    lines = r.err.strip().splitlines()
    assert r.code == 2 and r.out == "" and len(lines) == 1 and says in lines[0], r.err


@pytest.mark.parametrize(("args", "says"), [
    (["--days", "1e300"], "'--days' / '--deadline-days': 1e+300 is not in the range"),
    (["--deadline-days", "nan"], "is not a finite number"),
    (["--days", "1", "--layouts"], "--days and --layouts answer different questions"),
    (["--compare-gpus", "--gpu", "h100-sxm,h200"], "--compare-gpus compares every catalog GPU type"),
])
def test_recipe_inverse_options_errors_are_one_line(args, says, tmp_path):
    p = tmp_path / "tiny.json"
    p.write_text(json.dumps(TINY))
    r = main("recipe", str(p), *args)
    lines = r.err.strip().splitlines()
    assert r.code == 2 and r.out == "" and len(lines) == 1 and says in lines[0], r.err


def test_recipe_inverse_options(tmp_path):
    p = tmp_path / "tiny.json"
    p.write_text(json.dumps(TINY))
    base = _payload("recipe", str(p))["total"]
    out = _payload("recipe", str(p), "--deadline-days", str(base["wall_days"] / 2))
    assert out["total"]["wall_days"] <= base["wall_days"] / 2 and out["total"]["samples"] == base["samples"]
    assert out["deadline"]["efficiency"] == pytest.approx(base["gpu_days"] / out["total"]["gpu_days"], rel=1e-12)
    lay = _payload("recipe", str(p), "--layouts")["layouts"][0]
    assert lay["fastest_wall_days"] <= lay["given_wall_days"] and lay["given_layout"] == "DP4 TP1 CP1 PP1 ZeRO-2"
    gpus = _payload("recipe", str(p), "--compare-gpus")["gpu_types"]
    assert [r["cheapest"] for r in gpus] == [True] + [False] * (len(gpus) - 1) and len(gpus) > 10
    assert [r["cost_usd"] for r in gpus] == sorted(r["cost_usd"] for r in gpus)


def test_a_huge_price_prints_costs_in_scientific_notation(tmp_path):
    p = tmp_path / "tiny.json"
    p.write_text(json.dumps(TINY))
    r = main("recipe", str(p), "--price", "1e30")
    assert r.code == 0 and "e+" in r.out and "T " not in r.out and "nan" not in r.out and "inf" not in r.out


def test_small_figures_keep_their_digits():
    from sora_compute.units import fmt_duration_days, fmt_int, fmt_mwh, fmt_usd

    # 6.3 s of wall-clock, 0.00029 GPU-days, 5.9e-6 MWh were printed '0.0 hours', '0', '0 MWh'
    assert fmt_duration_days(6.3 / 86400) == "6.3 s" and fmt_duration_days(0.5 / 24) == "30.0 minutes"
    assert fmt_duration_days(0.25) == "6.0 hours" and fmt_duration_days(31.43) == "31.4 days"
    assert fmt_int(0.00029) == "0.00029" and fmt_int(0) == "0" and fmt_int(1234.4) == "1,234"
    assert fmt_mwh(5.92e-6) == "5.92e-06 MWh" and fmt_mwh(2595.2) == "2,595 MWh"
    assert fmt_usd(2.5e22) == "$2.5e+22" and fmt_usd(7.72e6) == "$7.72M"


def test_a_scenario_too_large_names_its_samples(tmp_path):
    p = tmp_path / "sc.yaml"
    p.write_text("name: s\npreset: dit-s-2\nstages:\n  - name: img\n    samples: 1e300\n    buckets:\n"
                 "      - {width: 256, height: 256, num_frames: 1, fps: 1}\n")
    for command in ("estimate", "plan"):
        r = main(command, str(p))
        assert r.code == 2 and len(r.err.strip().splitlines()) == 1 and "1e+300 samples" in r.err, r.err


def test_another_gpu_is_priced_at_its_own_rate_unless_price_is_given(tmp_path):
    # the recipe's $1/h is its H100s' rate: on an H200 the catalog's $3.50/h, as the --gpu list prices it
    p = tmp_path / "tiny.json"
    p.write_text(json.dumps({**TINY, "price_usd_per_hour": 1.0}))
    own = _payload("recipe", str(p))["total"]
    assert own["cost_usd"] == pytest.approx(own["gpu_days"] * 24 * 1.0, rel=1e-12)
    h200 = _payload("recipe", str(p), "--gpu", "h200")["total"]
    assert h200["cost_usd"] == pytest.approx(h200["gpu_days"] * 24 * 3.5, rel=1e-12)
    listed = {r["gpu"]: r for r in _payload("recipe", str(p), "--gpu", "h200,h100-sxm")["gpu_types"]}
    assert listed["h200"]["cost_usd"] == pytest.approx(h200["cost_usd"], rel=1e-12)
    priced = _payload("recipe", str(p), "--gpu", "h200", "--price", "2")["total"]
    assert priced["cost_usd"] == pytest.approx(priced["gpu_days"] * 24 * 2.0, rel=1e-12)
    assert "(at $3.50 per GPU-hour)" in main("recipe", str(p), "--gpu", "h200").out
    assert "(at $1.00 per GPU-hour)" in main("recipe", str(p), "--gpu", "H100-SXM").out  # its own GPU, any case


def test_one_gpu_type_without_the_kernel_falls_back_to_fa2_like_a_list(tmp_path):
    # FA3 has no kernel-table points on an A100: `--gpu a100-80gb` errored while `--gpu a100-80gb,h100-sxm` timed it
    # with FA2; both now time it with FA2, and the single type says so
    p = tmp_path / "tiny.json"
    p.write_text(json.dumps({**TINY, "attention_kernel": "fa3"}))
    one = main("recipe", str(p), "--gpu", "a100-80gb")
    assert one.code == 0 and "a100-80gb has no kernel-table points for fa3: timed with FlashAttention-2" in one.out
    listed = {r["gpu"]: r for r in _payload("recipe", str(p), "--gpu", "a100-80gb,h100-sxm")["gpu_types"]}
    assert listed["a100-80gb"]["attention_kernel"] == "fa2" and listed["h100-sxm"]["attention_kernel"] == "fa3"
    total = _payload("recipe", str(p), "--gpu", "a100-80gb")["total"]
    assert total["cost_usd"] == pytest.approx(listed["a100-80gb"]["cost_usd"], rel=1e-12)


def test_one_gpu_type_without_attention_tables_names_the_default_mfu_it_is_timed_at(tmp_path):
    # MI300X's kernel tables (cdna3.yaml) have no attention points: FA3's cores are timed at its default_mfu 0.30
    p = tmp_path / "tiny.json"
    p.write_text(json.dumps({**TINY, "attention_kernel": "fa3"}))
    one = main("recipe", str(p), "--gpu", "mi300x")
    assert one.code == 0 and "mi300x has no attention kernel-table points: attention cores timed at its default " \
        "MFU 30%" in one.out and "(bf16, default MFU 30%)" in one.out
