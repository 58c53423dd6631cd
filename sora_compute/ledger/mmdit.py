"""Ledgers of the joint-attention blocks: MMDiT dual- and single-stream blocks (SD3, FLUX, HunyuanVideo) with
HunyuanVideo's token refiner, and Mochi's asymmetric blocks with their attention pooling of the text.

Notation as in ``ledger/dit.py``; dy the text-stream width of an asymmetric block.
"""

from __future__ import annotations

from sora_compute.ledger.dit import (
    DiTShape,
    block_norm,
    gated_residual,
    layer_norm,
    mlp,
    modulate,
    qk_norm_op,
    qk_norms,
    silu,
    stats,
)
from sora_compute.ledger.formulas import Number
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
from sora_compute.ledger.registry import register
from sora_compute.ledger.rope import rotate, rotated_saved, table_rows
from sora_compute.specs import DiTSpec

__all__ = ["dual_stream_block", "single_stream_block", "asymmetric_block", "attention_pool", "token_refiner"]


def joint_core(spec: DiTSpec, shape: DiTShape, blocks: range, path: str = "blocks.{i}.core",
               reads: tuple[str, ...] = ()) -> list[Op]:
    """One attention core over the N + L tokens of both streams. Keeps the concatenated q, k, v and the reshaped
    output (4 R d over R = B (N + L) rows), and the kernel's own output when a fused kernel runs several heads
    (with one head, size-1 axes turn the copy into a view; a materialised core keeps its probabilities instead).

    Dataflow (``reads``: the streams' q, k, v; makes ``{path}.out``): the concatenated q, k, v (contiguous) live
    while the core runs; its output is regrouped by token (a copy with several heads, a view with one)."""
    B, N, L = shape.B, shape.N, shape.L
    d, h = spec.hidden_size, spec.num_heads
    R, what = B * (N + L), "attention (q, k, v, output, reshaped output)"
    core = keep(attention_op(path, "attention", B, h, N + L, N + L, d // h, blocks), Saved(what, 4 * R * d))
    core = keep(core, Saved(what, R * d, when="fused")) if h > 1 else core
    core = revise(core, dims={**core.dims, "contiguous": True})
    if not reads:
        return [core]
    cat, out = f"{path}.cat", f"{path}.out"
    return [flow(elementwise_op(cat, "copy", 3 * R * d, 3 * R * d, blocks, what="concatenate the streams' q, k, v"),
                 reads, cat, 3 * R * d),
            flow(core, cat, path, R * d),
            flow(elementwise_op(out, "copy", R * d, R * d, blocks, what="regroup the output by token"), path, out,
                 R * d) if h > 1 else flow(elementwise_op(out, "view", 0, 0, blocks, what="a view"), path, out,
                                           view_of=path)]


@register("dit_block", "dual")
def dual_stream_block(spec: DiTSpec, shape: DiTShape, mode: str, blocks: range) -> list[Op]:
    """MMDiT dual-stream block: per stream (video N rows, text L rows) adaLN 6 c d, norms, qkv, q/k norms, proj and
    MLP with the stream's own weights; one attention core over N + L tokens.

    Saved per stream (measured, see tests): input, norm outputs, modulated inputs, projection output and residual,
    MLP output (8 per row of width d), the MLP hidden, norm statistics; per sample SiLU out, modulation, 1 + scale.

    Dataflow, in the reference's order: both modulations; each stream's q, k, v (kept until the block returns); the
    joint core; each stream's projection and residual; each stream's MLP; the output [text; video] (a copy)."""
    B, N, L = shape.B, shape.N, shape.L
    d, m, pre = spec.hidden_size, spec.mlp_hidden, "blocks.{i}"
    streams = (("img", B * N, "x"), ("txt", B * L, "y"))
    ops: list[Op] = []
    for stream, _, _ in streams:
        s = f"{pre}.{stream}"
        ops += [silu(f"{s}_mod.0", B, spec.cond, blocks, "c", f"{s}_mod.0"),
                flow(keep(linear_op(f"{s}_mod.1", "adaln", B, spec.cond, 6 * d, blocks),
                          Saved("adaLN: SiLU out, modulation, 1 + scale", 6 * B * d)), f"{s}_mod.0", f"{stream}_mods",
                     6 * B * d)]
    qkv: list[str] = []
    tab = table_rows(spec, shape.T, N, L)
    for stream, rows, x in streams:
        s = f"{pre}.{stream}"
        norms = qk_norms(spec, pre, rows, rows, blocks, (f"{stream}_attn_norm_q.norm", f"{stream}_attn_norm_k.norm"),
                         views=True, reads=(f"{s}_qkv", f"{s}_qkv"))
        ops += [block_norm(f"{s}_norm1", rows, d, blocks, spec.norm_affine, block_input=True, x=x),
                _mods(modulate(f"{s}_modulate_attn", B, rows, d, blocks, 1, f"{s}_norm1", f"{s}_attn_in"), stream),
                flow(linear_op(f"{s}_attn_qkv", "attention_proj", rows, d, 3 * d, blocks, spec.qkv_bias),
                     f"{s}_attn_in", f"{s}_qkv", 3 * rows * d),
                *norms]
        qk = [op.path for op in norms]
        if spec.rope == "all" or (spec.rope == "video" and stream == "img"):  # each stream before the concatenation
            q_in, k_in = qk or (f"{s}_qkv", f"{s}_qkv")
            ops += [*rotate(f"{s}_rope_q", rows, d, tab, spec.head_dim, blocks, q_in),
                    *rotate(f"{s}_rope_k", rows, d, tab, spec.head_dim, blocks, k_in, hold=(q_in,))]
            qk = [f"{s}_rope_q", f"{s}_rope_k"]
        qkv += [f"{s}_qkv", *qk]
    ops += joint_core(spec, shape, blocks, reads=tuple(qkv))
    attn = f"{pre}.core.out"
    for stream, rows, x in streams:
        s = f"{pre}.{stream}"
        ops += [flow(keep(linear_op(f"{s}_attn_proj", "attention_proj", rows, d, d, blocks, spec.out_bias),
                          Saved("projection output", rows * d)), attn, f"{s}_proj", rows * d),
                _mods(gated_residual(f"{s}_gate_attn", B, rows, d, blocks, reads=(x, f"{s}_proj"), out=f"{s}_h1"),
                      stream)]
    outs = []
    for stream, rows, _ in streams:
        s = f"{pre}.{stream}"
        ops += [block_norm(f"{s}_norm2", rows, d, blocks, spec.norm_affine, x=f"{s}_h1"),
                _mods(modulate(f"{s}_modulate_mlp", B, rows, d, blocks, 1, f"{s}_norm2", f"{s}_mlp_in"), stream),
                *mlp(spec, pre, rows, d, m, blocks, f"{stream}_mlp", x=f"{s}_mlp_in"),
                _mods(gated_residual(f"{s}_gate_mlp", B, rows, d, blocks, kept=False,
                                     reads=(f"{s}_h1", f"{pre}.{stream}_mlp.out"), out=f"{s}_h2"), stream)]
        outs.append(f"{s}_h2")
    R = B * (N + L)
    return [*ops, flow(elementwise_op(f"{pre}.out", "copy", R * d, R * d, blocks, what="[text; video]"),
                       (*outs, *qkv, attn), f"{pre}.out", R * d)]


def _mods(op: Op, stream: str) -> Op:
    """``op`` reading its stream's modulation (``{stream}_mods``) instead of the block's ``mods``."""
    assert isinstance(op.flow, Flow)
    reads = tuple(f"{stream}_mods" if r == "mods" else r for r in op.flow.reads)
    return revise(op, flow=op.flow._replace(reads=reads))


@register("dit_block", "single")
def single_stream_block(spec: DiTSpec, shape: DiTShape, mode: str, blocks: range) -> list[Op]:
    """Single-stream block on N + L tokens: adaLN 3 c d, pre-norm, linear1 d -> 3d + m (qkv and MLP input),
    q/k norms, attention core, linear2 d + m -> d. The fused linears are listed as their attention and MLP parts
    (the part listed first owns the bias and the dataflow).

    Saved: input, norm output, modulated input, linear1's output (3 R d + R m), the attention output (fused kernel
    only), the [attention; GELU(hidden)] concatenation (R d + R m) and linear2's output; GELU's output itself is not
    kept. A materialised core at batch > 1 keeps contiguous copies of the strided q, k, v (q and k are already
    contiguous after q/k norms).

    Dataflow: [text; video] is concatenated (a copy); linear1's output, the normalised q and k and the attention
    output stay referenced until the block returns; GELU's output is freed once concatenated."""
    B, N, L = shape.B, shape.N, shape.L
    d, h, m, pre = spec.hidden_size, spec.num_heads, spec.mlp_hidden, "blocks.{i}"
    rows = B * (N + L)
    main, hidden = "activations (input, norm out, modulated, linear1, attention out, concat, linear2 out)", \
        "MLP hidden (linear1 part, concat part)"
    copies = (3 if spec.qk_norm == "none" else 1) * rows * d * (B > 1)
    l1, core, cat = f"{pre}.linear1", f"{pre}.core", f"{pre}.concat"
    norms = qk_norms(spec, pre, rows, rows, blocks, reads=(l1, l1), rope=spec.rope != "none")
    qk = tuple(op.path for op in norms)
    rope: list[Op] = []
    if spec.rope != "none":  # after the norms; text tokens (in front) spared unless the whole sequence is rotated
        spared = B * L if spec.rope == "video" else None
        q_in, k_in = qk or (l1, l1)
        rope = [*rotate(f"{pre}.rope_q", rows, d, table_rows(spec, shape.T, N, L), spec.head_dim, blocks, q_in,
                        spared),
                *rotate(f"{pre}.rope_k", rows, d, table_rows(spec, shape.T, N, L), spec.head_dim, blocks, k_in,
                        spared, hold=(q_in,))]
        qk = (f"{pre}.rope_q", f"{pre}.rope_k")
    attention = keep(attention_op(core, "attention", B, h, N + L, N + L, d // h, blocks),
                     Saved(main, rows * d, when="fused"), Saved("attention: contiguous copies of q, k, v", copies,
                                                                 when="materialized"))
    if rope:
        attention = keep(attention, rotated_saved(rows, d, bool(norms)))
    return [
        silu(f"{pre}.modulation.0", B, spec.cond, blocks, "c", "c_act"),
        flow(keep(linear_op(f"{pre}.modulation.1", "adaln", B, spec.cond, 3 * d, blocks),
                  Saved("adaLN: SiLU out, modulation, 1 + scale", 3 * B * d)), "c_act", "mods", 3 * B * d),
        flow(elementwise_op(f"{pre}.concat_in", "copy", rows * d, rows * d, blocks, what="[text; video]"),
             ("x", "y"), "xy", rows * d),
        block_norm(f"{pre}.pre_norm", rows, d, blocks, spec.norm_affine, block_input=True, x="xy"),
        modulate(f"{pre}.modulate", B, rows, d, blocks, 1, f"{pre}.pre_norm", "l1_in"),
        flow(keep(linear_op(l1, "attention_proj", rows, d, 3 * d, blocks), Saved(main, 3 * rows * d)), "l1_in", l1,
             rows * (3 * d + m)),
        keep(linear_op(l1, "mlp", rows, d, m, blocks), Saved(hidden, rows * m)),
        *norms,
        *rope,
        flow(attention, (*(qk or (l1,)), l1), core, rows * d),
        flow(elementwise_op(f"{pre}.act", "activation", rows * m, rows * m, blocks, what="gelu_tanh"), l1,
             f"{pre}.act", rows * m),
        flow(elementwise_op(cat, "copy", rows * (d + m), rows * (d + m), blocks, what="[attention; GELU(hidden)]"),
             (core, f"{pre}.act"), cat, rows * (d + m)),
        flow(keep(linear_op(f"{pre}.linear2", "attention_proj", rows, d, d, blocks),
                  Saved(main, rows * d), Saved(hidden, rows * m)),  # its input, the concatenation
             cat, f"{pre}.linear2", rows * d),
        keep(linear_op(f"{pre}.linear2", "mlp", rows, m, d, blocks, bias=False), Saved(main, rows * d)),
        gated_residual(f"{pre}.gate", B, rows, d, blocks, kept=False,
                       reads=("xy", f"{pre}.linear2", l1, core, *qk), out=f"{pre}.out"),
    ]


@register("dit_block", "asymmetric", "asymmetric_last")
def asymmetric_block(spec: DiTSpec, shape: DiTShape, mode: str, blocks: range) -> list[Op]:
    """Mochi block: modulation (4 c d; 4 c dy, or c dy when the text is not updated), parameter-free RMSNorms
    before and after attention and MLP, qkv from d (video) and dy (text) to 3d, q/k norms, one core over N + L,
    output projections d -> d and d -> dy, and per-stream MLPs (the text's only while it is updated: not in
    ``asymmetric_last``).

    Saved (measured byte-exact): per updated stream of width w, 10 per row (input, four norm outputs, two modulated
    inputs, projection and MLP outputs, residual), the MLP hidden and one RMSNorm statistic per norm and row; a text
    stream that is not updated keeps its input, norm output and modulated input; per sample SiLU out, 1 + scale and
    tanh(gate) per stream."""
    B, N, L = shape.B, shape.N, shape.L
    update_y = mode == "asymmetric"
    d, dy, c = spec.hidden_size, spec.text_width, spec.cond
    pre, mod = "blocks.{i}", "modulation: SiLU out, 1 + scale, tanh(gate)"
    mod_y = 4 * dy if update_y else dy  # the last block only scales the text's attention input
    ops = [silu(f"{pre}.mod.0", B, c, blocks, "c", "c_act"),
           flow(keep(linear_op(f"{pre}.mod_x", "adaln", B, c, 4 * d, blocks), Saved(mod, 4 * B * d)), "c_act",
                "x_mods", 4 * B * d),
           flow(keep(linear_op(f"{pre}.mod_y", "adaln", B, c, mod_y, blocks), Saved(mod, mod_y * B)), "c_act",
                "y_mods", mod_y * B)]
    streams = (("x", B * N, d), ("y", B * L, dy))

    def norm(s: str, i: int, rows: Number, width: int, x: str) -> Op:
        kept = [Saved("video stream" if s == "x" else "text stream", rows * width)]  # the norm's output
        if i == 1:  # the block's input; the modulated input
            kept += [Saved(kept[0].what, rows * width, block_input=True), Saved(kept[0].what, rows * width)]
        if i == 3:
            kept.append(Saved(kept[0].what, rows * width))  # the MLP's modulated input
        return flow(keep(norm_op(f"{pre}.{s}_norm{i}", "rms_norm", width * rows, False, width, blocks), *kept,
                         Saved("RMSNorm statistics", rows, "stat")), x, f"{pre}.{s}_norm{i}", rows * width)

    def scaled(s: str, i: int, rows: Number, width: int, out: str) -> Op:  # norm(x) * (1 + scale)
        return flow(elementwise_op(f"{pre}.{s}_scale{i}", "modulation", rows * width + B * width, rows * width, blocks,
                                   what="x * (1 + scale)"), (f"{pre}.{s}_norm{i}", f"{s}_mods"), out, rows * width)

    held: list[str] = []
    for s, rows, width in streams:
        norms = qk_norms(spec, pre, rows, rows, blocks, (f"norm_q_{s}.norm", f"norm_k_{s}.norm"), views=True,
                         reads=(f"{s}_qkv", f"{s}_qkv")) if qk_norm_op(spec) else []
        ops += [norm(s, 1, rows, width, s), scaled(s, 1, rows, width, f"{s}_attn_in"),
                flow(linear_op(f"{pre}.qkv_{s}", "attention_proj", rows, width, 3 * d, blocks, spec.qkv_bias),
                     f"{s}_attn_in", f"{s}_qkv", 3 * rows * d), *norms]
        qk = [op.path for op in norms]
        if spec.rope != "none" and s == "x":  # Mochi: the video's q and k, before the concatenation
            q_in, k_in = qk or (f"{s}_qkv", f"{s}_qkv")
            ops += [*rotate(f"{pre}.rope_q", rows, d, N, spec.head_dim, blocks, q_in),
                    *rotate(f"{pre}.rope_k", rows, d, N, spec.head_dim, blocks, k_in, hold=(q_in,))]
            qk = [f"{pre}.rope_q", f"{pre}.rope_k"]
        held += [f"{s}_qkv", *qk]
    ops += joint_core(spec, shape, blocks, reads=tuple(held))
    attn = f"{pre}.core.out"
    held.append(attn)
    for s, rows, width in streams if update_y else streams[:1]:
        m = spec.mlp_hidden if s == "x" else spec.text_mlp_hidden
        last = s == "y" or not update_y
        ops += [flow(keep(linear_op(f"{pre}.proj_{s}", "attention_proj", rows, d, width, blocks, spec.out_bias),
                          Saved("video stream" if s == "x" else "text stream", rows * width)), attn, f"{s}_proj",
                     rows * width),
                norm(s, 2, rows, width, f"{s}_proj"),
                _mods(gated_residual(f"{pre}.gate_attn_{s}", B, rows, width, blocks,
                                     reads=(s, f"{pre}.{s}_norm2"), out=f"{s}_h1"), s),
                norm(s, 3, rows, width, f"{s}_h1"), scaled(s, 3, rows, width, f"{s}_mlp_in"),
                *mlp(spec, pre, rows, width, m, blocks, f"mlp_{s}", x=f"{s}_mlp_in"),
                norm(s, 4, rows, width, f"{pre}.mlp_{s}.out"),
                _mods(gated_residual(f"{pre}.gate_mlp_{s}", B, rows, width, blocks, kept=False,
                                     reads=(f"{s}_h1", f"{pre}.{s}_norm4", *(held if last else ())),
                                     out=f"{pre}.{s}_out"), s)]
    return ops


@register("dit_text", "attention_pool")
def attention_pool(spec: DiTSpec, shape: DiTShape) -> list[Op]:
    """Mochi's text pooling: kv over 1 + L tokens (the mean prepended), one query per sample, the core with
    ``text_pool_heads`` heads, projection to the conditioning width; and the learned RoPE frequencies
    (3 axes x heads x head_dim / 2; the rotations are elementwise). The mean costs no MACs.
    Saved: the text in, [mean; text] and its k, v; the mean and its query."""
    B, L = shape.B, shape.L
    t, hp = spec.text_dim, spec.text_pool_heads
    what = "text in, attention pooling"
    return [keep(linear_op("text_pool.to_kv", "text_proj", B * (L + 1), t, 2 * t),
                 Saved(what, B * L * t + 3 * B * (L + 1) * t)),
            keep(linear_op("text_pool.to_q", "text_proj", B, t, t), Saved(what, 2 * B * t)),
            attention_op("text_pool.core", "text_proj", B, hp, 1, L + 1, t // hp),
            linear_op("text_pool.to_out", "text_proj", B, t, spec.cond),
            weight_op("pos_frequencies", "rope", 3 * spec.num_heads * (spec.head_dim // 2))]


@register("dit_text", "refiner")
def token_refiner(spec: DiTSpec, shape: DiTShape) -> list[Op]:
    """HunyuanVideo's token refiner on L text tokens: timestep MLP and pooled-text MLP (per sample), input
    Linear(text_dim, d), then per block gate-only adaLN (2 d^2), affine LayerNorms, qkv 3 d^2, core 2 L^2 d,
    projection d^2 and a 4x SiLU MLP (8 d^2) per token. The mean over tokens costs no MACs.

    Saved (outside the DiT blocks, never checkpointed): per block on R = B L rows the input, norm1 out, qkv,
    the reshaped attention output, projection out, residual, norm2 out, fc2 out (10 R d), the MLP hidden (fc1 and
    SiLU outputs, 8 R d), the norms' statistics, per sample the SiLU output and the two gates; outside the blocks
    the text input, its mean, the timestep and pooled-text MLPs and their sum."""
    B, L = shape.B, shape.L
    d, t, f, h = spec.hidden_size, spec.text_dim, spec.frequency_embedding_size, spec.num_heads
    pre, blocks, rows = "y_embedder.blocks.{i}", range(spec.refiner_depth), B * L
    block, embed = "token refiner blocks", "token refiner embedders (text in, t, pooled)"
    return [
        keep(linear_op("y_embedder.t_embedder.mlp.0", "text_proj", B, f, d), Saved(embed, (f + d) * B)),
        keep(linear_op("y_embedder.t_embedder.mlp.2", "text_proj", B, d, d), Saved(embed, d * B)),
        keep(linear_op("y_embedder.c_embedder.fc1", "text_proj", B, t, d), Saved(embed, B * t + B * d)),
        keep(linear_op("y_embedder.c_embedder.fc2", "text_proj", B, d, d), Saved(embed, 2 * B * d)),
        keep(linear_op("y_embedder.input_embedder", "text_proj", rows, t, d), Saved(embed, rows * t)),
        keep(linear_op(f"{pre}.adaLN_modulation.1", "text_proj", B, d, 2 * d, blocks), Saved(block, 3 * B * d)),
        keep(layer_norm(f"{pre}.norm1", rows, d, blocks, affine=True), Saved(block, 2 * rows * d), stats(rows)),
        keep(linear_op(f"{pre}.self_attn_qkv", "text_proj", rows, d, 3 * d, blocks), Saved(block, 3 * rows * d)),
        keep(attention_op(f"{pre}.core", "text_proj", B, h, L, L, d // h, blocks), Saved(block, rows * d)),
        keep(linear_op(f"{pre}.self_attn_proj", "text_proj", rows, d, d, blocks), Saved(block, 2 * rows * d)),
        keep(layer_norm(f"{pre}.norm2", rows, d, blocks, affine=True), Saved(block, rows * d), stats(rows)),
        *[revise(op, kind="text_proj", saved=tuple(Saved(block, x.numel) for x in op.saved))
          if op.op == "linear" else revise(op, saved=tuple(Saved(block, x.numel) for x in op.saved))
          for op in mlp(spec, pre, rows, d, 4 * d, blocks, act="silu", bias=True)],
    ]
