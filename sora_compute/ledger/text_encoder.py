"""The text encoders' ledgers (reference_model/text_encoder.py): T5 / umT5, Llama-style LLMs used as encoders
(also Step-Video's Step-LLM: fused projections, no rotary embedding, no final norm), CLIP's text tower, BERT.

Notation: B prompts, L tokens, d model width, h query heads of width d_kv (inner = h d_kv), kv key/value width
(kv heads x d_kv; = inner without GQA), f FFN width. MACs per op instance follow fvcore's rules
(``ledger/formulas.py``); weights include biases, so parameter counts are sums over the ledger. Layers are one
record per module over ``blocks``; the llama layers an early exit skips (``hidden_state_skip``) and a final norm it
does not run are weight-only records (their parameters are loaded, their ops do not run).

Causal attention (llama, clip; bert's is bidirectional) is counted as the full L x L core: both profilers (fvcore's
SDPA handle and FlopCounterMode, whose meta run takes the math path) count ``is_causal`` attention like unmasked
attention, and so do dense kernels (math, memory-efficient). A flash kernel that skips masked tiles does about half
the core's work. Grouped-query attention repeats each key/value head before the core, which then costs as many MACs
as multi-head attention; only the k and v projections are narrower. Embedding lookups, position buckets, rotary
angles, the pooled-token gather, activations and residual adds cost no MACs (elementwise records: they move bytes).

Dataflow (``Flow`` records, for the liveness evaluator, without gradients), following the reference code: a layer's
input is held by the caller's loop until the layer returns; a module's arguments and locals stay referenced until
it returns, so an op's ``reads`` also name the tensors its frame still holds (the normed input and q, k, v through
the output projection; a fused projection's output while a view of it is in use). The attention core writes its
output beside its fp32 log-sum-exp (one per query and head; scratch).
"""

from __future__ import annotations

from functools import lru_cache

from sora_compute.ledger.formulas import FVCORE, CountingConvention, Number
from sora_compute.ledger.ops import Flow, Op, attention_op, elementwise_op, linear_op, norm_op, weight_op
from sora_compute.ledger.registry import lookup, register
from sora_compute.specs.text_encoder import (
    BertEncoderSpec,
    CLIPTextSpec,
    LlamaEncoderSpec,
    T5EncoderSpec,
    TextEncoderSpec,
)

__all__ = ["text_encoder_ledger"]

LAYERS = "layers.{i}"


def _f(op: Op, reads: tuple[str, ...], out: str | None, numel: Number = 0, scratch: Number = 0,
       scratch_dtype: str | None = None, dtype: str = "act") -> Op:
    """``op`` with its dataflow (one copy of the record, built directly: cheaper than ``dataclasses.replace``)."""
    return Op(op.path, op.kind, op.op, op.macs, op.blocks, op.elements, op.weights, op.dims, op.saved,
              Flow(reads, out, numel, None, scratch, dtype, scratch_dtype))


def _embed(path: str, rows: int, d: int, B: Number, L: Number, out: str, positions: bool = False) -> Op:
    """An embedding table of ``rows`` x d; the lookup gathers B L rows (a position table: L rows, shared by the
    batch)."""
    n = L * d if positions else B * L * d
    return _f(weight_op(path, "embedding", rows * d, "embedding", None, n), (), out, n)


def _norm(path: str, op: str, B: Number, L: Number, d: int, blocks: range | None, x: str, out: str,
          convention: CountingConvention, held: tuple[str, ...] = ()) -> Op:
    """An affine norm over d channels: RMSNorm (weight) or LayerNorm (weight and bias, fp32 mean and rstd per row
    beside its output)."""
    stats = 2 * B * L if op == "layer_norm" else 0
    return _f(norm_op(path, op, B * L * d, True, d, blocks, convention=convention), (x, *held), out, B * L * d,
              stats, "stat")


def _add(path: str, B: Number, L: Number, d: int, blocks: range | None, reads: tuple[str, ...], out: str,
         what: str = "residual add") -> Op:
    """An out-of-place sum of two (B, L, d) tensors (``reads`` may name held tensors after the two summands)."""
    n = B * L * d
    return _f(elementwise_op(path, "residual", 2 * n, n, blocks, what=what), reads, out, n)


