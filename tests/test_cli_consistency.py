"""Issue 12, "one answer per question": estimate, sweep and the API agree; named resolutions, sampling defaults,
--price / --fps / --stage, plan's options, scenario files and sweep ranges behave the same on every path."""

import json

import pytest

import sora_compute as sc
from sora_compute.memory import planner as mp
from sora_compute.planning import resolve_scenario, with_main_stage_shape
from tests.clirun import assert_one_line_error, main

# guidance-distilled (hunyuanvideo), CFG at 50 steps (cogvideox-2b), 100 steps (open-sora-plan), no published
# defaults (sora, wan2.1-1.3b: 50 steps with CFG)
PRESETS = ["hunyuanvideo", "cogvideox-2b", "open-sora-plan", "sora", "wan2.1-1.3b"]


def _scenario_file(tmp_path, preset: str) -> str:
    v = sc.load_preset(preset).video
    f = tmp_path / f"{preset}.yaml"
    f.write_text(f"preset: {preset}\nstages:\n  - name: main\n    samples: 1.0e6\n"
                 f"    buckets: [{{width: {v.width}, height: {v.height}, num_frames: {v.num_frames}, fps: {v.fps}}}]\n")
    return str(f)


def js(*args: str) -> dict:
    r = main(*args, "--format", "json")
    assert r.code == 0, r.err
    return json.loads(r.out)


@pytest.mark.parametrize("preset", PRESETS)
def test_estimate_sweep_and_api_agree_per_video(tmp_path, preset):
    p = sc.load_preset(preset)
    v = p.video
    api = sc.estimate_inference(preset)
    api_latency = sc.plan_serving(api, "h100-sxm").latency_s
    path = _scenario_file(tmp_path, preset)
    est = js("estimate", path, "--gpu", "h100-sxm")
    row = js("sweep", "--model", preset, "--resolution", f"{v.width}x{v.height}", "--duration", repr(v.duration_s),
             "--fps", repr(v.fps), "--gpu", "h100-sxm", "--samples", "1e6")["points"][0]
    assert row["num_frames"] == v.num_frames and est["inference"]["video"]["num_frames"] == v.num_frames
    expected = p.sampling or sc.InferenceSettings()
    assert (row["steps"], row["cfg"]) == (expected.steps, expected.cfg)
    assert (est["query"]["steps"], est["query"]["cfg"]) == (expected.steps, expected.cfg)
    for got in (est["inference"]["flops_per_video"], row["inference_flops_per_video"]):
        assert got == pytest.approx(api.flops_per_video, rel=1e-9)
    for got in (est["serving"][0]["latency_s"], row["latency_s_1gpu"]):
        assert got == pytest.approx(api_latency, rel=1e-9)
    # training: the same predicted seconds for the same 1M samples on 4,096 GPUs (no recomputation in either)
    # estimate at the parallel efficiency of the best layout (as plan); the sweep at ideal scaling (it says so)
    work, cluster = sc.estimate_training(resolve_scenario(path)), sc.Cluster(gpu="h100-sxm", count=4096)
    plan, ideal = sc.plan_cluster(work, cluster), sc.plan_cluster(work, cluster, parallel=False)
    assert plan.time is not None and est["clusters"][0]["time_basis"] == row["time_basis"] == "predicted"
    for key in ("days", "cost_usd", "mfu"):
        assert est["clusters"][0][key] == pytest.approx(plan.summary()[key], rel=1e-9)
    for key, got in (("days", row["train_days"]), ("cost_usd", row["cost_usd"]), ("mfu", row["mfu"])):
        assert got == pytest.approx(ideal.summary()[key], rel=1e-9)
    assert plan.days == pytest.approx(ideal.days / plan.efficiency, rel=1e-12) and plan.efficiency <= 1


