"""family='generic': the layout-driven 3D VAE (reference_model.vae.VAE3D; HunyuanVideo / SD style): levels of
GroupNorm ResNets, stride-2 down-sampling convs, a mid block (ResNet, optional attention over all positions,
ResNet), nearest x2 up-sampling; optional 1x1x1 quant convs. Paths are relative to ``VAE3D.encoder`` / ``.decoder``.

Dataflow (``Flow`` records, for the liveness evaluator without gradients), following the reference code: a causal
conv copies its input with kt - 1 front frames (torch.cat; scratch of the conv); a norm's output lives while SiLU
makes its own (scratch of the norm); a ResNet's input is held by the caller until it returns (its residual sum reads
it), and conv1's output until conv2 returns; a level's input is held by the caller's loop until the level returns
(its resample conv, or its last ResNet, reads it), so the first ResNet of a level (reading that input) is a record of
its own and the rest a run; the mid block's input is held until the mid block returns; the decoder holds
post_quant_conv's output and its last level's output to the end, the encoder its mid block's output.
"""

from __future__ import annotations

from sora_compute.ledger.formulas import Number
from sora_compute.ledger.ops import Flow, Op
from sora_compute.ledger.registry import register
from sora_compute.ledger.vae.common import (
    Flows,
    Shape,
    conv,
    gn_conv_resblock,
    nearest,
    norm,
    single_head_attention,
)
from sora_compute.specs.vae import GenericVAE

__all__ = ["GenericLedger", "resnet_block", "mid_block"]

_1 = (1, 1, 1)


def _pad(spec: GenericVAE, B: Number, shape: Shape) -> Number:
    """Elements per input channel of a causal conv's padded copy of its input (kt - 1 front frames; none for kt = 1
    or a non-causal conv)."""
    kt = spec.temporal_kernel
    if not spec.causal or kt == 1:
        return 0
    T, H, W = shape
    return B * (T + kt - 1) * H * W


def _front(spec: GenericVAE) -> int:
    """Frames a causal conv pads its input with before the call (kt - 1; none when not causal)."""
    return spec.temporal_kernel - 1 if spec.causal else 0


def resnet_block(prefix: str, B: Number, shape: Shape, c_in: int, c_out: int, spec: GenericVAE,
                 blocks: range | None = None, x: str = "x", y: str = "x", held: tuple[str, ...] = ()) -> list[Op]:
    """GroupNorm, conv(c_in -> c_out), GroupNorm, conv(c_out -> c_out), 1x1x1 shortcut when widths differ; reads
    ``x`` (and ``held``, tensors the caller keeps to the block's end), makes ``y``."""
    rows, pad = B * shape.positions, _pad(spec, B, shape)
    n_in, n_out = c_in * rows, c_out * rows
    if c_in == c_out:
        flows: tuple[Flows, ...] = (
            Flow((x,), "a1", n_in, None, n_in), Flow(("a1",), "h1", n_out, None, c_in * pad),
            Flow(("h1",), "a2", n_out, None, n_out),
            (Flow(("a2", "h1"), "h2", n_out, None, c_out * pad), Flow(("h2", x, *held), y, n_out)), None)
    else:
        flows = (Flow((x,), "a1", n_in, None, n_in), Flow(("a1",), "h1", n_out, None, c_in * pad),
                 Flow(("h1",), "a2", n_out, None, n_out), Flow(("a2", "h1"), "h2", n_out, None, c_out * pad),
                 (Flow((x,), "s", n_out), Flow(("s", "h2", x, *held), y, n_out)))
    return gn_conv_resblock(prefix, B, shape, c_in, c_out, ("conv1.conv", "conv2.conv", "shortcut"), spec.conv_kernel,
                            blocks=blocks, flows=flows, pad_depth=_front(spec))


def _attention_flows(n: Number, stat: Number, x: str, y: str) -> tuple[Flows, ...]:
    """The normalised input lives (transposed) through the block; q, k, v are each a contiguous copy of it (scratch),
    a matmul and an out-of-place bias add; the core's output with its fp32 log-sum-exp; the projection, its copy back
    to (B, c, T, H, W), the residual sum (reading ``x``)."""
    qkv = tuple((Flow(("an",), "mm", n, None, n), Flow(("mm",), name, n)) for name in ("q", "k", "v"))
    return (Flow((x,), "an", n), *qkv, Flow(("q", "k", "v"), "o", n, None, stat, "act", "stat"),
            (Flow(("o",), "p", n), Flow(("p",), "back", n), Flow(("back", "o", "an", x), y, n)))


def mid_block(prefix: str, B: Number, shape: Shape, c: int, spec: GenericVAE, x: str = "x",
              y: str = "x") -> list[Op]:
    """ResNet, single-head attention over the n = T H W positions (GroupNorm, q, k, v, proj; 2 n^2 c core), ResNet;
    ``x`` held by the caller to the end."""
    ops = resnet_block(f"{prefix}.resnet1", B, shape, c, c, spec, x=x, y="m1")
    h = "m1"
    if spec.mid_attention:
        ops += single_head_attention(f"{prefix}.attn", B, shape, c, ("q", "k", "v", "proj"), B, shape.positions,
                                     _attention_flows(B * c * shape.positions, B * shape.positions, "m1", "m2"))
        h = "m2"
    return ops + resnet_block(f"{prefix}.resnet2", B, shape, c, c, spec, x=h, y=y, held=(x,))


