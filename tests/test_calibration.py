"""Analytic MACs equal fvcore and FlopCounterMode module by module (hypothesis grid of small configs)."""

import math

import pytest
import torch
from hypothesis import given, settings

from sora_compute import MATMUL_ONLY, count_dit, load_preset
from sora_compute.calibration.profile import (
    ELEMENTWISE_NOT_COUNTED,
    CalibrationCase,
    calibrate,
    containers,
    default_cases,
    flop_counter_by_module,
    fvcore_by_module,
    load_record,
)
from sora_compute.specs import ModelSpec, VideoSpec

from .strategies import models_and_videos

TOL = 0.005  # the floor; the formulas are in fact exact


def _components(model: ModelSpec) -> list[str]:
    comps = ["dit_forward", "vae_encode", "vae_decode"]
    return comps + (["text_encode"] if model.dit.text_conditioned else [])


def _check_case(case: CalibrationCase) -> None:
    module, inputs = case.module_and_inputs("cpu")
    profile = fvcore_by_module(module, inputs)
    fv, skipped = profile.by_module, profile.skipped
    analytic = case.analytic().module_macs()
    called = {p for p in fv if p not in containers(module)}
    for path, macs in fv.items():
        assert analytic.get(path, 0) == pytest.approx(macs, rel=TOL, abs=0), (case.name, path)
        # matmul and conv modules: exact
        assert analytic.get(path, 0) == macs, (case.name, path)
    assert set(p for p, v in analytic.items() if v) <= set(fv), "analytic counts a module fvcore never saw"
    assert "aten::scaled_dot_product_attention" not in skipped  # our handle counted it

    meta_module, meta_inputs = case.module_and_inputs("meta")
    fc = flop_counter_by_module(meta_module, meta_inputs)
    analytic_mm = case.analytic(MATMUL_ONLY).module_macs()
    for path in called:
        assert analytic_mm.get(path, 0) == fc.get(path, 0), (case.name, path)


@settings(max_examples=12)
@given(models_and_videos())
def test_analytic_equals_profilers_per_module(mv: tuple[ModelSpec, VideoSpec]):
    model, video = mv
    for component in _components(model):
        _check_case(CalibrationCase(f"hyp-{component}", component, model, video, batch=2))


@pytest.mark.parametrize("case", default_cases(), ids=lambda c: c.name)
def test_default_cases_every_module_type(case: CalibrationCase):
    """Both attention layouts x three conditioning modes, VAE causal/non-causal, T5 gated/ReLU."""
    _check_case(case)


def test_calibrate_reports_no_unexpected_ops_and_zero_error():
    wanted = {"dit-class-full", "vae-decode-noncausal", "t5-gated", "t5-relu", "llama-gqa", "clip-projection",
              "llama-fused-step", "bert"}
    result = calibrate([c for c in default_cases() if c.name in wanted])
    s = result.summary()
    assert s["worst_fvcore_rel_err"].max() <= TOL
    assert s["worst_flopcounter_rel_err"].max() <= TOL
    assert result.unexpected_ops() == {}
    assert result.operators["vae-decode-noncausal"]["upsample_nearest3d"] > 0  # counted by our handle
    assert result.operators["dit-class-full"]["scaled_dot_product_attention"] > 0
    assert set(result.unsupported_ops["dit-class-full"]) <= ELEMENTWISE_NOT_COUNTED  # reported, not hidden
    assert result.operators["llama-gqa"]["scaled_dot_product_attention"] > 0  # causal attention counted in full


def test_fvcore_alone_misses_attention():
    """Why the SDPA handle matters: without it fvcore silently drops the attention core."""
    from fvcore.nn import FlopCountAnalysis

    case = default_cases()[0]
    module, inputs = case.module_and_inputs("cpu")
    plain = FlopCountAnalysis(module, inputs).unsupported_ops_warnings(False)
    plain.uncalled_modules_warnings(False).tracer_warnings("none")
    sdpa = case.analytic().by_kind()["attention"]
    assert sdpa > 0
    assert plain.total() == case.analytic().macs - sdpa


def test_flop_counter_on_meta_at_sora_scale():
    """The sora preset (219,600 video tokens + 226 text tokens) counted on meta: no memory, exact."""
    p = load_preset("sora")
    case = CalibrationCase("sora", "dit_forward", p.model, p.video)
    module, inputs = case.module_and_inputs("meta")
    fc = flop_counter_by_module(module, inputs)
    analytic = count_dit(p.model, p.video, convention=MATMUL_ONLY)
    assert analytic.shape["tokens"] == 219_600 > 100_000
    assert fc[""] == analytic.macs
    assert fc["blocks.7.attn"] == analytic.module_macs()["blocks.7.attn"]


def test_shipped_record_is_versioned_and_within_floor():
    record = load_record()
    assert record["units"].startswith("MACs")
    assert {"torch", "fvcore", "sora-compute"} <= set(record["versions"])
    assert record["correction_factors"] == {}
    assert record["worst_rel_err"]["fvcore"] <= TOL
    assert record["worst_rel_err"]["flopcounter"] <= TOL
    assert {c["case"] for c in record["cases"]} == {c.name for c in default_cases()}
    assert not math.isnan(record["worst_rel_err"]["flopcounter"])
    torch_major_minor = ".".join(torch.__version__.split(".")[:2])
    assert record["versions"]["torch"].startswith(torch_major_minor.split(".")[0])
