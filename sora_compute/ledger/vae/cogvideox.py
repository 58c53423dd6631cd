"""family='cogvideox': CogVideoX's VAE (reference_model/vae/cogvideox.py; diffusers AutoencoderKLCogVideoX):
GroupNorm ResNets with causal 3x3x3 convs, frame-pair averaging and stride-2 3x3 2D down-sampling convs, two mid
ResNets; the decoder's norms are spatial norms conditioned on the latent.

Dataflow (``Flow`` records, for the liveness evaluator without gradients), following the reference code: a causal
conv concatenates two copies of the first frame in front of its input (torch.cat; scratch of the conv); a norm's
output lives while SiLU makes its own; a spatial norm resizes the latent (the first frame apart for odd T > 1: two
pieces and their concatenation), multiplies GroupNorm's output by conv_y's and adds conv_b's; a ResNet's input is
held by the caller to its residual sum, conv1's output until conv2 returns; a level's (and the mid block's) input is
held until it returns, so its first ResNet is a record of its own and the rest a run; the resample averages frame
pairs and pads (down) or up-samples (up) copies of the frames; the decoder holds its last output to the end.

Eager copies of the official code (diffusers ``autoencoder_kl_cogvideox.py`` and ``upsampling.py`` as the 2024
benchmarks ran it, e.g. at 8336405e50; ``_eager``): elementwise records without dataflow (the liveness walk already
holds these tensors as steps of the ops above), priced by the time model as their traffic. Per causal kt=3 conv the
torch.cat of two front frames and an F.pad of one zero row and column on each side (the pad was dropped in 2025,
fe2b397426); per kernel-1 causal conv (a spatial norm's conv_y and conv_b) the conv_cache clone of its whole input
(``inputs[:, :, -0:]``) and an F.pad by zeros, itself a copy; the SiLU after every norm; a spatial norm's
``norm_f * conv_y(zq) + conv_b(zq)``; every ResNet's residual sum; the up-sampler's permute-reshape to frames (and, for
odd T, the concatenation of the first frame) and, after its 2D conv, the permuted output: the next ResNet's GroupNorm
and a width-changing shortcut each copy it contiguous first (``GroupNorm``: ``aten.clone`` before
``native_group_norm``; a cuDNN convolution: ``input.contiguous()``).
"""

from __future__ import annotations

from sora_compute.ledger.formulas import Number, upsample_nearest_macs
from sora_compute.ledger.ops import Flow, Op, elementwise_op, revise
from sora_compute.ledger.registry import register
from sora_compute.ledger.vae.common import K3, Flows, Shape, around, conv, many, nearest, norm
from sora_compute.specs.vae import CogVideoXVAE

__all__ = ["CogVideoXLedger"]

_1 = (1, 1, 1)


def _pad(B: Number, shape: Shape) -> Number:
    """Elements per channel of a causal conv's input with two front frames: (T + 2, H, W)."""
    T, H, W = shape
    return B * (T + 2) * H * W


def _cached(op: Op, c: int, B: Number, shape: Shape, batch: bool) -> Op:
    """A causal conv of a frame-batched decode (``batch``; diffusers' ``conv_cache``): before the conv a step makes
    ``cache:<path>``, a clone of the last two frames of its concatenated input (c x 2 H W per sample,
    ``dims['feature_cache']``), which outlives the call; the old cache, of the same size, is held by the caller."""
    if not batch:
        return op
    T, H, W = shape
    n = c * B * 2 * H * W
    f = op.flow
    steps = (f,) if isinstance(f, Flow) else tuple(f or ())
    return revise(op, flow=(Flow((), f"cache:{op.path}", n), *steps), dims={**op.dims, "feature_cache": n})


def causal_pad(path: str, B: Number, shape: Shape, c: int, blocks: range | None = None) -> Op:
    """diffusers' CogVideoXCausalConv3d before a kt=3 conv: torch.cat of two front frames with the input (c (T + 2) H W
    read and written), then F.pad of one zero row and column on each side (that read again, c (T + 2)(H + 2)(W + 2)
    written)."""
    T, H, W = shape
    framed = c * B * (T + 2) * H * W
    return elementwise_op(f"{path}.pad", "copy", 2 * framed, framed + c * B * (T + 2) * (H + 2) * (W + 2), blocks,
                          what="causal conv input: torch.cat of the front frames, F.pad")


