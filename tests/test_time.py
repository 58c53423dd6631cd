"""The time evaluator on a made-up profile, every number derived by hand: one linear op, the compute/memory/latency
switch, attention interpolation, the training passes, the optimizer step; monotonicity properties (hypothesis)."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import sora_compute as sc
from sora_compute.evaluate.kernels import kernel_head_dim
from sora_compute.evaluate.time import (
    ADAMW_BYTES_PER_PARAM,
    component_times,
    op_times,
    predict_seconds,
    rollup,
    summary,
    training_times,
    weights_fit,
)
from sora_compute.evaluate.time_grid import forward_seconds
from sora_compute.flops import dit_ops
from sora_compute.hardware.profiles import HardwareProfile
from sora_compute.ledger.ops import attention_op, conv_op, linear_op, norm_op

SRC = "made up for the test"


def make_profile(peak: float = 100.0, tbps: float = 1.0, mem_eff: float = 0.5, launch_us: float = 10.0,
                 gemm_eff: float = 0.5, attention: list[dict] | None = None, memory: list[dict] | None = None
                 ) -> HardwareProfile:
    """peak TFLOP/s (bf16), tbps TB/s; one GEMM point at efficiency gemm_eff (so every GEMM gets gemm_eff)."""
    table = {"name": "t", "measured_on": "toy",
             "gemm": [{"m": 1024, "n": 1024, "k": 1024, "dtype": "bf16", "tflops": peak * gemm_eff, "source": SRC}],
             "attention": attention or [], "memory": memory or []}
    return HardwareProfile.model_validate({
        "key": "toy", "name": "Toy", "vendor": "nvidia", "architecture": "hopper", "peak_tflops": {"bf16": peak},
        "hbm_gb": 80, "hbm_tbps": tbps, "memory_efficiency": mem_eff, "launch_overhead_us": launch_us,
        "tables": [table], "sources": {"peak_tflops": SRC}})


TOY = make_profile()


def test_one_linear_op_by_hand():
    op = linear_op("fc", "mlp", 4096, 4096, 4096)  # 4096^3 MACs
    row = op_times([op], TOY).iloc[0]
    flops = 2 * 4096**3  # 137,438,953,472
    compute = flops / (100e12 * 0.5)  # 2.7488 ms
    nbytes = (3 * 4096 * 4096) * 2  # input + weight + output, bf16: 100,663,296 B
    memory = nbytes / (1e12 * 0.5)  # 0.2013 ms
    assert row["flops"] == flops and row["bytes"] == nbytes
    assert row["compute_s"] == pytest.approx(compute) and row["memory_s"] == pytest.approx(memory)
    assert row["seconds"] == pytest.approx(2.7488e-3 + 10e-6, rel=1e-4)
    assert row["bound"] == "compute" and row["efficiency"] == 0.5


def test_compute_memory_latency_switch():
    # ridge point: peak x eff / (bw x mem_eff) = 50e12 / 0.5e12 = 100 FLOPs per byte.
    # Linear d=4096 over T tokens: 2 T d^2 FLOPs / (2 (2 T d + d^2)) bytes = T d / (2 T + d),
    # which is 100 at T = 100 d / (d - 200) = 105.13
    d = 4096
    bounds = {t: op_times([linear_op("fc", "mlp", t, d, d)], TOY).iloc[0]["bound"] for t in (1, 64, 105, 106, 4096)}
    assert bounds == {1: "memory", 64: "memory", 105: "memory", 106: "compute", 4096: "compute"}
    tiny = op_times([linear_op("fc", "mlp", 1, 8, 8)], TOY).iloc[0]
    assert tiny["bound"] == "latency" and tiny["seconds"] == pytest.approx(10e-6 + (8 + 64 + 8) * 2 / 0.5e12)
    # a norm is memory bound whatever its size: 2 x numel elements read and written
    norm = op_times([norm_op("n", "layer_norm", 10**8, False, 1024)], TOY).iloc[0]
    assert norm["bound"] == "memory" and norm["seconds"] == pytest.approx(2 * 10**8 * 2 / 0.5e12 + 10e-6)


def test_repeated_blocks_count_every_instance():
    one = op_times([linear_op("fc", "mlp", 4096, 4096, 4096)], TOY)["seconds"].iloc[0]
    many = op_times([linear_op("b.{i}.fc", "mlp", 4096, 4096, 4096, blocks=range(12))], TOY)["seconds"].iloc[0]
    assert many == pytest.approx(12 * one)


def _attn(kernel: str, hd: int, seq: int, tflops: float, pass_: str = "fwd") -> dict:
    return {"kernel": kernel, "dtype": "bf16", "pass": pass_, "head_dim": hd, "seq_len": seq, "tflops": tflops,
            "source": SRC}


def test_attention_interpolates_in_log_length_at_the_nearest_head_dim():
    prof = make_profile(attention=[_attn("fa2", 128, 1024, 20), _attn("fa2", 128, 4096, 40),
                                   _attn("fa2", 64, 2048, 90), _attn("fa3", 128, 2048, 70)])
    core = attention_op("a", "attention", 1, 24, 2048, 2048, 96)  # head dim 96: nearer 128 than 64 in log
    row = op_times([core], prof).iloc[0]
    assert row["efficiency"] == pytest.approx(math.sqrt(0.2 * 0.4))  # halfway in log length, log efficiency
    flops = 4 * 24 * 2048 * 2048 * 96
    assert row["flops"] == flops and row["compute_s"] == pytest.approx(flops / (100e12 * math.sqrt(0.08)))
    assert op_times([core], prof, attention_kernel="fa3").iloc[0]["efficiency"] == pytest.approx(0.7)
    long = op_times([attention_op("a", "attention", 1, 24, 65536, 65536, 128)], prof).iloc[0]
    assert long["efficiency"] == pytest.approx(0.4)  # clamped beyond the last point
    with pytest.raises(ValueError, match="'cudnn' has no points"):
        op_times([core], prof, attention_kernel="cudnn")
    bwd = op_times([core], prof, pass_="bwd_activation").iloc[0]  # no bwd points: the fwd curve, 2.5x the FLOPs
    assert bwd["flops"] == 2.5 * flops and "no bwd points" in bwd["basis"]
    assert len(op_times([core], prof, pass_="bwd_weight")) == 0  # no weights
    # the math kernel writes and reads scores and probabilities: 4 x heads x q x k elements more; eagerly, the
    # transposed output is copied contiguous (data/eager_ops.yaml): 2 x heads x q x head_dim more
    math_prof = make_profile(attention=[_attn("math", 128, 2048, 10)])
    assert op_times([core], math_prof, attention_kernel="math").iloc[0]["bytes"] == \
        2 * (core.elements + 4 * 24 * 2048 * 2048 + 2 * 24 * 2048 * 96)


def test_flash_attention_runs_a_head_dim_between_its_sizes_at_the_next_one():
    """FlashAttention compiles kernels for head dims 32/64/96/128/192/256 (FA2; FA3 from 64): a core of head dim 72
    runs the 96 kernel, so it takes what a 96-wide core of the same lengths takes (the 128 curve is nearer 96 in
    log); unfused math attention pads nothing."""
    prof = make_profile(attention=[_attn("fa2", 128, 2048, 40), _attn("fa2", 64, 2048, 90),
                                   _attn("math", 128, 2048, 10)])
    c72 = attention_op("a", "attention", 1, 24, 2048, 2048, 72)
    c96 = attention_op("a", "attention", 1, 24, 2048, 2048, 96)
    r72, r96 = op_times([c72], prof).iloc[0], op_times([c96], prof).iloc[0]
    assert r96["compute_s"] == pytest.approx(4 * 24 * 2048 * 2048 * 96 / (100e12 * 0.4))  # 0.3865 ms
    assert r72["compute_s"] == pytest.approx(r96["compute_s"])
    assert r72["efficiency"] == pytest.approx(0.4 * 72 / 96) and "run by the 96 kernel" in r72["basis"]
    assert op_times([c72], prof, attention_kernel="math").iloc[0]["efficiency"] == pytest.approx(0.1)
    assert forward_seconds([c72], prof)[0] == pytest.approx(predict_seconds([c72], prof))  # the grid agrees
    assert [kernel_head_dim("fa2", d) for d in (40, 64, 72, 100, 160, 300)] == [64, 64, 96, 128, 192, 300]
    assert kernel_head_dim("fa3", 32) == 64 and kernel_head_dim("math", 72) == 72


def test_memory_table_sets_bandwidth_by_op_class_and_size():
    prof = make_profile(memory=[{"op": "layer_norm", "bytes": 10**6, "tbps": 0.1, "source": SRC},
                                {"op": "layer_norm", "bytes": 10**8, "tbps": 0.4, "source": SRC}])
    row = op_times([norm_op("n", "layer_norm", 10**8 // 4, False, 1024)], prof).iloc[0]  # 10^8 bytes moved
    assert row["memory_efficiency"] == pytest.approx(0.4) and row["memory_s"] == pytest.approx(1e8 / 0.4e12)
    mid = op_times([norm_op("n", "layer_norm", 10**7 // 4, False, 1024)], prof).iloc[0]
    assert mid["memory_efficiency"] == pytest.approx(0.2)  # geometric midpoint in log bytes


def test_training_passes_recomputation_and_optimizer_by_hand():
    ops = [linear_op("blocks.{i}.fc", "mlp", 4096, 4096, 4096, blocks=range(2)),
           attention_op("blocks.{i}.attn", "attention", 1, 8, 1024, 1024, 128, blocks=range(2)),
           linear_op("head", "final_layer", 4096, 4096, 16)]
    prof = make_profile(attention=[_attn("fa2", 128, 1024, 40)])
    none = training_times(ops, prof)
    by = rollup(none, "pass").set_index("pass")
    lin = 2 * (2 * 4096**3) + 2 * 4096 * 4096 * 16
    core = 2 * 4 * 8 * 1024 * 1024 * 128
    assert by.loc["fwd", "flops"] == lin + core
    assert by.loc["bwd_activation", "flops"] == lin + 2.5 * core
    assert by.loc["bwd_weight", "flops"] == lin
    assert "recompute" not in by.index
    params = 2 * (4096 * 4096 + 4096) + 4096 * 16 + 16
    assert by.loc["optimizer", "bytes"] == params * ADAMW_BYTES_PER_PARAM
    full = rollup(training_times(ops, prof, checkpointing="full"), "pass").set_index("pass")
    assert full.loc["recompute", "flops"] == 2 * (2 * 4096**3) + core  # the blocks again, not the head
    sel = rollup(training_times(ops, prof, checkpointing="selective"), "pass").set_index("pass")
    assert sel.loc["recompute", "flops"] == core
    s = summary(training_times(ops, prof, checkpointing="full"), prof)
    assert s["model_flops"] == 3 * lin + 3.5 * core  # forward + backward (attention 1 + 2.5)
    assert s["hardware_flops"] == s["model_flops"] + 2 * 2 * 4096**3 + core
    assert s["hfu"] / s["mfu"] == pytest.approx(s["hardware_flops"] / s["model_flops"])


def test_mfu_of_a_compute_bound_op_is_its_efficiency():
    df = op_times([linear_op("fc", "mlp", 16384, 8192, 8192)], make_profile(launch_us=0))
    assert summary(df, TOY)["mfu"] == pytest.approx(0.5)


def test_legacy_vae_and_text_encoder_terms_and_presets_predict():
    for name in ("wan2.1-14b", "cogvideox-5b", "sora"):
        for ops in (sc.count_vae_decode(name).terms, sc.count_text_encoder(name).terms, dit_ops(name)):
            df = op_times(ops, "h100-sxm")
            assert len(df) and (df["seconds"] > 0).all() and df["seconds"].map(math.isfinite).all()
    h100 = predict_seconds(sc.count_vae_decode("wan2.1-14b").terms, "h100-sxm")
    h200 = predict_seconds(sc.count_vae_decode("wan2.1-14b").terms, "h200")
    assert h200 < h100  # same peak, 43% more bandwidth: memory-bound ops get faster
    kinds = set(op_times(dit_ops("sora"), "h100-sxm")["op"])
    assert {"elementwise", "layer_norm", "linear", "sdpa"} <= kinds  # the whole ledger, not only counted ops


@settings(max_examples=60, deadline=None)
@given(t=st.integers(1, 1 << 20), d=st.sampled_from([64, 512, 4096]), k=st.floats(1.01, 8.0))
def test_time_grows_with_tokens_and_shrinks_with_faster_hardware(t, d, k):
    small = predict_seconds([linear_op("fc", "mlp", t, d, d)], TOY)
    big = predict_seconds([linear_op("fc", "mlp", int(t * k) + 1, d, d)], TOY)
    assert big >= small
    ops = [linear_op("fc", "mlp", t, d, d), norm_op("n", "layer_norm", t * d, False, d)]
    base = predict_seconds(ops, TOY)
    assert predict_seconds(ops, make_profile(peak=100 * k)) <= base
    assert predict_seconds(ops, make_profile(tbps=k)) <= base
    assert predict_seconds(ops, make_profile(launch_us=0)) < base


def test_bad_inputs():
    with pytest.raises(ValueError, match="dtype"):
        op_times([], TOY, dtype="int4")
    with pytest.raises(ValueError, match="pass_"):
        op_times([], TOY, pass_="sideways")
    with pytest.raises(ValueError, match="fp8"):
        op_times([], TOY, dtype="fp8")  # no published fp8 peak
    with pytest.raises(ValueError, match="checkpointing"):
        training_times([], TOY, checkpointing="some")


def test_component_times_and_rollups_add_up():
    text = [linear_op("t.fc", "mlp", 512, 1024, 1024)]
    dit = [linear_op("blocks.{i}.fc", "mlp", 4096, 4096, 4096, blocks=range(2)),
           norm_op("blocks.{i}.norm", "layer_norm", 4096 * 4096, False, 4096, blocks=range(2))]
    out = component_times({"text_encoder": (text, 1), "dit": (dit, 30)}, TOY).set_index("component")
    one_dit = predict_seconds(dit, TOY)
    assert out.loc["dit", "seconds_per_call"] == pytest.approx(one_dit)
    assert out.loc["dit", "seconds"] == pytest.approx(30 * one_dit)
    assert out["share"].sum() == pytest.approx(1.0)
    assert out.loc["dit", "compute_bound_s"] + out.loc["dit", "memory_bound_s"] == pytest.approx(30 * one_dit)
    df = op_times(dit, TOY)
    by_kind = rollup(df, "kind").set_index("kind")
    assert set(by_kind.index) == {"mlp", "norm"} and by_kind["seconds"].sum() == pytest.approx(one_dit)
    assert by_kind.loc["norm", "bytes"] == 2 * (2 * 4096 * 4096) * 2  # 2 blocks x read + write x bf16


def test_causal_points_serve_only_a_kernel_measured_with_a_mask_alone():
    causal = dict(_attn("cudnn", 128, 2048, 30), causal=True)
    prof = make_profile(attention=[_attn("fa2", 128, 2048, 40), dict(_attn("fa2", 128, 2048, 10), causal=True),
                                   causal])
    core = attention_op("a", "attention", 1, 8, 2048, 2048, 128)
    assert op_times([core], prof).iloc[0]["efficiency"] == pytest.approx(0.4)  # the non-causal point
    assert op_times([core], prof, attention_kernel="cudnn").iloc[0]["efficiency"] == pytest.approx(0.3)


def test_weights_that_fit_the_last_level_cache_run_at_the_warm_points():
    # one cold and one warm point each for GEMM (efficiency 0.5 / 0.8) and conv3d (0.25 / 0.4); a 1 MiB cache.
    # bf16: a 512 x 512 linear without bias holds 262,144 x 2 B = 0.5 MiB; a 64 -> 64 k3 conv 110,592 x 2 B.
    conv = {"c_in": 64, "c_out": 64, "kernel": [3, 3, 3], "voxels": 4096, "dtype": "bf16", "source": SRC}
    base = TOY.tables[0].model_dump(by_alias=True)
    table = {**base, "conv3d": [{**conv, "tflops": 25.0}], "gemm_warm": [{**base["gemm"][0], "tflops": 80.0}],
             "conv3d_warm": [{**conv, "tflops": 40.0}]}
    warm = HardwareProfile.model_validate({**TOY.model_dump(by_alias=True), "llc_mib": 1, "tables": [table]})

    def eff(blocks: int, profile: HardwareProfile = warm) -> list[float]:
        ops = [linear_op("b.{i}.fc", "mlp", 1024, 512, 512, blocks=range(blocks), bias=False),
               conv_op("c", "conv", 1, 4096, 4096, 64, 64, 27, bias=False)]
        return list(op_times(ops, profile)["efficiency"])

    assert eff(1) == pytest.approx([0.8, 0.4])  # 0.5 + 0.21 MiB fit: warm
    assert eff(1, warm.model_copy(update={"llc_mib": 0.5})) == pytest.approx([0.5, 0.25])  # 0.71 MiB do not: cold
    assert eff(3) == pytest.approx([0.5, 0.25])  # 3 x 0.5 MiB do not fit: cold
    assert weights_fit([linear_op("fc", "mlp", 1, 512, 1024, bias=False)], warm, "bf16")  # exactly 1 MiB fits
    assert not weights_fit([linear_op("fc", "mlp", 1, 512, 1024)], warm, "bf16")  # + 1024 biases does not
    assert not weights_fit([linear_op("fc", "mlp", 1, 512, 1024, bias=False)], warm, "fp32")  # 4 B each: 2 MiB
    # no cache size, or no warm points (every GPU profile): the cold points, exactly as before
    no_llc = warm.model_copy(update={"llc_mib": None})
    cold_only = HardwareProfile.model_validate({**TOY.model_dump(by_alias=True), "llc_mib": 64,
                                                "tables": [{**table, "gemm_warm": [], "conv3d_warm": []}]})
    assert eff(1, no_llc) == eff(1, cold_only) == pytest.approx([0.5, 0.25])
    ops = dit_ops("sora")
    assert predict_seconds(ops, TOY.model_copy(update={"llc_mib": 1e6})) == predict_seconds(ops, TOY)
    # the vectorised grid path makes the same choice
    for blocks in (1, 3):
        ops = [linear_op("b.{i}.fc", "mlp", 1024, 512, 512, blocks=range(blocks), bias=False)]
        assert forward_seconds(ops, warm)[0] == pytest.approx(predict_seconds(ops, warm), rel=1e-12)
