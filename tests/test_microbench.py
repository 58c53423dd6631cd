"""Measured calibration on this machine: the microbenchmarks on a tiny plan (seconds), the profile they write, and
`sora-compute calibrate --device`'s options and errors."""

from __future__ import annotations

import json
import math
import time

import pytest

import sora_compute.calibration.microbench as mb
from sora_compute.evaluate.time import op_times, weights_fit
from sora_compute.hardware.profiles import load_profile, profile_keys
from sora_compute.ledger.ops import attention_op, conv_op, linear_op, norm_op
from tests.clirun import main


def tiny_plan() -> mb.Plan:
    return mb.Plan(gemm=[(64, 64, 64), (128, 256, 128)], attention=[(2, 2, 64, 32)],
                   conv=[(8, 8, (3, 3, 3), (2, 8, 8))], memory_numels=[4096, 65536], attention_bwd=True,
                   min_time=0.001, max_flops=1e9)


@pytest.fixture
def tiny(monkeypatch):
    monkeypatch.setattr(mb, "quick_plan", tiny_plan)


def test_measured_profile_round_trips_and_drives_the_time_model(tiny, tmp_path):
    prof = mb.measure_profile("cpu", threads=1)
    assert prof.measured is not None and prof.measured.threads == 1 and prof.measured.clock == "thread_time"
    table = prof.tables[0]
    assert len(table.gemm) == 2 and {p.kernel for p in table.attention} >= {"math"}
    assert {p.pass_ for p in table.attention} == {"fwd", "bwd"} and len(table.conv3d) == 1
    # every GEMM and conv shape measured twice: weights cold (flushed) and warm, the same shapes
    assert [(p.m, p.n, p.k) for p in table.gemm_warm] == [(p.m, p.n, p.k) for p in table.gemm]
    assert [p.c_in for p in table.conv3d_warm] == [8] and "weights warm" in table.gemm_warm[0].source
    llc = mb.last_level_cache()
    assert prof.llc_mib == (None if llc is None else pytest.approx(llc[0]))
    assert {p.op for p in table.memory} >= {"copy", "elementwise", "layer_norm", "group_norm"}
    assert prof.peak_flops("fp32") == pytest.approx(max(p.tflops for p in table.gemm) * 1e12)
    path = mb.write_profile(prof, tmp_path / "cpu.yaml")
    again = load_profile(str(path))
    assert again == prof
    ops = [linear_op("fc", "mlp", 128, 128, 256), attention_op("a", "attention", 2, 2, 64, 64, 32),
           conv_op("c", "conv", 1, 128, 128, 8, 8, 27), norm_op("n", "layer_norm", 65536, False, 256)]
    df = op_times(ops, again, dtype="fp32", attention_kernel="math")
    assert len(df) == 4 and df["seconds"].map(math.isfinite).all() and (df["seconds"] > 0).all()
    row = df.set_index("path").loc["fc"]  # a measured shape returns its own point: efficiency = tflops / peak
    fits = weights_fit(ops, again, "fp32")  # 1.8 MiB of fp32 weights: warm points where they fit in llc_mib
    assert fits == (prof.llc_mib is not None and prof.llc_mib >= 1.8)
    point = next(p for p in (table.gemm_warm if fits else table.gemm) if (p.m, p.n, p.k) == (128, 256, 128))
    assert row["efficiency"] == pytest.approx(point.tflops / max(p.tflops for p in table.gemm))


def test_thread_time_clock_ignores_time_spent_waiting():
    clock, name = mb.clock_for(1)
    t0 = clock()
    time.sleep(0.05)
    assert name == "thread_time" and clock() - t0 < 0.02
    assert mb.clock_for(2)[1] == "perf_counter"


def test_cli_calibrate_device_writes_a_profile(tiny, tmp_path):
    out = tmp_path / "prof" / "mine.yaml"
    r = main("calibrate", "--device", "cpu", "--out", str(out), "--format", "json")
    assert r.code == 0, r.err
    doc = json.loads(r.out)
    assert doc["written"] == [str(out)] and doc["query"]["threads"] == 1
    assert load_profile(str(out)).key == doc["profile"]["key"]
    r = main("estimate", "sora", "--gpu", str(out))  # a measured CPU profile has no link or price: one clear line
    assert r.code == 2 and "scale_up_gbps is not given" in r.err and len(r.err.strip().splitlines()) == 1


@pytest.mark.parametrize(("args", "message"), [
    (["--device", "cuda"], "no CUDA device"),
    (["--device", "tpu"], "--device"),
    (["--full"], "--full applies to --device"),
    (["--device", "cpu", "--threads", "0"], "--threads"),
])
def test_cli_calibrate_device_errors(args, message):
    r = main("calibrate", *args)
    assert r.code == 2 and message in r.err and len(r.err.strip().splitlines()) == 1


def test_cli_calibrate_device_refuses_a_folder_for_the_profile(tmp_path):
    r = main("calibrate", "--device", "cpu", "--out", str(tmp_path))
    assert r.code == 2 and "is a folder" in r.err


def test_checked_in_measured_profile_loads():
    from pathlib import Path

    measured = sorted((Path(mb.__file__).parents[1] / "hardware" / "measured").glob("cpu-*.yaml"))
    assert measured, "the measured CPU profile used by benchmarks/bench_time_cpu.py is checked in"
    prof = load_profile(str(measured[-1]))
    assert prof.measured is not None and prof.measured.threads >= 1 and prof.key not in profile_keys()