def _attention(spec: TextEncoderSpec, prefix: str, B: Number, L: Number, blocks: range, names: tuple[str, ...],
               x: str, bias: bool, extra_reads: tuple[str, ...] = ()) -> list[Op]:
    """Self-attention of separate q, k, v projections (narrower k and v with GQA) and the output projection: the
    core 2 h L^2 d_kv; q, k, v (views of the projections) and the normed input stay referenced until the output
    projection has run."""
    d, inner, kv, h = spec.d_model, spec.inner_dim, spec.kv_dim, spec.num_heads
    q, k, v, o = names
    return [
        _f(linear_op(f"{prefix}.{q}", "attention_proj", B * L, d, inner, blocks, bias), (x,), "q", B * L * inner),
        _f(linear_op(f"{prefix}.{k}", "attention_proj", B * L, d, kv, blocks, bias), (x,), "k", B * L * kv),
        _f(linear_op(f"{prefix}.{v}", "attention_proj", B * L, d, kv, blocks, bias), (x,), "v", B * L * kv),
        _f(attention_op(prefix, "attention", B, h, L, L, spec.d_kv, blocks), ("q", "k", "v", *extra_reads), "o",
           B * L * inner, B * h * L, "stat"),
        _f(linear_op(f"{prefix}.{o}", "attention_proj", B * L, inner, d, blocks, bias), ("o", "q", "k", "v", x), "a",
           B * L * d),
    ]


def _mlp(prefix: str, B: Number, L: Number, d: int, f: int, blocks: range, x: str, names: tuple[str, str],
         act: str, bias: bool, act_scratch: Number = 0) -> list[Op]:
    """Linear(d, f) -> activation -> Linear(f, d): 2 L d f; the activation's input is freed once it has run."""
    n = B * L * f
    return [_f(linear_op(f"{prefix}.{names[0]}", "mlp", B * L, d, f, blocks, bias), (x,), "fc1", n),
            _f(elementwise_op(f"{prefix}.act", "activation", n, n, blocks, what=act), ("fc1",), "act", n,
               act_scratch),
            _f(linear_op(f"{prefix}.{names[1]}", "mlp", B * L, f, d, blocks, bias), ("act", x), "m", B * L * d)]


def _gated_mlp(prefix: str, B: Number, L: Number, d: int, f: int, blocks: range, x: str, names: tuple[str, str, str],
               act: str) -> list[Op]:
    """act(gate x) * (up x), then down: 3 L d f (bias-free). The activation is formed before the up projection runs,
    so its output, up's output and their product are live together."""
    n = B * L * f
    gate, up, down = names
    return [_f(linear_op(f"{prefix}.{gate}", "mlp", B * L, d, f, blocks, False), (x,), "gate", n),
            _f(elementwise_op(f"{prefix}.act", "activation", n, n, blocks, what=act), ("gate",), "act", n),
            _f(linear_op(f"{prefix}.{up}", "mlp", B * L, d, f, blocks, False), (x,), "up", n),
            _f(elementwise_op(f"{prefix}.gate", "activation", 2 * n, n, blocks, what=f"{act}(gate x) * up x"),
               ("act", "up"), "prod", n),
            _f(linear_op(f"{prefix}.{down}", "mlp", B * L, f, d, blocks, False), ("prod", x), "m", B * L * d)]


def _t5_position_bias(spec: T5EncoderSpec, L: Number, blocks: range | None) -> list[Op]:
    """T5's relative position bias (h x L x L, shared by the batch): positions (int64, L), their differences (int64,
    L x L), the bucket of each (int64; ``relative_position_bucket`` holds its sign buckets, |difference|, the
    is-small mask (bool), the log-spaced buckets and the selection beside its output until it returns: 33 bytes
    per pair), then the table lookup. Positions, differences and buckets live until the bias is made."""
    h, path = spec.num_heads, "layers.0.attn" if blocks is None else f"{LAYERS}.attn"
    pairs = L * L
    return [
        _f(elementwise_op(f"{path}.positions", "position", 0, L, blocks, what="arange(L)"), (), "pos", L,
           dtype="int64"),
        _f(elementwise_op(f"{path}.relative_positions", "position", 2 * L, pairs, blocks, what="j - i"), ("pos",),
           "rel", pairs, dtype="int64"),
        _f(elementwise_op(f"{path}.position_buckets", "position", pairs, pairs, blocks, what="bucket(j - i)"),
           ("rel",), "buckets", pairs, 33 * pairs, "byte", "int64"),
        _f(weight_op(f"{path}.relative_attention_bias", "position_bias", spec.relative_attention_num_buckets * h,
                     "embedding", blocks, h * pairs), ("buckets", "rel", "pos"), "bias", h * pairs),
    ]


