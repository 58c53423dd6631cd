"""family='wan': Wan2.1's VAE (reference_model/vae/wan.py; diffusers AutoencoderKLWan): ResNets of channel RMSNorm
(weight c) and causal 3x3x3 convs, 2D spatial resampling plus a separate temporal conv, per-frame mid attention,
1x1x1 quant convs."""

from __future__ import annotations

from sora_compute.ledger.formulas import Number
from sora_compute.ledger.ops import Op, attention_op
from sora_compute.ledger.registry import register
from sora_compute.ledger.vae.common import K3, Shape, conv, nearest, norm, repeated
from sora_compute.specs.vae import WanVAE

__all__ = ["WanLedger"]

_1 = (1, 1, 1)


def wan_resnet(prefix: str, B: Number, shape: Shape, c_in: int, c_out: int, blocks: range | None = None) -> list[Op]:
    """1x1x1 shortcut (when widths differ), RMSNorm, 3x3x3 conv, RMSNorm, 3x3x3 conv."""
    ops = [conv(f"{prefix}.shortcut", B, shape, shape, c_in, c_out, _1)] if c_in != c_out else []
    return ops + [norm(f"{prefix}.norm1", "rms_norm", B, c_in, shape, blocks=blocks),
                  conv(f"{prefix}.conv1", B, shape, shape, c_in, c_out, K3, blocks=blocks),
                  norm(f"{prefix}.norm2", "rms_norm", B, c_out, shape, blocks=blocks),
                  conv(f"{prefix}.conv2", B, shape, shape, c_out, c_out, K3, blocks=blocks)]


def wan_resnets(prefix: str, B: Number, shape: Shape, c_in: int, c: int, n: int) -> list[Op]:
    """``n`` ResNets: the first c_in -> c, the rest c -> c."""
    return repeated(lambda path, ci, blocks: wan_resnet(path, B, shape, ci, c, blocks), prefix, c_in, c, n)


def wan_mid(prefix: str, B: Number, shape: Shape, c: int) -> list[Op]:
    """ResNet; per frame: RMSNorm, 1x1 conv c -> 3c, single-head SDPA over H W positions (2 (H W)^2 c per frame),
    1x1 conv; ResNet."""
    T, H, W = shape
    a = f"{prefix}.attn"
    return (wan_resnet(f"{prefix}.resnet1", B, shape, c, c)
            + [norm(f"{a}.norm", "rms_norm", B, c, shape),
               conv(f"{a}.to_qkv", B, shape, shape, c, 3 * c, (1, 1), "vae_attention", "conv2d"),
               attention_op(a, "vae_attention", B * T, 1, H * W, H * W, c),
               conv(f"{a}.proj", B, shape, shape, c, c, (1, 1), "vae_attention", "conv2d")]
            + wan_resnet(f"{prefix}.resnet2", B, shape, c, c))


def wan_downsample(prefix: str, B: Number, shape: Shape, c: int, temporal: bool) -> tuple[list[Op], Shape]:
    """Stride-2 3x3 conv per frame (H -> H // 2); temporal: a stride-2 (3, 1, 1) conv makes (T - 1) // 2 frames,
    appended to the first: T -> 1 + (T - 1) // 2."""
    T, H, W = shape
    out = Shape((T, H // 2, W // 2))
    ops = [conv(f"{prefix}.conv", B, shape, out, c, c, (3, 3), "resample", "conv2d")]
    if temporal:
        made = Shape(((T - 1) // 2, H // 2, W // 2))
        ops.append(conv(f"{prefix}.time_conv", B, out, made, c, c, (3, 1, 1), "resample"))
        out = Shape((1 + made[0], H // 2, W // 2))
    return ops, out


def wan_upsample(prefix: str, B: Number, shape: Shape, c: int, temporal: bool) -> tuple[list[Op], Shape]:
    """Temporal: a causal (3, 1, 1) conv c -> 2c on the T - 1 frames after the first (T -> 2T - 1); then per frame
    nearest x2 and a 3x3 conv c -> c / 2."""
    T, H, W = shape
    ops = []
    if temporal:
        rest = Shape((T - 1, H, W))
        ops.append(conv(f"{prefix}.time_conv", B, rest, rest, c, 2 * c, (3, 1, 1), "resample"))
        T = 2 * T - 1
    before, out = Shape((T, H, W)), Shape((T, 2 * H, 2 * W))
    ops += [nearest(prefix, B, c, before, out),
            conv(f"{prefix}.conv", B, out, out, c, c // 2, (3, 3), "resample", "conv2d")]
    return ops, out


@register("vae", "wan")
class WanLedger:
    @staticmethod
    def encoder(spec: WanVAE, shape: Shape, B: Number) -> list[Op]:
        chans, factors, z2 = spec.block_out_channels, spec.level_temporal_factors, 2 * spec.latent_channels
        ops, c_prev = [conv("conv_in", B, shape, shape, spec.in_channels, chans[0], K3)], chans[0]
        for i, c in enumerate(chans):
            ops += wan_resnets(f"down.{i}.resnets", B, shape, c_prev, c, spec.layers_per_block)
            c_prev = c
            if i < len(chans) - 1:
                down, shape = wan_downsample(f"down.{i}.resample", B, shape, c, factors[i] > 1)
                ops += down
        ops += wan_mid("mid", B, shape, c_prev)
        return ops + [norm("norm_out", "rms_norm", B, c_prev, shape),
                      conv("conv_out", B, shape, shape, c_prev, z2, K3),
                      conv("quant_conv", B, shape, shape, z2, z2, _1)]

    @staticmethod
    def decoder(spec: WanVAE, shape: Shape, B: Number, num_frames: Number | None = None) -> list[Op]:
        chans, factors, z = spec.decoder_channels, spec.level_temporal_factors, spec.latent_channels
        ops = [conv("post_quant_conv", B, shape, shape, z, z, _1),
               conv("conv_in", B, shape, shape, z, chans[0], K3)] + wan_mid("mid", B, shape, chans[0])
        c_prev = chans[0]
        for j, c in enumerate(chans):
            ops += wan_resnets(f"up.{j}.resnets", B, shape, c_prev, c, spec.layers_per_block + 1)
            c_prev = c
            if j < len(chans) - 1:
                up, shape = wan_upsample(f"up.{j}.resample", B, shape, c, factors[-1 - j] > 1)
                ops += up
                c_prev = c // 2
        return ops + [norm("norm_out", "rms_norm", B, c_prev, shape),
                      conv("conv_out", B, shape, shape, c_prev, spec.in_channels, K3)]
