"""Closed-form MACs of the text encoders (reference_model/text_encoder.py), one function per module type.

Kinds: t5, llama (also Step-LLM: fused projections, no rotary embedding, no final norm), clip, bert.

Notation: B batch, L tokens, d model width, h query heads of width d_kv (inner = h d_kv), kv key/value width
(kv heads x d_kv; = inner without GQA), f FFN width.

Causal attention (llama, clip; bert's is bidirectional) is counted as the full L x L core: both profilers
(fvcore's SDPA handle and FlopCounterMode, whose meta run takes the math path) count ``is_causal`` attention like
unmasked attention, and so do dense kernels (math, memory-efficient). A flash kernel that skips masked tiles does
about half the core's work.
Grouped-query attention repeats each key/value head before the core, which then costs as many MACs as
multi-head attention; only the k and v projections are narrower.
"""

from __future__ import annotations

from sora_compute.flops.breakdown import Term, attention_term, linear_term, norm_term
from sora_compute.flops.ops import FVCORE, CountingConvention, Number
from sora_compute.specs import TextEncoderSpec

__all__ = [
    "t5_attention",
    "t5_feed_forward",
    "llama_attention",
    "llama_mlp",
    "clip_attention",
    "clip_mlp",
    "bert_attention",
    "bert_mlp",
    "text_encoder_terms",
]


def t5_attention(prefix: str, B: Number, L: Number, spec: TextEncoderSpec, blocks: range) -> list[Term]:
    """q, k, v, o projections 4 L d inner, core 2 h L^2 d_kv (unscaled logits + position bias)."""
    d, inner = spec.d_model, spec.inner_dim
    terms = [linear_term(f"{prefix}.{n}", "attention_proj", B * L, d, inner, blocks) for n in "qkv"]
    terms.append(attention_term(prefix, "attention", B, spec.num_heads, L, L, spec.d_kv, blocks))
    terms.append(linear_term(f"{prefix}.o", "attention_proj", B * L, inner, d, blocks))
    return terms


def t5_feed_forward(prefix: str, B: Number, L: Number, spec: TextEncoderSpec, blocks: range) -> list[Term]:
    """Gated-GELU: 2 L d f (wi_0, wi_1) + L f d (wo); plain ReLU: L d f + L f d."""
    d, f = spec.d_model, spec.d_ff
    ins = ["wi_0", "wi_1"] if spec.gated_ffn else ["wi"]
    terms = [linear_term(f"{prefix}.{n}", "mlp", B * L, d, f, blocks) for n in ins]
    terms.append(linear_term(f"{prefix}.wo", "mlp", B * L, f, d, blocks))
    return terms


def llama_attention(prefix: str, B: Number, L: Number, spec: TextEncoderSpec, blocks: range) -> list[Term]:
    """GQA: q L d inner, k and v L d kv each (narrower), core 2 h L^2 d_kv (causal, counted in full), o L inner d.
    Rotary embedding and the key/value repeat are elementwise copies (not counted). Fused: one qkv_proj
    L d (inner + 2 kv), the same MACs."""
    d, inner, kv = spec.d_model, spec.inner_dim, spec.kv_dim
    if spec.fused_projections:
        terms = [linear_term(f"{prefix}.qkv_proj", "attention_proj", B * L, d, inner + 2 * kv, blocks)]
    else:
        terms = [linear_term(f"{prefix}.q_proj", "attention_proj", B * L, d, inner, blocks)]
        terms += [linear_term(f"{prefix}.{n}_proj", "attention_proj", B * L, d, kv, blocks) for n in "kv"]
    terms.append(attention_term(prefix, "attention", B, spec.num_heads, L, L, spec.d_kv, blocks))
    terms.append(linear_term(f"{prefix}.o_proj", "attention_proj", B * L, inner, d, blocks))
    return terms


def llama_mlp(prefix: str, B: Number, L: Number, spec: TextEncoderSpec, blocks: range) -> list[Term]:
    """SwiGLU: gate and up 2 L d f (fused: one gate_up_proj L d 2f), down L f d."""
    d, f = spec.d_model, spec.d_ff
    if spec.fused_projections:
        terms = [linear_term(f"{prefix}.gate_up_proj", "mlp", B * L, d, 2 * f, blocks)]
    else:
        terms = [linear_term(f"{prefix}.{n}_proj", "mlp", B * L, d, f, blocks) for n in ("gate", "up")]
    terms.append(linear_term(f"{prefix}.down_proj", "mlp", B * L, f, d, blocks))
    return terms


def clip_attention(prefix: str, B: Number, L: Number, spec: TextEncoderSpec, blocks: range) -> list[Term]:
    """q, k, v, out projections 4 L d inner (bias adds not counted), core 2 h L^2 d_kv (causal, counted in full)."""
    d, inner = spec.d_model, spec.inner_dim
    terms = [linear_term(f"{prefix}.{n}_proj", "attention_proj", B * L, d, inner, blocks) for n in "qkv"]
    terms.append(attention_term(prefix, "attention", B, spec.num_heads, L, L, spec.d_kv, blocks))
    terms.append(linear_term(f"{prefix}.out_proj", "attention_proj", B * L, inner, d, blocks))
    return terms


