"""Open-Sora 1.2's STDiT3 as its official code runs it (hpcaitech/Open-Sora at 8d132d7a): the masked modulation
(``frame_mask``), LlamaRMSNorm q/k norms in fp32 (``qk_norm_fp32``), the math attention path for short sequences
(``short_attention_math``) and rotary-embedding-torch's rotation (``rope_form``). Each flag's ledger against the
reference model behind the same flag: ATen calls (TorchDispatchMode), MACs (fvcore, FlopCounterMode), the inference
peak (live-tensor tracker) and saved activations (autograd hooks); the time model's pricing of the math path by hand."""

import pytest
import torch
from pydantic import ValidationError

from sora_compute import FVCORE, MATMUL_ONLY, load_preset
from sora_compute.calibration.build import build_dit
from sora_compute.calibration.measure import peak_live_bytes, saved_activation_bytes
from sora_compute.calibration.profile import flop_counter_by_module, fvcore_by_module
from sora_compute.evaluate.eager import eager_extra
from sora_compute.evaluate.liveness import attention_scratch
from sora_compute.evaluate.saved import ActivationDtypes, dit_saved
from sora_compute.evaluate.time import op_times
from sora_compute.ledger import DiTShape, dit_ledger
from sora_compute.ledger.formulas import attention_elements
from sora_compute.memory.activations import dit_inference_peak
from sora_compute.specs import DiTSpec

from .strategies import dit_inputs
from .test_time_accuracy import _case, _counted

BASE = {"attention_layout": "factorized", "modulation": "shared", "fps_embed": True, "qk_norm": "per_head",
        "cross_qk_norm": False}
ALL = {"frame_mask": True, "qk_norm_fp32": True, "short_attention_math": True, "rope": "temporal",
       "rope_form": "rotary_embedding_torch"}
FP32 = ActivationDtypes(act_bytes=4, stat_bytes=4)


def test_the_preset_runs_as_the_official_code():
    dit = load_preset("open-sora-1.2").model.dit
    assert (dit.frame_mask, dit.qk_norm_fp32, dit.short_attention_math, dit.rope_form) == (
        True, True, True, "rotary_embedding_torch")
    assert not load_preset("open-sora-2.0").model.dit.frame_mask  # the flags are Open-Sora 1.2's


@pytest.mark.parametrize("options,reference,block,forward", [
    # per block: the t0 table (3 calls), norm (1) and modulation (5) again, the where with its 5 views (6) and the
    # second gate product with its pick (8): 23 in the attention half, 20 in the MLP half; outside: t0's embedder
    # and fps add (14 + 4), its projection (2), the final layer's table, norm, modulation and pick (15)
    ({"frame_mask": True}, {}, 43, 121),
    # two norms per block: 8 calls each (to, pow, mean, add, rsqrt, mul, to, mul) against rms_norm's 1
    ({"qk_norm_fp32": True}, {}, 14, 28),
    # the temporal block's core (3 frames in 4 sequences): mul, transpose, matmul, to, softmax, to, matmul against
    # the fused core's 1; block 1 is temporal, block 0 spatial (4 tokens in 3 sequences: fused)
    ({"short_attention_math": True}, {}, 6, 6),
    # rotary-embedding-torch: 14 calls per rotation (2 per temporal block), against diffusers' 15
    ({"rope": "temporal", "rope_form": "rotary_embedding_torch"}, {"rope": "temporal"}, -2, -2),
])
def test_eager_table_counts_the_aten_calls_of_each_flag(options, reference, block, forward):
    with_flag, without = _counted({**BASE, **options}), _counted({**BASE, **reference})
    measured_block, ledger_block, measured, ledger = (a - b for a, b in zip(with_flag, without, strict=True))
    assert measured_block == ledger_block == block
    assert measured == ledger == forward


