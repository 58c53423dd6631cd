"""The video DiT's ledger (reference_model/dit.py): embedders, adaLN blocks, final layer.

Notation: B batch, N = T*H*W video tokens on a (T, H, W) token grid, L text tokens, d hidden size, h heads,
m MLP width, p = pt*ph*pw patch volume, C latent channels, c conditioning width. MACs are per op instance
(fvcore's rules, ``ledger/formulas.py``); weights include biases. The MMDiT and Mochi blocks are in
``ledger/mmdit.py``; ``DiTSpec.block_schedule()`` says which block type runs at which depth.
"""

from __future__ import annotations

from dataclasses import dataclass

from sora_compute.ledger.formulas import Number, conv_elements, conv_macs
from sora_compute.ledger.ops import (
    Flow,
    Op,
    Saved,
    attention_op,
    elementwise_op,
    flow,
    keep,
    linear_op,
    norm_op,
    revise,
    weight_op,
)
from sora_compute.ledger.registry import lookup, register
from sora_compute.ledger.rope import rope_table, rotate, rotated_saved, table_rows, uses_rope
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
    "stats",
]


def stats(rows: Number, per_row: int = 2) -> Saved:
    """A norm's fp32 statistics: mean and rstd (2) or rstd (1) per normalised row."""
    return Saved("norm statistics", per_row * rows, "stat")


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
             names: tuple[str, str] = ("norm_q.norm", "norm_k.norm"), views: bool = False,
             reads: tuple[str, str] = ("qkv", "qkv"), rope: bool = False) -> list[Op]:
    """RMSNorm (or affine per-head LayerNorm) of queries and keys, q_rows and k_rows tokens of width d; weights per
    norm: d (across heads), d/h (per head) or 2 d/h (per-head LayerNorm).

    Saved per row: RMSNorm (composite) keeps x / rms(x) and its weighted output (2 d) and rstd per row (across
    heads) or per row and head; the fused per-head LayerNorm keeps its output (d) and mean and rstd per row and
    head. Inputs are views of qkv. With ``views`` (MMDiT and Mochi streams, measured and fitted): the norms read
    views of the stream's qkv, which is then kept (3 d per row, on the q norm), plus one output (RMSNorm) and the
    statistics. With ``rope`` (without ``views``) the core keeps the rotated q and k instead of the norms' outputs."""
    op = qk_norm_op(spec)
    if op is None:
        return []
    d, h = spec.hidden_size, spec.num_heads
    width = d if spec.qk_norm == "across_heads" else spec.head_dim
    if views:
        kept, per_row = (0, 2 * h) if spec.qk_norm == "per_head_layernorm" else (
            1, 1 if spec.qk_norm == "across_heads" else h)
    else:
        kept, per_row = {"across_heads": (2, 1), "per_head": (2, h), "per_head_layernorm": (1, 2 * h)}[spec.qk_norm]
        kept -= rope  # the output was the core's input
    ops = []
    # dataflow: each norm reads its slice of ``reads`` and makes a normalised copy; the composite RMSNorm holds
    # x / rms(x) beside its weighted output for a moment (scratch); LlamaRMSNorm (``qk_norm_fp32``) holds x in fp32
    # beside x / rms(x) in fp32 (16-bit activations; in an fp32 run x itself is the first: one n over)
    scratch = 1 if op == "rms_norm" else 0
    for i, (name, rows) in enumerate(zip(names, (q_rows, k_rows), strict=True)):
        extra = (Saved("q/k norms: stream qkv kept", 3 * d * rows),) if views and i == 0 else ()
        norm = norm_op(f"{path}.{name}", op, d * rows, True, width, blocks)
        if spec.qk_norm_fp32:  # LlamaRMSNorm: its eager steps in fp32 (data/eager_ops.yaml, when: fp32_composite);
            # elementwise ATen ops, which fvcore counts as nothing (no aten::rms_norm call): no MACs
            norm = revise(norm, macs=0 * norm.macs, dims={**norm.dims, "fp32_composite": 1})
        ops.append(flow(keep(norm, *extra,
                             Saved("q/k norms (outputs, statistics)", kept * d * rows),
                             Saved("q/k norms (outputs, statistics)", per_row * rows, "stat")),
                        reads[i], f"{path}.{name}", d * rows, scratch=scratch * d * rows * (1 + spec.qk_norm_fp32),
                        scratch_dtype="stat" if spec.qk_norm_fp32 else None))
    return ops