def clip_mlp(prefix: str, B: Number, L: Number, spec: TextEncoderSpec, blocks: range) -> list[Term]:
    """fc1 L d f, quick-GELU (elementwise), fc2 L f d."""
    d, f = spec.d_model, spec.d_ff
    return [linear_term(f"{prefix}.fc1", "mlp", B * L, d, f, blocks),
            linear_term(f"{prefix}.fc2", "mlp", B * L, f, d, blocks)]


def bert_attention(prefix: str, B: Number, L: Number, spec: TextEncoderSpec, blocks: range) -> list[Term]:
    """query, key, value, output projections 4 L d inner (bias adds not counted), bidirectional core 2 h L^2 d_kv."""
    d, inner = spec.d_model, spec.inner_dim
    terms = [linear_term(f"{prefix}.{n}", "attention_proj", B * L, d, inner, blocks) for n in ("query", "key", "value")]
    terms.append(attention_term(prefix, "attention", B, spec.num_heads, L, L, spec.d_kv, blocks))
    terms.append(linear_term(f"{prefix}.output", "attention_proj", B * L, inner, d, blocks))
    return terms


def bert_mlp(prefix: str, B: Number, L: Number, spec: TextEncoderSpec, blocks: range) -> list[Term]:
    """intermediate L d f, erf GELU (elementwise), output L f d."""
    d, f = spec.d_model, spec.d_ff
    return [linear_term(f"{prefix}.intermediate", "mlp", B * L, d, f, blocks),
            linear_term(f"{prefix}.output", "mlp", B * L, f, d, blocks)]


def _t5_terms(spec: TextEncoderSpec, B: Number, L: Number, convention: CountingConvention) -> list[Term]:
    layers = range(spec.num_layers)
    numel = spec.d_model * B * L
    terms = [norm_term("layers.{i}.attn_norm", "rms_norm", numel, True, convention, layers)]
    terms += t5_attention("layers.{i}.attn", B, L, spec, layers)
    terms.append(norm_term("layers.{i}.ff_norm", "rms_norm", numel, True, convention, layers))
    terms += t5_feed_forward("layers.{i}.ff", B, L, spec, layers)
    terms.append(norm_term("final_norm", "rms_norm", numel, True, convention))
    return terms


def _llama_terms(spec: TextEncoderSpec, B: Number, L: Number, convention: CountingConvention) -> list[Term]:
    layers = range(spec.layers_run)  # hidden_state_skip: the last layers (and the final norm) are not run
    numel = spec.d_model * B * L
    terms = [norm_term("layers.{i}.input_layernorm", "rms_norm", numel, True, convention, layers)]
    terms += llama_attention("layers.{i}.self_attn", B, L, spec, layers)
    terms.append(norm_term("layers.{i}.post_attention_layernorm", "rms_norm", numel, True, convention, layers))
    terms += llama_mlp("layers.{i}.mlp", B, L, spec, layers)
    if spec.hidden_state_skip == 0 and spec.final_norm:
        terms.append(norm_term("norm", "rms_norm", numel, True, convention))
    return terms


def _clip_terms(spec: TextEncoderSpec, B: Number, L: Number, convention: CountingConvention) -> list[Term]:
    layers = range(spec.num_layers)
    numel = spec.d_model * B * L
    terms = [norm_term("layers.{i}.layer_norm1", "layer_norm", numel, True, convention, layers)]
    terms += clip_attention("layers.{i}.self_attn", B, L, spec, layers)
    terms.append(norm_term("layers.{i}.layer_norm2", "layer_norm", numel, True, convention, layers))
    terms += clip_mlp("layers.{i}.mlp", B, L, spec, layers)
    terms.append(norm_term("final_layer_norm", "layer_norm", numel, True, convention))
    if spec.projection_dim is not None:  # the pooled vector only: one row per prompt
        terms.append(linear_term("text_projection", "projection", B, spec.d_model, spec.projection_dim))
    return terms


def _bert_terms(spec: TextEncoderSpec, B: Number, L: Number, convention: CountingConvention) -> list[Term]:
    layers = range(spec.num_layers)
    numel = spec.d_model * B * L
    terms = [norm_term("embedding_norm", "layer_norm", numel, True, convention)]
    terms += bert_attention("layers.{i}.attention", B, L, spec, layers)
    terms.append(norm_term("layers.{i}.attention_norm", "layer_norm", numel, True, convention, layers))
    terms += bert_mlp("layers.{i}", B, L, spec, layers)
    terms.append(norm_term("layers.{i}.output_norm", "layer_norm", numel, True, convention, layers))
    if spec.pooler:  # the first token only: one row per prompt (BertModel runs it even where it goes unused)
        terms.append(linear_term("pooler", "projection", B, spec.d_model, spec.d_model))
    return terms


def text_encoder_terms(spec: TextEncoderSpec, tokens: Number, batch: Number = 1,
                       convention: CountingConvention = FVCORE) -> list[Term]:
    """An encoder forward over ``tokens`` tokens, by ``spec.kind`` (embedding lookups, position buckets, rotary
    angles, the pooled-token gather and the pooler's tanh cost no MACs)."""
    build = {"t5": _t5_terms, "llama": _llama_terms, "clip": _clip_terms, "bert": _bert_terms}[spec.kind]
    return build(spec, batch, tokens, convention)
