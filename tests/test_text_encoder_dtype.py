"""The text encoder in the dtype the official inference pipeline runs it in (``inference_dtype``): weights and
activations at its bytes per element, its GEMMs at its peak, named wherever it is printed; presets without one do not
move."""

import json

import pandas as pd
import pytest
from pydantic import ValidationError

from sora_compute.evaluate.params import text_encoder_params
from sora_compute.evaluate.time import COLUMNS, op_records
from sora_compute.flops import MATMUL_ONLY, count_text_encoder
from sora_compute.hardware.profiles import load_profile
from sora_compute.memory.activations import text_encoder_peak
from sora_compute.memory.pipeline import pipeline_memory
from sora_compute.memory.planner import inference_memory
from sora_compute.planning.inference import estimate_inference
from sora_compute.planning.timing import inference_times, text_records
from sora_compute.presets import load_preset
from sora_compute.specs import VideoSpec, text_encoder_spec
from tests.clirun import assert_one_line_error, main

# T5 v1.1 XXL's encoder by hand: embedding 32128 x 4096; per layer q, k, v, o 4 x 4096 x 4096, gated FFN
# 2 x 4096 x 10240 + 10240 x 4096, two RMSNorm weights 2 x 4096; 24 layers; final RMSNorm 4096; one relative-position
# table 32 buckets x 64 heads.
T5_XXL = 32128 * 4096 + 24 * (4 * 4096 * 4096 + 3 * 4096 * 10240 + 2 * 4096) + 4096 + 32 * 64
SMALL = VideoSpec(width=256, height=256, num_frames=17, fps=24)  # any shape: the text encoder does not see it


@pytest.fixture(scope="module")
def os12():
    return load_preset("open-sora-1.2")


def test_t5_xxl_hand_count_is_the_ledger_count(os12):
    assert T5_XXL == 4_762_310_656 == text_encoder_params(os12.model.text_encoder)


def test_open_sora_12_holds_t5_in_fp32(os12):
    """opensora/models/text_encoder/t5.py T5Encoder(dtype=torch.float) at 8d132d7a, TF32 matmuls (allow_tf32): 4
    bytes per parameter, in the stage breakdown and in the pipeline's timeline; the embeddings it hands over are fp32
    too (300 tokens x 4096 x 2 prompts of the CFG pair x 4 bytes)."""
    assert os12.model.text_encoder.inference_dtype == "tf32"
    stage = inference_memory(os12.model, SMALL, stage="text")
    assert stage.components["text encoder weights (tf32)"] == T5_XXL * 4 == 19_049_242_624
    pm = pipeline_memory(os12.model, SMALL)
    encode, denoise = pm.phases[0], pm.phases[1]
    assert encode.resident["text encoder weights (tf32)"] == T5_XXL * 4
    assert denoise.resident["text embeddings"] == 300 * 4096 * 2 * 4
    assert encode.activation == ("text encode (tf32, batch 2)", text_encoder_peak(os12.model.text_encoder, 300, 2, 4))


def test_the_run_dtype_halves_the_weights(os12):
    bf16 = os12.model.with_text_encoder_dtype("bf16")
    assert inference_memory(bf16, SMALL, stage="text").components["text encoder weights (bf16)"] == T5_XXL * 2
    assert text_encoder_peak(bf16.text_encoder, 300, 2, 2) < text_encoder_peak(os12.model.text_encoder, 300, 2, 4)


def test_tf32_gemms_at_the_tf32_peak(os12):
    """FFN wi_0 of one prompt: 2 x 300 x 4096 x 10240 FLOPs per layer, 24 layers, 4 bytes per element, at H100 SXM's
    dense TF32 peak 494.7 TFLOP/s (datasheet) x its default MFU 0.40 (the hopper tables have no TF32 GEMM point);
    the attention core by the math kernel (FlashAttention takes fp16 and bf16 only)."""
    prof = load_profile("h100-sxm")
    ops = count_text_encoder(os12.model, convention=MATMUL_ONLY).timed_ops
    df = pd.DataFrame(text_records(os12.model, ops, prof, "bf16", "fa2"), columns=COLUMNS).set_index("path")
    wi = df.loc["layers.{i}.ff.wi_0"]
    flops = 2 * 300 * 4096 * 10240 * 24
    assert wi["flops"] == flops
    assert wi["bytes"] == (300 * 4096 + 4096 * 10240 + 300 * 10240) * 24 * 4
    assert wi["compute_s"] == pytest.approx(flops / (494.7e12 * 0.40))
    attn = next(op for op in ops if op.path == "layers.{i}.attn")
    assert df.loc["layers.{i}.attn", "bytes"] == op_records([attn], prof, "tf32", "math")[0][COLUMNS.index("bytes")]


def test_time_and_dtype_column(os12):
    est = estimate_inference(os12, SMALL)
    times = inference_times(est, "h100-sxm").set_index("component")
    assert times.loc["text_encode", "dtype"] == "tf32" and times.loc["dit", "dtype"] == "bf16"
    bf16 = inference_times(estimate_inference(os12.model.with_text_encoder_dtype("bf16"), SMALL), "h100-sxm")
    assert times.loc["text_encode", "seconds"] > bf16.set_index("component").loc["text_encode", "seconds"]
    assert times.loc["dit", "seconds"] == bf16.set_index("component").loc["dit", "seconds"]


