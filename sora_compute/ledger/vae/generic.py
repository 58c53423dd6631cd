"""family='generic': the layout-driven 3D VAE (reference_model.vae.VAE3D; HunyuanVideo / SD style): levels of
GroupNorm ResNets, stride-2 down-sampling convs, a mid block (ResNet, optional attention over all positions,
ResNet), nearest x2 up-sampling; optional 1x1x1 quant convs. Paths are relative to ``VAE3D.encoder`` / ``.decoder``.
"""

from __future__ import annotations

from sora_compute.ledger.formulas import Number
from sora_compute.ledger.ops import Op
from sora_compute.ledger.registry import register
from sora_compute.ledger.vae.common import (
    Shape,
    conv,
    gn_conv_resblock,
    nearest,
    norm,
    repeated,
    single_head_attention,
)
from sora_compute.specs.vae import GenericVAE

__all__ = ["GenericLedger", "resnet_block", "mid_block"]

_1 = (1, 1, 1)


def resnet_block(prefix: str, B: Number, shape: Shape, c_in: int, c_out: int, spec: GenericVAE,
                 blocks: range | None = None) -> list[Op]:
    """GroupNorm, conv(c_in -> c_out), GroupNorm, conv(c_out -> c_out), 1x1x1 shortcut when widths differ."""
    return gn_conv_resblock(prefix, B, shape, c_in, c_out, ("conv1.conv", "conv2.conv", "shortcut"), spec.conv_kernel,
                            blocks=blocks)


def mid_block(prefix: str, B: Number, shape: Shape, c: int, spec: GenericVAE) -> list[Op]:
    """ResNet, single-head attention over the n = T H W positions (GroupNorm, q, k, v, proj; 2 n^2 c core), ResNet."""
    ops = resnet_block(f"{prefix}.resnet1", B, shape, c, c, spec)
    if spec.mid_attention:
        ops += single_head_attention(f"{prefix}.attn", B, shape, c, ("q", "k", "v", "proj"), B, shape.positions)
    return ops + resnet_block(f"{prefix}.resnet2", B, shape, c, c, spec)


def _resnets(prefix: str, B: Number, shape: Shape, c_in: int, c: int, n: int, spec: GenericVAE) -> list[Op]:
    """``n`` ResNets at ``prefix``.0, .1, ...: the first c_in -> c, the rest c -> c."""
    return repeated(lambda path, ci, blocks: resnet_block(path, B, shape, ci, c, spec, blocks), prefix, c_in, c, n)


@register("vae", "generic")
class GenericLedger:
    @staticmethod
    def encoder(spec: GenericVAE, shape: Shape, B: Number) -> list[Op]:
        """Encoder of a (T, H, W) video (pixel-unshuffle by ``patch_size`` first)."""
        k, chans, p = spec.conv_kernel, spec.block_out_channels, spec.patch_size
        T, H, W = shape
        shape = Shape((T, H // p, W // p))
        ops, c_prev = [conv("conv_in.conv", B, shape, shape, spec.pixel_channels, chans[0], k)], chans[0]
        for i, c in enumerate(chans):
            ops += _resnets(f"down.{i}.resnets", B, shape, c_prev, c, spec.layers_per_block, spec)
            c_prev = c
            if i < spec.num_spatial_down:
                stride = 2 if i < spec.num_temporal_down else 1
                T, H, W = shape
                out = Shape(((T - 1) // stride + 1, (H - 1) // 2 + 1, (W - 1) // 2 + 1))
                ops.append(conv(f"down.{i}.resample.conv.conv", B, shape, out, c, c, k, "resample"))
                shape = out
        ops += mid_block("mid", B, shape, c_prev, spec)
        ops.append(norm("norm_out", "group_norm", B, c_prev, shape))
        z = spec.latent_channels * (2 if spec.double_z else 1)
        ops.append(conv("conv_out.conv", B, shape, shape, c_prev, z, k))
        if spec.quant_convs:
            ops.append(conv("quant_conv", B, shape, shape, z, z, _1))
        return ops

    @staticmethod
    def decoder(spec: GenericVAE, shape: Shape, B: Number, num_frames: Number | None = None) -> list[Op]:
        """Decoder of a (T', H', W') latent: nearest x2 up-sampling (T: 2T, or 1 + 2(T - 1) when causal), a conv."""
        k, z = spec.conv_kernel, spec.latent_channels
        chans = tuple(reversed(spec.block_out_channels))
        ops = [conv("post_quant_conv", B, shape, shape, z, z, _1)] if spec.quant_convs else []
        ops.append(conv("conv_in.conv", B, shape, shape, z, chans[0], k))
        ops += mid_block("mid", B, shape, chans[0], spec)
        c_prev = chans[0]
        for j, c in enumerate(chans):
            ops += _resnets(f"up.{j}.resnets", B, shape, c_prev, c, spec.layers_per_block + 1, spec)
            c_prev = c
            if j < spec.num_spatial_down:
                T, H, W = shape
                if j < spec.num_temporal_down:
                    T = 1 + 2 * (T - 1) if spec.causal else 2 * T
                out = Shape((T, 2 * H, 2 * W))
                ops += [nearest(f"up.{j}.resample", B, c, shape, out),
                        conv(f"up.{j}.resample.conv.conv", B, out, out, c, c, k, "resample")]
                shape = out
        return ops + [norm("norm_out", "group_norm", B, c_prev, shape),
                      conv("conv_out.conv", B, shape, shape, c_prev, spec.pixel_channels, k)]
