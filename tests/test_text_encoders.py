"""Text encoders of every kind (t5, llama, clip, bert): validation, exact parameter counts (from the ledger) against
transformers, MACs at real size against FlopCounterMode on meta, inference peaks from the ledger's dataflow against
measurement, and yaml blocks for the real encoders that presets can reference."""

import pytest
import torch
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import TypeAdapter, ValidationError

from sora_compute import MATMUL_ONLY, load_preset, preset_names
from sora_compute.calibration.build import build_text_encoder
from sora_compute.calibration.measure import peak_live_bytes
from sora_compute.calibration.profile import flop_counter_by_module
from sora_compute.evaluate.flops import Count
from sora_compute.evaluate.params import text_encoder_params
from sora_compute.flops import FVCORE, text_encoder_terms
from sora_compute.ledger.registry import registered
from sora_compute.memory.activations import text_encoder_peak
from sora_compute.specs import (
    CLIPTextSpec,
    LlamaEncoderSpec,
    T5EncoderSpec,
    TextEncoderSpec,
    text_encoder_spec,
)

from .strategies import text_encoder_specs

# Reusable definitions of the real encoders (a preset yaml can paste one as an anchor: `text_encoder: *clip_l`).
ENCODERS_YAML = """
llava_llama3_8b: &llava_llama3_8b  # HunyuanVideo's text_encoder: llava-llama-3-8b-v1_1's language model
  kind: llama
  vocab_size: 128320      # Llama-3's 128256 + LLaVA's image/pad tokens, padded (HunyuanVideo text_encoder config)
  num_layers: 32
  d_model: 4096
  num_heads: 32
  num_kv_heads: 8
  d_kv: 128
  d_ff: 14336
  max_tokens: 256         # text_len; the prompt template adds crop_start = 95 tokens encoded, then cropped
  hidden_state_skip: 2    # an early exit at layer 30 (the hunyuanvideo preset counts its pipeline's full forward)
clip_vit_l14_text: &clip_l  # openai/clip-vit-large-patch14 text tower (HunyuanVideo text_encoder_2, Open-Sora 2.0)
  kind: clip
  vocab_size: 49408
  num_layers: 12
  d_model: 768
  num_heads: 12
  d_ff: 3072
  max_tokens: 77
mt5_xxl_encoder: &mt5_xxl  # google/mt5-xxl encoder (T5 v1.1 layout, 250k vocabulary)
  vocab_size: 250112
  num_layers: 24
  d_model: 4096
  num_heads: 64
  d_kv: 64
  d_ff: 10240
  gated_ffn: true
  max_tokens: 256
  shared_relative_bias: true  # one table in layer 0 (MT5EncoderModel: block.0 only); umT5 has one per layer
hunyuan_clip: &hunyuan_clip  # Step-Video's (and HunyuanDiT's) bilingual CLIP text tower: a BertModel
  kind: bert
  vocab_size: 47020
  num_layers: 24
  d_model: 1024
  num_heads: 16
  d_ff: 4096
  max_tokens: 77                # Step-Video's HunyuanClip(max_length=77); the DiT attends all 77 token states
  max_position_embeddings: 512
  type_vocab_size: 2
  pooler: true                  # BertModel's default add_pooling_layer; in the checkpoint, run, output unused
step_llm: &step_llm  # Step-Video's Step-LLM (Step1Model: tok_embeddings + 48 layers; step_llm/config.json)
  kind: llama
  vocab_size: 65536             # padded_vocab_size
  num_layers: 48
  d_model: 6144
  num_heads: 48
  num_kv_heads: 8               # num_attention_groups
  d_kv: 128
  d_ff: 16896                   # ffn_hidden_size (w1: 6144 -> 2 x 16896, SwiGLU)
  max_tokens: 320               # STEP1TextEncoder(max_length=320)
  final_norm: false             # no final norm, no LM head
  rotary: false                 # ALiBi biases inside StepFun's fused attention kernel (no parameters)
  fused_projections: true       # wqkv and w1 are single matmuls
"""
ENCODERS = {k: text_encoder_spec(v) for k, v in yaml.safe_load(ENCODERS_YAML).items()}