@pytest.mark.parametrize("name", ["wan2.1-14b", "cogvideox-5b", "open-sora-2.0", "ltx-video", "hunyuanvideo"])
def test_other_presets_do_not_move(name):
    """Presets run in the run's dtype (or fp16, HunyuanVideo's: the same bytes and peak as bf16): text weights at 2
    bytes per parameter, the text encoder's time the old one (every op at bf16 with the run's kernel)."""
    p = load_preset(name)
    enc = p.model.text_encoders
    assert all(e.inference_dtype in (None, "fp16") for e in enc)
    comps = inference_memory(p.model, p.video, stage="text").components
    assert sum(v for k, v in comps.items() if k.startswith("text encoder weights")) == sum(
        text_encoder_params(e) for e in enc) * 2
    prof = load_profile("h100-sxm")
    ops = count_text_encoder(p.model, convention=MATMUL_ONLY).timed_ops
    seconds = sum(r[COLUMNS.index("seconds")] for r in text_records(p.model, ops, prof, "bf16", "fa2"))
    assert seconds == pytest.approx(sum(r[COLUMNS.index("seconds")] for r in op_records(ops, prof, "bf16", "fa2")))


def test_mixed_dtypes_are_named_per_encoder():
    """Step-Video: Step-LLM in the run's bf16, its Hunyuan-CLIP BERT in fp32 (stepvideo/text_encoder/clip.py)."""
    m = load_preset("step-video-t2v").model
    assert m.text_encoder_dtypes("bf16") == "llama bf16 + bert fp32"
    bert = m.extra_text_encoders[0]
    assert inference_memory(m, SMALL, stage="text").components["text encoder weights (llama bf16 + bert fp32)"] == (
        text_encoder_params(m.text_encoder) * 2 + text_encoder_params(bert) * 4)


def test_bad_dtype_is_refused():
    with pytest.raises(ValidationError, match="inference_dtype"):
        text_encoder_spec(kind="t5", inference_dtype="fp8")
    assert_one_line_error(main("serve", "open-sora-1.2", "--text-encoder-dtype", "fp64"), "--text-encoder-dtype")
    assert_one_line_error(main("memory", "open-sora-1.2", "--text-encoder-dtype", "int8"), "--text-encoder-dtype")


def test_show_names_the_official_dtype():
    r = main("show", "step-video-t2v")
    assert r.code == 0 and "bert 352.04M over 77 tokens, fp32 at inference" in r.out


def test_cli_override_names_and_prices_the_dtype():
    r = main("serve", "open-sora-1.2", "--resolution", "256x256", "--frames", "17", "--gpus", "1",
             "--text-encoder-dtype", "bf16")
    assert r.code == 0, r.err
    assert "text encoder bf16" in r.out and "text_encode (bf16)" in r.out
    assert "text encoder weights (bf16)" in r.out
    default = main("serve", "open-sora-1.2", "--resolution", "256x256", "--frames", "17", "--gpus", "1")
    assert "text_encode (tf32)" in default.out and "text encoder weights (tf32)" in default.out


def test_memory_override_applies_to_the_stages_and_the_timeline():
    r = main("memory", "open-sora-1.2", "--resolution", "256x256", "--frames", "17", "--gpus", "8",
             "--text-encoder-dtype", "fp16", "--format", "json")
    assert r.code == 0, r.err
    d = json.loads(r.out)
    assert d["query"]["text_encoder_dtype"] == "fp16"
    assert d["inference"]["text"]["components_bytes"] == {"text encoder weights (fp16)": T5_XXL * 2}
    encode = d["inference_timeline_asked"][0]
    assert encode["text encoder weights (fp16) [allocated GiB]"] == T5_XXL * 2 / 2**30
    assert encode["activations of"] == "text encode (fp16, batch 2)"


def test_tf32_without_tf32_units_runs_fp32(os12):
    """A measured CPU profile has an fp32 peak only: allow_tf32 changes nothing there, the T5 is timed as fp32 (what
    every op of an fp32 run on it is timed as); an A100 has TF32 GEMM points (ampere tables)."""
    cpu = load_profile("sora_compute/hardware/measured/cpu-2026-12-02.yaml")
    ops = count_text_encoder(os12.model, convention=MATMUL_ONLY).timed_ops
    ours = pd.DataFrame(text_records(os12.model, ops, cpu, "fp32", "flash_cpu"), columns=COLUMNS)
    assert ours.equals(pd.DataFrame(op_records(ops, cpu, "fp32", "flash_cpu"), columns=COLUMNS))
    a100 = pd.DataFrame(text_records(os12.model, ops, load_profile("a100-80gb"), "bf16", "fa2"), columns=COLUMNS)
    assert (a100.loc[a100["op"] == "linear", "basis"] == "gemm table").all()


def test_serving_plans_name_the_text_encoder_dtype(os12):
    from sora_compute.planning.cluster import plan_serving

    assert plan_serving(estimate_inference(os12, SMALL), "h100-sxm").dtypes == "bf16, text encoder tf32"
    assert "text encoder" not in plan_serving(estimate_inference("wan2.1-1.3b"), "h100-sxm").time_basis
