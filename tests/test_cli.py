"""The CLI through click's CliRunner: version, presets, show, and one-line errors (exit 2)."""

import json
import subprocess
import sys

import pytest
from click.testing import CliRunner

from sora_compute import __version__
from sora_compute.cli import cli


def run(*args: str):
    return CliRunner().invoke(cli, list(args))


def assert_usage_error(args: list[str], needle: str) -> None:
    """The real console entry point: exit status 2, nothing on stdout, one line on stderr naming the problem."""
    proc = subprocess.run([sys.executable, "-m", "sora_compute.cli", *args], capture_output=True, text=True)
    assert proc.returncode == 2, proc.stderr
    assert proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0], proc.stderr
    assert "Traceback" not in proc.stderr


def test_version():
    r = run("--version")
    assert r.exit_code == 0 and __version__ in r.output


def test_presets_lists_the_zoo_as_json():
    r = run("presets", "--format", "json")
    assert r.exit_code == 0
    rows = {row["preset"]: row for row in json.loads(r.output)["presets"]}
    assert rows["dit-xl-2"]["dit_params"] == 674_834_720
    assert rows["dit-xl-2"]["video_tokens"] == 256
    assert rows["sora"]["video_tokens"] == 61 * 45 * 80


def test_show_sora_prints_spec_and_exact_params():
    r = run("show", "sora")
    assert r.exit_code == 0
    assert "219,600 video" in r.output
    assert "4,762,310,656" in r.output  # T5-XXL encoder


@pytest.mark.parametrize("args, needle", [
    (["show", "sora-xl"], "unknown preset 'sora-xl'"),
    (["show", "dit-xl2"], "did you mean 'dit-xl-2'"),
    (["show"], "Missing argument"),
    (["nope"], "No such command"),
])
def test_bad_input_is_one_line_exit_2(args, needle):
    assert_usage_error(args, needle)


def test_flops_json_matches_api():
    from sora_compute import count_dit, count_vae_decode
    from sora_compute.specs import VideoSpec

    r = run("flops", "sora", "--resolution", "1920x1088", "--frames", "481", "--format", "json")
    assert r.exit_code == 0, r.output
    rows = {row["component"]: row for row in json.loads(r.output)["rows"]}
    video = VideoSpec(width=1920, height=1088, num_frames=481)
    assert rows["dit_forward"]["macs"] == count_dit("sora", video).macs
    assert rows["vae_decode"]["flops"] == 2 * count_vae_decode("sora", video).macs


def test_flops_duration_snaps_to_frames_the_vae_accepts():
    r = run("flops", "sora", "--duration", "20", "--fps", "24")
    assert r.exit_code == 0 and "481 frames" in r.output  # 480 -> 1 + 4 * 120


def test_flops_by_kind_and_module():
    r = run("flops", "dit-xl-2", "--by", "kind", "--format", "csv")
    assert r.exit_code == 0 and r.output.splitlines()[0] == "kind,macs,flops,share"
    r = run("flops", "dit-s-8", "--by", "module", "--format", "json")
    assert any(row["module"] == "blocks.11.mlp.fc2" for row in json.loads(r.output)["rows"])


@pytest.mark.parametrize("args, needle", [
    (["flops", "sora", "--resolution", "1920x1080"], "height=1080 is not divisible"),
    (["flops", "sora", "--resolution", "huge"], "resolution: expected WIDTHxHEIGHT"),
    (["flops", "sora", "--frames", "240"], "1 + 4k frames"),
    (["flops", "sora", "--frames", "-1"], "--frames"),
    (["flops", "sora", "--frames", "5", "--duration", "2"], "not both"),
    (["flops", "sora", "--batch", "0"], "batch"),
])
def test_flops_bad_input_is_one_line_exit_2(args, needle):
    assert_usage_error(args, needle)


def test_calibrate_writes_table_and_prints_worst_error(tmp_path, monkeypatch):
    """The command's table, sentence and record; the cases are three of the defaults (every default case is profiled
    on its own in tests/test_calibration.py: profiling all of them again here cost ~40 s of the suite)."""
    from sora_compute.calibration import profile as cal

    wanted = {"dit-class-full", "vae-decode-noncausal", "t5-gated"}
    cases = [c for c in cal.default_cases() if c.name in wanted]
    assert len(cases) == 3
    monkeypatch.setattr(cal, "default_cases", lambda: cases)
    r = run("calibrate", "--out", str(tmp_path))
    assert r.exit_code == 0, r.output
    assert "worst per-module relative error: fvcore 0.00e+00" in r.output
    table = (tmp_path / "calibration_modules.csv").read_text().splitlines()
    assert table[0].startswith("case,component,module,analytic_macs,fvcore_macs,fvcore_rel_err")
    assert {line.split(",")[0] for line in table[1:]} == wanted
    assert len(table) > 50
    record = json.loads((tmp_path / "calibration.json").read_text())
    assert record["worst_rel_err"] == {"fvcore": 0.0, "flopcounter": 0.0}


def test_estimate_sora_is_the_capacity_scenario():
    r = run("estimate", "sora", "--gpu", "h100-sxm,b200", "--gpus", "4096")
    assert r.exit_code == 0, r.output
    assert "x GPT-3 175B" in r.output and "b200" in r.output and "Sensitivity" in r.output
    data = json.loads(run("estimate", "sora", "--format", "json").output)
    assert 7.38 < data["training"]["gpt3_multiple"] < 9.02
    assert data["units"]["*_flops"] == "FLOPs (= 2 x MACs)"
    assert {c["gpu"] for c in data["clusters"]} == {"h100-sxm", "h200", "b200"}


