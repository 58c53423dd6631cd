"""family='stepvideo': Step-Video-T2V's Video-VAE v2 (reference_model/vae/stepvideo.py): GroupNorm Resnet3DBlocks, a
2D or causal 3D stride-2 conv at each level boundary, mid Resnet / causal attention / Resnet, the v2 pixel-unshuffle
head (32 z channels); frames encoded in chunks of ``chunk_frames``, each causal on its own.

Dataflow (``Flow`` records, for the liveness evaluator without gradients), following the reference code, which runs
on channel-last tensors. ``conv_channels_last``: 3D convolutions of channel-last inputs return channel-last outputs
(cuDNN; PyTorch's CPU conv3d only for B > 1), making the code's channel-last copies of conv outputs views (the
public peaks assume it). The per-frame GroupNorm (``_frame_norm``) copies its input to contiguous frames unless they
already are, holds its per-frame statistics, then SiLU; a zero-padded norm writes into a (T + 2)-frame buffer; a
causal conv pads a copy of its input (F.pad, scratch); a 1x1x1 conv is a matmul on F.pad's copy (and, on a strided
clone, a copy to rows); a ResNet copies its input channel-last (the encoder inside the block, the decoder in its level
before the call), computes its shortcut after conv1; the attention holds the normalised input and q, k, v to its
residual sum; a level's input is held until the level (and its resample) returns, so its first ResNet is a record of
its own and the rest a run. Chunks are ledger structure: the records of all whole chunks carry one chunk's dataflow
(``flows_of``) on top of the earlier chunks' outputs; every chunk's output is kept until all are concatenated.
"""

from __future__ import annotations

from collections.abc import Callable

from sora_compute.ledger.formulas import Number
from sora_compute.ledger.ops import Flow, Op
from sora_compute.ledger.registry import register
from sora_compute.ledger.vae.common import (
    K3,
    Flows,
    Shape,
    around,
    chunks,
    conv,
    disowned,
    flows_of,
    gn_conv_resblock,
    many,
    nearest,
    norm,
    single_head_attention,
    skip,
    steps,
)
from sora_compute.specs.vae import STEPVIDEO_HEAD, StepVideoVAE

__all__ = ["StepVideoLedger", "encoder_ledger", "decoder_ledger"]

_NAMES = ("conv1.conv", "conv2.conv", "nin_shortcut")


def _padded(B: Number, shape: Shape) -> Number:
    """Elements per channel of a 3x3x3 conv's padded copy: (T + 2, H + 2, W + 2)."""
    T, H, W = shape
    return B * (T + 2) * (H + 2) * (W + 2)


def _frame_norm(x: str, y: str, B: Number, c: int, shape: Shape, g: int, silu: bool, strided: bool,
                held: tuple[str, ...] = ()) -> tuple[Flow, ...]:
    """sv_frame_norm of ``x`` (held by the caller; ``held`` read too): a contiguous copy of its frames (none where
    they already are: one frame of a conv output, ``strided``, or 1 x 1 frames), GroupNorm with its mean and rstd per
    (frame, group), SiLU; makes ``y``."""
    T, H, W = shape
    n = c * B * shape.positions
    copy = many(T) if strided else many(H * W)
    src = "nc" if copy else x
    flows = ((Flow((x,), "nc", n),) if copy else ()) + (Flow((src,), "nn" if silu else y, n, None, 2 * g * T * B),)
    if silu:
        flows += (Flow(("nn",), y, n),)
    return flows[:-1] + (flows[-1]._replace(reads=(*flows[-1].reads, x, *held)),)


def _norm_pad(x: str, B: Number, c: int, shape: Shape, g: int, strided: bool,
              held: tuple[str, ...] = ()) -> tuple[Flow, ...]:
    """sv_norm_zero_pad: the (T + 2)-frame buffer ``buf``, then SiLU(norm(x)) copied into it (and let go)."""
    T, H, W = shape
    return (Flow((), "buf", c * B * (T + 2) * H * W), *_frame_norm(x, "ns", B, c, shape, g, True, strided, held))


def _linear(x: str, y: str, n_in: Number, n_out: Number, rows: bool = False, held: tuple[str, ...] = ()
            ) -> tuple[Flow, ...]:
    """A 1x1x1 conv as a matmul: F.pad's copy of ``x``, a copy to rows (``rows``: F.pad's copy is a strided clone),
    the output ``y``."""
    flat = (Flow(("lp",), "lf", n_in),) if rows else ()
    return (Flow((x,), "lp", n_in), *flat, Flow(("lp", *(("lf",) if rows else ()), x, *held), y, n_out))


