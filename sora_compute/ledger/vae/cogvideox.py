"""family='cogvideox': CogVideoX's VAE (reference_model/vae/cogvideox.py; diffusers AutoencoderKLCogVideoX):
GroupNorm ResNets with causal 3x3x3 convs, frame-pair averaging and stride-2 3x3 2D down-sampling convs, two mid
ResNets; the decoder's norms are spatial norms conditioned on the latent."""

from __future__ import annotations

from sora_compute.ledger.formulas import Number
from sora_compute.ledger.ops import Op
from sora_compute.ledger.registry import register
from sora_compute.ledger.vae.common import K3, Shape, conv, nearest, norm, repeated
from sora_compute.specs.vae import CogVideoXVAE

__all__ = ["CogVideoXLedger"]

_1 = (1, 1, 1)


def spatial_norm(prefix: str, B: Number, shape: Shape, c: int, z: int, blocks: range | None = None) -> list[Op]:
    """The latent resized (nearest) to the features' grid (z x T H W outputs), GroupNorm (2c weights), two 1x1x1
    convs z -> c (scale and shift)."""
    up = nearest(prefix, B, z, shape, shape)
    if blocks is not None:
        up = Op(up.path, up.kind, up.op, up.macs, blocks, up.elements)
    return [up, norm(f"{prefix}.norm", "group_norm", B, c, shape, blocks=blocks),
            conv(f"{prefix}.conv_y", B, shape, shape, z, c, _1, blocks=blocks),
            conv(f"{prefix}.conv_b", B, shape, shape, z, c, _1, blocks=blocks)]


def cog_resnet(prefix: str, B: Number, shape: Shape, c_in: int, c_out: int, z: int | None,
               blocks: range | None = None) -> list[Op]:
    """Two (norm, causal 3x3x3 conv) pairs, a 1x1x1 shortcut when widths differ; spatial norms (``z``: the latent's
    channels) in the decoder."""
    ops: list[Op] = []
    for i, (ci, co) in enumerate(((c_in, c_out), (c_out, c_out)), start=1):
        if z is not None:
            ops += spatial_norm(f"{prefix}.norm{i}", B, shape, ci, z, blocks)
        else:
            ops.append(norm(f"{prefix}.norm{i}", "group_norm", B, ci, shape, blocks=blocks))
        ops.append(conv(f"{prefix}.conv{i}.conv", B, shape, shape, ci, co, K3, blocks=blocks))
    if c_in != c_out:
        ops.append(conv(f"{prefix}.shortcut", B, shape, shape, c_in, c_out, _1, blocks=blocks))
    return ops


def cog_resnets(prefix: str, B: Number, shape: Shape, c_in: int, c: int, n: int, z: int | None) -> list[Op]:
    """``n`` ResNets: the first c_in -> c, the rest c -> c."""
    return repeated(lambda path, ci, blocks: cog_resnet(path, B, shape, ci, c, z, blocks), prefix, c_in, c, n)


@register("vae", "cogvideox")
class CogVideoXLedger:
    @staticmethod
    def encoder(spec: CogVideoXVAE, shape: Shape, B: Number) -> list[Op]:
        chans, factors = spec.block_out_channels, spec.level_temporal_factors
        ops, c_prev = [conv("conv_in.conv", B, shape, shape, spec.in_channels, chans[0], K3)], chans[0]
        for i, c in enumerate(chans):
            ops += cog_resnets(f"down.{i}.resnets", B, shape, c_prev, c, spec.layers_per_block, None)
            c_prev = c
            if i < len(chans) - 1:  # average frame pairs (temporal levels: T -> ceil(T / 2)), stride-2 3x3 conv
                T, H, W = shape
                before = Shape(((T + 1) // 2 if factors[i] > 1 else T, H, W))
                shape = Shape((before[0], H // 2, W // 2))
                ops.append(conv(f"down.{i}.resample.conv", B, before, shape, c, c, (3, 3), "resample", "conv2d"))
        ops += cog_resnets("mid.resnets", B, shape, c_prev, c_prev, 2, None)
        return ops + [norm("norm_out", "group_norm", B, c_prev, shape),
                      conv("conv_out.conv", B, shape, shape, c_prev, 2 * spec.latent_channels, K3)]

    @staticmethod
    def decoder(spec: CogVideoXVAE, shape: Shape, B: Number, num_frames: Number | None = None) -> list[Op]:
        chans, factors, z = spec.decoder_channels, spec.level_temporal_factors, spec.latent_channels
        ops = [conv("conv_in.conv", B, shape, shape, z, chans[0], K3)]
        ops += cog_resnets("mid.resnets", B, shape, chans[0], chans[0], 2, z)
        c_prev = chans[0]
        for j, c in enumerate(chans):
            ops += cog_resnets(f"up.{j}.resnets", B, shape, c_prev, c, spec.layers_per_block + 1, z)
            c_prev = c
            if j < len(chans) - 1:  # nearest x2 (temporal levels: T -> 2T, or 2T - 1 when T is odd), 3x3 conv
                T, H, W = shape
                out = Shape((2 * T - T % 2 if factors[j] > 1 else T, 2 * H, 2 * W))
                ops += [nearest(f"up.{j}.resample", B, c, shape, out),
                        conv(f"up.{j}.resample.conv", B, out, out, c, c, (3, 3), "resample", "conv2d")]
                shape = out
        return ops + spatial_norm("norm_out", B, shape, c_prev, z) + [
            conv("conv_out.conv", B, shape, shape, c_prev, spec.in_channels, K3)]
