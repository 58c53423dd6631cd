"""The video DiT's ledger (reference_model/dit.py): embedders, adaLN blocks, final layer.

Notation: B batch, N = T*H*W video tokens on a (T, H, W) token grid, L text tokens, d hidden size, h heads,
m MLP width, p = pt*ph*pw patch volume, C latent channels, c conditioning width. MACs are per op instance
(fvcore's rules, ``ledger/formulas.py``); weights include biases. The MMDiT and Mochi blocks are in
``ledger/mmdit.py``; ``DiTSpec.block_schedule()`` says which block type runs at which depth.
"""

from __future__ import annotations

from dataclasses import dataclass

from sora_compute.ledger.formulas import Number, conv_elements, conv_macs
from sora_compute.ledger.ops import Op, attention_op, elementwise_op, linear_op, norm_op, weight_op
from sora_compute.ledger.registry import lookup, register
from sora_compute.specs import DiTSpec

__all__ = [
    "DiTShape",
    "dit_ledger",
    "attention_groups",
    "qk_norm_op",
    "self_attention",
    "cross_attention",
    "mlp",
    "qk_norms",
    "layer_norm",
]


@dataclass(frozen=True)
class DiTShape:
    """What one DiT forward sees: batch B, token grid (T, H, W) and L text tokens (0 when not text-conditioned)."""

    B: Number
    T: Number
    H: Number
    W: Number
    L: Number = 0

    @property
    def N(self) -> Number:  # noqa: N802  (paper notation: N video tokens)
        return self.T * self.H * self.W


def qk_norm_op(spec: DiTSpec) -> str | None:
    """The operator of the spec's q/k norm: rms_norm, layer_norm (per-head LayerNorm) or None."""
    return {"none": None, "per_head_layernorm": "layer_norm"}.get(spec.qk_norm, "rms_norm")


def qk_norms(spec: DiTSpec, path: str, q_rows: Number, k_rows: Number, blocks: range | None = None,
             names: tuple[str, str] = ("norm_q.norm", "norm_k.norm")) -> list[Op]:
    """RMSNorm (or affine per-head LayerNorm) of queries and keys, q_rows and k_rows tokens of width d; weights per
    norm: d (across heads), d/h (per head) or 2 d/h (per-head LayerNorm)."""
    op = qk_norm_op(spec)
    if op is None:
        return []
    d = spec.hidden_size
    width = d if spec.qk_norm == "across_heads" else spec.head_dim
    return [norm_op(f"{path}.{name}", op, d * rows, True, width, blocks)
            for name, rows in zip(names, (q_rows, k_rows), strict=True)]


def layer_norm(path: str, tokens: Number, d: int, blocks: range | None = None, affine: bool = False) -> Op:
    """LayerNorm over d channels of ``tokens`` rows, without affine (adaLN supplies scale and shift) or with."""
    return norm_op(path, "layer_norm", d * tokens, affine, d, blocks)