def sv_resnet(prefix: str, B: Number, shape: Shape, c_in: int, c_out: int, g: int, clc: bool,
              blocks: range | None = None, x: str = "x", y: str = "x", held: tuple[str, ...] = (),
              copy: str | None = None) -> list[Op]:
    """Resnet3DBlock (per-frame GroupNorm, causal 3x3x3 conv, twice; a 1x1x1 nin_shortcut when widths differ, run as
    a matmul on the channel-last tensor). Reads ``x`` (and ``held``), makes ``y``. ``copy``: the input is first copied
    channel-last, by the block (``inner``: let go once the shortcut is made) or by its caller (``outer``: held to the
    block's end); None: it already is."""
    rows = B * shape.positions
    n_in, n_out = c_in * rows, c_out * rows
    src = "xc" if copy else x
    norm1 = ((Flow((x,), "xc", n_in),) if copy else ()) + _norm_pad(src, B, c_in, shape, g, False)
    conv1: tuple[Flow, ...] = (Flow(("buf",), "h", n_out),)
    res = src
    if c_in != c_out:  # the shortcut runs before norm2: its dataflow is carried by conv1's record
        conv1 += _linear(src, "s", n_in, n_out)
        res = "s"
    kept = ("xc",) if copy == "outer" else ()
    flows: tuple[Flows, ...] = (norm1, conv1, _norm_pad("h", B, c_out, shape, g, not clc),
                                Flow(("buf", res, x, *kept, *held), y, n_out), None)
    return gn_conv_resblock(prefix, B, shape, c_in, c_out, _NAMES, shortcut="linear", blocks=blocks, flows=flows)


def sv_level(prefix: str, B: Number, shape: Shape, c_in: int, c: int, n: int, g: int, clc: bool, x: str, y: str,
             cl: bool, copy: str) -> list[Op]:
    """``n`` Resnet3DBlocks: the first c_in -> c on the level input ``x`` (channel-last if ``cl``), the rest c -> c
    (one record per op, blocks 1 .. n-1; their inputs are conv outputs) while the caller holds ``x``; the output is
    ``y``. ``copy``: who copies a block's input channel-last (``inner``: the block, ``outer``: the level)."""
    if not n:
        return []
    ops = sv_resnet(f"{prefix}.0", B, shape, c_in, c, g, clc, x=x, y=y, copy=None if cl else copy)
    if n > 1:
        ops += sv_resnet(prefix + ".{i}", B, shape, c, c, g, clc, range(1, n), y, y, (x,), None if clc else copy)
    return ops


def _attention_flows(x: str, y: str, B: Number, c: int, shape: Shape, g: int, cl: bool) -> tuple[Flows, ...]:
    """A channel-last copy of ``x`` (unless ``cl``), its norm; q, k, v on F.pad's strided clones (copied to rows
    unless B T = 1); the core's output and fp32 log-sum-exp (the norm let go); proj_out, the residual sum."""
    T = shape[0]
    n = c * B * shape.positions
    src = x if cl else "xc"
    pre = () if cl else (Flow((x,), "xc", n),)
    qkv = tuple(_linear("hn", name, n, n, many(B * T)) for name in "qkv")
    return ((*pre, *_frame_norm(src, "hn", B, c, shape, g, False, False)), *qkv,
            Flow(("q", "k", "v", "hn"), "o", n, None, B * shape.positions, "act", "stat"),
            _linear("o", y, n, n, held=("q", "k", "v", src, x)))


def sv_mid(prefix: str, B: Number, shape: Shape, c: int, g: int, clc: bool, x: str, y: str, cl: bool,
           held: tuple[str, ...]) -> list[Op]:
    """Resnet; per-frame GroupNorm, 1x1x1 q, k, v, single-head causal SDPA over the n = T H W positions (the
    profilers count the full n x n scores: 2 n^2 c), 1x1x1 proj_out; Resnet. Reads ``x`` (channel-last if ``cl``;
    ``held`` kept to the end), makes ``y``; the attention's output is channel-last."""
    return (sv_resnet(f"{prefix}.block_1", B, shape, c, c, g, clc, x=x, y="m1", copy=None if cl else "inner")
            + single_head_attention(f"{prefix}.attn_1", B, shape, c, ("q", "k", "v", "proj_out"), B, shape.positions,
                                    _attention_flows("m1", "m2", B, c, shape, g, clc))
            + sv_resnet(f"{prefix}.block_2", B, shape, c, c, g, clc, x="m2", y=y, held=(x, *held)))


