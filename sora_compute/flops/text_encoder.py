"""Closed-form MACs of the T5 encoder (reference_model/text_encoder.py), one function per module type.

Notation: B batch, L tokens, d model width, h heads of width d_kv (inner = h d_kv), f FFN width.
"""

from __future__ import annotations

from sora_compute.flops.breakdown import Term
from sora_compute.flops.ops import FVCORE, CountingConvention, Number, attention_macs, linear_macs, rms_norm_macs
from sora_compute.specs import TextEncoderSpec

__all__ = ["t5_attention", "t5_feed_forward", "text_encoder_terms"]


def t5_attention(prefix: str, B: Number, L: Number, spec: TextEncoderSpec, blocks: range) -> list[Term]:
    """q, k, v, o projections 4 L d inner, core 2 h L^2 d_kv (unscaled logits + position bias)."""
    d, inner = spec.d_model, spec.inner_dim
    terms = [Term(f"{prefix}.{n}", "attention_proj", "linear", linear_macs(B * L, d, inner), blocks) for n in "qkv"]
    terms.append(Term(prefix, "attention", "sdpa", attention_macs(B, spec.num_heads, L, L, spec.d_kv), blocks))
    terms.append(Term(f"{prefix}.o", "attention_proj", "linear", linear_macs(B * L, inner, d), blocks))
    return terms


def t5_feed_forward(prefix: str, B: Number, L: Number, spec: TextEncoderSpec, blocks: range) -> list[Term]:
    """Gated-GELU: 2 L d f (wi_0, wi_1) + L f d (wo); plain ReLU: L d f + L f d."""
    d, f = spec.d_model, spec.d_ff
    ins = ["wi_0", "wi_1"] if spec.gated_ffn else ["wi"]
    terms = [Term(f"{prefix}.{n}", "mlp", "linear", linear_macs(B * L, d, f), blocks) for n in ins]
    terms.append(Term(f"{prefix}.wo", "mlp", "linear", linear_macs(B * L, f, d), blocks))
    return terms


def text_encoder_terms(spec: TextEncoderSpec, tokens: Number, batch: Number = 1,
                       convention: CountingConvention = FVCORE) -> list[Term]:
    """A T5 encoder forward over ``tokens`` tokens (embedding lookups and position buckets cost no MACs)."""
    B, L, d = batch, tokens, spec.d_model
    layers = range(spec.num_layers)
    norm = rms_norm_macs(B * L * d, True, convention)
    terms = [Term("layers.{i}.attn_norm", "norm", "rms_norm", norm, layers)]
    terms += t5_attention("layers.{i}.attn", B, L, spec, layers)
    terms.append(Term("layers.{i}.ff_norm", "norm", "rms_norm", norm, layers))
    terms += t5_feed_forward("layers.{i}.ff", B, L, spec, layers)
    terms.append(Term("final_norm", "norm", "rms_norm", norm))
    return terms
