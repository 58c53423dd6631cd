"""Issue 12, "bad input": each command the issue found, run as written, ends in one line naming the field, exit 2;
the API refuses what the CLI refuses."""

import json
import math
import subprocess
import sys

import pytest
from pydantic import ValidationError

import sora_compute as sc
from sora_compute.presets import UnknownPresetError
from tests.clirun import assert_one_line_error, main

INF_NAN = [
    (["estimate", "sora", "--duration", "inf"], "--duration"),
    (["flops", "sora", "--duration", "inf"], "--duration"),
    (["memory", "sora", "--duration", "inf"], "--duration"),
    (["estimate", "sora", "--fps", "inf"], "--fps"),
    (["flops", "sora", "--fps", "inf"], "--fps"),
    (["memory", "sora", "--fps", "inf"], "--fps"),
    (["estimate", "sora", "--duration", "nan"], "--duration"),
    (["flops", "sora", "--duration", "nan"], "--duration"),
    (["memory", "sora", "--duration", "nan"], "--duration"),
    (["plan", "sora", "--days", "nan"], "--days"),
    (["estimate", "sora", "--pue", "inf"], "--pue"),
    (["plan", "sora", "--days", "inf"], "--days"),
    (["plan", "sora", "--budget", "nan"], "--budget"),
    (["plan", "sora", "--budget", "inf"], "--budget"),
    (["sweep", "--samples", "inf"], "--samples"),
    (["sweep", "--samples", "nan"], "--samples"),
    (["sweep", "--duration", "inf"], "--duration"),
    (["sweep", "--fps", "nan"], "--fps"),
    (["estimate", "sora", "--mfu", "nan"], "--mfu"),
    (["estimate", "sora", "--price", "-inf"], "--price"),
    (["flops", "sora", "--duration", "1e300"], "--duration"),
]


@pytest.mark.parametrize("args, field", INF_NAN)
def test_non_finite_options_are_one_line_errors(args, field):
    line = assert_one_line_error(main(*args), field)
    assert "finite" in line or "frames" in line


def test_scenario_file_with_inf_videos(tmp_path):
    f = tmp_path / "inf.yaml"
    f.write_text("preset: sora\nstages:\n  - name: main\n    videos: .inf\n    epochs: 1\n"
                 "    buckets: [{width: 1280, height: 720, duration_s: 5}]\n")
    for cmd in (["estimate", str(f)], ["plan", str(f)], ["report", "--scenario", str(f)]):
        assert_one_line_error(main(*cmd), "stages.0.videos: Input should be a finite number")


def test_api_refuses_non_finite_and_out_of_range():
    with pytest.raises(ValidationError, match="duration_s"):
        sc.VideoSpec(width=1280, height=720, duration_s=math.inf)
    with pytest.raises(ValidationError, match="duration_s"):
        sc.VideoSpec(width=1280, height=720, duration_s=-5)
    with pytest.raises(ValidationError, match="finite"):
        sc.Cluster(gpu="h100-sxm", count=8, pue=math.inf)
    with pytest.raises(ValidationError, match="gpu_counts"):
        sc.sweep(["sora"], [(1280, 720)], [5], gpu_counts=[0])
    with pytest.raises(ValidationError, match="samples"):
        sc.sweep(["sora"], [(1280, 720)], [5], samples=-1)
    with pytest.raises(ValidationError, match="durations_s"):
        sc.sweep(["sora"], [(1280, 720)], [-5])
    with pytest.raises(ValidationError, match="durations_s"):
        sc.sweep(["sora"], [(1280, 720)], [math.nan])
    with pytest.raises(UnknownPresetError, match="expected a preset name"):
        sc.load_preset(None)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="finite"):
        sc.gpus_for_days(1e24, "h100-sxm", days=math.inf)
    with pytest.raises(ValueError, match="finite"):
        sc.budget_plan(1e24, sc.Cluster(gpu="h100-sxm", count=8), math.nan)


