"""Closed-form MACs of the T5 encoder (reference_model/text_encoder.py), one function per module type.

Notation: B batch, L tokens, d model width, h heads of width d_kv (inner = h d_kv), f FFN width.
"""

from __future__ import annotations

from sora_compute.flops.breakdown import Term, attention_term, linear_term, norm_term
from sora_compute.flops.ops import FVCORE, CountingConvention, Number
from sora_compute.specs import TextEncoderSpec

__all__ = ["t5_attention", "t5_feed_forward", "text_encoder_terms"]


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


def text_encoder_terms(spec: TextEncoderSpec, tokens: Number, batch: Number = 1,
                       convention: CountingConvention = FVCORE) -> list[Term]:
    """A T5 encoder forward over ``tokens`` tokens (embedding lookups and position buckets cost no MACs)."""
    B, L, d = batch, tokens, spec.d_model
    layers = range(spec.num_layers)
    numel = d * B * L
    terms = [norm_term("layers.{i}.attn_norm", "rms_norm", numel, True, convention, layers)]
    terms += t5_attention("layers.{i}.attn", B, L, spec, layers)
    terms.append(norm_term("layers.{i}.ff_norm", "rms_norm", numel, True, convention, layers))
    terms += t5_feed_forward("layers.{i}.ff", B, L, spec, layers)
    terms.append(norm_term("final_norm", "rms_norm", numel, True, convention))
    return terms
