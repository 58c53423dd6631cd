"""family='ltx': LTX-Video 0.9.0's VAE (reference_model/vae/ltx.py; diffusers AutoencoderKLLTXVideo): pixel-unshuffle
``patch_size``, ResNets of weightless RMSNorm and 3x3x3 convs (a widening one adds an affine LayerNorm and a 1x1x1
shortcut), stride-2 3x3x3 down-sampling, depth-to-space up-sampling convs, conv_out to z + 1 channels."""

from __future__ import annotations

from sora_compute.ledger.formulas import Number
from sora_compute.ledger.ops import Op
from sora_compute.ledger.registry import register
from sora_compute.ledger.vae.common import K3, Shape, conv, norm
from sora_compute.specs.vae import LTXVAE

__all__ = ["LTXLedger"]


def ltx_resnet(prefix: str, B: Number, shape: Shape, c_in: int, c_out: int, blocks: range | None = None) -> list[Op]:
    """Weightless RMSNorm (3 per element), 3x3x3 conv, twice; widening: affine LayerNorm and 1x1x1 conv shortcut."""
    ops = [norm(f"{prefix}.norm1", "rms_norm", B, c_in, shape, False, blocks),
           conv(f"{prefix}.conv1", B, shape, shape, c_in, c_out, K3, blocks=blocks),
           norm(f"{prefix}.norm2", "rms_norm", B, c_out, shape, False, blocks),
           conv(f"{prefix}.conv2", B, shape, shape, c_out, c_out, K3, blocks=blocks)]
    if c_in != c_out:
        ops += [norm(f"{prefix}.norm3", "layer_norm", B, c_in, shape, True, blocks),
                conv(f"{prefix}.shortcut", B, shape, shape, c_in, c_out, (1, 1, 1), blocks=blocks)]
    return ops


def ltx_resnets(prefix: str, B: Number, shape: Shape, c: int, n: int) -> list[Op]:
    """``n`` ResNets of width c at ``prefix``.0 .. n-1: one record per op."""
    return ltx_resnet(prefix + ".{i}", B, shape, c, c, range(n)) if n else []


@register("vae", "ltx")
class LTXLedger:
    @staticmethod
    def encoder(spec: LTXVAE, shape: Shape, B: Number) -> list[Op]:
        """Pixel-unshuffle (free), conv_in; per level ResNets, a stride-2 conv (T -> (T - 1) // 2 + 1, H -> (H - 1)
        // 2 + 1), a widening ResNet; mid ResNets; RMSNorm; conv_out to z + 1."""
        chans, layers, n, p = spec.block_out_channels, spec.layers_per_level, len(spec.block_out_channels), \
            spec.patch_size
        assert layers is not None
        T, H, W = shape
        shape = Shape((T, H // p, W // p))
        ops = [conv("conv_in", B, shape, shape, spec.pixel_channels, chans[0], K3)]
        for i, c in enumerate(chans):
            ops += ltx_resnets(f"down.{i}.resnets", B, shape, c, layers[i])
            if i < n - 1:
                T, H, W = shape
                out = Shape(((T - 1) // 2 + 1, (H - 1) // 2 + 1, (W - 1) // 2 + 1))
                ops.append(conv(f"down.{i}.downsample", B, shape, out, c, c, K3, "resample"))
                shape = out
            if chans[min(i + 1, n - 1)] != c:
                ops += ltx_resnet(f"down.{i}.widen", B, shape, c, chans[i + 1])
        ops += ltx_resnets("mid", B, shape, chans[-1], layers[-1])
        return ops + [norm("norm_out", "rms_norm", B, chans[-1], shape, False),
                      conv("conv_out", B, shape, shape, chans[-1], spec.latent_channels + 1, K3)]

    @staticmethod
    def decoder(spec: LTXVAE, shape: Shape, B: Number, num_frames: Number | None = None) -> list[Op]:
        """conv_in, mid ResNets; per level a narrowing ResNet, an up-sampling conv c -> 8c at the coarse grid (then
        T -> 2T - 1, H -> 2H), ResNets; RMSNorm, conv_out (pixel-shuffle is free)."""
        rev, layers, n = spec.decoder_channels, spec.layers_per_level, len(spec.block_out_channels)
        assert layers is not None
        ops = [conv("conv_in", B, shape, shape, spec.latent_channels, rev[0], K3)]
        ops += ltx_resnets("mid", B, shape, rev[0], layers[-1])
        c_prev = rev[0]
        for j, c in enumerate(rev):
            if c_prev != c:
                ops += ltx_resnet(f"up.{j}.narrow", B, shape, c_prev, c)
            if j > 0:
                ops.append(conv(f"up.{j}.upsample.conv", B, shape, shape, c, 8 * c, K3, "resample"))
                T, H, W = shape
                shape = Shape((2 * T - 1, 2 * H, 2 * W))
            ops += ltx_resnets(f"up.{j}.resnets", B, shape, c, layers[n - 1 - j])
            c_prev = c
        return ops + [norm("norm_out", "rms_norm", B, c_prev, shape, False),
                      conv("conv_out", B, shape, shape, c_prev, spec.pixel_channels, K3)]
