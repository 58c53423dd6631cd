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

from sora_compute.ledger.formulas import FVCORE, CountingConvention, Number
from sora_compute.ledger.ops import Op, attention_op, linear_op, norm_term
from sora_compute.specs import TextEncoderSpec

__all__ = [
    "multi_head_attention",
    "feed_forward",
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


def multi_head_attention(prefix: str, B: Number, L: Number, spec: TextEncoderSpec, blocks: range,
                         names: tuple[str, str, str, str]) -> list[Op]:
    """Projections q (L d inner), k and v (L d kv each: narrower with grouped-query attention), output (L inner d),
    and the core 2 h L^2 d_kv. Bias adds cost no MACs; a causal core is counted in full, as both profilers do."""
    d, inner, kv = spec.d_model, spec.inner_dim, spec.kv_dim
    q, k, v, o = names
    terms = [linear_op(f"{prefix}.{q}", "attention_proj", B * L, d, inner, blocks)]
    terms += [linear_op(f"{prefix}.{n}", "attention_proj", B * L, d, kv, blocks) for n in (k, v)]
    terms.append(attention_op(prefix, "attention", B, spec.num_heads, L, L, spec.d_kv, blocks))
    terms.append(linear_op(f"{prefix}.{o}", "attention_proj", B * L, inner, d, blocks))
    return terms


def feed_forward(prefix: str, B: Number, L: Number, spec: TextEncoderSpec, blocks: range, ins: tuple[str, ...],
                 out: str) -> list[Op]:
    """One (plain) or two (gated) input projections L d f, then the output projection L f d; activations are
    elementwise."""
    d, f = spec.d_model, spec.d_ff
    terms = [linear_op(f"{prefix}.{n}", "mlp", B * L, d, f, blocks) for n in ins]
    terms.append(linear_op(f"{prefix}.{out}", "mlp", B * L, f, d, blocks))
    return terms


def t5_attention(prefix: str, B: Number, L: Number, spec: TextEncoderSpec, blocks: range) -> list[Op]:
    """q, k, v, o projections 4 L d inner, core 2 h L^2 d_kv (unscaled logits + position bias)."""
    return multi_head_attention(prefix, B, L, spec, blocks, ("q", "k", "v", "o"))


def t5_feed_forward(prefix: str, B: Number, L: Number, spec: TextEncoderSpec, blocks: range) -> list[Op]:
    """Gated-GELU: 2 L d f (wi_0, wi_1) + L f d (wo); plain ReLU: L d f + L f d."""
    return feed_forward(prefix, B, L, spec, blocks, ("wi_0", "wi_1") if spec.gated_ffn else ("wi",), "wo")


def llama_attention(prefix: str, B: Number, L: Number, spec: TextEncoderSpec, blocks: range) -> list[Op]:
    """GQA: q L d inner, k and v L d kv each (narrower), core 2 h L^2 d_kv (causal, counted in full), o L inner d.
    Rotary embedding and the key/value repeat are elementwise copies (not counted). Fused: one qkv_proj
    L d (inner + 2 kv), the same MACs."""
    if not spec.fused_projections:
        return multi_head_attention(prefix, B, L, spec, blocks, ("q_proj", "k_proj", "v_proj", "o_proj"))
    d, inner, kv = spec.d_model, spec.inner_dim, spec.kv_dim
    return [linear_op(f"{prefix}.qkv_proj", "attention_proj", B * L, d, inner + 2 * kv, blocks),
            attention_op(prefix, "attention", B, spec.num_heads, L, L, spec.d_kv, blocks),
            linear_op(f"{prefix}.o_proj", "attention_proj", B * L, inner, d, blocks)]


def llama_mlp(prefix: str, B: Number, L: Number, spec: TextEncoderSpec, blocks: range) -> list[Op]:
    """SwiGLU: gate and up 2 L d f (fused: one gate_up_proj L d 2f), down L f d."""
    if not spec.fused_projections:
        return feed_forward(prefix, B, L, spec, blocks, ("gate_proj", "up_proj"), "down_proj")
    d, f = spec.d_model, spec.d_ff
    return [linear_op(f"{prefix}.gate_up_proj", "mlp", B * L, d, 2 * f, blocks),
            linear_op(f"{prefix}.down_proj", "mlp", B * L, f, d, blocks)]


def clip_attention(prefix: str, B: Number, L: Number, spec: TextEncoderSpec, blocks: range) -> list[Op]:
    """q, k, v, out projections 4 L d inner (bias adds not counted), core 2 h L^2 d_kv (causal, counted in full)."""
    return multi_head_attention(prefix, B, L, spec, blocks, ("q_proj", "k_proj", "v_proj", "out_proj"))


def clip_mlp(prefix: str, B: Number, L: Number, spec: TextEncoderSpec, blocks: range) -> list[Op]:
    """fc1 L d f, quick-GELU (elementwise), fc2 L f d."""
    return feed_forward(prefix, B, L, spec, blocks, ("fc1",), "fc2")


def bert_attention(prefix: str, B: Number, L: Number, spec: TextEncoderSpec, blocks: range) -> list[Op]:
    """query, key, value, output projections 4 L d inner (bias adds not counted), bidirectional core 2 h L^2 d_kv."""
    return multi_head_attention(prefix, B, L, spec, blocks, ("query", "key", "value", "output"))


def bert_mlp(prefix: str, B: Number, L: Number, spec: TextEncoderSpec, blocks: range) -> list[Op]:
    """intermediate L d f, erf GELU (elementwise), output L f d."""
    return feed_forward(prefix, B, L, spec, blocks, ("intermediate",), "output")


def _t5_terms(spec: TextEncoderSpec, B: Number, L: Number, convention: CountingConvention) -> list[Op]:
    layers = range(spec.num_layers)
    numel = spec.d_model * B * L
    terms = [norm_term("layers.{i}.attn_norm", "rms_norm", numel, True, convention, layers)]
    terms += t5_attention("layers.{i}.attn", B, L, spec, layers)
    terms.append(norm_term("layers.{i}.ff_norm", "rms_norm", numel, True, convention, layers))
    terms += t5_feed_forward("layers.{i}.ff", B, L, spec, layers)
    terms.append(norm_term("final_norm", "rms_norm", numel, True, convention))
    return terms


def _llama_terms(spec: TextEncoderSpec, B: Number, L: Number, convention: CountingConvention) -> list[Op]:
    layers = range(spec.layers_run)  # hidden_state_skip: the last layers (and the final norm) are not run
    numel = spec.d_model * B * L
    terms = [norm_term("layers.{i}.input_layernorm", "rms_norm", numel, True, convention, layers)]
    terms += llama_attention("layers.{i}.self_attn", B, L, spec, layers)
    terms.append(norm_term("layers.{i}.post_attention_layernorm", "rms_norm", numel, True, convention, layers))
    terms += llama_mlp("layers.{i}.mlp", B, L, spec, layers)
    if spec.hidden_state_skip == 0 and spec.final_norm:
        terms.append(norm_term("norm", "rms_norm", numel, True, convention))
    return terms


def _clip_terms(spec: TextEncoderSpec, B: Number, L: Number, convention: CountingConvention) -> list[Op]:
    layers = range(spec.num_layers)
    numel = spec.d_model * B * L
    terms = [norm_term("layers.{i}.layer_norm1", "layer_norm", numel, True, convention, layers)]
    terms += clip_attention("layers.{i}.self_attn", B, L, spec, layers)
    terms.append(norm_term("layers.{i}.layer_norm2", "layer_norm", numel, True, convention, layers))
    terms += clip_mlp("layers.{i}.mlp", B, L, spec, layers)
    terms.append(norm_term("final_layer_norm", "layer_norm", numel, True, convention))
    if spec.projection_dim is not None:  # the pooled vector only: one row per prompt
        terms.append(linear_op("text_projection", "projection", B, spec.d_model, spec.projection_dim))
    return terms


def _bert_terms(spec: TextEncoderSpec, B: Number, L: Number, convention: CountingConvention) -> list[Op]:
    layers = range(spec.num_layers)
    numel = spec.d_model * B * L
    terms = [norm_term("embedding_norm", "layer_norm", numel, True, convention)]
    terms += bert_attention("layers.{i}.attention", B, L, spec, layers)
    terms.append(norm_term("layers.{i}.attention_norm", "layer_norm", numel, True, convention, layers))
    terms += bert_mlp("layers.{i}", B, L, spec, layers)
    terms.append(norm_term("layers.{i}.output_norm", "layer_norm", numel, True, convention, layers))
    if spec.pooler:  # the first token only: one row per prompt (BertModel runs it even where it goes unused)
        terms.append(linear_op("pooler", "projection", B, spec.d_model, spec.d_model))
    return terms


def text_encoder_terms(spec: TextEncoderSpec, tokens: Number, batch: Number = 1,
                       convention: CountingConvention = FVCORE) -> list[Op]:
    """An encoder forward over ``tokens`` tokens, by ``spec.kind`` (embedding lookups, position buckets, rotary
    angles, the pooled-token gather and the pooler's tanh cost no MACs)."""
    build = {"t5": _t5_terms, "llama": _llama_terms, "clip": _clip_terms, "bert": _bert_terms}[spec.kind]
    return build(spec, batch, tokens, convention)
