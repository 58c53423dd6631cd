"""family='stepvideo': Step-Video-T2V's Video-VAE v2 (reference_model/vae/stepvideo.py): GroupNorm Resnet3DBlocks, a
2D or causal 3D stride-2 conv at each level boundary, mid Resnet / causal attention / Resnet, the v2 pixel-unshuffle
head (32 z channels); frames encoded in chunks of ``chunk_frames``, each causal on its own."""

from __future__ import annotations

from sora_compute.ledger.formulas import Number
from sora_compute.ledger.ops import Op
from sora_compute.ledger.registry import register
from sora_compute.ledger.vae.common import (
    K3,
    Shape,
    conv,
    gn_conv_resblock,
    nearest,
    norm,
    per_chunk,
    repeated,
    single_head_attention,
)
from sora_compute.specs.vae import STEPVIDEO_HEAD, StepVideoVAE

__all__ = ["StepVideoLedger"]

_NAMES = ("conv1.conv", "conv2.conv", "nin_shortcut")


def sv_resnets(prefix: str, B: Number, shape: Shape, c_in: int, c: int, n: int) -> list[Op]:
    """``n`` Resnet3DBlocks (per-frame GroupNorm, causal 3x3x3 conv, twice; a 1x1x1 nin_shortcut when widths differ,
    run as a matmul on the channel-last tensor): the first c_in -> c, the rest c -> c."""
    return repeated(lambda path, ci, blocks: gn_conv_resblock(path, B, shape, ci, c, _NAMES, shortcut="linear",
                                                              blocks=blocks), prefix, c_in, c, n)


def sv_mid(prefix: str, B: Number, shape: Shape, c: int) -> list[Op]:
    """Resnet; per-frame GroupNorm, 1x1x1 q, k, v, single-head causal SDPA over the n = T H W positions (the
    profilers count the full n x n scores: 2 n^2 c), 1x1x1 proj_out; Resnet."""
    return (gn_conv_resblock(f"{prefix}.block_1", B, shape, c, c, _NAMES)
            + single_head_attention(f"{prefix}.attn_1", B, shape, c, ("q", "k", "v", "proj_out"), B, shape.positions)
            + gn_conv_resblock(f"{prefix}.block_2", B, shape, c, c, _NAMES))


def encoder_chunk(spec: StepVideoVAE, shape: Shape, B: Number) -> list[Op]:
    """One chunk of T frames: a 2D boundary maps H -> H / 2 per frame (stride-2 3x3 conv after a zero row and
    column), a 3D one (T, H) -> ((T - 1) // 2 + 1, H / 2) (causal stride-2 3x3x3 conv); the head's conv runs at the
    levels' grid, its pixel-unshuffle gives ((T + 1) // 2, H / 2), conv_out runs there. Channel averages are free."""
    chans, factors, z = spec.block_out_channels, spec.level_temporal_factors, spec.latent_channels
    stem = spec.stem_channels or chans[0]
    ops, c_prev = [conv("conv_in.conv", B, shape, shape, spec.in_channels, stem, K3)], stem
    for i, c in enumerate(chans):
        ops += sv_resnets(f"down.{i}.block", B, shape, c_prev, c, spec.layers_per_block)
        c_prev = c
        if i < len(chans) - 1:
            T, H, W = shape
            if factors[i] > 1:
                out = Shape(((T - 1) // 2 + 1, H // 2, W // 2))
                ops.append(conv(f"down.{i}.downsample.conv.conv", B, shape, out, c, c, K3, "resample"))
            else:
                out = Shape((T, H // 2, W // 2))
                ops.append(conv(f"down.{i}.downsample.conv", B, shape, out, c, c, (3, 3), "resample", "conv2d"))
            shape = out
    ops += sv_mid("mid", B, shape, c_prev)
    ops.append(norm("norm_out", "group_norm", B, c_prev, shape))
    head = STEPVIDEO_HEAD * z
    ops.append(conv("conv_patchify.conv.conv", B, shape, shape, c_prev, head // 8, K3, "resample"))
    T, H, W = shape
    out = Shape(((T + 1) // 2, H // 2, W // 2))
    return ops + [conv("conv_out.conv", B, out, out, head, 2 * z, K3)]


def decoder_chunk(spec: StepVideoVAE, shape: Shape, B: Number) -> list[Op]:
    """One chunk of L latent frames: conv_in and conv_unpatchify at (L, h, w), whose pixel-shuffle gives (2L - 1, 2h,
    2w); per level Resnets, then nearest x2 in (T, H, W) (1 per output element) and Res3DBlockUpsample's two 3x3x3
    convs and GroupNorms, or nearest x2 per frame and a 3x3 conv; norm_out and conv_out on every frame before the
    cut of the first 2^k - 1. Channel duplication and the cut are free."""
    rev, factors, z, n = spec.decoder_channels, spec.level_temporal_factors, spec.latent_channels, \
        len(spec.block_out_channels)
    head = STEPVIDEO_HEAD * z
    ops = [conv("conv_in.conv", B, shape, shape, z, head, K3),
           conv("conv_unpatchify.conv.conv", B, shape, shape, head, 8 * rev[0], K3, "resample")]
    L, h, w = shape
    shape = Shape((2 * L - (L > 0), 2 * h, 2 * w))  # 2L - 1 (0 for an empty remainder in sweeps)
    ops += sv_mid("mid", B, shape, rev[0])
    c_prev = rev[0]
    for j, c in enumerate(rev):
        i_level = n - 1 - j
        ops += sv_resnets(f"up.{i_level}.block", B, shape, c_prev, c, spec.layers_per_block + 1)
        c_prev = c
        if i_level > 0:
            T, H, W = shape
            u = f"up.{i_level}.upsample"
            if factors[i_level - 1] > 1:
                out = Shape((2 * T, 2 * H, 2 * W))
                ops += [nearest(u, B, c, shape, out),
                        conv(f"{u}.conv3d.conv1.conv", B, out, out, c, c, K3, "resample"),
                        norm(f"{u}.conv3d.norm1", "group_norm", B, c, out),
                        conv(f"{u}.conv3d.conv2.conv", B, out, out, c, c, K3, "resample"),
                        norm(f"{u}.conv3d.norm2", "group_norm", B, c, out)]
            else:
                out = Shape((T, 2 * H, 2 * W))
                ops += [nearest(u, B, c, shape, out),
                        conv(f"{u}.conv", B, out, out, c, c, (3, 3), "resample", "conv2d")]
            shape = out
    return ops + [norm("norm_out", "group_norm", B, c_prev, shape),
                  conv("conv_out.conv", B, shape, shape, c_prev, spec.in_channels, K3)]


@register("vae", "stepvideo")
class StepVideoLedger:
    @staticmethod
    def encoder(spec: StepVideoVAE, shape: Shape, B: Number) -> list[Op]:
        """F // c whole chunks of c = ``chunk_frames`` frames and the remainder chunk of F % c frames, each on its
        own."""
        return per_chunk(lambda s, b: encoder_chunk(spec, s, b), spec.chunk_frames, shape, B)

    @staticmethod
    def decoder(spec: StepVideoVAE, shape: Shape, B: Number, num_frames: Number | None = None) -> list[Op]:
        """L // k whole chunks of k = ``chunk_latent_frames`` latent frames and the remainder chunk of L % k."""
        return per_chunk(lambda s, b: decoder_chunk(spec, s, b), spec.chunk_latent_frames, shape, B)
