"""Rotary position embedding (RoPE) of a DiT's queries and keys, as the reference applies it
(reference_model/layers.py ``apply_rope``: diffusers' eager ``apply_rotary_emb(use_real=True)``).

Elementwise: no MACs under fvcore's or FlopCounterMode's rules (neither counts neg, stack, mul, add, cat, cos or sin).
Per rotated q or k of n elements, the eager steps are: rotate-half (-x_imag, n/2 elements, then a stack of n), x cos
and rotate_half(x) sin (fp32, n each), their sum (n) and, for 16-bit activations, casts around them. The op records
the minimum traffic (x and the two tables read, the result written); what the eager steps move beyond it is in
``data/eager_ops.yaml`` (entry ``x cos + rotate_half(x) sin (fp32)``). The tables (rows x head_dim fp32, cos and sin)
are built once per forward and read by every block; autograd keeps them (the products' other operand), and the core
keeps the rotated q and k instead of their inputs.
"""

from __future__ import annotations

from sora_compute.ledger.formulas import Number
from sora_compute.ledger.ops import Flow, Op, Saved, elementwise_op, keep, revise
from sora_compute.specs import DiTSpec

__all__ = ["ROPE", "ROPE_RET", "TABLE", "uses_rope", "table_rows", "rope_table", "rotate", "rotated_saved"]

ROPE = "x cos + rotate_half(x) sin (fp32)"
#: rotary-embedding-torch 0.5.3's rotate_queries_or_keys (STDiT3, ``DiTSpec.rope_form``): in the activation dtype, each
#: product times the scale 1.0, and a concatenation of the (empty) unrotated channels around the result
ROPE_RET = "t cos + rotate_half(t) sin (rotary-embedding-torch)"
TABLE = "rope"  # the dataflow name of the tables (held by the caller: a block reads them, liveness counts them once)


def uses_rope(spec: DiTSpec, mode: str) -> bool:
    """Whether blocks of ``mode`` rotate q and k (temporal RoPE: only the temporal blocks)."""
    return spec.rope != "none" and (spec.rope != "temporal" or mode == "temporal")


def table_rows(spec: DiTSpec, T: Number, N: Number, L: Number) -> Number:
    """Rows of each table: T (temporal), N video tokens, or L + N (a joint sequence's text rows at position 0)."""
    if spec.rope == "temporal":
        return T
    return N + (L if spec.rope == "all" else 0)


def rope_table(spec: DiTSpec, T: Number, N: Number, L: Number) -> list[Op]:
    """The cos and sin tables, built once per forward (rows x head_dim each, fp32), kept for backward."""
    if spec.rope == "none":
        return []
    n = 2 * table_rows(spec, T, N, L) * spec.head_dim
    what = "RoPE tables, " + ("1D" if spec.rope == "temporal" else "3D, text rows" if spec.rope == "all" else "3D")
    return [keep(elementwise_op("rope_table", "position", 0, n, what=what),
                 Saved("RoPE cos and sin tables (fp32)", n, "stat"))]


def rotate(path: str, rows: Number, d: int, tab: Number, head_dim: int, blocks: range | None, x: str,
           spared: Number | None = None, hold: tuple[str, ...] = (), form: str = "diffusers") -> list[Op]:
    """RoPE of q or k (``x``: rows x d, all heads) read with the tables (``tab`` rows); makes ``path``.

    ``spared`` rows (a joint sequence's text tokens, in front; None: none) are not rotated: the rotated rows go back
    behind them by a concatenation (rows x d). ``hold``: tensors the caller still references until this op ends (q's
    input while k is rotated; ``x`` itself is held to the end). Dataflow of the eager steps: the stack's output beside
    -x_imag, then x cos and rotate_half(x) sin (fp32) beside it, then their sum. ``form="rotary_embedding_torch"``
    (STDiT3; no spared rows): t cos and its product by the scale, rotate_half(t) beside it, its product by sin and the
    scale, their sum, then the concatenation (``ROPE_RET``)."""
    n = (rows if spared is None else rows - spared) * d  # (a structural choice: shapes may be numpy arrays)
    if form == "rotary_embedding_torch":
        op = elementwise_op(path, "position", n + 2 * tab * head_dim, n, blocks, what=ROPE_RET)
        return [revise(op, flow=(Flow((x, TABLE), f"{path}.cos", n, scratch=n),
                                 Flow((x, TABLE), f"{path}.half", n, scratch=n // 2),
                                 Flow((f"{path}.half", TABLE), f"{path}.sin", n, scratch=n),
                                 Flow((f"{path}.cos", f"{path}.sin", x, *hold), f"{path}.sum", n),
                                 Flow((f"{path}.sum", x, *hold), path, n)))]
    op = elementwise_op(path, "position", n + 2 * tab * head_dim, n, blocks, what=ROPE)
    out = path if spared is None else f"{path}.video"
    steps = [Flow((x, TABLE), f"{path}.half", n, scratch=n // 2),
             Flow((x, TABLE), f"{path}.cos", n, dtype="stat"),
             Flow((f"{path}.half", TABLE), f"{path}.sin", n, dtype="stat"),
             Flow((f"{path}.cos", f"{path}.sin", f"{path}.half", x, *(hold if spared is None else ())), out, n)]
    ops = [revise(op, flow=tuple(steps))]
    if spared is not None:
        ops.append(revise(elementwise_op(f"{path}.cat", "copy", rows * d, rows * d, blocks,
                                         what="text tokens and rotated video tokens"),
                          flow=Flow((x, out, *hold), path, rows * d)))
    return ops


def rotated_saved(rows: Number, d: int, normed: bool = False) -> Saved:
    """What the core keeps of rotated q and k: both (2 rows x d), or, in a materialised core, them or contiguous
    copies of them. After q/k norms they count always; without norms a materialised core keeps no view of qkv but v
    (or a copy of it), so the qkv record stands for them there: they count when a fused kernel or a recomputed core
    keeps its inputs (measured with saved_tensors_hooks, tests/test_memory.py)."""
    return Saved("RoPE: rotated q, k (core inputs)", 2 * rows * d, when="always" if normed else "core_input")
