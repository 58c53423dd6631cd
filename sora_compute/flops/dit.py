"""Closed-form MACs of the video DiT (reference_model/dit.py), one function per module type.

Notation: B batch, N = T*H*W video tokens on a (T, H, W) token grid, L text tokens, d hidden
size, h heads, m MLP width, p = pt*ph*pw patch volume, C latent channels.
"""

from __future__ import annotations

from dataclasses import replace

from sora_compute.flops.breakdown import Term, attention_term, linear_term, norm_term
from sora_compute.flops.ops import FVCORE, CountingConvention, Number, conv_elements, conv_macs
from sora_compute.specs import DiTSpec

__all__ = [
    "patch_embed",
    "timestep_embedder",
    "caption_projection",
    "adaln_modulation",
    "self_attention",
    "cross_attention",
    "qk_norm",
    "mlp",
    "token_refiner",
    "final_layer",
    "attention_groups",
    "dit_block",
    "dual_stream_block",
    "single_stream_block",
    "asymmetric_block",
    "attention_pool",
    "dit_terms",
]


def patch_embed(B: Number, N: Number, C: int, d: int, p: int) -> list[Term]:
    """Conv3d, kernel = stride = patch: B * N * C * d * p."""
    macs = conv_macs(B, N, C, d, p)
    return [Term("x_embedder.proj", "patch_embed", "conv3d", macs, None, conv_elements(B, N * p, N, C, d, p))]


def timestep_embedder(B: Number, c: int, f: int) -> list[Term]:
    """Sinusoidal features (f) -> Linear(f, c) -> SiLU -> Linear(c, c), c the conditioning width: B (f c + c^2)."""
    return [linear_term("t_embedder.mlp.0", "timestep_embed", B, f, c),
            linear_term("t_embedder.mlp.2", "timestep_embed", B, c, c)]


def caption_projection(B: Number, L: Number, text_dim: int, d: int, kind: str = "mlp") -> list[Term]:
    """Text features -> Linear(text_dim, d) -> GELU -> Linear(d, d): B L (text_dim d + d^2); or one Linear."""
    if kind == "linear":
        return [linear_term("y_embedder", "text_proj", B * L, text_dim, d)]
    return [linear_term("y_embedder.fc1", "text_proj", B * L, text_dim, d),
            linear_term("y_embedder.fc2", "text_proj", B * L, d, d)]


def adaln_modulation(prefix: str, B: Number, d: int, chunks: int, blocks: range | None = None,
                     cond: int | None = None) -> list[Term]:
    """SiLU -> Linear(c, chunks d) on the conditioning vector (width c, default d): B * c * chunks * d."""
    return [linear_term(f"{prefix}.adaLN_modulation.1", "adaln", B, cond or d, chunks * d, blocks)]


def qk_norm(path: str, q_rows: Number, k_rows: Number, d: int, conv: CountingConvention,
            blocks: range | None = None, op: str = "rms_norm") -> list[Term]:
    """RMSNorm (or affine LayerNorm) of queries and keys: q_rows and k_rows tokens of width d."""
    return [norm_term(f"{path}.norm_q.norm", op, d * q_rows, True, conv, blocks),
            norm_term(f"{path}.norm_k.norm", op, d * k_rows, True, conv, blocks)]


def qk_norm_op(spec: DiTSpec) -> str | None:
    """The operator of the spec's q/k norm: rms_norm, layer_norm (per-head LayerNorm) or None."""
    return {"none": None, "per_head_layernorm": "layer_norm"}.get(spec.qk_norm, "rms_norm")