def test_guidance_distilled_sweep_is_not_doubled():
    """hunyuanvideo samples without a CFG pair: sweep used to double its FLOPs against estimate_inference."""
    v = sc.VideoSpec(width=1280, height=720, num_frames=121, fps=24)
    row = js("sweep", "--model", "hunyuanvideo", "--resolution", "720p", "--duration", "5")["points"][0]
    api = sc.estimate_inference("hunyuanvideo", v)
    assert row["num_frames"] == 121 and row["inference_flops_per_video"] == pytest.approx(api.flops_per_video, 1e-9)
    forced = js("sweep", "--model", "hunyuanvideo", "--resolution", "720p", "--duration", "5", "--cfg", "--steps", "10")
    api_cfg = sc.estimate_inference("hunyuanvideo", v, sc.InferenceSettings(steps=10, cfg=True))
    assert forced["points"][0]["inference_flops_per_video"] == pytest.approx(api_cfg.flops_per_video, rel=1e-9)


def test_estimate_steps_and_cfg_flags(tmp_path):
    f = _scenario_file(tmp_path, "hunyuanvideo")
    p = sc.load_preset("hunyuanvideo")
    for flags, settings in ((["--cfg", "--steps", "10"], sc.InferenceSettings(steps=10, cfg=True)),
                            (["--no-cfg", "--steps", "4"], sc.InferenceSettings(steps=4, cfg=False))):
        data = js("estimate", f, *flags)
        api = sc.estimate_inference(p.model, p.video, settings)
        assert data["inference"]["flops_per_video"] == pytest.approx(api.flops_per_video, rel=1e-9)


def test_memory_follows_the_preset_cfg():
    """hunyuanvideo's DiT runs without a CFG pair: batch 1 in inference memory; --cfg asks for the pair."""
    p = sc.load_preset("hunyuanvideo")
    for flags, batch in (([], 1), (["--cfg"], 2)):
        data = js("memory", "hunyuanvideo", "--gpus", "64", *flags)
        api = mp.inference_memory(p.model, p.video, "h100-sxm", "dit", cfg_batch=batch)
        assert data["inference"]["dit"]["peak_bytes"] == api.peak_bytes
        assert data["query"]["cfg"] is (batch == 2)


@pytest.mark.parametrize("command", [["flops", "sora"], ["memory", "sora", "--gpus", "64"], ["estimate", "sora"]])
def test_named_resolution_snaps_with_a_note_and_equals_the_explicit_size(command):
    named, explicit = js(*command, "--resolution", "1080p"), js(*command, "--resolution", "1920x1088")
    assert named["notes"] == ["1080p -> 1920x1088 for sora's 16-px grid"]
    for key in ("rows", "training", "inference", "stages"):
        if key in named:
            assert named[key] == explicit[key]
    text = main(*command, "--resolution", "1080p")
    assert text.code == 0 and text.out.startswith("note: 1080p -> 1920x1088 for sora's 16-px grid")
    assert_one_line_error(main(*command[:2], "--resolution", "1920x1080"), "height=1080 is not divisible")


def test_sweep_native_fps_ranges_and_duplicates():
    rows = js("sweep", "--model", "wan2.1-1.3b,wan2.1-1.3b", "--resolution", "832x480", "--duration", "5")["points"]
    assert len(rows) == 1 and rows[0]["fps"] == 16 and rows[0]["num_frames"] == 81  # Wan's native 16 fps
    rows = js("sweep", "--resolution", "720p", "--duration", "5..60:5", "--gpus", "1024..4096:1024")["points"]
    assert sorted({r["duration_s"] for r in rows}) == pytest.approx([(1 + 4 * round((24 * d - 1) / 4)) / 24
                                                                     for d in range(5, 61, 5)])
    assert sorted({r["gpus"] for r in rows}) == [1024, 2048, 3072, 4096]
    rows = js("sweep", "--resolution", "720p", "--duration", "10", "--fps", "12..24:12")["points"]
    assert sorted(r["fps"] for r in rows) == [12, 24]
    assert_one_line_error(main("sweep", "--duration", "60..5:5"), "backwards")
    assert_one_line_error(main("sweep", "--duration", "1..1e9:1e-9"), "more than")