# transformers 5.x, built with `with torch.device("meta")` (accelerate.init_empty_weights leaves MT5's shared and
# encoder embeddings untied and would count the embedding twice), sum(p.numel() for p in model.parameters()):
LLAVA_LLAMA3_8B_TEXT = 7_505_186_816  # LlamaModel(LlamaConfig(vocab_size=128320, hidden_size=4096,
#   intermediate_size=14336, num_hidden_layers=32, num_attention_heads=32, num_key_value_heads=8, head_dim=128))
LLAMA3_8B = 7_504_924_672  # the same LlamaModel with Meta-Llama-3-8B's vocab_size=128256
CLIP_L_TEXT = 123_060_480  # CLIPTextModel(CLIPTextConfig(vocab_size=49408, hidden_size=768, intermediate_size=3072,
#   num_hidden_layers=12, num_attention_heads=12, max_position_embeddings=77, hidden_act="quick_gelu"))
CLIP_L_TEXT_WITH_PROJECTION = 123_650_304  # CLIPTextModelWithProjection, same config, projection_dim=768
MT5_XXL_ENCODER = 5_655_173_120  # MT5EncoderModel(MT5Config(vocab_size=250112, d_model=4096, d_kv=64, d_ff=10240,
#   num_layers=24, num_heads=64, feed_forward_proj="gated-gelu"))
HUNYUAN_CLIP_BERT = 352_035_840  # BertModel(BertConfig(vocab_size=47020, hidden_size=1024, num_hidden_layers=24,
#   num_attention_heads=16, intermediate_size=4096, max_position_embeddings=512, type_vocab_size=2)) (with pooler)
HUNYUAN_CLIP_BERT_NO_POOLER = 350_986_240  # the same BertModel(..., add_pooling_layer=False)
BERT_BASE = 109_482_240  # BertModel(BertConfig()): bert-base-uncased
STEP_LLM = 19_579_600_896  # LlamaModel(LlamaConfig(vocab_size=65536, hidden_size=6144, intermediate_size=16896,
#   num_hidden_layers=48, num_attention_heads=48, num_key_value_heads=8, head_dim=128)) = 19_579_607_040, less its
#   final norm (6144): Step1Model has none (per layer 399,519,744; embedding 402,653,184)


