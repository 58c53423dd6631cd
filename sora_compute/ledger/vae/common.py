"""Op factories and blocks the 3D VAE families share (reference_model/vae/common.py).

Shapes are (T, H, W) per sample (``Shape``, whose ``positions`` = T H W is computed once: an array in sweeps); B is
the batch. Every op carries its weights (parameter elements, biases included), so a VAE's parameters are a sum over
its ledger; a module that runs twice (a chunked encoder, a wavelet reused) owns its weights in its first op only.
A kt x 3 x 3 convolution with stride s keeps (T - 1) // s_t + 1 frames and (H - 1) // s + 1 rows whether causal
(front padding kt - 1) or not (symmetric padding kt // 2, kt odd).
"""

from __future__ import annotations

from collections.abc import Callable

from sora_compute.ledger.formulas import Number, upsample_linear_macs, upsample_nearest_macs
from sora_compute.ledger.ops import Flow, Op, attention_op, linear_op, norm_op, revise

__all__ = [
    "Shape",
    "K3",
    "Flows",
    "conv",
    "norm",
    "nearest",
    "trilinear",
    "gn_conv_resblock",
    "single_head_attention",
    "repeated",
    "prefixed",
    "disowned",
    "chunks",
    "skip",
    "per_chunk",
    "steps",
    "around",
    "many",
    "flows_of",
]

K3 = (3, 3, 3)
Flows = Flow | tuple[Flow, ...] | None  # an op's dataflow: one step, several, or none


class Shape(tuple[Number, Number, Number]):
    """(T, H, W) of one sample, with ``positions`` = T * H * W computed once (it is an array in sweeps)."""

    positions: Number

    def __new__(cls, dims: tuple[Number, Number, Number]) -> Shape:
        obj = super().__new__(cls, dims)
        obj.positions = dims[0] * dims[1] * dims[2]
        return obj


def conv(path: str, B: Number, shape: Shape, out: Shape, c_in: int, c_out: int, kernel: tuple[int, ...],
         kind: str = "conv", op: str = "conv3d", bias: bool = True, owns: bool = True,
         blocks: range | None = None, flow: Flows = None, pad_depth: int = 0) -> Op:
    """A convolution from ``shape`` to ``out`` positions: B x out positions x c_in x c_out x kernel volume MACs (2D
    convolutions run per frame: T H W positions too); weights c_in x c_out x volume (+ c_out biases), none when the
    module is not ``owns``-ed here (a second call, or fixed buffers). Dims as ``ledger.ops.conv_op`` gives them (c_in,
    c_out, kernel_volume, voxels = B x output positions, in_voxels), which the time model matches against its
    convolution tables, and what the library sees, by which it chooses an algorithm: ``batch``, ``in_size`` (the
    input's two sizes after batch and channels; frames padded by ``pad_depth`` before the call, a causal conv's front
    padding), ``kernel``."""
    volume = 1
    for k in kernel:
        volume *= k
    cv = c_in * c_out * volume
    inp, outp = B * shape.positions, B * out.positions
    T, H, W = shape
    batch, in_size = (B * T, (H, W)) if len(kernel) == 2 else (B, (T + pad_depth, H))
    return Op(path, kind, op, cv * outp, blocks, c_in * inp + cv + c_out * outp,
              (cv + (c_out if bias else 0)) if owns else 0,
              {"c_in": c_in, "c_out": c_out, "kernel_volume": volume, "voxels": outp, "in_voxels": inp,
               "batch": batch, "in_size": in_size, "kernel": kernel}, (), flow)


def norm(path: str, op: str, B: Number, c: int, shape: Shape, affine: bool = True,
         blocks: range | None = None, flow: Flows = None) -> Op:
    """GroupNorm / LayerNorm / RMSNorm over c channels at every position; an affine norm owns its weights (GroupNorm
    and LayerNorm 2c, RMSNorm c)."""
    return norm_op(path, op, c * B * shape.positions, affine, c if affine else 0, blocks, flow=flow)


def nearest(path: str, B: Number, c: int, shape: Shape, out: Shape, flow: Flows = None) -> Op:
    """Nearest up-sampling of c channels to ``out``: 1 per output element."""
    n = c * B * out.positions
    return Op(path, "resample", "upsample", upsample_nearest_macs(n), None, c * B * shape.positions + n, 0, None, (),
              flow)


def trilinear(path: str, B: Number, c: int, shape: Shape, out: Shape) -> Op:
    """Trilinear up-sampling to ``out``: 8 per output element."""
    n = c * B * out.positions
    return Op(path, "resample", "upsample", upsample_linear_macs(n, 8), None, c * B * shape.positions + n)