def test_whatif_text_is_built_from_the_run():
    out = main("estimate", "sora", "--resolution", "1920x1088", "--duration", "60").out
    sens = out[out.index("Sensitivity"):out.index("Published Sora estimates")]
    assert "base 1,055x" in sens
    clip = next(line for line in sens.splitlines() if line.strip().startswith("clip length"))
    res = next(line for line in sens.splitlines() if line.strip().startswith("resolution"))
    assert " 60 s " in clip and "10 s" not in clip and "1920x1088 " in res and "1280x720 (90%)" not in res
    # the alternatives step from the what-if's base: half / double its 60 s, one named size down / up from 1080p
    assert " 30 s -> " in clip and " 120 s -> " in clip and " 1280x720 -> " in res and " 2560x1440 -> " in res
    assert "reproduce" not in out and "0.00x" not in out
    # 60 s at 24 fps -> 1441 frames -> 361 latent frames x (1088/16) x (1920/16) = 2,945,760 tokens
    assert "1441 frames, 2,945,760 tokens" in out and "219,600 tokens) forward" not in out
    assert "this scenario lands at 1,055x" in out
    base = main("estimate", "sora").out
    assert "was sized to land on it: it lands at 8.21x" in base and "reproduce" not in base
    assert "219,600 tokens" in base and "0.00x" not in base


def test_stage_option_names_the_reshaped_stage():
    out = main("estimate", "sora", "--stage", "video-480p-4s", "--duration", "8").out
    assert "what-if: stage 'video-480p-4s' reshaped to 848x480 8.04 s at 24 fps" in out
    data = js("estimate", "sora", "--stage", "video-480p-4s", "--duration", "8")
    stages = {s["stage"]: s for s in data["stages"]}
    base = {s["stage"]: s for s in js("estimate", "sora")["stages"]}
    assert stages["video-720p-10s"] == base["video-720p-10s"]
    assert stages["video-480p-4s"]["model_flops"] > 1.9 * base["video-480p-4s"]["model_flops"]
    assert_one_line_error(main("estimate", "sora", "--stage", "video-480p", "--duration", "8"),
                          "did you mean 'video-480p-4s'")
    assert_one_line_error(main("estimate", "sora", "--stage", "video-480p-4s"), "--stage")


def test_price_reaches_serving_and_fps_retimes_the_clip():
    data = js("estimate", "sora", "--gpu", "h100-sxm", "--price", "5")
    s, v = data["serving"][0], data["inference"]["video"]
    assert s["price_usd_per_gpu_hour"] == 5 and data["clusters"][0]["cost_usd"] == data["clusters"][0]["gpu_hours"] * 5
    assert s["cost_per_video_minute_usd"] == pytest.approx(s["latency_s"] / 3600 * 5 * 60 / v["duration_s"], 1e-12)
    data = js("estimate", "sora", "--fps", "12")
    # 10 s at 12 fps = 120 frames -> nearest 1 + 4k = 121
    assert data["inference"]["video"]["fps"] == 12 and data["inference"]["video"]["num_frames"] == 121
    main_stage = sc.estimate_training(with_main_stage_shape(sc.load_scenario("sora"), fps=12))
    assert data["training"]["model_flops"] == pytest.approx(main_stage.model_flops, rel=1e-12)
    flops = js("flops", "sora", "--fps", "12")
    assert flops["query"]["num_frames"] == 121


def test_plan_days_is_the_fewest_gpus_and_conflicts_are_refused():
    row = js("plan", "sora", "--gpu", "b200", "--days", "30")["plan"][0]
    est = sc.estimate_training("sora")
    assert row["days"] <= 30
    assert sc.plan_cluster(est, sc.Cluster(gpu="b200", count=row["gpus"] - 1)).days > 30
    assert "to finish in 30 days" in main("plan", "sora", "--gpu", "b200", "--days", "30").out
    assert_one_line_error(main("plan", "sora", "--gpus", "4096", "--days", "30"), "--gpus")
    assert_one_line_error(main("plan", "sora", "--days", "30", "--budget", "1e6"), "--budget")