def encoder_chunk(spec: StepVideoVAE, shape: Shape, B: Number, clc: bool = True, out: str = "o",
                  copied: bool = False) -> list[Op]:
    """One chunk of T frames: a 2D boundary maps H -> H / 2 per frame (stride-2 3x3 conv after a zero row and
    column), a 3D one (T, H) -> ((T - 1) // 2 + 1, H / 2) (causal stride-2 3x3x3 conv); the head's conv runs at the
    levels' grid, its pixel-unshuffle gives ((T + 1) // 2, H / 2), conv_out runs there. Channel averages are free.
    Dataflow: the chunk copied contiguous first (``copied``: one of several, held to the end); makes ``out``."""
    chans, factors, z, g = spec.block_out_channels, spec.level_temporal_factors, spec.latent_channels, \
        spec.norm_groups
    stem = spec.stem_channels or chans[0]
    rows = B * shape.positions
    chunk = ("chunk",) if copied else ()
    ops = [conv("conv_in.conv", B, shape, shape, spec.in_channels, stem, K3,
                flow=((Flow((), "chunk", spec.in_channels * rows),) if copied else ())
                + (Flow(chunk, "ci", stem * rows, None, spec.in_channels * _padded(B, shape)),
                   Flow(("ci",), "x", stem * rows)))]
    c_prev, x, cl = stem, "x", True  # conv_in's output is copied channel-last
    for i, c in enumerate(chans):
        h = f"lv{i}" if spec.layers_per_block else x
        ops += sv_level(f"down.{i}.block", B, shape, c_prev, c, spec.layers_per_block, g, clc, x, h, cl, "inner")
        c_prev, cl = c, clc or (i < len(chans) - 1 and factors[i] == 1)  # a 2D conv's output is channel-last
        if i < len(chans) - 1:
            T, H, W = shape
            n = c * B * shape.positions
            if factors[i] > 1:  # causal stride-2 conv on F.pad's copy
                down = Shape(((T - 1) // 2 + 1, H // 2, W // 2))
                flow = Flow((h, x), f"d{i}", c * B * down.positions, None, c * _padded(B, shape))
                ops.append(conv(f"down.{i}.downsample.conv.conv", B, shape, down, c, c, K3, "resample", flow=flow))
            else:  # per frame: a (B T, H, W, C) copy, F.pad's copy (a zero row and column), stride-2 conv
                down = Shape((T, H // 2, W // 2))
                src = h if clc else "fr"
                flows = ((Flow((h,), "fr", n),) if not clc else ()) + (
                    Flow((src, h, x), f"d{i}", c * B * down.positions, None, c * B * T * (H + 1) * (W + 1)),)
                ops.append(conv(f"down.{i}.downsample.conv", B, shape, down, c, c, (3, 3), "resample", "conv2d",
                                flow=flows))
            shape, h = down, f"d{i}"
        x = h
    ops += sv_mid("mid", B, shape, c_prev, g, clc, x, "my", clc, ())
    T, H, W = shape
    n = c_prev * B * shape.positions
    act = "hd" if many(T) else "act"  # an NCDHW copy of the norm's output (a view for one frame)
    ops.append(norm("norm_out", "group_norm", B, c_prev, shape,
                    flow=((Flow(("my",), "my", n),) if not clc else ())  # channel-last copy of the mid's output
                    + _frame_norm("my", "act", B, c_prev, shape, g, True, False)
                    + ((Flow(("act", "my"), "hd", n),) if many(T) else ())))
    head = STEPVIDEO_HEAD * z
    grid = Shape(((T + 1) // 2, H // 2, W // 2))
    frames2 = c_prev * B * 2 * grid[0] * H * W  # F.pad to an even frame count
    ops.append(conv("conv_patchify.conv.conv", B, shape, shape, c_prev, head // 8, K3, "resample",
                    flow=(Flow((act,), "p", frames2), Flow(("p",), "u", frames2),  # the channel-averaged shortcut
                          Flow(("u",), "s1", head * B * grid.positions),
                          Flow((act,), "cv", head // 8 * B * shape.positions, None, c_prev * _padded(B, shape)),
                          Flow(("cv",), "p", head // 8 * B * 2 * grid[0] * H * W),
                          Flow(("p", "cv", act), "hh", head * B * grid.positions))))
    nh, nz = head * B * grid.positions, 2 * z * B * grid.positions
    return ops + [conv("conv_out.conv", B, grid, grid, head, 2 * z, K3,
                       flow=(Flow(("hh",), "p", nh), Flow(("p", "s1"), "s2", nz), Flow(("hh",), "cl", nh),
                             Flow(("cl", "hh", "s2", *chunk), out, nz, None, head * _padded(B, grid))))]


def _upsample3d(u: str, B: Number, c: int, shape: Shape, out: Shape, g: int, clc: bool, h: str, x: str,
                y: str) -> list[Op]:
    """Nearest x2 in (T, H, W) on channel slices of c // 8 (concatenated), then Res3DBlockUpsample: a channel-last
    copy (the residual), two causal convs on F.pad's copies, each followed by a per-frame norm; the level's output
    ``h`` and input ``x`` held to the end; makes ``y``."""
    n = c * B * out.positions
    k = c // 8
    slices = [Flow((h,), f"sl{j}", min(k, c - j) * B * out.positions) for j in range(0, c, k)]
    pad = c * _padded(B, out)
    return [nearest(u, B, c, shape, out, (*slices, Flow(tuple(f.out or "" for f in slices), "up", n))),
            conv(f"{u}.conv3d.conv1.conv", B, out, out, c, c, K3, "resample",
                 flow=(Flow(("up",), "r", n), Flow(("r",), "y1", n, None, pad))),
            norm(f"{u}.conv3d.norm1", "group_norm", B, c, out,
                 flow=_frame_norm("y1", "a", B, c, out, g, True, not clc)),
            conv(f"{u}.conv3d.conv2.conv", B, out, out, c, c, K3, "resample", flow=Flow(("a",), "y2", n, None, pad)),
            norm(f"{u}.conv3d.norm2", "group_norm", B, c, out,
                 flow=_frame_norm("y2", y, B, c, out, g, False, not clc, ("a", "r", "up", h, x)))]


def decoder_chunk(spec: StepVideoVAE, shape: Shape, B: Number, clc: bool = True, out: str = "o") -> list[Op]:
    """One chunk of L latent frames: conv_in and conv_unpatchify at (L, h, w), whose pixel-shuffle gives (2L - 1, 2h,
    2w); per level Resnets, then nearest x2 in (T, H, W) (1 per output element) and Res3DBlockUpsample's two 3x3x3
    convs and GroupNorms, or nearest x2 per frame and a 3x3 conv; norm_out and conv_out on every frame before the
    cut of the first 2^k - 1. Channel duplication and the cut are free. Dataflow: the duplicated latent added in
    place; the channel-duplicated shortcut (repeat_interleave, pixel-shuffle copy) held to the end; conv_unpatchify's
    pixel-shuffle copy and its channel-last copy held through the mid block; makes ``out``."""
    rev, factors, z, n, g = spec.decoder_channels, spec.level_temporal_factors, spec.latent_channels, \
        len(spec.block_out_channels), spec.norm_groups
    head = STEPVIDEO_HEAD * z
    L, h, w = shape
    rows = B * shape.positions
    big = Shape((2 * L - (L > 0), 2 * h, 2 * w))  # 2L - 1 (0 for an empty remainder in sweeps)
    n8 = rev[0] * B * 8 * shape.positions  # (2L, 2h, 2w)
    ops = [conv("conv_in.conv", B, shape, shape, z, head, K3,
                flow=(Flow((), "x", head * rows, None, z * _padded(B, shape)), Flow(("x",), "dup", head * rows))),
           conv("conv_unpatchify.conv.conv", B, shape, shape, head, 8 * rev[0], K3, "resample",
                flow=(Flow(("x",), "rep", 8 * n8), Flow(("rep",), "short", n8),
                      Flow(("x",), "cv", 8 * rev[0] * rows, None, head * _padded(B, shape)),
                      Flow(("cv", "x"), "sh", n8), Flow(("sh",), "cp", rev[0] * B * big.positions)))]
    shape = big
    ops += sv_mid("mid", B, shape, rev[0], g, clc, "cp", "my", True, ("sh",))
    c_prev, x, cl = rev[0], "my", clc
    for j, c in enumerate(rev):
        i_level = n - 1 - j
        hl = f"lv{j}"
        ops += sv_level(f"up.{i_level}.block", B, shape, c_prev, c, spec.layers_per_block + 1, g, clc, x, hl, cl,
                        "outer")
        c_prev, cl = c, i_level > 0 and factors[i_level - 1] == 1  # a 2D up-sampler's output is channel-last
        if i_level > 0:
            T, H, W = shape
            u = f"up.{i_level}.upsample"
            if factors[i_level - 1] > 1:
                up = Shape((2 * T, 2 * H, 2 * W))
                ops += _upsample3d(u, B, c, shape, up, g, clc, hl, x, f"u{j}")
            else:  # per frame: a channel-last copy (none when the conv output is channel-last), nearest x2, 3x3 conv
                up = Shape((T, 2 * H, 2 * W))
                src = hl if clc else "tmp"
                ops += [nearest(u, B, c, shape, up, ((Flow((hl,), "tmp", c * B * shape.positions),) if not clc
                                                     else ()) + (Flow((src,), "un", c * B * up.positions),)),
                        conv(f"{u}.conv", B, up, up, c, c, (3, 3), "resample", "conv2d",
                             flow=Flow(("un", hl, x), f"u{j}", c * B * up.positions))]
            shape, hl = up, f"u{j}"
        x = hl
    return ops + [norm("norm_out", "group_norm", B, c_prev, shape, flow=_norm_pad(x, B, c_prev, shape, g, not clc)),
                  conv("conv_out.conv", B, shape, shape, c_prev, spec.in_channels, K3,
                       flow=Flow(("buf", "short"), out, spec.in_channels * B * shape.positions))]


def _chunked(chunk: Callable[[Shape, Number, str, bool], list[Op]], size: int | None, shape: Shape,
             B: Number) -> tuple[list[Op], tuple[str, ...]]:
    """``chunk(shape, batch, out, copied)`` on T // size whole chunks of ``size`` frames (a batch of B x whole: one
    record per op, with one chunk's dataflow on top of the earlier chunks' outputs) and on the remainder chunk of
    T % size frames, each on its own (the module's weights owned by the first chunk run); returns the ops and the
    outputs kept to the end. ``copied``: there are several chunks, each a contiguous copy."""
    T, H, W = shape
    whole, rest = chunks(T, size)
    copied = size is not None and many(T) and (hasattr(T, "shape") or size < T)
    ops: list[Op] = []
    parts: tuple[str, ...] = ()
    if not skip(whole):
        one = chunk(Shape((size or 0, H, W)), B, "p0", copied)
        per = steps(one[-1].flow)[-1].numel
        ops = flows_of(chunk(Shape((size or 0, H, W)), B * whole, "p0", copied), one)
        ops[0] = around(ops[0], (Flow((), "p0_before", (whole - 1) * per),))
        parts = ("p0_before", "p0")
    if not skip(rest):
        more = chunk(Shape((rest, H, W)), B, "p1", copied)
        ops += disowned(more) if ops else more
        parts += ("p1",)
    return ops, parts


def encoder_ledger(spec: StepVideoVAE, shape: Shape, B: Number, conv_channels_last: bool = True) -> list[Op]:
    """F // c whole chunks of c = ``chunk_frames`` frames and the remainder chunk of F % c frames, each on its own;
    the chunks' moments concatenated."""
    ops, parts = _chunked(lambda s, b, out, copied: encoder_chunk(spec, s, b, conv_channels_last, out, copied),
                          spec.chunk_frames, shape, B)
    F, H, W = shape
    s = spec.spatial_compression
    latent, _ = spec.chunked_causal_frames(F)
    moments = Flow(parts, "moments", 2 * spec.latent_channels * B * latent * (H // s) * (W // s))
    return ops[:-1] + [around(ops[-1], after=(moments,))]


def decoder_ledger(spec: StepVideoVAE, shape: Shape, B: Number, conv_channels_last: bool = True) -> list[Op]:
    """L // k whole chunks of k = ``chunk_latent_frames`` latent frames and the remainder chunk of L % k; the chunks'
    frames concatenated, then each chunk boundary blended in place (three temporaries of one frame per seam)."""
    ops, parts = _chunked(lambda s, b, out, copied: decoder_chunk(spec, s, b, conv_channels_last, out),
                          spec.chunk_latent_frames, shape, B)
    L, h, w = shape
    k, s = spec.chunk_latent_frames, spec.spatial_compression
    plane = spec.in_channels * B * h * s * w * s
    seams = (L - 1) // k if spec.chunk_frames is not None and k is not None else 0
    video = (Flow(parts, "video", spec.decoded_frames(L) * plane), Flow(("video",), "seams", 3 * seams * plane))
    return ops[:-1] + [around(ops[-1], after=video)]


@register("vae", "stepvideo")
class StepVideoLedger:
    #: the reference decodes in its own chunks (or frame by frame) inside the decoder: a pipeline's tiled or chunked
    #: decode schedule is not modelled for it (ledger/vae_schedule.py)
    inner_chunks = True

    @staticmethod
    def encoder(spec: StepVideoVAE, shape: Shape, B: Number) -> list[Op]:
        return encoder_ledger(spec, shape, B)

    @staticmethod
    def decoder(spec: StepVideoVAE, shape: Shape, B: Number, num_frames: Number | None = None) -> list[Op]:
        return decoder_ledger(spec, shape, B)
