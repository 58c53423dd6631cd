"""The saved-activations evaluator: bytes autograd keeps for backward, read from the ledger's ``Saved`` records.

Policies: activation checkpointing ``none``; ``selective`` (every attention core recomputed: its log-sum-exp or
probabilities are not kept, nor what only a kept core keeps); ``full`` (the DiT's blocks keep only their inputs,
recomputing the rest; outside the blocks nothing changes). Attention kernels: ``fused`` cores keep the
log-sum-exp (fp32, one per query and head), ``materialized`` ones their probabilities (one per score).

Items are (elements x bytes per element): activations in ``act_bytes`` (2 for bf16, 4 for fp32); norm statistics
and the log-sum-exp stay fp32 (``stat_bytes`` = 4) in mixed precision; int64 is 8 bytes.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal

from sora_compute.ledger.dit import DiTShape, dit_ledger
from sora_compute.ledger.ops import Op, Saved
from sora_compute.specs import DiTSpec

__all__ = ["ActivationDtypes", "Checkpointing", "AttentionKernel", "SavedActivations", "saved_items", "dit_saved",
           "dit_block_saved"]

Checkpointing = Literal["none", "selective", "full"]
AttentionKernel = Literal["fused", "materialized"]
BLOCKS = "blocks.{i}."  # the DiT's transformer blocks: what full checkpointing wraps


@dataclass(frozen=True)
class ActivationDtypes:
    act_bytes: int = 2  # bf16 activations
    stat_bytes: int = 4  # fp32 norm statistics and log-sum-exp


def _bytes(s: Saved, dt: ActivationDtypes) -> int:
    return s.numel * {"act": dt.act_bytes, "stat": dt.stat_bytes, "int64": 8}[s.dtype]


def _kept(s: Saved, checkpointing: Checkpointing, kernel: AttentionKernel) -> bool:
    recompute = checkpointing == "selective"
    return {"always": True, "full": checkpointing == "full", "fused": kernel == "fused" and not recompute,
            "materialized": kernel == "materialized" and not recompute,
            "core_input": kernel == "fused" or recompute}[s.when]


def _core(op: Op, kernel: AttentionKernel, dt: ActivationDtypes) -> tuple[str, int]:
    """What an attention core keeps beyond q, k, v and its output: log-sum-exp or probabilities."""
    g, h, q, k = (op.dims[x] for x in ("groups", "heads", "q_len", "k_len"))
    if kernel == "materialized":
        return "attention probabilities", g * h * q * k * dt.act_bytes
    math = op.dims.get("math", 0)
    if not (isinstance(math, int) and not math):  # run unfused by the code (STDiT3): the fp32 softmax output and,
        # with 16-bit activations, its cast back (the second matmul's input)
        probs = g * h * q * k * (4 + (dt.act_bytes if dt.act_bytes < 4 else 0))
        return "attention probabilities", math * probs + (1 - math) * g * h * q * dt.stat_bytes
    return "attention log-sum-exp", g * h * q * dt.stat_bytes


def saved_items(ops: Iterable[Op], checkpointing: Checkpointing = "none", kernel: AttentionKernel = "fused",
                dt: ActivationDtypes = ActivationDtypes(), every_instance: bool = True) -> dict[str, int]:
    """Bytes kept for backward by the ops (every instance, or one instance of each with ``every_instance`` off),
    summed per item name."""
    out: dict[str, int] = {}

    def add(name: str, nbytes: int, op: Op) -> None:
        out[name] = out.get(name, 0) + nbytes * (op.instances if every_instance else 1)

    for op in ops:
        wrapped = checkpointing == "full" and op.path.startswith(BLOCKS)
        for s in op.saved:
            if wrapped:
                if s.block_input:
                    add("block input (kept for recomputation)", _bytes(s, dt), op)
            elif _kept(s, checkpointing, kernel):
                add(s.what, _bytes(s, dt), op)
        if op.op == "sdpa" and checkpointing != "selective" and not wrapped:
            add(*_core(op, kernel, dt), op)
    return {k: v for k, v in out.items() if v}


@dataclass(frozen=True)
class SavedActivations:
    """Saved-for-backward bytes of a whole DiT: per block (by block mode) and outside the blocks."""

    blocks: dict[str, dict[str, int]]  # block mode -> item -> bytes (one block of that mode)
    block_counts: dict[str, int]
    outside: dict[str, int] = field(default_factory=dict)

    @property
    def per_block_bytes(self) -> dict[str, int]:
        return {k: sum(v.values()) for k, v in self.blocks.items()}

    @property
    def blocks_bytes(self) -> int:
        return sum(self.per_block_bytes[k] * n for k, n in self.block_counts.items())

    @property
    def total_bytes(self) -> int:
        return self.blocks_bytes + sum(self.outside.values())


def _shape(spec: DiTSpec, grid: tuple[int, int, int], text_tokens: int, batch: int) -> DiTShape:
    return DiTShape(batch, *grid, text_tokens if spec.text_conditioned else 0)


def dit_saved(spec: DiTSpec, grid: tuple[int, int, int], text_tokens: int = 0, batch: int = 1,
              checkpointing: Checkpointing = "none", kernel: AttentionKernel = "fused",
              dt: ActivationDtypes = ActivationDtypes()) -> SavedActivations:
    """Saved-for-backward bytes of one DiT forward on a (T, H, W) token grid: embedders, blocks, final layer."""
    ops = dit_ledger(spec, _shape(spec, grid, text_tokens, batch))
    counts: dict[str, int] = {}
    for mode, run in spec.block_schedule():
        counts[mode] = counts.get(mode, 0) + len(run)
    blocks = {mode: saved_items([op for op in ops if op.blocks == run and op.path.startswith(BLOCKS)],
                                checkpointing, kernel, dt, every_instance=False)
              for mode, run in reversed(spec.block_schedule())}  # a mode's runs keep the same items per block
    outside = saved_items([op for op in ops if not op.path.startswith(BLOCKS)], checkpointing, kernel, dt)
    return SavedActivations(blocks, counts, outside)


def dit_block_saved(spec: DiTSpec, grid: tuple[int, int, int], text_tokens: int = 0, batch: int = 1,
                    mode: str = "full", checkpointing: Checkpointing = "none", kernel: AttentionKernel = "fused",
                    dt: ActivationDtypes = ActivationDtypes()) -> dict[str, int]:
    """Bytes one DiT block of ``mode`` saves for backward, by item (its input included: the previous block's
    output; the conditioning vector and text tokens, shared by all blocks, are counted once in ``dit_saved``)."""
    return dit_saved(spec, grid, text_tokens, batch, checkpointing, kernel, dt).blocks[mode]