def layer_norm(path: str, tokens: Number, d: int, blocks: range | None = None, affine: bool = False) -> Op:
    """LayerNorm over d channels of ``tokens`` rows, without affine (adaLN supplies scale and shift) or with."""
    return norm_op(path, "layer_norm", d * tokens, affine, d, blocks)


def self_attention(spec: DiTSpec, prefix: str, groups: Number, seq: Number, blocks: range | None = None,
                   rows: Number | None = None, x: str = "attn_in", copy_in: bool = False, bias_scratch: bool = False,
                   rope: tuple[Number, Number | None] | None = None, math: Number | None = None) -> list[Op]:
    """qkv projection 3 d^2 and output projection d^2 per token, core 2 seq^2 d per group (+ q/k norms).

    Full attention has one group of N (+L) tokens per sample; spatial attention T groups of H*W; temporal attention
    H*W groups of T. ``rows``: tokens through the projections when the core sees padded groups (Skiparse);
    default groups x seq.

    Dataflow (reading ``x``, making ``{prefix}.attn.out``): qkv, the normalised q and k and the core's output stay
    referenced until the projection has run (locals of the module's forward), as does the input. ``copy_in``: the
    input is first copied into the attention's token order (temporal blocks at batch > 1); ``bias_scratch``: the
    projection of a strided input adds its bias out of place (temporal blocks at batch 1 with a qkv bias: the
    unbiased product lives beside the output). A materialised core holds the scores and their scaled (or softmaxed)
    copy at once, beside contiguous copies of strided q and k with several heads (scratch of the core; see
    evaluate/liveness.py, which reads the kernel from the op's dims). ``rope`` = (table rows, spared rows): q and k
    are rotated after their norms (``ledger/rope.py``), sparing that many leading text rows (None: none); the rotated
    q and k replace the norms' outputs as the core's inputs and the locals held to the end. ``math`` (1, or 0/1 per
    shape): the code runs this core unfused whatever the plan's kernel (scores materialised, softmax in fp32; the
    core's dims say ``math``, which the time, liveness and saved-tensor evaluators read)."""
    d, h = spec.hidden_size, spec.num_heads
    tokens = groups * seq if rows is None else rows
    a = f"{prefix}.attn"
    src = f"{a}.input_copy" if copy_in else x
    ops: list[Op] = []
    if copy_in:
        ops.append(flow(elementwise_op(src, "copy", tokens * d, tokens * d, blocks, what="token-order copy"),
                        x, src, tokens * d))
    ops.append(flow(keep(linear_op(f"{a}.qkv", "attention_proj", tokens, d, 3 * d, blocks, spec.qkv_bias),
                         Saved("qkv", 3 * tokens * d)), src, "qkv", 3 * tokens * d,
                    scratch=3 * tokens * d if bias_scratch else 0))
    # (Skiparse keeps what it kept without RoPE: the rotated q and k take the norms' outputs' place in its copies)
    norms = qk_norms(spec, a, tokens, tokens, blocks, rope=rope is not None and rows is None)
    ops += norms
    qk = tuple(op.path for op in norms) or ("qkv",)
    core = keep(attention_op(f"{a}.core", "attention", groups, h, seq, seq, d // h, blocks),
                Saved("attention output", tokens * d))
    if math is not None:
        core = revise(core, dims={**core.dims, "math": math})
    if rope is not None:
        tab, spared = rope
        q_in, k_in = (qk * 2)[:2]
        ops += [*rotate(f"{a}.rope_q", tokens, d, tab, spec.head_dim, blocks, q_in, spared, form=spec.rope_form),
                *rotate(f"{a}.rope_k", tokens, d, tab, spec.head_dim, blocks, k_in, spared, hold=(q_in,),
                        form=spec.rope_form)]
        qk = (f"{a}.rope_q", f"{a}.rope_k")
        if rows is None:  # Skiparse cores keep their split copies instead (below)
            core = keep(core, rotated_saved(tokens, d, bool(norms)))
        if spared is not None:  # concatenated: contiguous, as a materialised core wants them; so is a fused
            # core's output, which the projection then reads through a copy regrouped by token (several heads)
            core = revise(core, dims={**core.dims, "contiguous": 1})
            core = keep(core, Saved("RoPE: the core's own output (its input copied by token)", tokens * d,
                                    when="fused")) if h > 1 else core
    held: tuple[str, ...] = (a + ".core", "qkv", *(qk if rope is not None else (op.path for op in norms)), src, x)
    if rows is not None:  # Skiparse: padded copies of q, k, v; the rearranged output (fused kernel: not kept at
        # batch 1 without padding, where it is a view); contiguous copies of normalised q, k (fitted to measurement:
        # within ~5% of a block, exact without padding at batch 1)
        what = "Skiparse: padded and rearranged copies"
        pad = groups * seq - rows
        batch1 = groups == spec.sparse_ratio  # B k groups (ints or arrays)
        copied = 1 - batch1 * (pad == 0)  # 0 at batch 1 without padding
        # a materialised core batches the split q, k as they are (no contiguous copies, liveness.attention_scratch)
        # at batch > 1 (merging B with k copies them contiguous) and at batch 1 without padding (the pad is a copy
        # in the token-major order of q, k: groups and heads merge as a view); at batch 1 with padding they are views
        # of a head-major copy that the core copies again (measured with the live-tensor tracker)
        core = keep(revise(core, dims={**core.dims, "contiguous": 1 - batch1 * (pad > 0)}),
                    Saved(what, 3 * pad * d), Saved(what, copied * rows * d, when="fused"),
                    *((Saved(what, rows * d),) if spec.qk_norm != "none" else ()))
        split = f"{a}.skiparse_split"
        ops += [flow(elementwise_op(split, "copy", 3 * tokens * d, 3 * groups * seq * d, blocks,
                                    what="pad and split q, k, v into k sequences"), (*qk, "qkv"), split,
                     3 * groups * seq * d),
                flow(core, split, f"{a}.core_split", groups * seq * d),
                flow(elementwise_op(f"{a}.skiparse_merge", "copy", groups * seq * d, tokens * d, blocks,
                                    what="merge the k sequences"), f"{a}.core_split", a + ".core", tokens * d)]
    else:
        ops.append(flow(core, (*qk, "qkv"), a + ".core", tokens * d))
    ops.append(flow(keep(linear_op(f"{a}.proj", "attention_proj", tokens, d, d, blocks, spec.out_bias),
                         Saved("attention projection output (gate)", tokens * d)), held, f"{a}.out", tokens * d))
    return ops


def cross_attention(spec: DiTSpec, prefix: str, B: Number, N: Number, L: Number, blocks: range | None = None,
                    x: str = "cross_in", y: str = "y", residual: str = "x", out: str = "cross_out") -> list[Op]:
    """Video queries (N) attend text keys (L): q d^2 N, kv 2 d^2 L, core 2 N L d, proj d^2 N (per sample).

    Dataflow (reading ``x`` and the text ``y``, adding the projection to ``residual`` as ``out``): q, kv (or the
    normalised q and k) and the core's output stay referenced until the projection has run."""
    d, h, b = spec.hidden_size, spec.num_heads, spec.qkv_bias
    what = "cross-attention: q, kv, output, residual"
    c = f"{prefix}.cross_attn"
    norms = qk_norms(spec, c, B * N, B * L, blocks, reads=("cross_q", "cross_kv")) if spec.cross_qk_norm else []
    q, k = (norms[0].path, norms[1].path) if norms else ("cross_q", "cross_kv")
    return [
        flow(keep(linear_op(f"{c}.q", "cross_attention", B * N, d, d, blocks, b), Saved(what, B * N * d)), x,
             "cross_q", B * N * d),
        flow(keep(linear_op(f"{c}.kv", "cross_attention", B * L, d, 2 * d, blocks, b), Saved(what, 2 * B * L * d)),
             y, "cross_kv", 2 * B * L * d),
        *norms,
        flow(keep(attention_op(f"{c}.core", "cross_attention", B, h, N, L, d // h, blocks), Saved(what, B * N * d)),
             (q, k, "cross_kv"), f"{c}.core", B * N * d),
        flow(keep(linear_op(f"{c}.proj", "cross_attention", B * N, d, d, blocks, spec.out_bias)),
             (f"{c}.core", q, "cross_kv", x), f"{c}.out", B * N * d),
        flow(keep(elementwise_op(f"{c}.residual", "residual", 2 * B * N * d, B * N * d, blocks,
                                 what="x + cross_attn(x)"), Saved(what, B * N * d)),
             (residual, f"{c}.out"), out, B * N * d),
    ]


def mlp(spec: DiTSpec, prefix: str, tokens: Number, d: int, m: int, blocks: range | None = None,
        name: str = "mlp", act: str | None = None, bias: bool | None = None, x: str = "mlp_in") -> list[Op]:
    """Linear(d, m) -> GELU -> Linear(m, d): 2 d m per token; SwiGLU w1, w3 (d -> m), SiLU(w1 x) * w3 x, w2 (m -> d):
    3 d m. The activations read and write the hidden tensor(s) with no MACs.

    Dataflow (reading ``x``, making ``{prefix}.{name}.out``): GELU's input is freed once GELU has run; SwiGLU's
    SiLU(w1 x) is formed before w3 runs, so SiLU's output, w3's output and their product are live together; the
    input stays referenced until the module returns."""
    act = spec.mlp_act if act is None else act
    bias = spec.mlp_bias if bias is None else bias
    hidden = Saved("MLP hidden (fc1 out, GELU out; SwiGLU: w1, w3, SiLU, product)", tokens * m)
    out = Saved("MLP output (gate)", tokens * d)
    t = f"{prefix}.{name}"
    if act == "swiglu":  # keeps w1's and w3's outputs, SiLU's output and the gated product
        return [flow(keep(linear_op(f"{t}.w1", "mlp", tokens, d, m, blocks, bias), hidden), x, f"{t}.w1", tokens * m),
                flow(keep(elementwise_op(f"{t}.silu", "activation", tokens * m, tokens * m, blocks, what="SiLU"),
                          hidden), f"{t}.w1", f"{t}.silu", tokens * m),
                flow(keep(linear_op(f"{t}.w3", "mlp", tokens, d, m, blocks, bias), hidden), x, f"{t}.w3", tokens * m),
                flow(keep(elementwise_op(f"{t}.gate", "activation", 2 * tokens * m, tokens * m, blocks,
                                         what="SiLU(w1 x) * w3 x"), hidden), (f"{t}.silu", f"{t}.w3"), f"{t}.gate",
                     tokens * m),
                flow(keep(linear_op(f"{t}.w2", "mlp", tokens, m, d, blocks, bias), out), (f"{t}.gate", x), f"{t}.out",
                     tokens * d)]
    return [flow(keep(linear_op(f"{t}.fc1", "mlp", tokens, d, m, blocks, bias), hidden), x, f"{t}.fc1", tokens * m),
            flow(keep(elementwise_op(f"{t}.act", "activation", tokens * m, tokens * m, blocks, what=act), hidden),
                 f"{t}.fc1", f"{t}.act", tokens * m),
            flow(keep(linear_op(f"{t}.fc2", "mlp", tokens, m, d, blocks, bias), out), (f"{t}.act", x), f"{t}.out",
                 tokens * d)]


def modulate(path: str, B: Number, rows: Number, d: int, blocks: range | None = None, calls: int = 1,
             x: str | None = None, out: str = "") -> Op:
    """x * (1 + scale) + shift on ``rows`` tokens, scale and shift per sample; keeps the modulated input and
    1 + scale (per sample, once per call: joint blocks modulate text and video separately). Dataflow (when ``x``
    is named): reads ``x`` and the modulation ``mods``; x * (1 + scale) lives beside the output for a moment."""
    op = keep(elementwise_op(path, "modulation", rows * d + 2 * B * d, rows * d, blocks,
                             what="x * (1 + scale) + shift"),
              Saved("modulated input", rows * d), Saved("adaLN: SiLU out, modulation, 1 + scale", calls * B * d))
    return op if x is None else flow(op, (x, "mods"), out, rows * d, scratch=rows * d)


def gated_residual(path: str, B: Number, rows: Number, d: int, blocks: range | None = None, kept: bool = True,
                   reads: tuple[str, ...] | None = None, out: str = "") -> Op:
    """x + gate * f(x) on ``rows`` tokens, the gate per sample. Inside a block the sum is kept (the next norm's
    input); a block's last residual is its output, kept as the next block's input (``kept=False`` here).
    Dataflow (when ``reads`` = (x, f(x), tensors held until here) is given): f(x) is freed once gate * f(x) is
    formed, before the sum."""
    op = elementwise_op(path, "residual", 2 * rows * d + B * d, rows * d, blocks, what="x + gate * f(x)")
    op = keep(op, Saved("residual", rows * d)) if kept else op
    return op if reads is None else flow(op, (*reads, "mods"), out, rows * d)


def silu(path: str, B: Number, c: int, blocks: range | None = None, x: str | None = None, out: str = "") -> Op:
    """SiLU of the conditioning vector before an adaLN projection (its output kept)."""
    op = keep(elementwise_op(path, "activation", B * c, B * c, blocks, what="SiLU(c)"),
              Saved("adaLN: SiLU out, modulation, 1 + scale", B * c))
    return op if x is None else flow(op, x, out, B * c)


def block_norm(path: str, rows: Number, d: int, blocks: range | None, affine: bool, block_input: bool = False,
               x: str | None = None) -> Op:
    """A block's LayerNorm: keeps its output and statistics, and its input when that is the block's input.
    Dataflow (when ``x`` is named): reads ``x``, makes ``path``."""
    extra = (Saved("block input", rows * d, block_input=True),) if block_input else ()
    op = keep(layer_norm(path, rows, d, blocks, affine), *extra, Saved("norm output", rows * d), stats(rows))
    return op if x is None else flow(op, x, path, rows * d)


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

    Joint blocks (CogVideoX) run text and video through the same norms, attention and MLP: B (N + L) rows.
    Dataflow: the block reads ``x`` (its input, held by the caller), ``c`` (the conditioning vector, or the shared
    adaLN projection) and ``y`` (the projected text, cross-attention) and makes ``blocks.{i}.out``."""
    B, N, L = shape.B, shape.N, shape.L
    d, c, chunks, pre = spec.hidden_size, spec.cond, spec.modulation_chunks, "blocks.{i}"
    rows = B * (N + L) if spec.conditioning == "joint" else B * N  # rows through norms, attention projections, MLP
    groups, seq = attention_groups(spec, shape, mode)
    modulation = Saved("adaLN: SiLU out, modulation, 1 + scale", B * chunks * d)
    if spec.modulation == "per_block":
        ops = [silu(f"{pre}.adaLN_modulation.0", B, c, blocks, "c", "c_act"),
               flow(keep(linear_op(f"{pre}.adaLN_modulation.1", "adaln", B, c, chunks * d, blocks), modulation),
                    "c_act", "mods", B * chunks * d)]
    else:  # adaLN-single: the block adds its chunks x d table to the shared projection
        ops = [flow(keep(elementwise_op(f"{pre}.scale_shift_table", "modulation", B * chunks * d + chunks * d,
                                        B * chunks * d, blocks, weights=chunks * d, what="shared projection + table"),
                         modulation), "c", "mods", B * chunks * d)]
    calls = 2 if spec.conditioning == "joint" else 1  # joint blocks normalise and modulate text and video apart
    # temporal blocks regroup tokens: a copy at batch > 1; at batch 1 a strided input whose bias add is out of place
    temporal = mode == "temporal"
    masked = spec.frame_mask  # STDiT3 given x_mask: the same again with timestep 0's table, picked per frame
    ops += [block_norm(f"{pre}.norm1", rows, d, blocks, spec.norm_affine, block_input=True, x="x"),
            modulate(f"{pre}.modulate_attn", B, rows, d, blocks, calls, f"{pre}.norm1", "attn_in")]
    if masked:
        ops += [mask_table(pre, B, d, blocks, chunks),
                *masked_modulation(pre, "attn", B, shape.T, rows, d, blocks, spec.norm_affine, "x", "attn_in")]
    ops += [*self_attention(spec, pre, groups, seq, blocks, rows if mode == "sparse" else None,
                            f"{pre}.select_attn" if masked else "attn_in",
                            copy_in=temporal and B > 1, bias_scratch=temporal and B == 1 and spec.qkv_bias,
                            rope=(table_rows(spec, shape.T, N, L), B * L if spec.rope == "video" and
                                  spec.conditioning == "joint" else None) if uses_rope(spec, mode) else None,
                            math=1 * (seq <= groups) if spec.short_attention_math else None)]
    ops += masked_gate(pre, "attn", B, shape.T, rows, d, blocks, "x", f"{pre}.attn.out", "h1", masked)
    h = "h1"
    if spec.conditioning == "cross_attention":
        cross_in = h
        if spec.cross_attn_norm:
            ops.append(flow(keep(norm_op(f"{pre}.norm3", "layer_norm", d * B * N, True, d, blocks),
                                 Saved("cross-attention LayerNorm (output, mean, rstd)", B * N * d), stats(B * N)),
                            h, "norm3", B * N * d))
            cross_in = "norm3"
        ops += cross_attention(spec, pre, B, N, L + spec.cross_tokens_extra, blocks, cross_in, "y", h, "h2")
        h = "h2"
    mod_mlp = modulate(f"{pre}.modulate_mlp", B, rows, d, blocks, calls, f"{pre}.norm2", "mlp_in")
    ops += [block_norm(f"{pre}.norm2", rows, d, blocks, spec.norm_affine, x=h),
            holding(mod_mlp, f"{pre}.attn.out") if masked else mod_mlp]  # x_m: the attention's output until here
    if masked:
        ops += masked_modulation(pre, "mlp", B, shape.T, rows, d, blocks, spec.norm_affine, h, "mlp_in")
    ops += [*mlp(spec, pre, rows, d, spec.mlp_hidden, blocks, x=f"{pre}.select_mlp" if masked else "mlp_in"),
            *masked_gate(pre, "mlp", B, shape.T, rows, d, blocks, h, f"{pre}.mlp.out", f"{pre}.out", masked,
                         kept=False)]
    return ops


SELECT = "torch.where(x_mask, x, x_t0) per frame"
GATE_T0 = "gate_t0 * f(x), picked per frame"


def mask_table(pre: str, B: Number, d: int, blocks: range | None, chunks: int) -> Op:
    """STDiT3 with x_mask: the block's table added to timestep 0's shared projection too (``c0`` -> ``mods0``)."""
    return flow(elementwise_op(f"{pre}.scale_shift_table_t0", "modulation", B * chunks * d + chunks * d,
                               B * chunks * d, blocks, what="timestep-0 projection + table"), "c0", "mods0",
                B * chunks * d)


def holding(op: Op, *names: str) -> Op:
    """``op`` whose (single) flow also holds ``names`` to its end: a local the code rebinds only there."""
    assert isinstance(op.flow, Flow)
    return revise(op, flow=op.flow._replace(reads=(*op.flow.reads, *names)))


def masked_modulation(pre: str, half: str, B: Number, T: Number, rows: Number, d: int, blocks: range | None,
                      affine: bool, x: str, first: str) -> list[Op]:
    """STDiT3's modulation under a temporal mask (opensora/models/stdit/stdit3.py STDiT3Block.forward at 8d132d7a):
    ``x_m_zero = t2i_modulate(norm(x), shift_zero, scale_zero)``, then ``t_mask_select``: torch.where of the two
    modulated inputs per frame (reads 2 rows x d and the B x T mask, writes rows x d). Makes ``{pre}.select_{half}``;
    the second norm's output and statistics are kept for backward (its modulation's input).

    Dataflow, as the code's locals: ``x_m_zero`` lives until the block rebinds it (the attention half's, until the
    MLP half's is made; the MLP half's, to the block's end)."""
    norm = "norm1" if half == "attn" else "norm2"
    t0 = f"{pre}.modulate_{half}_t0"
    mod = elementwise_op(t0, "modulation", rows * d + 2 * B * d, rows * d, blocks, what="x * (1 + scale) + shift")
    select = elementwise_op(f"{pre}.select_{half}", "modulation", 2 * rows * d + B * T, rows * d, blocks, what=SELECT)
    held = (f"{pre}.modulate_attn_t0",) if half == "mlp" else ()
    return [block_norm(f"{pre}.{norm}_t0", rows, d, blocks, affine, x=x),
            flow(mod, (f"{pre}.{norm}_t0", "mods0", *held), t0, rows * d, scratch=rows * d),
            flow(select, (first, t0, "x_mask"), f"{pre}.select_{half}", rows * d)]


def masked_gate(pre: str, half: str, B: Number, T: Number, rows: Number, d: int, blocks: range | None, x: str,
                fx: str, out: str, masked: bool, kept: bool = True) -> list[Op]:
    """The gated residual x + gate * f(x); under a temporal mask (STDiT3) ``gate_zero * f(x)`` too and the per-frame
    pick of the two products (one op: the where, reading both and the mask, and the second product, an eager extra),
    then the sum (the residual op, its first product standing for the first gate).

    Dataflow of the masked form, as the code's locals: ``x_m_s`` (gate * f(x), then the pick) and ``x_m_s_zero``
    live until the MLP half rebinds them; in the MLP half, they, ``x_m`` (f(x)) and ``x_m_zero`` live to the block's
    end."""
    name = f"{pre}.gate_{half}"
    if not masked:
        return [gated_residual(name, B, rows, d, blocks, kept, reads=(x, fx), out=out)]
    n = rows * d
    prior = f"{pre}.gate_attn"  # the attention half's products, rebound by the MLP half's
    held = ((prior + "_t0",), (prior + ".zero",)) if half == "mlp" else ((), ())
    pick = elementwise_op(f"{name}_t0", "residual", 2 * n + B * T, n, blocks, what=GATE_T0)
    steps = (Flow((fx, "mods", *held[0]), f"{name}.prod", n), Flow((fx, "mods0", *held[1]), f"{name}.zero", n),
             Flow((f"{name}.prod", f"{name}.zero", "x_mask"), f"{name}_t0", n))
    ends = (f"{name}.zero", f"{pre}.modulate_mlp_t0") if half == "mlp" else ()
    return [revise(pick, flow=steps),
            gated_residual(name, B, rows, d, blocks, kept, reads=(x, f"{name}_t0", fx, *ends), out=out)]


def _embedder(name: str, B: Number, f: int, c: int, what: str, first: str = "mlp.0", second: str = "mlp.2"
              ) -> list[Op]:
    """Features (f) -> Linear(f, c) -> SiLU -> Linear(c, c), c the conditioning width: B (f c + c^2) MACs; keeps the
    features, the first output and SiLU's output."""
    return [keep(linear_op(f"{name}.{first}", "timestep_embed", B, f, c), Saved(what, (f + c) * B)),
            keep(linear_op(f"{name}.{second}", "timestep_embed", B, c, c), Saved(what, c * B))]


def embedders(spec: DiTSpec, shape: DiTShape) -> list[Op]:
    """Patch embedding, timestep / guidance / fps / pooled-text embedders, class or text projections."""
    B, N, L = shape.B, shape.N, shape.L
    d, c, f = spec.hidden_size, spec.cond, spec.frequency_embedding_size
    C, p = spec.in_channels, spec.patch_volume
    ops = [keep(Op("x_embedder.proj", "patch_embed", "conv3d", conv_macs(B, N, C, d, p),  # kernel = stride = patch
                   None, conv_elements(B, N * p, N, C, d, p), C * d * p + d,
                   {"tokens": B * N, "c_in": C, "c_out": d, "kernel_volume": p}),
                Saved("latent input (patch embedding)", B * C * N * p))]
    ops += _embedder("t_embedder", B, f, c, "timestep MLP")
    ops += rope_table(spec, shape.T, N, L)
    ops[-1] = keep(ops[-1], Saved("conditioning vector (shared)", B * c))
    if spec.modulation == "shared":  # adaLN-single: one projection of the timestep embedding for all blocks
        ops += [silu("t_block.0", B, d),
                keep(linear_op("t_block.1", "adaln", B, d, spec.modulation_chunks * d),  # an input of every block
                     Saved("shared adaLN projection (kept for recomputation)", spec.modulation_chunks * B * d,
                           when="full"))]
    if spec.frame_mask:  # STDiT3 given x_mask: timestep 0 embedded (+ fps) and projected too, by the same weights
        ops += [revise(op, path=op.path.replace("t_embedder", "t0_embedder"), weights=0)
                for op in _embedder("t_embedder", B, f, c, "timestep-0 MLP")]
        ops += [silu("t0_block.0", B, d),
                revise(linear_op("t0_block.1", "adaln", B, d, spec.modulation_chunks * d), weights=0)]
    if spec.pooled_text_dim is not None:  # vector_in: MLP on the pooled text vector
        ops += _embedder("vector_in", B, spec.pooled_text_dim, c, "pooled-text MLP", "fc1", "fc2")
    for name, used in (("guidance_in", spec.guidance_embed), ("fps_embedder", spec.fps_embed)):
        if used:
            ops += _embedder(name, B, f, c, f"{name} MLP")
    if spec.cond_channels is not None:
        ops.append(keep(linear_op("cond_in", "patch_embed", B * N, spec.cond_channels, d),
                        Saved("conditioning latents (cond_in input)", B * N * spec.cond_channels)))
    if spec.extra_text_dim is not None:
        ops.append(keep(linear_op("extra_text_proj", "text_proj", B * spec.extra_text_tokens, spec.extra_text_dim,
                                  d), Saved("second encoder's tokens (projection input)",
                                            B * spec.extra_text_tokens * spec.extra_text_dim)))
    if spec.text_norm and spec.text_conditioned:  # parameter-free, on inputs without gradient: saves nothing
        ops.append(norm_op("text_norm", "layer_norm", spec.text_dim * B * L, False, spec.text_dim))
    if spec.conditioning == "class":
        rows = spec.num_classes + (1 if spec.class_dropout_prob > 0 else 0)  # + the null label for CFG
        ops.append(keep(weight_op("y_embedder.embedding_table", "class_embed", rows * c, "embedding", read=B * c),
                        Saved("class labels (int64)", B, "int64")))
        return ops
    what = "caption projection (text in, hidden)"
    if spec.conditioning == "asymmetric":
        ops += lookup("dit_text", "attention_pool")(spec, shape)
        ops.append(linear_op("y_embedder", "text_proj", B * L, spec.text_dim, spec.text_width))
    elif spec.text_proj == "refiner":
        ops += lookup("dit_text", "refiner")(spec, shape)
    elif spec.text_proj == "linear":
        ops.append(keep(linear_op("y_embedder", "text_proj", B * L, spec.text_dim, d),
                        Saved(what, B * L * spec.text_dim)))
    else:  # caption projection: Linear(text_dim, d) -> GELU -> Linear(d, d)
        ops += [keep(linear_op("y_embedder.fc1", "text_proj", B * L, spec.text_dim, d),
                     Saved(what, B * L * (spec.text_dim + d))),
                keep(linear_op("y_embedder.fc2", "text_proj", B * L, d, d), Saved(what, B * L * d))]
    if spec.conditioning == "cross_attention":  # on the projection path's last op that is not repeated
        last = max(i for i, op in enumerate(ops) if op.blocks is None)
        ops[last] = keep(ops[last], Saved("projected text tokens (read by every block)",
                                          B * (L + spec.cross_tokens_extra) * d))
    return ops


def final_layer(spec: DiTSpec, shape: DiTShape) -> list[Op]:
    """Optional pre-norm over all tokens (CogVideoX), adaLN (2 c d; a 2 x d table when shared), LayerNorm,
    Linear(d, p * c_out) per token."""
    B, N, L = shape.B, shape.N, shape.L
    d, c = spec.hidden_size, spec.cond
    ops: list[Op] = []
    if spec.final_prenorm:  # over text and video tokens in joint mode (CogVideoX)
        rows = B * (N + L) if spec.conditioning in ("joint", "dual_stream") else B * N
        ops.append(keep(layer_norm("final_prenorm", rows, d, affine=True),
                        Saved("final pre-norm (output, mean, rstd)", rows * d), stats(rows)))
    if spec.modulation == "shared":
        ops.append(elementwise_op("final_layer.scale_shift_table", "modulation", B * d + 2 * d, 2 * B * d,
                                  weights=2 * d, what="timestep embedding + table"))
    else:
        ops += [silu("final_layer.adaLN_modulation.0", B, c),
                linear_op("final_layer.adaLN_modulation.1", "final_layer", B, c, 2 * d)]
    # the norm's input: in joint and dual-stream models a view of the last block's [text; video] output
    joint_rows = B * (N + L) if spec.conditioning in ("joint", "dual_stream") else B * N
    ops += [keep(layer_norm("final_layer.norm_final", B * N, d, affine=spec.final_affine),
                 Saved("final layer", joint_rows * d + B * N * d), stats(B * N)),
            modulate("final_layer.modulate", B, B * N, d)]
    if spec.frame_mask:  # T2IFinalLayer given x_mask: timestep 0's modulation of the norm again, picked per frame
        ops += [elementwise_op("final_layer.scale_shift_table_t0", "modulation", B * d + 2 * d, 2 * B * d,
                               what="timestep-0 embedding + table"),
                keep(layer_norm("final_layer.norm_final_t0", B * N, d, affine=spec.final_affine),
                     Saved("final layer", B * N * d), stats(B * N)),
                elementwise_op("final_layer.modulate_t0", "modulation", B * N * d + 2 * B * d, B * N * d,
                               what="x * (1 + scale) + shift"),
                elementwise_op("final_layer.select", "modulation", 2 * B * N * d + B * shape.T, B * N * d,
                               what=SELECT)]
    ops.append(linear_op("final_layer.linear", "final_layer", B * N, d, spec.patch_volume * spec.out_channels))
    return ops


def joint_concatenations(shape: DiTShape, d: int, blocks: range) -> list[Op]:
    """A joint block's two [text; video] concatenations (CogVideoX): the modulated text and video rows joined before
    the attention (diffusers CogVideoXAttnProcessor2_0: ``torch.cat([encoder_hidden_states, hidden_states], dim=1)``)
    and again before the feed-forward (CogVideoXBlock.forward; reference_model/dit.py DiTBlock.forward, joint):
    B (N + L) d read and written each. Traffic only: the liveness walk already holds the joined rows as the norms'
    outputs."""
    rows = shape.B * (shape.N + shape.L)
    return [elementwise_op(f"blocks.{{i}}.{name}.concat", "copy", rows * d, rows * d, blocks, what="[text; video]")
            for name in ("attn", "mlp")]


def dit_ledger(spec: DiTSpec, shape: DiTShape) -> list[Op]:
    """The ops of one DiT forward (one denoising step): embedders, every block run of ``spec.block_schedule()``
    (a joint block's concatenations after it, ``joint_concatenations``), the final layer."""
    if not spec.text_conditioned:
        shape = DiTShape(shape.B, shape.T, shape.H, shape.W, 0)
    ops = embedders(spec, shape)
    for mode, blocks in spec.block_schedule():
        ops += lookup("dit_block", mode)(spec, shape, mode, blocks)
        if spec.conditioning == "joint":
            ops += joint_concatenations(shape, spec.hidden_size, blocks)
    return ops + final_layer(spec, shape)