def test_gpus_lists_catalog():
    rows = json.loads(run("gpus", "--format", "json").output)["gpus"]
    assert {r["key"] for r in rows} >= {"h100-sxm", "b200", "tpu-v5p", "mi300x"}


@pytest.mark.parametrize("args, needle", [
    (["estimate", "soar"], "unknown scenario 'soar'; did you mean 'sora'"),
    (["estimate", "sora", "--gpu", "h100"], "did you mean 'h100-sxm'"),
    (["estimate", "sora", "--gpus", "0"], "--gpus"),
    (["estimate", "sora", "--mfu", "1.5"], "--mfu"),
])
def test_estimate_bad_input_is_one_line_exit_2(args, needle):
    assert_usage_error(args, needle)


def test_memory_picks_smallest_fitting_layout_and_tiling():
    r = run("memory", "sora", "--gpus", "4096", "--format", "json")
    assert r.exit_code == 0, r.output
    data = json.loads(r.output)
    assert data["training"]["fits"]
    considered = data["layouts_considered"]
    fitting = [row for row in considered if row["fits"]]
    mp = data["layout"]["tp"] * data["layout"]["cp"] * data["layout"]["pp"]
    assert mp == min(row["model_parallel"] for row in fitting)
    assert not data["inference"]["vae_decode"]["fits"] and data["vae_tile_latent"] is not None
    text = run("memory", "sora", "--resolution", "1920x1088", "--duration", "60", "--tp", "8", "--cp", "8",
               "--gpus", "4096").output
    assert "decode in latent tiles" in text and "context parallel" in text


@pytest.mark.parametrize("args, needle", [
    (["memory", "sora", "--tp", "3", "--gpus", "12"], "tp=3 must divide num_heads=32"),
    (["memory", "sora", "--tp", "8", "--gpus", "12"], "not divisible"),
    (["memory", "sora", "--zero", "4"], "--zero"),
    (["memory", "sora", "--gpu", "a100"], "did you mean 'a100-40gb'"),
])
def test_memory_bad_input_is_one_line_exit_2(args, needle):
    assert_usage_error(args, needle)


def test_plan_inverse_queries():
    r = run("plan", "sora", "--gpu", "b200", "--days", "30", "--format", "json")
    row = json.loads(r.output)["plan"][0]
    assert row["days"] <= 30 and row["deadline_days"] == 30
    r = run("plan", "sora", "--gpus", "4096", "--budget", "1e6", "--format", "json")
    row = json.loads(r.output)["plan"][0]
    assert row["fraction_completed"] < 1 and row["budget_needed_usd"] > 1e6


def test_sweep_grid_rows_and_rounding():
    r = run("sweep", "--resolution", "720p,1080p", "--duration", "5,10", "--gpu", "h100-sxm,b200", "--gpus",
            "1024,4096", "--format", "json")
    rows = json.loads(r.output)["points"]
    assert len(rows) == 2 * 2 * 2 * 2
    assert {row["height"] for row in rows} == {720, 1088}  # 1080 rounded to the model's multiple of 16


@pytest.mark.parametrize("args, needle", [
    (["sweep", "--duration", "abc"], "--duration: expected comma-separated numbers"),
    (["sweep", "--gpus", "0"], "--gpus"),
    (["sweep", "--resolution", "big"], "resolution"),
    (["plan", "sora", "--days", "-1"], "--days"),
    (["report", "--scenario", "nope"], "unknown scenario"),
    (["report", "--scenario", "sora", "--out", "/proc/sora-compute-cannot-write-here"], "cannot write"),
])
def test_plan_sweep_report_bad_input(args, needle):
    assert_usage_error(args, needle)


def test_every_command_has_help_with_an_example():
    names = sorted(cli.commands)
    assert {"estimate", "memory", "plan", "sweep", "calibrate", "report", "presets", "gpus", "flops"} <= set(names)
    for name in names:
        r = run(name, "--help")
        assert r.exit_code == 0 and "Example" in r.output, name


def test_markdown_format():
    r = run("gpus", "--format", "markdown")
    assert r.exit_code == 0 and r.output.startswith("| key")


def test_estimate_from_a_spec_file_and_bad_yaml(tmp_path):
    good = tmp_path / "mine.yaml"
    good.write_text("preset: sora\nstages:\n  - name: main\n    videos: 1.0e6\n    epochs: 1\n"
                    "    buckets: [{width: 1280, height: 720, duration_s: 5}]\n")
    data = json.loads(run("estimate", str(good), "--format", "json").output)
    assert data["scenario"] == "mine" and data["training"]["model_flops"] > 0
    bad = tmp_path / "bad.yaml"
    bad.write_text("preset: sora\nstages: [\n")
    assert_usage_error(["estimate", str(bad)], "not valid YAML")


def test_text_length_overridable_per_query():
    """PixArt-alpha's T5-XXL encoder over 77 tokens instead of 120, matmul-only, by hand: 24 layers x (q, k, v, o
    4 d^2 + gated FFN 3 d f) per token + the attention core 2 h L^2 d_kv per layer."""
    import json

    from click.testing import CliRunner

    out = CliRunner().invoke(cli, ["flops", "pixart-alpha", "--text-tokens", "77", "--matmul-only", "--format", "json"])
    rows = {r["component"]: r for r in json.loads(out.output)["rows"]}
    d, f, L = 4096, 10240, 77
    assert rows["text_encode"]["macs"] == 24 * (4 * d * d + 3 * d * f) * L + 24 * 2 * 64 * L * L * 64
    bad = CliRunner().invoke(cli, ["flops", "pixart-alpha", "--text-tokens", "0"])
    assert bad.exit_code == 2 and "--text-tokens" in bad.output