@register("text_encoder", "t5")
def t5_ledger(spec: T5EncoderSpec, B: Number, L: Number, convention: CountingConvention = FVCORE) -> list[Op]:
    """Token embedding; per layer: RMSNorm, attention (q, k, v, o: 4 L d inner; core 2 h L^2 d_kv, unscaled logits
    plus the position bias), RMSNorm, gated-GELU (wi_0, wi_1, wo: 3 L d f) or ReLU (wi, wo) FFN; final RMSNorm.
    The relative position bias (h x L x L, shared by the batch) is computed once before the layers and read by all
    of them (T5), or by each layer from its own table (umT5), held until the layer returns."""
    layers, d = range(spec.num_layers), spec.d_model
    shared = spec.shared_relative_bias
    bias = _t5_position_bias(spec, L, None if shared else layers)
    ops = [_embed("embed_tokens", spec.vocab_size, d, B, L, "x"), *(bias if shared else [])]
    ops += [*([] if shared else bias),
            _norm(f"{LAYERS}.attn_norm", "rms_norm", B, L, d, layers, "x", "n1", convention),
            *_attention(spec, f"{LAYERS}.attn", B, L, layers, ("q", "k", "v", "o"), "n1", False, ("bias",)),
            _add(f"{LAYERS}.attn_residual", B, L, d, layers, ("x", "a"), "h"),
            _norm(f"{LAYERS}.ff_norm", "rms_norm", B, L, d, layers, "h", "n2", convention)]
    if spec.gated_ffn:
        ops += _gated_mlp(f"{LAYERS}.ff", B, L, d, spec.d_ff, layers, "n2", ("wi_0", "wi_1", "wo"), "gelu_tanh")
    else:
        ops += _mlp(f"{LAYERS}.ff", B, L, d, spec.d_ff, layers, "n2", ("wi", "wo"), "relu", False)
    ops += [_add(f"{LAYERS}.ff_residual", B, L, d, layers, ("h", "m", *(() if shared else ("bias",))), "x"),
            _norm("final_norm", "rms_norm", B, L, d, None, "x", "out", convention)]
    return ops


def _llama_attention(spec: LlamaEncoderSpec, B: Number, L: Number, layers: range) -> list[Op]:
    """GQA: q L d inner, k and v L d kv each (fused: one qkv_proj L d (inner + 2 kv), q, k, v views of it), core
    2 h L^2 d_kv (causal, counted in full), o L inner d.

    Rotary embedding (elementwise): q, then k, is rotated with two temporaries of its size beside the result; both
    rotations are evaluated before either is rebound. The key/value repeat (GQA) copies k and v to the query heads'
    width (MHA and MQA: views, no copy); both are evaluated before either is rebound."""
    d, inner, kv, h, dk = spec.d_model, spec.inner_dim, spec.kv_dim, spec.num_heads, spec.d_kv
    p, n = f"{LAYERS}.self_attn", B * L
    if spec.fused_projections:
        ops = [_f(linear_op(f"{p}.qkv_proj", "attention_proj", n, d, inner + 2 * kv, layers, False), ("n1",), "qkv",
                  n * (inner + 2 * kv))]
        q = k = v = "qkv"
    else:
        ops = [_f(linear_op(f"{p}.{name}_proj", "attention_proj", n, d, w, layers, False), ("n1",), name, n * w)
               for name, w in (("q", inner), ("k", kv), ("v", kv))]
        q, k, v = "q", "k", "v"
    if spec.rotary:
        rope = "x cos + rotate_half(x) sin"
        ops += [_f(elementwise_op(f"{p}.rotary_q", "position", n * inner + 2 * L * dk, n * inner, layers, what=rope),
                   (q, "cos", "sin"), "qr", n * inner, 2 * n * inner),
                _f(elementwise_op(f"{p}.rotary_k", "position", n * kv + 2 * L * dk, n * kv, layers, what=rope),
                   (k, "cos", "sin", q), "kr", n * kv, 2 * n * kv)]
        q, k = "qr", "kr"
    if 1 < spec.kv_heads < h:
        ops += [_f(elementwise_op(f"{p}.repeat_k", "copy", n * kv, n * inner, layers, what="repeat_kv"), (k,), "kR",
                   n * inner),
                _f(elementwise_op(f"{p}.repeat_v", "copy", n * kv, n * inner, layers, what="repeat_kv"), (v, k), "vR",
                   n * inner)]
        k, v = "kR", "vR"
    return ops + [
        _f(attention_op(p, "attention", B, h, L, L, dk, layers), (q, k, v), "o", n * inner, B * h * L, "stat"),
        _f(linear_op(f"{p}.o_proj", "attention_proj", n, inner, d, layers, False), ("o", q, k, v, "n1"), "a", n * d)]