def self_attention(prefix: str, groups: Number, seq: Number, d: int, h: int, blocks: range | None = None,
                   qk: str | None = None, conv: CountingConvention = FVCORE, rows: Number | None = None) -> list[Term]:
    """qkv projection 3 d^2 and output projection d^2 per token, core 2 seq^2 d per group (+ q/k RMSNorm).

    Full attention has one group of N (+L) tokens per sample; spatial attention T groups of H*W;
    temporal attention H*W groups of T. ``rows``: tokens through the projections when the core sees padded groups
    (Skiparse); default groups x seq.
    """
    tokens = groups * seq if rows is None else rows
    return [
        linear_term(f"{prefix}.attn.qkv", "attention_proj", tokens, d, 3 * d, blocks),
        *(qk_norm(f"{prefix}.attn", tokens, tokens, d, conv, blocks, qk) if qk else []),
        attention_term(f"{prefix}.attn.core", "attention", groups, h, seq, seq, d // h, blocks),
        linear_term(f"{prefix}.attn.proj", "attention_proj", tokens, d, d, blocks),
    ]


def cross_attention(prefix: str, B: Number, N: Number, L: Number, d: int, h: int, blocks: range | None = None,
                    qk: str | None = None, conv: CountingConvention = FVCORE) -> list[Term]:
    """Video queries (N) attend text keys (L): q d^2 N, kv 2 d^2 L, core 2 N L d, proj d^2 N (per sample)."""
    return [
        linear_term(f"{prefix}.cross_attn.q", "cross_attention", B * N, d, d, blocks),
        linear_term(f"{prefix}.cross_attn.kv", "cross_attention", B * L, d, 2 * d, blocks),
        *(qk_norm(f"{prefix}.cross_attn", B * N, B * L, d, conv, blocks, qk) if qk else []),
        attention_term(f"{prefix}.cross_attn.core", "cross_attention", B, h, N, L, d // h, blocks),
        linear_term(f"{prefix}.cross_attn.proj", "cross_attention", B * N, d, d, blocks),
    ]


def mlp(prefix: str, tokens: Number, d: int, m: int, blocks: range | None = None, act: str = "gelu_tanh",
        name: str = "mlp") -> list[Term]:
    """Linear(d, m) -> GELU -> Linear(m, d): 2 d m per token; SwiGLU w1, w3 (d -> m) and w2 (m -> d): 3 d m."""
    if act == "swiglu":
        return [linear_term(f"{prefix}.{name}.{w}", "mlp", tokens, *dims, blocks)
                for w, dims in (("w1", (d, m)), ("w3", (d, m)), ("w2", (m, d)))]
    return [linear_term(f"{prefix}.{name}.fc1", "mlp", tokens, d, m, blocks),
            linear_term(f"{prefix}.{name}.fc2", "mlp", tokens, m, d, blocks)]


def token_refiner(B: Number, L: Number, spec: DiTSpec, conv: CountingConvention = FVCORE) -> list[Term]:
    """HunyuanVideo's token refiner on L text tokens: timestep MLP and pooled-text MLP (per sample), input
    Linear(text_dim, d), then per block gate-only adaLN (2 d^2), affine LayerNorms, qkv 3 d^2, core 2 L^2 d,
    projection d^2 and a 4x SiLU MLP (8 d^2) per token. The mean over tokens costs no MACs."""
    d, t, f, h = spec.hidden_size, spec.text_dim, spec.frequency_embedding_size, spec.num_heads
    pre, blocks, rows = "y_embedder.blocks.{i}", range(spec.refiner_depth), B * L
    return [
        linear_term("y_embedder.t_embedder.mlp.0", "text_proj", B, f, d),
        linear_term("y_embedder.t_embedder.mlp.2", "text_proj", B, d, d),
        linear_term("y_embedder.c_embedder.fc1", "text_proj", B, t, d),
        linear_term("y_embedder.c_embedder.fc2", "text_proj", B, d, d),
        linear_term("y_embedder.input_embedder", "text_proj", rows, t, d),
        linear_term(f"{pre}.adaLN_modulation.1", "text_proj", B, d, 2 * d, blocks),
        norm_term(f"{pre}.norm1", "layer_norm", d * rows, True, conv, blocks),
        linear_term(f"{pre}.self_attn_qkv", "text_proj", rows, d, 3 * d, blocks),
        attention_term(f"{pre}.core", "text_proj", B, h, L, L, d // h, blocks),
        linear_term(f"{pre}.self_attn_proj", "text_proj", rows, d, d, blocks),
        norm_term(f"{pre}.norm2", "layer_norm", d * rows, True, conv, blocks),
        *[replace(term, kind="text_proj") for term in mlp(pre, rows, d, 4 * d, blocks)],
    ]


def _norm(path: str, tokens: Number, d: int, conv: CountingConvention, blocks: range | None = None,
          affine: bool = False) -> Term:
    """LayerNorm, without affine (adaLN supplies scale and shift): 4 per element under fvcore's rule; 5 with."""
    return norm_term(path, "layer_norm", d * tokens, affine, conv, blocks)


def final_layer(B: Number, N: Number, d: int, p: int, c_out: int, conv: CountingConvention,
                shared: bool = False, cond: int | None = None, affine: bool = False) -> list[Term]:
    """adaLN (2 c d; a table when shared), LayerNorm, Linear(d, p * c_out) per token."""
    return [
        *([] if shared else [linear_term("final_layer.adaLN_modulation.1", "final_layer", B, cond or d, 2 * d)]),
        _norm("final_layer.norm_final", B * N, d, conv, affine=affine),
        linear_term("final_layer.linear", "final_layer", B * N, d, p * c_out),
    ]


def attention_groups(spec: DiTSpec, grid: tuple[Number, Number, Number], L: Number, B: Number, mode: str
                     ) -> tuple[Number, Number]:
    """(independent sequences, tokens per sequence) of a block's self-attention: full attention sees one
    sequence of N (+ L text tokens when joint) per sample; spatial T sequences of H*W; temporal H*W of T; Skiparse
    k sequences of ceil(N / k)."""
    T, H, W = grid
    if mode == "spatial":
        return B * T, H * W
    if mode == "sparse":  # Skiparse: k interleaved sequences of ceil(N / k) tokens (padded)
        k = spec.sparse_ratio
        return B * k, -(-(T * H * W) // k)
    if mode == "temporal":
        return B * H * W, T
    return B, T * H * W + (L if spec.conditioning == "joint" else 0)


def dit_block(
    spec: DiTSpec, B: Number, grid: tuple[Number, Number, Number], L: Number, mode: str, blocks: range,
    conv: CountingConvention = FVCORE,
) -> list[Term]:
    """One adaLN-Zero block (applied to ``blocks``): modulation, norms, attention, cross-attention, MLP."""
    T, H, W = grid
    N = T * H * W
    d, h, pre = spec.hidden_size, spec.num_heads, "blocks.{i}"
    joint = spec.conditioning == "joint"
    tokens = B * (N + L) if joint else B * N  # rows through norms, attention projections and MLP
    groups, seq = attention_groups(spec, grid, L, B, mode)
    # In joint mode norm1 / norm2 run twice (text, then video): together they touch B (N + L) d elements.
    qk = qk_norm_op(spec)
    terms = (adaln_modulation(pre, B, d, spec.modulation_chunks, blocks, spec.cond)
             if spec.modulation == "per_block" else [])
    terms.append(_norm(f"{pre}.norm1", tokens, d, conv, blocks, spec.norm_affine))
    terms += self_attention(pre, groups, seq, d, h, blocks, qk, conv, tokens if mode == "sparse" else None)
    if spec.conditioning == "cross_attention":
        if spec.cross_attn_norm:
            terms.append(norm_term(f"{pre}.norm3", "layer_norm", d * B * N, True, conv, blocks))
        terms += cross_attention(pre, B, N, L + spec.cross_tokens_extra, d, h, blocks,
                                 qk if spec.cross_qk_norm else None, conv)
    terms.append(_norm(f"{pre}.norm2", tokens, d, conv, blocks, spec.norm_affine))
    terms += mlp(pre, tokens, d, spec.mlp_hidden, blocks, spec.mlp_act)
    return terms


def dual_stream_block(spec: DiTSpec, B: Number, N: Number, L: Number, blocks: range,
                      conv: CountingConvention = FVCORE) -> list[Term]:
    """MMDiT dual-stream block: per stream (video N rows, text L rows) adaLN 6 c d, norms, qkv, q/k norms, proj and
    MLP with the stream's own weights; one attention core over N + L tokens."""
    d, h, m, pre = spec.hidden_size, spec.num_heads, spec.mlp_hidden, "blocks.{i}"
    qk = qk_norm_op(spec)
    terms: list[Term] = []
    for stream, rows in (("img", B * N), ("txt", B * L)):
        terms += [
            linear_term(f"{pre}.{stream}_mod.1", "adaln", B, spec.cond, 6 * d, blocks),
            _norm(f"{pre}.{stream}_norm1", rows, d, conv, blocks, spec.norm_affine),
            linear_term(f"{pre}.{stream}_attn_qkv", "attention_proj", rows, d, 3 * d, blocks),
            *([norm_term(f"{pre}.{stream}_attn_norm_{t}.norm", qk, d * rows, True, conv, blocks) for t in "qk"]
              if qk else []),
            linear_term(f"{pre}.{stream}_attn_proj", "attention_proj", rows, d, d, blocks),
            _norm(f"{pre}.{stream}_norm2", rows, d, conv, blocks, spec.norm_affine),
            *mlp(pre, rows, d, m, blocks, spec.mlp_act, f"{stream}_mlp"),
        ]
    terms.append(attention_term(f"{pre}.core", "attention", B, h, N + L, N + L, d // h, blocks))
    return terms


def single_stream_block(spec: DiTSpec, B: Number, N: Number, L: Number, blocks: range,
                        conv: CountingConvention = FVCORE) -> list[Term]:
    """Single-stream block on N + L tokens: adaLN 3 c d, pre-norm, linear1 d -> 3d + m (qkv and MLP input),
    q/k norms, attention core, linear2 d + m -> d. The fused linears are listed as their attention and MLP parts."""
    d, h, m, pre = spec.hidden_size, spec.num_heads, spec.mlp_hidden, "blocks.{i}"
    rows = B * (N + L)
    qk = qk_norm_op(spec)
    return [
        linear_term(f"{pre}.modulation.1", "adaln", B, spec.cond, 3 * d, blocks),
        _norm(f"{pre}.pre_norm", rows, d, conv, blocks, spec.norm_affine),
        linear_term(f"{pre}.linear1", "attention_proj", rows, d, 3 * d, blocks),
        linear_term(f"{pre}.linear1", "mlp", rows, d, m, blocks),
        *(qk_norm(pre, rows, rows, d, conv, blocks, qk) if qk else []),
        attention_term(f"{pre}.core", "attention", B, h, N + L, N + L, d // h, blocks),
        linear_term(f"{pre}.linear2", "attention_proj", rows, d, d, blocks),
        linear_term(f"{pre}.linear2", "mlp", rows, m, d, blocks),
    ]


def asymmetric_block(spec: DiTSpec, B: Number, N: Number, L: Number, blocks: range, update_y: bool = True,
                     conv: CountingConvention = FVCORE) -> list[Term]:
    """Mochi block: modulation (4 c d; 4 c dy, or c dy when the text is not updated), parameter-free RMSNorms
    before and after attention and MLP, qkv from d (video) and dy (text) to 3d, q/k norms, one core over N + L,
    output projections d -> d and d -> dy, and per-stream MLPs (the text's only while it is updated)."""
    d, dy, h, c = spec.hidden_size, spec.text_width, spec.num_heads, spec.cond
    pre, qk = "blocks.{i}", qk_norm_op(spec)
    norms = (1, 2, 3, 4)
    terms = [linear_term(f"{pre}.mod_x", "adaln", B, c, 4 * d, blocks),
             linear_term(f"{pre}.mod_y", "adaln", B, c, 4 * dy if update_y else dy, blocks)]
    for s, rows, width in (("x", B * N, d), ("y", B * L, dy)):
        updated = s == "x" or update_y
        terms += [norm_term(f"{pre}.{s}_norm{i}", "rms_norm", width * rows, False, conv, blocks)
                  for i in (norms if updated else (1,))]
        terms.append(linear_term(f"{pre}.qkv_{s}", "attention_proj", rows, width, 3 * d, blocks))
        if qk:
            terms += [norm_term(f"{pre}.norm_{t}_{s}.norm", qk, d * rows, True, conv, blocks) for t in "qk"]
        if updated:
            terms.append(linear_term(f"{pre}.proj_{s}", "attention_proj", rows, d, width, blocks))
            m = spec.mlp_hidden if s == "x" else spec.text_mlp_hidden
            terms += mlp(pre, rows, width, m, blocks, spec.mlp_act, f"mlp_{s}")
    terms.append(attention_term(f"{pre}.core", "attention", B, h, N + L, N + L, d // h, blocks))
    return terms


def attention_pool(B: Number, L: Number, spec: DiTSpec) -> list[Term]:
    """Mochi's text pooling: kv over 1 + L tokens (the mean prepended), one query per sample, the core with
    ``text_pool_heads`` heads, projection to the conditioning width. The mean costs no MACs."""
    t, hp = spec.text_dim, spec.text_pool_heads
    return [linear_term("text_pool.to_kv", "text_proj", B * (L + 1), t, 2 * t),
            linear_term("text_pool.to_q", "text_proj", B, t, t),
            attention_term("text_pool.core", "text_proj", B, hp, 1, L + 1, t // hp),
            linear_term("text_pool.to_out", "text_proj", B, t, spec.cond)]


def dit_terms(
    spec: DiTSpec,
    grid: tuple[Number, Number, Number],
    text_tokens: Number = 0,
    batch: Number = 1,
    convention: CountingConvention = FVCORE,
) -> list[Term]:
    """All terms of one DiT forward on a (T, H, W) token grid with ``text_tokens`` text tokens."""
    T, H, W = grid
    N = T * H * W
    B, d = batch, spec.hidden_size
    L = text_tokens if spec.text_conditioned else 0
    terms = patch_embed(B, N, spec.in_channels, d, spec.patch_volume)
    terms += timestep_embedder(B, spec.cond, spec.frequency_embedding_size)
    if spec.modulation == "shared":  # adaLN-single: one projection of the timestep embedding for all blocks
        terms.append(linear_term("t_block.1", "adaln", B, d, spec.modulation_chunks * d))
    if spec.pooled_text_dim is not None:  # vector_in: MLP on the pooled text vector
        terms += [linear_term("vector_in.fc1", "timestep_embed", B, spec.pooled_text_dim, spec.cond),
                  linear_term("vector_in.fc2", "timestep_embed", B, spec.cond, spec.cond)]
    for name, used in (("guidance_in", spec.guidance_embed), ("fps_embedder", spec.fps_embed)):
        if used:
            terms += [linear_term(f"{name}.mlp.0", "timestep_embed", B, spec.frequency_embedding_size, spec.cond),
                      linear_term(f"{name}.mlp.2", "timestep_embed", B, spec.cond, spec.cond)]
    if spec.cond_channels is not None:
        terms.append(linear_term("cond_in", "patch_embed", B * N, spec.cond_channels, d))
    if spec.extra_text_dim is not None:
        terms.append(linear_term("extra_text_proj", "text_proj", B * spec.extra_text_tokens, spec.extra_text_dim, d))
    if spec.text_norm and spec.text_conditioned:
        terms.append(norm_term("text_norm", "layer_norm", spec.text_dim * B * L, False, convention))
    if spec.conditioning == "asymmetric":
        terms += attention_pool(B, L, spec)
        terms.append(linear_term("y_embedder", "text_proj", B * L, spec.text_dim, spec.text_width))
    elif spec.text_proj == "refiner" and spec.text_conditioned:
        terms += token_refiner(B, L, spec, convention)
    elif spec.text_conditioned:
        terms += caption_projection(B, L, spec.text_dim, d, spec.text_proj)
    if spec.conditioning == "asymmetric":
        if spec.depth > 1:
            terms += asymmetric_block(spec, B, N, L, range(spec.depth - 1), True, convention)
        terms += asymmetric_block(spec, B, N, L, range(spec.depth - 1, spec.depth), False, convention)
    elif spec.conditioning == "dual_stream":
        terms += dual_stream_block(spec, B, N, L, range(spec.depth), convention)
        if spec.single_blocks:
            terms += single_stream_block(spec, B, N, L, range(spec.depth, spec.num_blocks), convention)
    elif spec.attention_layout == "factorized":
        terms += dit_block(spec, B, grid, L, "spatial", range(0, spec.depth, 2), convention)
        if spec.depth > 1:
            terms += dit_block(spec, B, grid, L, "temporal", range(1, spec.depth, 2), convention)
    else:
        sparse = spec.sparse_range
        for dense in (range(0, sparse.start), range(sparse.stop, spec.depth)) if len(sparse) else (range(spec.depth),):
            if len(dense):
                terms += dit_block(spec, B, grid, L, "full", dense, convention)
        if len(sparse):
            terms += dit_block(spec, B, grid, L, "sparse", sparse, convention)
    if spec.final_prenorm:  # over text and video tokens in joint mode (CogVideoX)
        rows = B * (N + L) if spec.conditioning in ("joint", "dual_stream") else B * N
        terms.append(_norm("final_prenorm", rows, d, convention, affine=True))
    terms += final_layer(B, N, d, spec.patch_volume, spec.out_channels, convention, spec.modulation == "shared",
                         spec.cond, spec.final_affine)
    return terms