def self_attention(spec: DiTSpec, prefix: str, groups: Number, seq: Number, blocks: range | None = None,
                   rows: Number | None = None) -> list[Op]:
    """qkv projection 3 d^2 and output projection d^2 per token, core 2 seq^2 d per group (+ q/k norms).

    Full attention has one group of N (+L) tokens per sample; spatial attention T groups of H*W; temporal attention
    H*W groups of T. ``rows``: tokens through the projections when the core sees padded groups (Skiparse);
    default groups x seq."""
    d, h = spec.hidden_size, spec.num_heads
    tokens = groups * seq if rows is None else rows
    return [
        linear_op(f"{prefix}.attn.qkv", "attention_proj", tokens, d, 3 * d, blocks, spec.qkv_bias),
        *qk_norms(spec, f"{prefix}.attn", tokens, tokens, blocks),
        attention_op(f"{prefix}.attn.core", "attention", groups, h, seq, seq, d // h, blocks),
        linear_op(f"{prefix}.attn.proj", "attention_proj", tokens, d, d, blocks, spec.out_bias),
    ]


def cross_attention(spec: DiTSpec, prefix: str, B: Number, N: Number, L: Number, blocks: range | None = None
                    ) -> list[Op]:
    """Video queries (N) attend text keys (L): q d^2 N, kv 2 d^2 L, core 2 N L d, proj d^2 N (per sample)."""
    d, h, b = spec.hidden_size, spec.num_heads, spec.qkv_bias
    return [
        linear_op(f"{prefix}.cross_attn.q", "cross_attention", B * N, d, d, blocks, b),
        linear_op(f"{prefix}.cross_attn.kv", "cross_attention", B * L, d, 2 * d, blocks, b),
        *(qk_norms(spec, f"{prefix}.cross_attn", B * N, B * L, blocks) if spec.cross_qk_norm else []),
        attention_op(f"{prefix}.cross_attn.core", "cross_attention", B, h, N, L, d // h, blocks),
        linear_op(f"{prefix}.cross_attn.proj", "cross_attention", B * N, d, d, blocks, spec.out_bias),
        elementwise_op(f"{prefix}.cross_attn.residual", "residual", 2 * B * N * d, B * N * d, blocks,
                       what="x + cross_attn(x)"),
    ]


def mlp(spec: DiTSpec, prefix: str, tokens: Number, d: int, m: int, blocks: range | None = None,
        name: str = "mlp", act: str | None = None, bias: bool | None = None) -> list[Op]:
    """Linear(d, m) -> GELU -> Linear(m, d): 2 d m per token; SwiGLU w1, w3 (d -> m), SiLU(w1) * w3, w2 (m -> d):
    3 d m. The activation reads and writes the hidden tensor(s) with no MACs."""
    act = spec.mlp_act if act is None else act
    bias = spec.mlp_bias if bias is None else bias
    if act == "swiglu":
        return [linear_op(f"{prefix}.{name}.w1", "mlp", tokens, d, m, blocks, bias),
                linear_op(f"{prefix}.{name}.w3", "mlp", tokens, d, m, blocks, bias),
                elementwise_op(f"{prefix}.{name}.act", "activation", 3 * tokens * m, 2 * tokens * m, blocks,
                               what="SiLU(w1 x) * w3 x"),
                linear_op(f"{prefix}.{name}.w2", "mlp", tokens, m, d, blocks, bias)]
    return [linear_op(f"{prefix}.{name}.fc1", "mlp", tokens, d, m, blocks, bias),
            elementwise_op(f"{prefix}.{name}.act", "activation", tokens * m, tokens * m, blocks, what=act),
            linear_op(f"{prefix}.{name}.fc2", "mlp", tokens, m, d, blocks, bias)]


def modulate(path: str, B: Number, rows: Number, d: int, blocks: range | None = None) -> Op:
    """x * (1 + scale) + shift on ``rows`` tokens, scale and shift per sample."""
    return elementwise_op(path, "modulation", rows * d + 2 * B * d, rows * d, blocks, what="x * (1 + scale) + shift")


def gated_residual(path: str, B: Number, rows: Number, d: int, blocks: range | None = None) -> Op:
    """x + gate * f(x) on ``rows`` tokens, the gate per sample."""
    return elementwise_op(path, "residual", 2 * rows * d + B * d, rows * d, blocks, what="x + gate * f(x)")


def silu(path: str, B: Number, c: int, blocks: range | None = None) -> Op:
    """SiLU of the conditioning vector before an adaLN projection."""
    return elementwise_op(path, "activation", B * c, B * c, blocks, what="SiLU(c)")


def attention_groups(spec: DiTSpec, shape: DiTShape, mode: str) -> tuple[Number, Number]:
    """(independent sequences, tokens per sequence) of a block's self-attention: full attention sees one
    sequence of N (+ L text tokens when joint) per sample; spatial T sequences of H*W; temporal H*W of T; Skiparse
    k sequences of ceil(N / k)."""
    B, T, H, W = shape.B, shape.T, shape.H, shape.W
    if mode == "spatial":
        return B * T, H * W
    if mode == "sparse":  # Skiparse: k interleaved sequences of ceil(N / k) tokens (padded)
        k = spec.sparse_ratio
        return B * k, -(-(T * H * W) // k)
    if mode == "temporal":
        return B * H * W, T
    return B, T * H * W + (shape.L if spec.conditioning == "joint" else 0)


@register("dit_block", "full", "spatial", "temporal", "sparse")
def adaln_block(spec: DiTSpec, shape: DiTShape, mode: str, blocks: range) -> list[Op]:
    """One adaLN-Zero block (applied to ``blocks``): modulation, norms, attention, cross-attention, MLP.

    Joint blocks (CogVideoX) run text and video through the same norms, attention and MLP: B (N + L) rows."""
    B, N, L = shape.B, shape.N, shape.L
    d, c, chunks, pre = spec.hidden_size, spec.cond, spec.modulation_chunks, "blocks.{i}"
    rows = B * (N + L) if spec.conditioning == "joint" else B * N  # rows through norms, attention projections, MLP
    groups, seq = attention_groups(spec, shape, mode)
    if spec.modulation == "per_block":
        ops = [silu(f"{pre}.adaLN_modulation.0", B, c, blocks),
               linear_op(f"{pre}.adaLN_modulation.1", "adaln", B, c, chunks * d, blocks)]
    else:  # adaLN-single: the block adds its chunks x d table to the shared projection
        ops = [elementwise_op(f"{pre}.scale_shift_table", "modulation", B * chunks * d + chunks * d, B * chunks * d,
                              blocks, weights=chunks * d, what="shared projection + table")]
    ops += [layer_norm(f"{pre}.norm1", rows, d, blocks, spec.norm_affine),
            modulate(f"{pre}.modulate_attn", B, rows, d, blocks),
            *self_attention(spec, pre, groups, seq, blocks, rows if mode == "sparse" else None),
            gated_residual(f"{pre}.gate_attn", B, rows, d, blocks)]
    if spec.conditioning == "cross_attention":
        if spec.cross_attn_norm:
            ops.append(norm_op(f"{pre}.norm3", "layer_norm", d * B * N, True, d, blocks))
        ops += cross_attention(spec, pre, B, N, L + spec.cross_tokens_extra, blocks)
    ops += [layer_norm(f"{pre}.norm2", rows, d, blocks, spec.norm_affine),
            modulate(f"{pre}.modulate_mlp", B, rows, d, blocks),
            *mlp(spec, pre, rows, d, spec.mlp_hidden, blocks),
            gated_residual(f"{pre}.gate_mlp", B, rows, d, blocks)]
    return ops


def _embedder(name: str, B: Number, f: int, c: int, kind: str = "timestep_embed") -> list[Op]:
    """Sinusoidal features (f) -> Linear(f, c) -> SiLU -> Linear(c, c), c the conditioning width: B (f c + c^2)."""
    return [linear_op(f"{name}.mlp.0", kind, B, f, c), linear_op(f"{name}.mlp.2", kind, B, c, c)]


def embedders(spec: DiTSpec, shape: DiTShape) -> list[Op]:
    """Patch embedding, timestep / guidance / fps / pooled-text embedders, class or text projections."""
    B, N, L = shape.B, shape.N, shape.L
    d, c, f = spec.hidden_size, spec.cond, spec.frequency_embedding_size
    C, p = spec.in_channels, spec.patch_volume
    ops = [Op("x_embedder.proj", "patch_embed", "conv3d", conv_macs(B, N, C, d, p),  # kernel = stride = patch
              None, conv_elements(B, N * p, N, C, d, p), C * d * p + d, {"tokens": B * N, "c_in": C, "c_out": d,
                                                                         "kernel_volume": p})]
    ops += _embedder("t_embedder", B, f, c)
    if spec.modulation == "shared":  # adaLN-single: one projection of the timestep embedding for all blocks
        ops += [silu("t_block.0", B, d), linear_op("t_block.1", "adaln", B, d, spec.modulation_chunks * d)]
    if spec.pooled_text_dim is not None:  # vector_in: MLP on the pooled text vector
        ops += [linear_op("vector_in.fc1", "timestep_embed", B, spec.pooled_text_dim, c),
                linear_op("vector_in.fc2", "timestep_embed", B, c, c)]
    for name, used in (("guidance_in", spec.guidance_embed), ("fps_embedder", spec.fps_embed)):
        if used:
            ops += _embedder(name, B, f, c)
    if spec.cond_channels is not None:
        ops.append(linear_op("cond_in", "patch_embed", B * N, spec.cond_channels, d))
    if spec.extra_text_dim is not None:
        ops.append(linear_op("extra_text_proj", "text_proj", B * spec.extra_text_tokens, spec.extra_text_dim, d))
    if spec.text_norm and spec.text_conditioned:
        ops.append(norm_op("text_norm", "layer_norm", spec.text_dim * B * L, False, spec.text_dim))
    if spec.conditioning == "class":
        rows = spec.num_classes + (1 if spec.class_dropout_prob > 0 else 0)  # + the null label for CFG
        ops.append(weight_op("y_embedder.embedding_table", "class_embed", rows * c, "embedding", read=B * c))
    elif spec.conditioning == "asymmetric":
        ops += lookup("dit_text", "attention_pool")(spec, shape)
        ops.append(linear_op("y_embedder", "text_proj", B * L, spec.text_dim, spec.text_width))
    elif spec.text_proj == "refiner":
        ops += lookup("dit_text", "refiner")(spec, shape)
    elif spec.text_proj == "linear":
        ops.append(linear_op("y_embedder", "text_proj", B * L, spec.text_dim, d))
    else:  # caption projection: Linear(text_dim, d) -> GELU -> Linear(d, d)
        ops += [linear_op("y_embedder.fc1", "text_proj", B * L, spec.text_dim, d),
                linear_op("y_embedder.fc2", "text_proj", B * L, d, d)]
    return ops


def final_layer(spec: DiTSpec, shape: DiTShape) -> list[Op]:
    """Optional pre-norm over all tokens (CogVideoX), adaLN (2 c d; a 2 x d table when shared), LayerNorm,
    Linear(d, p * c_out) per token."""
    B, N, L = shape.B, shape.N, shape.L
    d, c = spec.hidden_size, spec.cond
    ops: list[Op] = []
    if spec.final_prenorm:  # over text and video tokens in joint mode (CogVideoX)
        rows = B * (N + L) if spec.conditioning in ("joint", "dual_stream") else B * N
        ops.append(layer_norm("final_prenorm", rows, d, affine=True))
    if spec.modulation == "shared":
        ops.append(elementwise_op("final_layer.scale_shift_table", "modulation", B * d + 2 * d, 2 * B * d,
                                  weights=2 * d, what="timestep embedding + table"))
    else:
        ops += [silu("final_layer.adaLN_modulation.0", B, c),
                linear_op("final_layer.adaLN_modulation.1", "final_layer", B, c, 2 * d)]
    ops += [layer_norm("final_layer.norm_final", B * N, d, affine=spec.final_affine),
            modulate("final_layer.modulate", B, B * N, d),
            linear_op("final_layer.linear", "final_layer", B * N, d, spec.patch_volume * spec.out_channels)]
    return ops


def dit_ledger(spec: DiTSpec, shape: DiTShape) -> list[Op]:
    """The ops of one DiT forward (one denoising step): embedders, every block run of ``spec.block_schedule()``,
    the final layer."""
    if not spec.text_conditioned:
        shape = DiTShape(shape.B, shape.T, shape.H, shape.W, 0)
    ops = embedders(spec, shape)
    for mode, blocks in spec.block_schedule():
        ops += lookup("dit_block", mode)(spec, shape, mode, blocks)
    return ops + final_layer(spec, shape)