SCENARIO = {"preset": "sora", "stages": [{"name": "main", "videos": 1.0e6, "epochs": 2,
                                          "buckets": [{"width": 1280, "height": 720, "duration_s": 5}]}]}


@pytest.mark.parametrize("name, text", [
    ("flat.yaml", "preset: sora\nstages:\n  - name: main\n    videos: 1.0e6\n    epochs: 2\n"
                  "    buckets: [{width: 1280, height: 720, duration_s: 5}]\n"),
    ("wrapped.yaml", "mine:\n  preset: sora\n  stages:\n    - name: main\n      videos: 1.0e6\n      epochs: 2\n"
                     "      buckets: [{width: 1280, height: 720, duration_s: 5}]\n"),
    ("scenarios.yml", "scenarios:\n  mine:\n    preset: sora\n    stages:\n      - name: main\n        videos: 1.0e6\n"
                      "        epochs: 2\n        buckets: [{width: 1280, height: 720, duration_s: 5}]\n"),
    ("flat.json", json.dumps(SCENARIO)),
    ("wrapped.json", json.dumps({"mine": SCENARIO})),
])
def test_scenario_files_yaml_and_json_everywhere(tmp_path, name, text):
    f = tmp_path / name
    f.write_text(text)
    expected = sc.estimate_training(sc.TrainingScenario(
        model=sc.load_preset("sora").model, stages=(sc.TrainingStage(
            name="main", videos=1e6, epochs=2, buckets=(sc.DataBucket(width=1280, height=720, duration_s=5),)),)))
    est, plan = js("estimate", str(f)), js("plan", str(f))
    assert est["training"]["model_flops"] == pytest.approx(expected.model_flops, rel=1e-12)
    assert plan["plan"][0]["model_flops"] == pytest.approx(expected.model_flops, rel=1e-12)
    if "wrapped" in name or "scenarios" in name:
        assert est["scenario"] == "mine"
    bad = tmp_path / ("bad" + f.suffix)
    bad.write_text(text.replace("1280", "-1"))
    for cmd in (["estimate", str(bad)], ["plan", str(bad)], ["report", "--scenario", str(bad)]):
        assert_one_line_error(main(*cmd), "width")


def test_report_accepts_a_scenario_file(tmp_path):
    f = tmp_path / "small.json"
    f.write_text(json.dumps({"small": {"preset": "dit-s-2", "stages": [
        {"name": "imagenet", "steps": 1000, "global_batch": 256,
         "buckets": [{"width": 256, "height": 256, "num_frames": 1}]}]}}))
    r = main("report", "--scenario", str(f), "--out", str(tmp_path / "out"), "--gpus", "64", "--no-calibration")
    assert r.code == 0 and r.err == "", r.err  # no progress bar when stderr is not a terminal
    md = (tmp_path / "out" / "report.md").read_text()
    assert "# Capacity plan: small" in md and "50 steps, CFG pair" in md  # dit-s-2: no published defaults


def test_readme_scenario_file_example_runs(tmp_path):
    from pathlib import Path

    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    block = readme.split("# my_plan.yaml")[1].split("```")[0]
    f = tmp_path / "my_plan.yaml"
    f.write_text(block.split("\n", 1)[1])
    data = js("estimate", str(f))
    assert data["scenario"] == "my_plan" and [s["stage"] for s in data["stages"]] == ["main"]
    assert data["stages"][0]["samples"] == 4e6 and data["assumptions"] == {"clips": "2M licensed clips, 2 epochs"}
    assert js("plan", str(f))["plan"][0]["model_flops"] == data["training"]["model_flops"]