def _eager(path: str, kind: str, n: Number, passes: int, what: str, blocks: range | None = None) -> Op:
    """An elementwise step of the official code on ``n`` elements: ``passes`` inputs of n read, n written."""
    return elementwise_op(path, kind, passes * n, n, blocks, what=what)


def _odd(T: Number) -> bool:
    """An odd frame count above one (arrays, in sweeps: that dataflow)."""
    return hasattr(T, "shape") or (T > 1 and T % 2 == 1)


def spatial_norm(prefix: str, B: Number, shape: Shape, c: int, z: int, blocks: range | None = None,
                 x: str = "x", y: str = "a") -> list[Op]:
    """The latent resized (nearest) to the features' grid (z x T H W outputs), GroupNorm (2c weights), two 1x1x1
    convs z -> c (scale and shift); reads ``x``, makes ``y`` = SiLU of the norm. Eager records: each 1x1x1 conv's
    copies of the resized latent, the product and sum, the SiLU."""
    T, H, W = shape
    rows = B * shape.positions
    n, nz = c * rows, z * rows
    resized: Flows = (Flow((), "zf", z * B * H * W), Flow((), "zr", z * B * (T - 1) * H * W),
                      Flow(("zf", "zr"), "zq", nz)) if _odd(T) else Flow((), "zq", nz)
    return [Op(prefix, "resample", "upsample", upsample_nearest_macs(nz), blocks, 2 * nz, 0, None, (), resized),
            norm(f"{prefix}.norm", "group_norm", B, c, shape, blocks=blocks, flow=Flow((x,), "gn", n)),
            conv(f"{prefix}.conv_y", B, shape, shape, z, c, _1, blocks=blocks,
                 flow=(Flow(("zq",), "cy", n), Flow(("gn", "cy"), "prod", n))),
            conv(f"{prefix}.conv_b", B, shape, shape, z, c, _1, blocks=blocks,
                 flow=(Flow(("zq",), "cb", n), Flow(("prod", "cb", "zq"), "sn", n), Flow(("sn",), y, n))),
            *(elementwise_op(f"{prefix}.conv_{s}.pad", "copy", 2 * nz, 2 * nz, blocks,
                             what="kernel-1 causal conv input: conv_cache clone, F.pad by 0") for s in "yb"),
            _eager(f"{prefix}.combine", "modulation", n, 3, "GroupNorm(f) * conv_y(zq) + conv_b(zq)", blocks),
            _eager(f"{prefix}.silu", "activation", n, 1, "SiLU", blocks)]


def cog_resnet(prefix: str, B: Number, shape: Shape, c_in: int, c_out: int, z: int | None,
               blocks: range | None = None, x: str = "x", y: str = "x", held: tuple[str, ...] = (),
               batch: bool = False) -> list[Op]:
    """Two (norm, SiLU, causal 3x3x3 conv) pairs, a 1x1x1 shortcut when widths differ, the residual sum; spatial
    norms (``z``: the latent's channels) in the decoder. Reads ``x`` (and ``held``, kept by the caller to the block's
    end), makes ``y``; ``batch``: the convs keep caches (``_cached``)."""
    rows, pad = B * shape.positions, _pad(B, shape)
    ops: list[Op] = []
    for i, (ci, co, src) in enumerate(((c_in, c_out, x), (c_out, c_out, "h1")), start=1):
        if z is not None:
            ops += spatial_norm(f"{prefix}.norm{i}", B, shape, ci, z, blocks, src, f"a{i}")
        else:
            ops += [norm(f"{prefix}.norm{i}", "group_norm", B, ci, shape, blocks=blocks,
                         flow=Flow((src,), f"a{i}", ci * rows, None, ci * rows)),
                    _eager(f"{prefix}.norm{i}.silu", "activation", ci * rows, 1, "SiLU", blocks)]
        made = Flow((f"a{i}", *(("h1",) if i == 2 else ())), f"h{i}", co * rows, None, ci * pad)
        total = Flow(("h2", x, *held), y, co * rows)
        ops += [causal_pad(f"{prefix}.conv{i}", B, shape, ci, blocks),
                _cached(conv(f"{prefix}.conv{i}.conv", B, shape, shape, ci, co, K3, blocks=blocks,
                             flow=(made, total) if i == 2 and c_in == c_out else made), ci, B, shape, batch)]
    if c_in != c_out:
        ops.append(conv(f"{prefix}.shortcut", B, shape, shape, c_in, c_out, _1, blocks=blocks,
                        flow=(Flow((x,), "s", c_out * rows), Flow(("s", "h2", x, *held), y, c_out * rows))))
    return ops + [_eager(f"{prefix}.residual", "residual", c_out * rows, 2, "h + x", blocks)]