def gn_conv_resblock(prefix: str, B: Number, shape: Shape, c_in: int, c_out: int, convs: tuple[str, str, str],
                     kernel: tuple[int, ...] = K3, bias: bool = True, shortcut: str = "conv",
                     blocks: range | None = None, flows: tuple[Flows, ...] = (None,) * 5, pad_depth: int = 0
                     ) -> list[Op]:
    """GroupNorm, conv, GroupNorm, conv; a 1x1(x1) shortcut when widths differ (``convs``: the paths of the two convs
    and the shortcut, as each code base names them; ``shortcut='linear'``: run as a matmul on the channel-last
    tensor, the same MACs and weights); ``flows``: the five ops' dataflow, in that order; ``pad_depth``: frames the
    two convs pad their input with before the call, see ``conv``)."""
    c1, c2, short = convs
    op = "conv2d" if len(kernel) == 2 else "conv3d"
    ops = [norm(f"{prefix}.norm1", "group_norm", B, c_in, shape, blocks=blocks, flow=flows[0]),
           conv(f"{prefix}.{c1}", B, shape, shape, c_in, c_out, kernel, op=op, bias=bias, blocks=blocks,
                flow=flows[1], pad_depth=pad_depth),
           norm(f"{prefix}.norm2", "group_norm", B, c_out, shape, blocks=blocks, flow=flows[2]),
           conv(f"{prefix}.{c2}", B, shape, shape, c_out, c_out, kernel, op=op, bias=bias, blocks=blocks,
                flow=flows[3], pad_depth=pad_depth)]
    if c_in != c_out:
        if shortcut == "linear":
            ops.append(linear_op(f"{prefix}.{short}", "conv", B * shape.positions, c_in, c_out, blocks,
                                 flow=flows[4]))
        else:
            ops.append(conv(f"{prefix}.{short}", B, shape, shape, c_in, c_out, (1,) * len(kernel), op=op, bias=bias,
                            blocks=blocks, flow=flows[4]))
    return ops


def single_head_attention(prefix: str, B: Number, shape: Shape, c: int, names: tuple[str, str, str, str],
                          groups: Number, seq: Number, flows: tuple[Flows, ...] = (None,) * 6) -> list[Op]:
    """GroupNorm, q, k, v projections (1x1x1 convs or Linears: c x c + c weights each), single-head SDPA over
    ``groups`` sequences of ``seq`` positions (the profilers count the full scores: 2 seq^2 c each), output
    projection (``names``: the four projections' paths; ``flows``: the six ops' dataflow, in order)."""
    rows = B * shape.positions
    q, k, v, o = names
    return [norm(f"{prefix}.norm", "group_norm", B, c, shape, flow=flows[0]),
            *(linear_op(f"{prefix}.{n}", "vae_attention", rows, c, c, flow=f)
              for n, f in zip((q, k, v), flows[1:4], strict=True)),
            attention_op(prefix, "vae_attention", groups, 1, seq, seq, c, flow=flows[4]),
            linear_op(f"{prefix}.{o}", "vae_attention", rows, c, c, flow=flows[5])]


def repeated(block: Callable[[str, int, range | None], list[Op]], prefix: str, c_in: int, c: int,
             n: int) -> list[Op]:
    """``n`` blocks at ``prefix``.0 .. n-1, the first c_in -> c and the rest c -> c (``block(path, c_in, blocks)``
    builds one of width c): one record per op for each run of equal widths (``blocks``), the first on its own when it
    changes the width."""
    if not n:
        return []
    if c_in == c:
        return block(prefix + ".{i}", c, range(n))
    return block(f"{prefix}.0", c_in, None) + (block(prefix + ".{i}", c, range(1, n)) if n > 1 else [])


def prefixed(prefix: str, ops: list[Op]) -> list[Op]:
    """``ops`` under the module ``prefix`` (a sub-VAE's paths)."""
    return [Op(f"{prefix}.{o.path}", o.kind, o.op, o.macs, o.blocks, o.elements, o.weights, o.dims, o.saved, o.flow)
            for o in ops]


def disowned(ops: list[Op]) -> list[Op]:
    """``ops`` of a module run again: the same work, no weights of their own (the first run owns them)."""
    return [Op(o.path, o.kind, o.op, o.macs, o.blocks, o.elements, 0, o.dims, o.saved, o.flow) for o in ops]


def chunks(total: Number, size: int | None) -> tuple[Number, Number]:
    """(whole chunks, the remainder) of ``total`` in chunks of ``size`` (None: one chunk of everything)."""
    if size is None:
        return 0 * total, total
    return total // size, total % size


def skip(n: Number) -> bool:
    """A scalar zero count: leave its ops out (arrays keep them, with zero MACs where the count is zero)."""
    return not hasattr(n, "shape") and n == 0


def per_chunk(chunk: Callable[[Shape, Number], list[Op]], size: int | None, shape: Shape, B: Number) -> list[Op]:
    """``chunk(shape, batch)`` on T // size whole chunks of ``size`` frames (a batch of B x whole) and on the
    remainder chunk of T % size frames, each on its own; the module's weights are owned by the first chunk run."""
    T, H, W = shape
    whole, rest = chunks(T, size)
    ops: list[Op] = []
    if not skip(whole):
        ops += chunk(Shape((size or 0, H, W)), B * whole)
    if not skip(rest):
        ops += disowned(chunk(Shape((rest, H, W)), B)) if ops else chunk(Shape((rest, H, W)), B)
    return ops


def many(n: Number) -> bool:
    """More than one (frames, rows): a dataflow that differs for one. Arrays, in sweeps: the dataflow of n > 1."""
    return hasattr(n, "shape") or n > 1


def steps(f: Flows) -> tuple[Flow, ...]:
    """An op's dataflow as a tuple of steps (none, one or several)."""
    return () if f is None else (f,) if isinstance(f, Flow) else f


def around(op: Op, before: tuple[Flow, ...] = (), after: tuple[Flow, ...] = ()) -> Op:
    """``op`` with steps run before and after its own (what its caller makes or assembles around the call)."""
    return revise(op, flow=(*before, *steps(op.flow), *after))


def flows_of(ops: list[Op], one: list[Op]) -> list[Op]:
    """``ops`` (the work of every call of a module run several times, e.g. on a batch of chunks) with the dataflow of
    ``one`` call (the same ops built for one call's batch): the tensors one call makes are what live at once."""
    return [revise(o, flow=f.flow) for o, f in zip(ops, one, strict=True)]