def test_plan_memory_rejects_unknown_checkpointing():
    """checkpointing="FULL" used to be treated as none (160 GiB instead of 12.4 GiB)."""
    p = sc.load_preset("sora")
    layout = sc.ParallelLayout(dp=512, tp=8, zero=3)
    for bad in ("FULL", "yes", None):
        with pytest.raises(ValueError, match="checkpointing"):
            sc.plan_memory(p.model, p.video, layout, "h100-sxm", checkpointing=bad)  # type: ignore[arg-type]
    full = sc.plan_memory(p.model, p.video, layout, "h100-sxm", checkpointing="full")
    none = sc.plan_memory(p.model, p.video, layout, "h100-sxm", checkpointing="none")
    assert full.peak_bytes < none.peak_bytes


def test_results_beyond_float64_are_one_line_errors():
    assert_one_line_error(main("sweep", "--samples", "1e300"), "train_flops: exceeds the float64 range")
    assert_one_line_error(main("estimate", "sora", "--gpus", "9007199254740992", "--mfu", "1e-300"),
                          "clusters[0].gpu_hours: the result is inf")
    with pytest.raises(ValueError, match="train_flops"):
        sc.sweep(["sora"], [(1280, 720)], [5], samples=1e300)


def test_int64_wrap_is_refused():
    """Used to exit 0 with width -9223372036854775808."""
    assert_one_line_error(main("sweep", "--resolution", "999999999999999999999x720"), "resolution")
    assert_one_line_error(main("sweep", "--gpus", "99999999999999999999999"), "--gpus")
    assert_one_line_error(main("estimate", "sora", "--gpus", "99999999999999999999999"), "--gpus")
    with pytest.raises(ValidationError, match="resolutions"):
        sc.sweep(["sora"], [(10**21, 720)], [5])


def test_empty_names_are_errors():
    assert_one_line_error(main("estimate", "sora", "--gpu", ""), "--gpu")
    assert_one_line_error(main("sweep", "--model", ""), "--model")
    assert_one_line_error(main("sweep", "--gpu", " , "), "--gpu")


def test_duplicate_stage_names_and_every_error_listed(tmp_path):
    f = tmp_path / "twice.yaml"
    f.write_text("preset: sora\nstages:\n"
                 "  - {name: main, samples: 1.0e6, buckets: [{width: 1280, height: 720, duration_s: 5}]}\n"
                 "  - {name: main, samples: 2.0e6, buckets: [{width: 1280, height: 720, duration_s: 5}]}\n")
    assert_one_line_error(main("estimate", str(f)), "stage names must be unique: 'main'")
    g = tmp_path / "many.yaml"
    g.write_text("preset: sora\ncheckpointing: FULL\ncfg_dropout: 2\nstages:\n"
                 "  - {name: main, samples: -1, buckets: [{width: 1280, height: 720, duration_s: 5}]}\n")
    line = assert_one_line_error(main("estimate", str(g)))
    assert "more" not in line
    for field in ("stages.0.samples", "checkpointing", "cfg_dropout"):
        assert field in line, line


def test_broken_pipe_into_head_exits_quietly():
    cmd = (f"{sys.executable} -m sora_compute.cli sweep --resolution 1280x720,1920x1088 --duration 1..400:1 "
           "--format csv | head -1; exit ${PIPESTATUS[0]}")
    proc = subprocess.run(["bash", "-c", cmd], capture_output=True, text=True)
    assert proc.stdout.startswith("model,width,height")
    assert proc.stderr == "" and proc.returncode == 0, proc.stderr


def test_json_output_is_finite_even_at_extreme_inputs():
    r = main("flops", "sora", "--resolution", "1048576x1048576", "--frames", "2147483645", "--format", "json")
    if r.code == 0:
        def walk(v):
            if isinstance(v, float):
                assert math.isfinite(v)
            elif isinstance(v, dict):
                for x in v.values():
                    walk(x)
            elif isinstance(v, list):
                for x in v:
                    walk(x)
        walk(json.loads(r.out))
    else:
        assert_one_line_error(r)