def cog_resnets(prefix: str, B: Number, shape: Shape, c_in: int, c: int, n: int, z: int | None, x: str,
                y: str, batch: bool = False) -> list[Op]:
    """``n`` ResNets: the first c_in -> c on the input ``x``, the rest c -> c (one record per op, blocks 1 .. n-1;
    a frame batch's ledger: a record per ResNet, each with caches of its own) while the caller holds ``x``; the
    output is ``y``."""
    if not n:
        return []
    ops = cog_resnet(f"{prefix}.0", B, shape, c_in, c, z, x=x, y=y, batch=batch)
    if n > 1 and batch:
        for k in range(1, n):
            ops += cog_resnet(f"{prefix}.{k}", B, shape, c, c, z, x=y, y=y, held=(x,), batch=True)
    elif n > 1:
        ops += cog_resnet(prefix + ".{i}", B, shape, c, c, z, range(1, n), x=y, y=y, held=(x,))
    return ops


@register("vae", "cogvideox")
class CogVideoXLedger:
    @staticmethod
    def encoder(spec: CogVideoXVAE, shape: Shape, B: Number, batch: bool = False) -> list[Op]:
        """The whole clip, or (``batch``) one call of diffusers' frame-batched encode, whose causal convs keep their
        caches (``_cached``) to the call's end (its last step reads them) and beyond."""
        chans, factors = spec.block_out_channels, spec.level_temporal_factors
        ops = [causal_pad("conv_in", B, shape, spec.in_channels),
               _cached(conv("conv_in.conv", B, shape, shape, spec.in_channels, chans[0], K3,
                            flow=Flow((), "x", chans[0] * B * shape.positions, None,
                                      spec.in_channels * _pad(B, shape))), spec.in_channels, B, shape, batch)]
        c_prev, x = chans[0], "x"
        for i, c in enumerate(chans):
            h = f"r{i}" if spec.layers_per_block else x
            ops += cog_resnets(f"down.{i}.resnets", B, shape, c_prev, c, spec.layers_per_block, None, x, h, batch)
            c_prev = c
            if i < len(chans) - 1:  # average frame pairs (temporal levels: T -> ceil(T / 2)), stride-2 3x3 conv
                T, H, W = shape
                before = Shape(((T + 1) // 2 if factors[i] > 1 else T, H, W))
                steps: list[Flow] = []
                if factors[i] > 1 and many(T):  # the frame-pair means (and with the first frame, for odd T)
                    steps.append(Flow((h,), "pm", c * B * (T // 2) * H * W))
                    if _odd(T):
                        steps.append(Flow(("pm",), "pc", c * B * (1 + T // 2) * H * W))
                kept = tuple(f.out for f in steps if f.out is not None)
                shape = Shape((before[0], H // 2, W // 2))
                steps += [Flow((h, *kept), "fr", c * B * before.positions),
                          Flow(("fr",), "pd", c * B * before[0] * (H + 1) * (W + 1)),
                          Flow(("pd", *kept, h, x), f"x{i}", c * B * shape.positions)]
                ops.append(conv(f"down.{i}.resample.conv", B, before, shape, c, c, (3, 3), "resample", "conv2d",
                                flow=tuple(steps)))
                h = f"x{i}"
            x = h
        ops += cog_resnets("mid.resnets", B, shape, c_prev, c_prev, 2, None, x, "y", batch)
        n = c_prev * B * shape.positions
        ops += [norm("norm_out", "group_norm", B, c_prev, shape, flow=Flow(("y",), "a", n, None, n)),
                _eager("norm_out.silu", "activation", n, 1, "SiLU"), causal_pad("conv_out", B, shape, c_prev),
                _cached(conv("conv_out.conv", B, shape, shape, c_prev, 2 * spec.latent_channels, K3,
                             flow=Flow(("a",), "m", 2 * spec.latent_channels * B * shape.positions, None,
                                       c_prev * _pad(B, shape))), c_prev, B, shape, batch)]
        return _keep_caches(ops) if batch else ops

    @staticmethod
    def decoder(spec: CogVideoXVAE, shape: Shape, B: Number, num_frames: Number | None = None,
                batch: bool = False) -> list[Op]:
        """The whole latent, or (``batch``) one call of diffusers' frame-batched decode, whose causal convs keep their
        caches (``_cached``) to the call's end (its last step reads them) and beyond."""
        chans, factors, z = spec.decoder_channels, spec.level_temporal_factors, spec.latent_channels
        ops = [causal_pad("conv_in", B, shape, z),
               _cached(conv("conv_in.conv", B, shape, shape, z, chans[0], K3,
                            flow=Flow((), "x", chans[0] * B * shape.positions, None, z * _pad(B, shape))),
                       z, B, shape, batch)]
        ops += cog_resnets("mid.resnets", B, shape, chans[0], chans[0], 2, z, "x", "y", batch)
        c_prev, x = chans[0], "y"
        for j, c in enumerate(chans):
            h = f"r{j}"
            if j:  # the up-sampler's output is a permuted view: GroupNorm and a shortcut conv copy it contiguous
                n_in = c_prev * B * shape.positions
                copied = ("norm1", "shortcut") if c_prev != c else ("norm1",)
                ops += [_eager(f"up.{j}.resnets.0.{m}.contiguous", "copy", n_in, 1, "level input made contiguous")
                        for m in copied]
            ops += cog_resnets(f"up.{j}.resnets", B, shape, c_prev, c, spec.layers_per_block + 1, z, x, h, batch)
            c_prev = c
            if j < len(chans) - 1:  # nearest x2 (temporal levels: T -> 2T, or 2T - 1 when T is odd), 3x3 conv
                T, H, W = shape
                out = Shape((2 * T - T % 2 if factors[j] > 1 else T, 2 * H, 2 * W))
                n, plane = c * B * out.positions, c * B * 4 * H * W
                up: tuple[Flow, ...]
                if factors[j] > 1 and _odd(T):  # the first frame and the rest up-sampled apart, concatenated
                    up = (Flow((h,), "ua", plane), Flow((h,), "ub", (2 * T - 2) * plane), Flow(("ua", "ub"), "up", n))
                elif factors[j] > 1 and many(T):
                    up = (Flow((h,), "up", n),)
                else:  # a copy of the frames first
                    up = (Flow((h,), "up", c * B * shape.positions),)
                up += (Flow(("up",), "fr", n),)
                temporal = factors[j] > 1  # eager copies: the odd first frame's cat, the permute-reshape to frames
                ops += [_eager(f"up.{j}.resample.cat", "copy", n * (T % 2) * (T > 1) * temporal, 1,
                               "first frame and the rest, concatenated"),
                        _eager(f"up.{j}.resample.to_frames", "copy", n * (T > 1) if temporal else
                               c * B * shape.positions, 1, "permute and reshape to frames"),
                        nearest(f"up.{j}.resample", B, c, shape, out, up),
                        conv(f"up.{j}.resample.conv", B, out, out, c, c, (3, 3), "resample", "conv2d",
                             flow=Flow(("fr", h, x), f"x{j}", n))]
                shape, h = out, f"x{j}"
            x = h
        ops += spatial_norm("norm_out", B, shape, c_prev, z, x=x) + [
            causal_pad("conv_out", B, shape, c_prev),
            _cached(conv("conv_out.conv", B, shape, shape, c_prev, spec.in_channels, K3,
                         flow=Flow(("a", x), "o", spec.in_channels * B * shape.positions, None,
                                   c_prev * _pad(B, shape))), c_prev, B, shape, batch)]
        return _keep_caches(ops) if batch else ops


def _keep_caches(ops: list[Op]) -> list[Op]:
    """A frame batch's ops with a last step reading every new cache (held to the call's end and beyond)."""
    kept = tuple(f"cache:{op.path}" for op in ops if "feature_cache" in op.dims)
    return [*ops[:-1], around(ops[-1], after=(Flow(kept),))]


@register("vae_frame_batch", "cogvideox")
def cogvideox_batch_ledger(spec: CogVideoXVAE, shape: Shape, B: Number) -> list[Op]:
    """One call of CogVideoX's frame-batched decode (``CogVideoXLedger.decoder`` with ``batch``)."""
    return CogVideoXLedger.decoder(spec, Shape(shape), B, batch=True)


@register("vae_encode_frame_batch", "cogvideox")
def cogvideox_encode_batch_ledger(spec: CogVideoXVAE, shape: Shape, B: Number) -> list[Op]:
    """One call of CogVideoX's frame-batched encode (``CogVideoXLedger.encoder`` with ``batch``)."""
    return CogVideoXLedger.encoder(spec, Shape(shape), B, batch=True)
