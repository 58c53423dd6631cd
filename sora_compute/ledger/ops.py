"""Op records: what an architecture computes, as plain data that evaluators read.

A ledger is an ordered tuple of ``Op`` records. Each op is the work of one module (or one elementwise step) at
one module path of the reference model (``{i}`` stands for each block index in ``blocks``, so a 48-block model
is a dozen records whatever its depth). An op carries, per instance:

- ``op``: the operator class (below), which says how counting conventions and evaluators treat it;
- ``macs``: multiply-accumulates by the operator's rule (fvcore's; see ``ledger/formulas.py`` for each equation).
  Norms and resampling are counted by this rule here; a counting convention may drop them (``counted_macs``);
- ``elements``: minimum memory traffic in tensor elements (inputs read + weights read + output written once);
- ``weights``: parameter elements the op owns (weights and biases), so parameter counts are sums over the ledger;
- ``saved``: the tensors autograd keeps for backward when the op runs with gradients (``Saved`` records; the
  attention core's own log-sum-exp or probabilities follow from its dims and the kernel, see evaluate/saved.py);
- ``dims``: the shapes that produced the counts (e.g. ``tokens``, ``fan_in``, ``fan_out`` of a linear;
  ``groups``, ``heads``, ``q_len``, ``k_len``, ``head_dim`` of an attention core), for evaluators that need more
  than totals (time, memory).

Numbers are Python ints (exact, any size) or float64 numpy arrays (vectorised sweeps); nothing here casts to a
fixed-width integer. Records hold no arithmetic of their own beyond ``instances`` and the convention filter.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from sora_compute.ledger.formulas import (
    FVCORE,
    CountingConvention,
    Number,
    attention_elements,
    attention_macs,
    conv_elements,
    conv_macs,
    layer_norm_macs,
    linear_elements,
    linear_macs,
    rms_norm_macs,
)

__all__ = [
    "Op",
    "Saved",
    "Flow",
    "flow",
    "keep",
    "revise",
    "NORM_OPS",
    "RESAMPLE_OPS",
    "UNCOUNTED_OPS",
    "counted_macs",
    "linear_params",
    "linear_op",
    "attention_op",
    "norm_op",
    "elementwise_op",
    "weight_op",
    "conv_op",
]

#: Operator classes a counting convention may leave out (``CountingConvention.norms`` / ``.resampling``).
NORM_OPS = frozenset({"layer_norm", "group_norm", "rms_norm"})
RESAMPLE_OPS = frozenset({"upsample"})
#: Operator classes with no MACs under any convention (neither profiler counts them): they move bytes and take
#: time. ``elementwise``: modulation, gating, residual adds, activations; ``embedding``: a table lookup;
#: ``parameter``: weights the forward holds without a module op of their own.
UNCOUNTED_OPS = frozenset({"elementwise", "embedding", "parameter"})


@dataclass(frozen=True)
class Saved:
    """A tensor an op keeps for backward: ``numel`` elements per op instance of ``dtype`` (``act``: activation
    dtype; ``stat``: fp32 statistics; ``int64``). ``when``: ``always``; ``fused`` / ``materialized``: only with that
    attention kernel and the core not recomputed; ``core_input``: an attention core's input, kept unless a materialised
    core runs without recomputation (it keeps contiguous copies); ``full``: only under full checkpointing (kept for
    recomputation).
    ``block_input``: the input of a checkpointed block, the one tensor full checkpointing keeps."""

    what: str
    numel: Number
    dtype: str = "act"
    when: str = "always"
    block_input: bool = False


class Flow(NamedTuple):
    """An op's dataflow, for liveness: the tensors (local names) it reads and the one it makes.

    ``numel`` elements of ``dtype`` for ``out``; a view (``view_of``) allocates nothing and keeps its base's storage
    alive; an in-place op names no ``out``; ``scratch``: elements the op allocates and frees before it returns
    (temporaries inside a fused module, workspaces), of ``scratch_dtype`` (default ``dtype``: e.g. an attention
    core's fp32 log-sum-exp beside its output, a LayerNorm's fp32 mean and rstd). ``reads`` also names tensors the
    caller still holds while the op runs (a block's input kept for its residual), so they live to its end.

    An op may carry several flows (``Op.flow`` a tuple of them): the steps of one module in order, each making a
    tensor (a conv's output, then the residual sum after it; a copy, a matmul, then the bias add). ``drops``: names
    the caller stops holding when the step ends, though a repeated block reads them (a run whose instance is a chain
    of calls: a call's input is released when that call returns, not at the instance's end). A named tuple:
    ledgers carry one or more per op and are built per estimate, so a record must cost little to make."""

    reads: tuple[str, ...] = ()
    out: str | None = None
    numel: Number = 0
    view_of: str | None = None
    scratch: Number = 0
    dtype: str = "act"
    scratch_dtype: str | None = None
    drops: tuple[str, ...] = ()  # names whose holder lets go when this step ends (see ``ledger_peak``)


@dataclass(frozen=True, init=False)
class Op:
    """The work of one module at ``path`` (``{i}`` stands for each index in ``blocks``), per instance.

    Frozen; its ``__init__`` writes the fields in one step (a frozen dataclass's own sets them one by one, which
    made building a VAE's ledger several times slower: ledgers are built per estimate and per sweep)."""

    path: str
    kind: str  # what the module does: attention, mlp, adaln, patch_embed, conv, norm, ...
    op: str  # operator class: linear, conv3d, sdpa, layer_norm, group_norm, rms_norm, upsample, elementwise, ...
    macs: Number  # per instance, by the operator's rule
    blocks: range | None = None
    elements: Number = 0  # minimum memory traffic per instance, in tensor elements (x bytes per element)
    weights: Number = 0  # parameter elements owned by this op, per instance
    dims: Mapping[str, Any] = field(default_factory=dict, compare=False)
    saved: tuple[Saved, ...] = ()
    flow: Flow | tuple[Flow, ...] | None = None  # one step, or several in order (see ``Flow``)

    def __init__(self, path: str, kind: str, op: str, macs: Number, blocks: range | None = None,
                 elements: Number = 0, weights: Number = 0, dims: Mapping[str, Any] | None = None,
                 saved: tuple[Saved, ...] = (), flow: Flow | tuple[Flow, ...] | None = None) -> None:
        object.__setattr__(self, "__dict__", {
            "path": path, "kind": kind, "op": op, "macs": macs, "blocks": blocks, "elements": elements,
            "weights": weights, "dims": {} if dims is None else dims, "saved": saved, "flow": flow})

    @property
    def instances(self) -> int:
        return 1 if self.blocks is None else len(self.blocks)

    @property
    def total_macs(self) -> Number:
        return self.macs * self.instances

    def paths(self) -> list[str]:
        if self.blocks is None:
            return [self.path]
        return [self.path.format(i=i) for i in self.blocks]


def revise(op: Op, **changes: Any) -> Op:
    """A copy of ``op`` with ``changes`` (one dict update: ``dataclasses.replace`` costs several times more, and
    ledgers are built per estimate)."""
    new = object.__new__(Op)
    object.__setattr__(new, "__dict__", {**op.__dict__, **changes})
    return new


def keep(op: Op, *saved: Saved) -> Op:
    """``op`` that also keeps ``saved`` for backward."""
    return revise(op, saved=op.saved + saved)


def flow(op: Op, reads: str | tuple[str, ...] = (), out: str | None = None, numel: Number = 0,
         view_of: str | None = None, scratch: Number = 0, dtype: str = "act", scratch_dtype: str | None = None) -> Op:
    """``op`` with its dataflow (``reads`` one name or several)."""
    reads = (reads,) if isinstance(reads, str) else reads
    return revise(op, flow=Flow(reads, out, numel, view_of, scratch, dtype, scratch_dtype))


def counted_macs(op: Op, convention: CountingConvention = FVCORE) -> Number:
    """MACs of ``op`` per instance under ``convention``: norms and resampling only when it counts them."""
    if op.op in UNCOUNTED_OPS or (op.op in NORM_OPS and not convention.norms) or (
            op.op in RESAMPLE_OPS and not convention.resampling):
        return 0 * op.macs
    return op.macs


def linear_params(fan_in: int, fan_out: int, bias: bool = True) -> int:
    """Weights of nn.Linear: fan_in x fan_out (+ fan_out biases)."""
    return fan_in * fan_out + (fan_out if bias else 0)


# Op factories: one per operator, each filling in MACs, traffic, weights and dims together.

def linear_op(path: str, kind: str, tokens: Number, fan_in: int, fan_out: int, blocks: range | None = None,
              bias: bool = True, flow: Flow | tuple[Flow, ...] | None = None) -> Op:
    """nn.Linear over ``tokens`` rows: tokens x fan_in x fan_out MACs; weights fan_in x fan_out (+ bias)."""
    return Op(path, kind, "linear", linear_macs(tokens, fan_in, fan_out), blocks,
              linear_elements(tokens, fan_in, fan_out), linear_params(fan_in, fan_out, bias),
              {"tokens": tokens, "fan_in": fan_in, "fan_out": fan_out}, (), flow)


def attention_op(path: str, kind: str, groups: Number, heads: int, q_len: Number, k_len: Number, head_dim: int,
                 blocks: range | None = None, flow: Flow | tuple[Flow, ...] | None = None) -> Op:
    """scaled_dot_product_attention core (scores and weighted sum) of ``groups`` independent sequences."""
    return Op(path, kind, "sdpa", attention_macs(groups, heads, q_len, k_len, head_dim), blocks,
              attention_elements(groups, heads, q_len, k_len, head_dim), 0,
              {"groups": groups, "heads": heads, "q_len": q_len, "k_len": k_len, "head_dim": head_dim}, (), flow)


def norm_op(path: str, op: str, numel: Number, affine: bool, width: int, blocks: range | None = None,
            bias: bool = True, convention: CountingConvention = FVCORE,
            flow: Flow | tuple[Flow, ...] | None = None) -> Op:
    """layer_norm / group_norm / rms_norm over ``numel`` elements (each read and written once); an affine norm
    owns ``width`` weights (+ ``width`` biases unless ``bias`` is off or the op is an RMSNorm)."""
    macs = (rms_norm_macs(numel, affine, convention) if op == "rms_norm"
            else layer_norm_macs(numel, affine, convention))
    weights = (width * (1 if op == "rms_norm" or not bias else 2)) if affine else 0
    return Op(path, "norm", op, macs, blocks, 2 * numel, weights, {"numel": numel, "width": width}, (), flow)


def elementwise_op(path: str, kind: str, read: Number, written: Number, blocks: range | None = None,
                   weights: Number = 0, what: str = "") -> Op:
    """Elementwise work (modulation, gating, residual add, activation): no MACs under either profiler's
    convention; ``read`` + ``written`` elements of traffic."""
    return Op(path, kind, "elementwise", 0 * (read + written), blocks, read + written, weights,
              {"read": read, "written": written, "what": what})


def weight_op(path: str, kind: str, weights: Number, op: str = "parameter", blocks: range | None = None,
              read: Number = 0) -> Op:
    """Parameters the forward holds outside a counted op: an embedding table (``op='embedding'``, ``read`` rows
    gathered) or a bare parameter (learned frequencies, a modulation table)."""
    return Op(path, kind, op, 0 * weights, blocks, read, weights, {"read": read})


def conv_op(path: str, kind: str, batch: Number, in_positions: Number, out_positions: Number, c_in: int, c_out: int,
            kernel_volume: int, blocks: range | None = None, bias: bool = True, op: str = "conv3d") -> Op:
    """A convolution (``conv3d``; ``conv2d`` run per frame) of ``batch`` samples from ``in_positions`` to
    ``out_positions`` positions each; dims ``c_in``, ``c_out``, ``kernel_volume`` and ``voxels`` (= batch x output
    positions), which the time model matches against its convolution tables."""
    return Op(path, kind, op, conv_macs(batch, out_positions, c_in, c_out, kernel_volume), blocks,
              conv_elements(batch, in_positions, out_positions, c_in, c_out, kernel_volume),
              c_in * c_out * kernel_volume + (c_out if bias else 0),
              {"c_in": c_in, "c_out": c_out, "kernel_volume": kernel_volume, "voxels": batch * out_positions,
               "in_voxels": batch * in_positions})