def n_params(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


@pytest.mark.parametrize(("spec", "expected"), [
    (ENCODERS["llava_llama3_8b"], LLAVA_LLAMA3_8B_TEXT),
    (ENCODERS["llava_llama3_8b"].model_copy(update={"vocab_size": 128256}), LLAMA3_8B),
    (ENCODERS["clip_vit_l14_text"], CLIP_L_TEXT),
    (ENCODERS["clip_vit_l14_text"].model_copy(update={"projection_dim": 768}), CLIP_L_TEXT_WITH_PROJECTION),
    (ENCODERS["mt5_xxl_encoder"], MT5_XXL_ENCODER),
    (ENCODERS["hunyuan_clip"], HUNYUAN_CLIP_BERT),
    (ENCODERS["hunyuan_clip"].model_copy(update={"pooler": False}), HUNYUAN_CLIP_BERT_NO_POOLER),
    (text_encoder_spec(kind="bert", vocab_size=30522, num_layers=12, d_model=768, num_heads=12, d_ff=3072,
                       max_tokens=512), BERT_BASE),
    (ENCODERS["step_llm"], STEP_LLM),
], ids=["llava-llama-3-8b", "llama-3-8b", "clip-l", "clip-l-projection", "mt5-xxl", "hunyuan-clip",
        "hunyuan-clip-no-pooler", "bert-base", "step-llm"])
def test_real_encoders_params_equal_transformers(spec: TextEncoderSpec, expected: int):
    assert text_encoder_params(spec) == expected
    assert n_params(build_text_encoder(spec, "meta")) == expected


@given(text_encoder_specs(kinds=("llama", "clip", "bert")))
def test_llama_clip_bert_params_from_the_ledger_equal_module(spec: TextEncoderSpec):
    assert text_encoder_params(spec) == n_params(build_text_encoder(spec, "meta"))


def test_every_kind_has_one_registered_ledger_builder():
    assert registered("text_encoder") == ("bert", "clip", "llama", "t5")


def _meta_macs(spec: TextEncoderSpec, tokens: int, batch: int) -> dict[str, int]:
    module = build_text_encoder(spec, "meta").eval()
    return flop_counter_by_module(module, (torch.zeros(batch, tokens, dtype=torch.long, device="meta"),))


@pytest.mark.parametrize(("name", "tokens"), [("llava_llama3_8b", 351), ("clip_vit_l14_text", 77),
                                              ("mt5_xxl_encoder", 256), ("step_llm", 320), ("hunyuan_clip", 77)])
def test_real_size_macs_equal_flop_counter_on_meta(name: str, tokens: int):
    """HunyuanVideo encodes 256 + 95 template tokens with the Llama; CLIP its 77; mT5 256; Step-Video's Step-LLM
    320 and its Hunyuan-CLIP BERT 77 (no memory on meta)."""
    spec = ENCODERS[name]
    fc = _meta_macs(spec, tokens, 2)
    analytic = Count("text_encode", tuple(text_encoder_terms(spec, tokens, 2, MATMUL_ONLY)), MATMUL_ONLY)
    per_module = analytic.module_macs()
    assert fc[""] == analytic.macs
    assert fc["layers.5"] == per_module["layers.5"]


def test_llama_macs_closed_form_gqa_causal_and_skip():
    """q and o are h d_kv wide, k and v kv_heads d_kv (GQA); the causal core is counted in full, 2 h L^2 d_kv, as
    both profilers count it; hidden_state_skip layers (and the final norm) are not run."""
    spec = ENCODERS["llava_llama3_8b"]
    B, L, d, f = 2, 351, 4096, 14336
    terms = text_encoder_terms(spec, L, B, MATMUL_ONLY)
    count = Count("text_encode", tuple(terms), MATMUL_ONLY)
    per_layer = B * L * (d * 4096 + 2 * d * 1024 + 4096 * d + 3 * d * f) + 2 * B * 32 * L * L * 128
    assert spec.layers_run == 30
    assert count.macs == 30 * per_layer
    assert count.by_kind()["attention"] == 30 * 2 * B * 32 * L * L * 128
    paths = count.module_macs()
    assert "layers.29" in paths and "layers.30" not in paths and "norm" not in paths
    full = spec.model_copy(update={"hidden_state_skip": 0})
    fv = Count("text_encode", tuple(text_encoder_terms(full, L, B, FVCORE)), FVCORE)
    assert fv.module_macs()["norm"] == 4 * B * L * d  # RMSNorm with weight: 4 per element
    assert fv.macs - Count("text_encode", tuple(text_encoder_terms(spec, L, B, FVCORE)), FVCORE).macs == (
        2 * (per_layer + 2 * 4 * B * L * d) + 4 * B * L * d)


def test_step_llm_macs_closed_form():
    """Fused wqkv L d (inner + 2 kv) and w1 L d 2f: the MACs of separate projections; causal core in full; no final
    norm, nothing for the in-kernel ALiBi."""
    spec = ENCODERS["step_llm"]
    B, L, d, f = 1, 320, 6144, 16896
    count = Count("text_encode", tuple(text_encoder_terms(spec, L, B, MATMUL_ONLY)), MATMUL_ONLY)
    per_layer = B * L * (d * (6144 + 2 * 1024) + 6144 * d + 3 * d * f) + 2 * B * 48 * L * L * 128
    assert count.macs == 48 * per_layer
    paths = count.module_macs()
    assert paths["layers.0.self_attn.qkv_proj"] == B * L * d * 8192 and paths["layers.0.mlp.gate_up_proj"] == (
        B * L * d * 2 * f)
    assert "norm" not in paths
    separate = spec.model_copy(update={"fused_projections": False})
    assert Count("t", tuple(text_encoder_terms(separate, L, B, MATMUL_ONLY)), MATMUL_ONLY).macs == count.macs


def test_bert_macs_closed_form_and_pooler():
    """Per layer 4 L d inner + 2 L d f + bidirectional core 2 h L^2 d_kv; the pooler one d x d row per prompt; FVCORE
    adds 5 per element for each LayerNorm (embedding + 2 per layer)."""
    spec = ENCODERS["hunyuan_clip"]
    B, L, d, f = 2, 77, 1024, 4096
    per_layer = B * L * (4 * d * d + 2 * d * f) + 2 * B * 16 * L * L * 64
    mm = Count("text_encode", tuple(text_encoder_terms(spec, L, B, MATMUL_ONLY)), MATMUL_ONLY)
    assert mm.macs == 24 * per_layer + B * d * d
    assert mm.module_macs()["pooler"] == B * d * d
    no_pooler = spec.model_copy(update={"pooler": False})
    assert Count("t", tuple(text_encoder_terms(no_pooler, L, B, MATMUL_ONLY)), MATMUL_ONLY).macs == 24 * per_layer
    fv = Count("text_encode", tuple(text_encoder_terms(spec, L, B, FVCORE)), FVCORE)
    assert fv.macs - mm.macs == (1 + 2 * 24) * 5 * B * L * d
    assert spec.pooled_dim == 1024 and no_pooler.pooled_dim is None


def test_clip_projection_counts_the_pooled_vector_only():
    spec = ENCODERS["clip_vit_l14_text"].model_copy(update={"projection_dim": 768})
    macs = Count("text_encode", tuple(text_encoder_terms(spec, 77, 3, MATMUL_ONLY)), MATMUL_ONLY).module_macs()
    assert macs["text_projection"] == 3 * 768 * 768
    assert spec.pooled_dim == 768 and ENCODERS["clip_vit_l14_text"].pooled_dim == 768
    assert ENCODERS["mt5_xxl_encoder"].pooled_dim is None


# ------------------------------------------------------------------------------------------------
# Validation
# ------------------------------------------------------------------------------------------------

def test_kind_defaults_to_t5_and_old_dicts_validate_unchanged():
    old = {"vocab_size": 32128, "num_layers": 24, "d_model": 4096, "num_heads": 64, "d_kv": 64, "d_ff": 10240,
           "gated_ffn": True, "max_tokens": 226}
    spec = text_encoder_spec(old)
    assert spec.kind == "t5" and text_encoder_params(spec) == 4_762_310_656
    assert spec.kv_heads == 64 and spec.layers_run == 24


@pytest.mark.parametrize("spec", [*ENCODERS.values()], ids=list(ENCODERS))
def test_specs_round_trip_through_dumps(spec: TextEncoderSpec):
    """A dump carries its kind's fields only and reloads to the same spec (dict, json, or with a field changed)."""
    assert text_encoder_spec(spec.model_dump()) == spec
    assert TypeAdapter(TextEncoderSpec).validate_json(spec.model_dump_json()) == spec
    assert text_encoder_spec(spec, max_tokens=7).max_tokens == 7


LLAMA = {"kind": "llama", "vocab_size": 64, "num_layers": 3, "d_model": 32, "num_heads": 4, "d_ff": 48,
         "max_tokens": 16}


@pytest.mark.parametrize(("data", "message"), [
    ({"kind": "llama", "num_layers": 2}, "llama.vocab_size\n  Field required"),
    ({"kind": "llama", "num_layers": 2}, "llama.max_tokens\n  Field required"),
    ({**LLAMA, "kind": "clip", "num_kv_heads": 2}, "clip.num_kv_heads\n  Extra inputs are not permitted"),
    ({**LLAMA, "gated_ffn": False}, "llama.gated_ffn\n  Extra inputs are not permitted"),
    ({**LLAMA, "relative_attention_num_buckets": 16}, "llama.relative_attention_num_buckets\n  Extra inputs"),
    ({"projection_dim": 512}, "t5.projection_dim\n  Extra inputs are not permitted"),
    ({"hidden_state_skip": 2}, "t5.hidden_state_skip\n  Extra inputs are not permitted"),
    ({**LLAMA, "num_kv_heads": 3}, "num_heads=4 must be a multiple of num_kv_heads=3"),
    ({**LLAMA, "hidden_state_skip": 3}, "hidden_state_skip=3 must be less than num_layers=3"),
    ({**LLAMA, "num_heads": 3}, "d_model=32 is not divisible by num_heads=3: give d_kv"),
    ({**LLAMA, "d_kv": 5}, "rotary embedding needs an even d_kv"),
    ({**LLAMA, "kind": "gpt"}, "kind should be one of 't5', 'llama', 'clip', 'bert'"),
    ({"kind": "bert", "num_layers": 2}, "bert.d_ff\n  Field required"),
    ({**LLAMA, "kind": "bert", "max_position_embeddings": 8}, "max_tokens=16 exceeds max_position_embeddings=8"),
    ({"pooler": False}, "t5.pooler\n  Extra inputs are not permitted"),
    ({**LLAMA, "kind": "clip", "type_vocab_size": 1}, "clip.type_vocab_size\n  Extra inputs are not permitted"),
    ({**LLAMA, "kind": "bert", "final_norm": False}, "bert.final_norm\n  Extra inputs are not permitted"),
    ({**LLAMA, "kind": "clip", "fused_projections": True, "rotary": False}, "clip.fused_projections\n  Extra inputs"),
])
def test_invalid_text_encoders_are_rejected_clearly(data: dict, message: str):
    with pytest.raises(ValidationError) as info:
        text_encoder_spec(data)
    assert message in str(info.value)


def test_llama_without_rotary_accepts_odd_head_width():
    spec = text_encoder_spec({**LLAMA, "d_kv": 5, "rotary": False})
    assert text_encoder_params(spec) == n_params(build_text_encoder(spec, "meta"))


def test_bert_positions_default_to_max_tokens():
    spec = text_encoder_spec({**LLAMA, "kind": "bert"})
    assert spec.positions == 16 and spec.d_kv == 8 and spec.pooler
    assert ENCODERS["hunyuan_clip"].positions == 512


def test_llama_head_width_defaults_to_d_over_heads_and_kv_heads_to_heads():
    spec = text_encoder_spec(LLAMA)
    assert spec.d_kv == 8 and spec.kv_heads == 4 and spec.kv_dim == 32 and spec.inner_dim == 32
    assert text_encoder_spec({**LLAMA, "d_kv": 6}).inner_dim == 24


# ------------------------------------------------------------------------------------------------
# Inference peak against the live-tensor tracker
# ------------------------------------------------------------------------------------------------

@settings(max_examples=40, deadline=None)
@given(text_encoder_specs(), st.integers(2, 6), st.integers(1, 2))
def test_peak_from_the_ledger_matches_measurement(spec: TextEncoderSpec, tokens: int, batch: int):
    """The liveness evaluator over the ledger's dataflow equals the measured peak (fp32) for every kind: every llama
    variant (rotary or not, fused projections or not, GQA / MQA / MHA), clip, bert, and t5 with a shared (T5) or
    per-layer (umT5) position bias, gated or not."""
    model = build_text_encoder(spec).eval()
    ids = torch.randint(0, spec.vocab_size, (batch, tokens))
    with torch.no_grad():
        peak, _ = peak_live_bytes(lambda: model(ids))
    assert text_encoder_peak(spec, tokens, batch, 4) == peak


@pytest.mark.parametrize("kind", ["llama", "clip"])
def test_llama_clip_peak_exact_at_hunyuan_like_ratios(kind: str):
    """GQA 4:1, d_ff = 3.5 d (Llama-3) and 4 d (CLIP): the MLP phase is the peak, exactly."""
    spec = text_encoder_spec(kind=kind, vocab_size=100, num_layers=2, d_model=64, num_heads=8, d_ff=224 if kind ==
                             "llama" else 256, max_tokens=48, **({"num_kv_heads": 2} if kind == "llama" else {}))
    model = build_text_encoder(spec).eval()
    ids = torch.randint(0, 100, (2, 40))
    with torch.no_grad():
        peak, _ = peak_live_bytes(lambda: model(ids))
    assert text_encoder_peak(spec, 40, 2, 4) == peak


@pytest.mark.parametrize(("name", "small"), [
    ("step_llm", {"d_model": 96, "num_heads": 12, "num_kv_heads": 2, "d_kv": 8, "d_ff": 264}),
    ("hunyuan_clip", {"d_model": 64, "num_heads": 4, "d_kv": 16, "d_ff": 256}),
], ids=["step-llm", "hunyuan-clip"])
def test_step_video_encoders_peak_exact_at_scaled_down_ratios(name: str, small: dict):
    """Step-LLM (GQA 6:1, d_ff = 2.75 d, fused projections, no rotary, no final norm) and the Hunyuan-CLIP BERT
    (d_ff = 4 d, pooler) at 1/16 to 1/64 width, 2 layers: the ledger's peak equals the measured peak."""
    spec = text_encoder_spec(ENCODERS[name], **small, vocab_size=100, num_layers=2)
    model = build_text_encoder(spec).eval()
    ids = torch.randint(0, 100, (2, 40))
    with torch.no_grad():
        peak, _ = peak_live_bytes(lambda: model(ids))
    assert text_encoder_peak(spec, 40, 2, 4) == peak


def _closed_form_peak(spec: TextEncoderSpec, L: int, B: int, a: int) -> int:
    """The hand-derived peaks the ledger replaced, at the presets' shapes (D, Q, F: bytes of one (B, L, width)
    tensor of width d_model, inner, d_ff). t5: the position bias plus the FFN phase (layer input, residual, normed
    input and three d_ff-wide tensors; two for ReLU); llama: the rotary tables plus the MLP phase (SwiGLU: 3 D + 3 F;
    a fused gate_up output kept until the down projection: + max(F, D)); clip: the attention phase (3 D + 4 Q) or
    the MLP phase (3 D + 3 F, or 4 D + F while fc2 writes); bert: the attention phase (2 D + 4 Q), the MLP phase
    (2 D + 2 F) or a residual LayerNorm with its fp32 statistics (4 D + 8 B L)."""
    D, Q, F = (B * L * w * a for w in (spec.d_model, spec.inner_dim, spec.d_ff))
    if isinstance(spec, T5EncoderSpec):
        return spec.num_heads * L * L * a + 3 * D + (3 if spec.gated_ffn else 2) * F
    if isinstance(spec, LlamaEncoderSpec):
        table = 2 * L * spec.d_kv * a if spec.rotary else 0
        return table + 3 * D + 3 * F + (max(F, D) if spec.fused_projections else max(0, D - 2 * F))
    if isinstance(spec, CLIPTextSpec):
        return max(3 * D + 4 * Q, 3 * D + max(3 * F, D + F))
    return max(2 * D + 4 * Q, 2 * D + 2 * F, 4 * D + 2 * B * L * 4)


@pytest.mark.parametrize("name", preset_names())
def test_preset_encoder_peaks_equal_the_hand_derived_closed_forms(name: str):
    """Every number unchanged: the ledger's peak of each preset encoder at its token count, bf16 and fp32, one and
    two prompts, equals the closed form the hand-written walk used."""
    model = load_preset(name).model
    for spec, L in zip(model.text_encoders, model.text_encoder_tokens(), strict=True):
        for B, a in ((1, 2), (2, 2), (2, 4)):
            assert text_encoder_peak(spec, L, B, a) == _closed_form_peak(spec, L, B, a), (name, spec.kind)