def _resnets(prefix: str, B: Number, shape: Shape, c_in: int, c: int, n: int, spec: GenericVAE,
             x: str, y: str) -> list[Op]:
    """``n`` ResNets at ``prefix``.0, .1, ...: the first c_in -> c on the level input ``x``, the rest c -> c (one
    record per op, blocks 1 .. n-1) while the caller holds ``x``; the output is ``y``."""
    ops = resnet_block(f"{prefix}.0", B, shape, c_in, c, spec, x=x, y=y)
    if n > 1:
        ops += resnet_block(prefix + ".{i}", B, shape, c, c, spec, range(1, n), x=y, y=y, held=(x,))
    return ops


@register("vae", "generic")
class GenericLedger:
    @staticmethod
    def encoder(spec: GenericVAE, shape: Shape, B: Number) -> list[Op]:
        """Encoder of a (T, H, W) video (pixel-unshuffle by ``patch_size`` first: a copy, freed after conv_in)."""
        k, chans, p = spec.conv_kernel, spec.block_out_channels, spec.patch_size
        T, H, W = shape
        shape = Shape((T, H // p, W // p))
        pix = B * spec.pixel_channels * shape.positions
        scratch = spec.pixel_channels * _pad(spec, B, shape) + (pix if p > 1 else 0)
        ops = [conv("conv_in.conv", B, shape, shape, spec.pixel_channels, chans[0], k, pad_depth=_front(spec),
                    flow=Flow((), "x", B * chans[0] * shape.positions, None, scratch))]
        c_prev, x = chans[0], "x"
        for i, c in enumerate(chans):
            h = f"r{i}"
            ops += _resnets(f"down.{i}.resnets", B, shape, c_prev, c, spec.layers_per_block, spec, x, h)
            c_prev = c
            if i < spec.num_spatial_down:
                stride = 2 if i < spec.num_temporal_down else 1
                T, H, W = shape
                out = Shape(((T - 1) // stride + 1, (H - 1) // 2 + 1, (W - 1) // 2 + 1))
                ops.append(conv(f"down.{i}.resample.conv.conv", B, shape, out, c, c, k, "resample",
                                pad_depth=_front(spec),
                                flow=Flow((h, x), f"x{i}", B * c * out.positions, None, c * _pad(spec, B, shape))))
                shape, h = out, f"x{i}"
            x = h
        ops += mid_block("mid", B, shape, c_prev, spec, x, "y")
        n = B * c_prev * shape.positions
        ops.append(norm("norm_out", "group_norm", B, c_prev, shape, flow=Flow(("y",), "a", n, None, n)))
        z = spec.latent_channels * (2 if spec.double_z else 1)
        ops.append(conv("conv_out.conv", B, shape, shape, c_prev, z, k, pad_depth=_front(spec),
                        flow=Flow(("a", "y"), "m", B * z * shape.positions, None, c_prev * _pad(spec, B, shape))))
        if spec.quant_convs:
            ops.append(conv("quant_conv", B, shape, shape, z, z, _1,
                            flow=Flow(("m", "y"), "q", B * z * shape.positions)))
        return ops

    @staticmethod
    def decoder(spec: GenericVAE, shape: Shape, B: Number, num_frames: Number | None = None) -> list[Op]:
        """Decoder of a (T', H', W') latent: nearest x2 up-sampling (T: 2T, or 1 + 2(T - 1) when causal), a conv;
        pixel-shuffle by ``patch_size`` last (a copy beside conv_out's output)."""
        k, z = spec.conv_kernel, spec.latent_channels
        chans = tuple(reversed(spec.block_out_channels))
        held: tuple[str, ...] = ("pq",) if spec.quant_convs else ()
        ops = [conv("post_quant_conv", B, shape, shape, z, z, _1, flow=Flow((), "pq", B * z * shape.positions))
               ] if spec.quant_convs else []
        ops.append(conv("conv_in.conv", B, shape, shape, z, chans[0], k, pad_depth=_front(spec),
                        flow=Flow(held, "x", B * chans[0] * shape.positions, None, z * _pad(spec, B, shape))))
        ops += mid_block("mid", B, shape, chans[0], spec, "x", "y")
        c_prev, x = chans[0], "y"
        for j, c in enumerate(chans):
            h = f"r{j}"
            ops += _resnets(f"up.{j}.resnets", B, shape, c_prev, c, spec.layers_per_block + 1, spec, x, h)
            c_prev = c
            if j < spec.num_spatial_down:
                T, H, W = shape
                if j < spec.num_temporal_down:
                    T = 1 + 2 * (T - 1) if spec.causal else 2 * T
                out = Shape((T, 2 * H, 2 * W))
                n = B * c * out.positions
                ops += [nearest(f"up.{j}.resample", B, c, shape, out, Flow((h,), "up", n)),
                        conv(f"up.{j}.resample.conv.conv", B, out, out, c, c, k, "resample",
                             pad_depth=_front(spec), flow=Flow(("up", h, x), f"x{j}", n, None, c * _pad(spec, B, out)))]
                shape, h = out, f"x{j}"
            x = h
        n = B * c_prev * shape.positions
        pixels = B * spec.pixel_channels * shape.positions
        conv_out = Flow(("a", x, *held), "o", pixels, None, c_prev * _pad(spec, B, shape))
        out_flow: Flow | tuple[Flow, ...] = conv_out
        if spec.patch_size > 1:  # the pixel-shuffle copy while conv_out's output is still referenced
            out_flow = (conv_out, Flow(("o", x, *held), "shuffled", pixels))
        return ops + [norm("norm_out", "group_norm", B, c_prev, shape, flow=Flow((x,), "a", n, None, n)),
                      conv("conv_out.conv", B, shape, shape, c_prev, spec.pixel_channels, k, flow=out_flow,
                           pad_depth=_front(spec))]
