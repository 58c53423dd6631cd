"""Ledgers of the joint-attention blocks: MMDiT dual- and single-stream blocks (SD3, FLUX, HunyuanVideo) with
HunyuanVideo's token refiner, and Mochi's asymmetric blocks with their attention pooling of the text.

Notation as in ``ledger/dit.py``; dy the text-stream width of an asymmetric block.
"""

from __future__ import annotations

from dataclasses import replace

from sora_compute.ledger.dit import (
    DiTShape,
    gated_residual,
    layer_norm,
    mlp,
    modulate,
    qk_norm_op,
    qk_norms,
    silu,
)
from sora_compute.ledger.ops import Op, attention_op, elementwise_op, linear_op, norm_op, weight_op
from sora_compute.ledger.registry import register
from sora_compute.specs import DiTSpec

__all__ = ["dual_stream_block", "single_stream_block", "asymmetric_block", "attention_pool", "token_refiner"]


@register("dit_block", "dual")
def dual_stream_block(spec: DiTSpec, shape: DiTShape, mode: str, blocks: range) -> list[Op]:
    """MMDiT dual-stream block: per stream (video N rows, text L rows) adaLN 6 c d, norms, qkv, q/k norms, proj and
    MLP with the stream's own weights; one attention core over N + L tokens."""
    B, N, L = shape.B, shape.N, shape.L
    d, h, m, pre = spec.hidden_size, spec.num_heads, spec.mlp_hidden, "blocks.{i}"
    ops: list[Op] = []
    for stream, rows in (("img", B * N), ("txt", B * L)):
        s = f"{pre}.{stream}"
        ops += [
            silu(f"{s}_mod.0", B, spec.cond, blocks),
            linear_op(f"{s}_mod.1", "adaln", B, spec.cond, 6 * d, blocks),
            layer_norm(f"{s}_norm1", rows, d, blocks, spec.norm_affine),
            modulate(f"{s}_modulate_attn", B, rows, d, blocks),
            linear_op(f"{s}_attn_qkv", "attention_proj", rows, d, 3 * d, blocks, spec.qkv_bias),
            *qk_norms(spec, pre, rows, rows, blocks, (f"{stream}_attn_norm_q.norm", f"{stream}_attn_norm_k.norm")),
            linear_op(f"{s}_attn_proj", "attention_proj", rows, d, d, blocks, spec.out_bias),
            gated_residual(f"{s}_gate_attn", B, rows, d, blocks),
            layer_norm(f"{s}_norm2", rows, d, blocks, spec.norm_affine),
            modulate(f"{s}_modulate_mlp", B, rows, d, blocks),
            *mlp(spec, pre, rows, d, m, blocks, f"{stream}_mlp"),
            gated_residual(f"{s}_gate_mlp", B, rows, d, blocks),
        ]
    ops.append(attention_op(f"{pre}.core", "attention", B, h, N + L, N + L, d // h, blocks))
    return ops


@register("dit_block", "single")
def single_stream_block(spec: DiTSpec, shape: DiTShape, mode: str, blocks: range) -> list[Op]:
    """Single-stream block on N + L tokens: adaLN 3 c d, pre-norm, linear1 d -> 3d + m (qkv and MLP input),
    q/k norms, attention core, linear2 d + m -> d. The fused linears are listed as their attention and MLP parts
    (the part listed first owns the bias)."""
    B, N, L = shape.B, shape.N, shape.L
    d, h, m, pre = spec.hidden_size, spec.num_heads, spec.mlp_hidden, "blocks.{i}"
    rows = B * (N + L)
    return [
        silu(f"{pre}.modulation.0", B, spec.cond, blocks),
        linear_op(f"{pre}.modulation.1", "adaln", B, spec.cond, 3 * d, blocks),
        layer_norm(f"{pre}.pre_norm", rows, d, blocks, spec.norm_affine),
        modulate(f"{pre}.modulate", B, rows, d, blocks),
        linear_op(f"{pre}.linear1", "attention_proj", rows, d, 3 * d, blocks),
        linear_op(f"{pre}.linear1", "mlp", rows, d, m, blocks),
        elementwise_op(f"{pre}.act", "activation", rows * m, rows * m, blocks, what="gelu_tanh"),
        *qk_norms(spec, pre, rows, rows, blocks),
        attention_op(f"{pre}.core", "attention", B, h, N + L, N + L, d // h, blocks),
        linear_op(f"{pre}.linear2", "attention_proj", rows, d, d, blocks),
        linear_op(f"{pre}.linear2", "mlp", rows, m, d, blocks, bias=False),
        gated_residual(f"{pre}.gate", B, rows, d, blocks),
    ]


@register("dit_block", "asymmetric", "asymmetric_last")
def asymmetric_block(spec: DiTSpec, shape: DiTShape, mode: str, blocks: range) -> list[Op]:
    """Mochi block: modulation (4 c d; 4 c dy, or c dy when the text is not updated), parameter-free RMSNorms
    before and after attention and MLP, qkv from d (video) and dy (text) to 3d, q/k norms, one core over N + L,
    output projections d -> d and d -> dy, and per-stream MLPs (the text's only while it is updated: not in
    ``asymmetric_last``)."""
    B, N, L = shape.B, shape.N, shape.L
    update_y = mode == "asymmetric"
    d, dy, h, c = spec.hidden_size, spec.text_width, spec.num_heads, spec.cond
    pre = "blocks.{i}"
    ops = [silu(f"{pre}.mod.0", B, c, blocks),
           linear_op(f"{pre}.mod_x", "adaln", B, c, 4 * d, blocks),
           linear_op(f"{pre}.mod_y", "adaln", B, c, 4 * dy if update_y else dy, blocks)]
    for s, rows, width in (("x", B * N, d), ("y", B * L, dy)):
        updated = s == "x" or update_y
        ops += [norm_op(f"{pre}.{s}_norm{i}", "rms_norm", width * rows, False, width, blocks)
                for i in ((1, 2, 3, 4) if updated else (1,))]
        ops.append(linear_op(f"{pre}.qkv_{s}", "attention_proj", rows, width, 3 * d, blocks, spec.qkv_bias))
        if qk_norm_op(spec):
            ops += qk_norms(spec, pre, rows, rows, blocks, (f"norm_q_{s}.norm", f"norm_k_{s}.norm"))
        if updated:
            m = spec.mlp_hidden if s == "x" else spec.text_mlp_hidden
            ops += [linear_op(f"{pre}.proj_{s}", "attention_proj", rows, d, width, blocks, spec.out_bias),
                    gated_residual(f"{pre}.gate_attn_{s}", B, rows, width, blocks),
                    *mlp(spec, pre, rows, width, m, blocks, f"mlp_{s}"),
                    gated_residual(f"{pre}.gate_mlp_{s}", B, rows, width, blocks)]
    ops.append(attention_op(f"{pre}.core", "attention", B, h, N + L, N + L, d // h, blocks))
    return ops


@register("dit_text", "attention_pool")
def attention_pool(spec: DiTSpec, shape: DiTShape) -> list[Op]:
    """Mochi's text pooling: kv over 1 + L tokens (the mean prepended), one query per sample, the core with
    ``text_pool_heads`` heads, projection to the conditioning width; and the learned RoPE frequencies
    (3 axes x heads x head_dim / 2; the rotations are elementwise). The mean costs no MACs."""
    B, L = shape.B, shape.L
    t, hp = spec.text_dim, spec.text_pool_heads
    return [linear_op("text_pool.to_kv", "text_proj", B * (L + 1), t, 2 * t),
            linear_op("text_pool.to_q", "text_proj", B, t, t),
            attention_op("text_pool.core", "text_proj", B, hp, 1, L + 1, t // hp),
            linear_op("text_pool.to_out", "text_proj", B, t, spec.cond),
            weight_op("pos_frequencies", "rope", 3 * spec.num_heads * (spec.head_dim // 2))]


@register("dit_text", "refiner")
def token_refiner(spec: DiTSpec, shape: DiTShape) -> list[Op]:
    """HunyuanVideo's token refiner on L text tokens: timestep MLP and pooled-text MLP (per sample), input
    Linear(text_dim, d), then per block gate-only adaLN (2 d^2), affine LayerNorms, qkv 3 d^2, core 2 L^2 d,
    projection d^2 and a 4x SiLU MLP (8 d^2) per token. The mean over tokens costs no MACs."""
    B, L = shape.B, shape.L
    d, t, f, h = spec.hidden_size, spec.text_dim, spec.frequency_embedding_size, spec.num_heads
    pre, blocks, rows = "y_embedder.blocks.{i}", range(spec.refiner_depth), B * L
    return [
        linear_op("y_embedder.t_embedder.mlp.0", "text_proj", B, f, d),
        linear_op("y_embedder.t_embedder.mlp.2", "text_proj", B, d, d),
        linear_op("y_embedder.c_embedder.fc1", "text_proj", B, t, d),
        linear_op("y_embedder.c_embedder.fc2", "text_proj", B, d, d),
        linear_op("y_embedder.input_embedder", "text_proj", rows, t, d),
        linear_op(f"{pre}.adaLN_modulation.1", "text_proj", B, d, 2 * d, blocks),
        layer_norm(f"{pre}.norm1", rows, d, blocks, affine=True),
        linear_op(f"{pre}.self_attn_qkv", "text_proj", rows, d, 3 * d, blocks),
        attention_op(f"{pre}.core", "text_proj", B, h, L, L, d // h, blocks),
        linear_op(f"{pre}.self_attn_proj", "text_proj", rows, d, d, blocks),
        layer_norm(f"{pre}.norm2", rows, d, blocks, affine=True),
        *[replace(op, kind="text_proj") if op.op == "linear" else op
          for op in mlp(spec, pre, rows, d, 4 * d, blocks, act="silu", bias=True)],
    ]