def test_macs_equal_the_profilers_with_every_flag():
    """The math path's two matmuls are the fused core's MACs; LlamaRMSNorm's steps are elementwise (fvcore and
    FlopCounterMode count none); t0's embedder and projection run the same Linears again."""
    case = _case(**BASE, **ALL)
    module, inputs = case.module_and_inputs("cpu")
    assert fvcore_by_module(module, inputs).by_module[""] == case.analytic(FVCORE).macs
    meta_module, meta_inputs = case.module_and_inputs("meta")
    assert flop_counter_by_module(meta_module, meta_inputs)[""] == case.analytic(MATMUL_ONLY).macs


def _spec(**options: object) -> DiTSpec:
    return DiTSpec.model_validate({"depth": 2, "hidden_size": 32, "num_heads": 2, "patch_size": (1, 1, 1),
                                   "in_channels": 4, "conditioning": "cross_attention", "text_dim": 16, **BASE,
                                   **options})


# (T, H, W) at batch 2: spatial attention 2 T sequences of H W tokens (fused), temporal 2 H W sequences of T frames
# (math: T <= 2 H W)
@pytest.mark.parametrize("grid", [(3, 4, 4), (6, 3, 4)])
@pytest.mark.parametrize("options", [ALL, {"short_attention_math": True}, {"frame_mask": True}])
def test_inference_peak_from_the_ledger_within_2pct(grid, options):
    spec = _spec(**options)
    model = build_dit(spec).eval()
    inputs = dit_inputs(spec, torch.randn(2, 4, *grid), 3)
    with torch.no_grad():
        peak, _ = peak_live_bytes(lambda: model(*inputs))
    assert dit_inference_peak(spec, grid, 3, 2, "fused", act_bytes=4) == pytest.approx(peak, rel=0.02)


@pytest.mark.parametrize("grid", [(3, 4, 4), (6, 3, 4)])
def test_saved_activations_within_5pct(grid):
    spec = _spec(**ALL)
    model = build_dit(spec)
    inputs = dit_inputs(spec, torch.randn(2, 4, *grid), 3)
    saved, _ = saved_activation_bytes(lambda: model(*inputs), list(model.parameters()))
    assert dit_saved(spec, grid, 3, 2, "none", "fused", FP32).total_bytes == pytest.approx(saved.bytes, rel=0.05)


def test_math_core_priced_by_its_score_passes():
    """A temporal core of 2 x 20 sequences of 6 frames, 2 heads of 16, in bf16 on an H100: bytes = the fused core's
    q, k, v, output + 4 score passes (scores and probabilities written and read) + 8 more for the fp32 softmax's
    casts + the eager steps (q scaled, v copied, output copied: 6 output-sized passes); FLOPs as the fused core's."""
    spec = _spec(**ALL)
    core, temporal = (op for op in dit_ledger(spec, DiTShape(2, 6, 4, 5, 3)) if op.path == "blocks.{i}.attn.core")
    assert core.dims["math"] == 0 and temporal.dims["math"] == 1  # 20 tokens in 12 frames: fused; 6 in 40: math
    g, h, t, hd = 40, 2, 6, 16
    row = op_times([temporal], "h100-sxm", "bf16", "fa2").iloc[0]
    scores = g * h * t * t
    assert row["bytes"] == (attention_elements(g, h, t, t, hd) + 12 * scores + 6 * g * h * t * hd) * 2
    assert row["flops"] == 2 * 2 * g * h * t * t * hd  # two matmuls of g h t t hd MACs; one temporal block
    assert row["basis"].startswith("math")
    assert eager_extra(temporal, 2).kernels == 4 + 2  # two casts become kernels with 16-bit activations
    # liveness: scaled q, then the fp32 scores beside the fp32 probabilities (4 bf16 units each score)
    assert attention_scratch(temporal, "fused", 2) == 4 * scores + g * h * t * hd
    assert attention_scratch(core, "fused", 2) == 0


def test_bad_flag_combinations_are_refused():
    for options in ({"rope_form": "rotary_embedding_torch"}, {"frame_mask": True, "modulation": "per_block"},
                    {"qk_norm_fp32": True, "qk_norm": "none"},
                    {"short_attention_math": True, "conditioning": "joint", "attention_layout": "full"}):
        with pytest.raises(ValidationError):
            _spec(**options)