@register("text_encoder", "llama")
def llama_ledger(spec: LlamaEncoderSpec, B: Number, L: Number, convention: CountingConvention = FVCORE) -> list[Op]:
    """Token embedding, rotary cos and sin tables (L x d_kv each, held by every layer); per layer run: RMSNorm,
    attention, RMSNorm, SwiGLU (gate and up 2 L d f, fused: one gate_up_proj L d 2f, whose output stays referenced
    by its halves until the down projection has run; down L f d); the final RMSNorm. ``hidden_state_skip`` = k:
    the last k layers and the final norm do not run (their weights are still loaded)."""
    run, d, f, dk = range(spec.layers_run), spec.d_model, spec.d_ff, spec.d_kv
    n = B * L
    ops = [_embed("embed_tokens", spec.vocab_size, d, B, L, "x")]
    if spec.rotary:
        ops += [_f(elementwise_op(f"rotary.{t}", "position", 0, L * dk, what=f"{t} of the rotary angles"), (), t,
                   L * dk) for t in ("cos", "sin")]
    ops += [_norm(f"{LAYERS}.input_layernorm", "rms_norm", B, L, d, run, "x", "n1", convention),
            *_llama_attention(spec, B, L, run),
            _add(f"{LAYERS}.attn_residual", B, L, d, run, ("x", "a"), "h"),
            _norm(f"{LAYERS}.post_attention_layernorm", "rms_norm", B, L, d, run, "h", "n2", convention)]
    mlp = f"{LAYERS}.mlp"
    if spec.fused_projections:
        ops += [_f(linear_op(f"{mlp}.gate_up_proj", "mlp", n, d, 2 * f, run, False), ("n2",), "gate_up", 2 * n * f),
                _f(elementwise_op(f"{mlp}.act", "activation", n * f, n * f, run, what="silu"), ("gate_up",), "act",
                   n * f),
                _f(elementwise_op(f"{mlp}.gate", "activation", 2 * n * f, n * f, run, what="silu(gate x) * up x"),
                   ("act", "gate_up"), "prod", n * f),
                _f(linear_op(f"{mlp}.down_proj", "mlp", n, f, d, run, False), ("prod", "gate_up", "n2"), "m", n * d)]
    else:
        ops += _gated_mlp(mlp, B, L, d, f, run, "n2", ("gate_proj", "up_proj", "down_proj"), "silu")
    ops.append(_add(f"{LAYERS}.mlp_residual", B, L, d, run, ("h", "m"), "x"))
    if spec.hidden_state_skip:
        per_layer = sum(op.weights for op in ops if op.blocks == run)  # the layers run have the same weights
        ops.append(weight_op(LAYERS, "skipped_layer", per_layer, blocks=range(spec.layers_run, spec.num_layers)))
    if spec.final_norm and not spec.hidden_state_skip:
        ops.append(_norm("norm", "rms_norm", B, L, d, None, "x", "out", convention))
    elif spec.final_norm:
        ops.append(weight_op("norm", "norm", d))
    return ops


@register("text_encoder", "clip")
def clip_ledger(spec: CLIPTextSpec, B: Number, L: Number, convention: CountingConvention = FVCORE) -> list[Op]:
    """Token and learned position embeddings (max_tokens rows); per layer: LayerNorm, biased q, k, v, out
    projections (4 L d inner; core 2 h L^2 d_kv, causal, counted in full), LayerNorm, fc1 (L d f), quick-GELU
    (x sigmoid(1.702 x): the scaled input, then its sigmoid, beside fc1's output), fc2 (L f d); final LayerNorm;
    the pooled vector (the end-of-text token's state, one row per prompt) through the optional bias-free
    ``text_projection``."""
    layers, d = range(spec.num_layers), spec.d_model
    ops = [_embed("token_embedding", spec.vocab_size, d, B, L, "tok"),
           _embed("position_embedding", spec.max_tokens, d, B, L, "pos", positions=True),
           _add("embeddings", B, L, d, None, ("tok", "pos"), "x", "token + position embedding"),
           _norm(f"{LAYERS}.layer_norm1", "layer_norm", B, L, d, layers, "x", "n1", convention),
           *_attention(spec, f"{LAYERS}.self_attn", B, L, layers, ("q_proj", "k_proj", "v_proj", "out_proj"), "n1",
                       True),
           _add(f"{LAYERS}.attn_residual", B, L, d, layers, ("x", "a"), "h"),
           _norm(f"{LAYERS}.layer_norm2", "layer_norm", B, L, d, layers, "h", "n2", convention),
           *_mlp(f"{LAYERS}.mlp", B, L, d, spec.d_ff, layers, "n2", ("fc1", "fc2"), "quick_gelu", True,
                 B * L * spec.d_ff),
           _add(f"{LAYERS}.mlp_residual", B, L, d, layers, ("h", "m"), "x"),
           _norm("final_layer_norm", "layer_norm", B, L, d, None, "x", "out", convention),
           _f(elementwise_op("pooled", "copy", B * d, B * d, what="end-of-text token's state"), ("out",), "pooled",
              B * d)]
    if spec.projection_dim is not None:  # the pooled vector only: one row per prompt
        ops.append(_f(linear_op("text_projection", "projection", B, d, spec.projection_dim, bias=False), ("pooled",),
                      "projected", B * spec.projection_dim))
    return ops


@register("text_encoder", "bert")
def bert_ledger(spec: BertEncoderSpec, B: Number, L: Number, convention: CountingConvention = FVCORE) -> list[Op]:
    """Word, position (``positions`` rows) and token-type embeddings summed, then a LayerNorm; post-norm layers:
    biased query, key, value, output projections (4 L d inner; bidirectional core 2 h L^2 d_kv), residual
    LayerNorm, intermediate (L d f), erf GELU, output (L f d), residual LayerNorm; no final norm. The pooler:
    tanh(Linear(d, d)) of the first token, one row per prompt (BertModel runs it even where it goes unused)."""
    layers, d, f = range(spec.num_layers), spec.d_model, spec.d_ff
    ops = [_embed("word_embeddings", spec.vocab_size, d, B, L, "tok"),
           _embed("position_embeddings", spec.positions, d, B, L, "pos", positions=True),
           _add("embeddings.position", B, L, d, None, ("tok", "pos"), "tok_pos", "word + position embedding"),
           _embed("token_type_embeddings", spec.type_vocab_size, d, B, L, "typ", positions=True),
           _add("embeddings.token_type", B, L, d, None, ("tok_pos", "typ"), "emb", "+ token-type embedding"),
           _norm("embedding_norm", "layer_norm", B, L, d, None, "emb", "x", convention),
           *_attention(spec, f"{LAYERS}.attention", B, L, layers, ("query", "key", "value", "output"), "x", True),
           _add(f"{LAYERS}.attention_residual", B, L, d, layers, ("x", "a"), "s1"),
           _norm(f"{LAYERS}.attention_norm", "layer_norm", B, L, d, layers, "s1", "n", convention),
           *_mlp(LAYERS, B, L, d, f, layers, "n", ("intermediate", "output"), "gelu", True),
           _add(f"{LAYERS}.output_residual", B, L, d, layers, ("n", "m"), "s2"),
           _norm(f"{LAYERS}.output_norm", "layer_norm", B, L, d, layers, "s2", "x", convention, ("n",))]
    if spec.pooler:
        ops += [_f(linear_op("pooler", "projection", B, d, d), ("x",), "pooled", B * d),
                _f(elementwise_op("pooler.tanh", "activation", B * d, B * d, what="tanh"), ("pooled",), "tanh", B * d)]
    return ops


def text_encoder_ledger(spec: TextEncoderSpec, tokens: Number, batch: Number = 1,
                        convention: CountingConvention = FVCORE) -> list[Op]:
    """The ledger of one encoder forward over ``batch`` prompts of ``tokens`` tokens, by ``spec.kind`` (the
    builder registered for it). Scalar shapes are memoised (specs and ops are immutable): planners ask for the
    same encoder at the same length many times."""
    if type(tokens) is int and type(batch) is int:
        return list(_cached_ledger(spec, tokens, batch, convention))
    return _build(spec, tokens, batch, convention)


def _build(spec: TextEncoderSpec, tokens: Number, batch: Number, convention: CountingConvention) -> list[Op]:
    return lookup("text_encoder", spec.kind)(spec, batch, tokens, convention)


@lru_cache(maxsize=256)
def _cached_ledger(spec: TextEncoderSpec, tokens: int, batch: int, convention: CountingConvention
                   ) -> tuple[Op, ...]:
    return tuple(_build(spec, tokens, batch, convention))
