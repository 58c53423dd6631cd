"""family='wfvae': Open-Sora-Plan v1.3's WF-VAE (reference_model/vae/wfvae.py; modeling_wfvae.py): Haar wavelets as
fixed convs (the encoder's 3D one holds eight frozen 2x2x2 weights, 64 parameters; the 2D and inverse wavelets are
buffers), per-frame 2D and causal 3D levels with energy-flow branches, mid attention per frame."""

from __future__ import annotations

from sora_compute.ledger.formulas import Number
from sora_compute.ledger.ops import Op, attention_op
from sora_compute.ledger.registry import register
from sora_compute.ledger.vae.common import (
    K3,
    Shape,
    conv,
    disowned,
    gn_conv_resblock,
    nearest,
    norm,
    skip,
    trilinear,
)
from sora_compute.specs.vae import WFVAE, WFVAE_FLOW_LAYERS

__all__ = ["WFVAELedger"]

HAAR_3D = ("h", "g", "hh", "gh", "h_v", "g_v", "hh_v", "gh_v")  # HaarWaveletTransform3D's convs, in call order
_1 = (1, 1, 1)
_3x3 = (3, 3)
_3D = ("conv1.conv", "conv2.conv", "nin_shortcut.conv")


def haar3d(prefix: str, B: Number, c: int, shape: Shape) -> tuple[list[Op], Shape]:
    """HaarWaveletTransform3D on c channels (a batch of B c one-channel videos): eight fixed causal stride-2 2x2x2
    convs without bias (one copy of the first frame in front), each 8 MACs per output position: (T, H, W) ->
    ((T - 1) // 2 + 1, H // 2, W // 2), 8 c channels."""
    T, H, W = shape
    out = Shape(((T - 1) // 2 + 1, H // 2, W // 2))
    return [conv(f"{prefix}.{n}_conv.conv", B * c, shape, out, 1, 1, (2, 2, 2), "resample", bias=False)
            for n in HAAR_3D], out


def res3d(prefix: str, B: Number, shape: Shape, c_in: int, c_out: int, blocks: range | None = None) -> list[Op]:
    """ResnetBlock3D: GroupNorm, causal 3x3x3 conv, twice; a causal 1x1x1 nin_shortcut when widths differ."""
    return gn_conv_resblock(prefix, B, shape, c_in, c_out, _3D, blocks=blocks)


def res3ds(prefix: str, B: Number, shape: Shape, c: int, n: int, start: int = 0) -> list[Op]:
    """``n`` ResnetBlock3Ds of width c at ``prefix``.start .. start+n-1: one record per op."""
    return res3d(prefix + ".{i}", B, shape, c, c, range(start, start + n)) if n else []


def mid(prefix: str, B: Number, shape: Shape, c_in: int, c: int, c_out: int, attention: bool) -> list[Op]:
    """ResnetBlock3D c_in -> c; AttnBlock3DFix (GroupNorm, 1x1x1 q, k, v, per-frame single-head attention over the
    H W positions as two bmm: 2 T (H W)^2 c, 1x1x1 proj_out); ResnetBlock3D c -> c_out."""
    T, H, W = shape
    ops = res3d(f"{prefix}.0", B, shape, c_in, c)
    if attention:
        a = f"{prefix}.1"
        ops.append(norm(f"{a}.norm", "group_norm", B, c, shape))
        ops += [conv(f"{a}.{n}.conv", B, shape, shape, c, c, _1, "vae_attention") for n in "qkv"]
        ops += [attention_op(a, "vae_attention", B * T, 1, H * W, H * W, c),
                conv(f"{a}.proj_out.conv", B, shape, shape, c, c, _1, "vae_attention")]
    return ops + res3d(f"{prefix}.{2 if attention else 1}", B, shape, c, c_out)


def inverse_haar(path: str, B: Number, c: int, shape: Shape, kernel: tuple[int, ...]) -> Op:
    """An inverse Haar wavelet of c coefficient channels (buffers): stride-2 conv_transpose of volume 2^d per
    channel, counted per input position (fvcore's and FlopCounterMode's rule for transposed convs)."""
    return conv(path, B * c, shape, shape, 1, 1, kernel, "resample", "conv_transpose", owns=False)


@register("vae", "wfvae")
class WFVAELedger:
    @staticmethod
    def encoder(spec: WFVAE, shape: Shape, B: Number) -> list[Op]:
        """The input Haar wavelet (24 channels at (T1, H / 2, W / 2), T1 = (T - 1) // 2 + 1); the energy flow: a 2D
        Haar wavelet of the low band per frame (4 stride-2 2x2 convs, 4 MACs per output) and connect_l2 (Conv2d 12 ->
        ef), a 3D Haar wavelet of its low band (the same module again) and connect_l3 (Conv2d 24 -> ef); down1 per
        frame (Conv2d 24 -> c, ResnetBlock2Ds, stride-2 Downsample); down2 (Conv2d c + ef -> 2c per frame,
        ResnetBlock3Ds, causal stride-2 3x3x3 conv); mid; norm_out; causal conv_out to 2z."""
        c, L, z, ef = spec.block_out_channels[0], spec.layers_per_block, spec.latent_channels, \
            spec.energy_flow_channels
        assert ef is not None
        w3 = "wavelet_tranform_3d"
        ops, s1 = haar3d(w3, B, spec.in_channels, shape)
        T1, H1, W1 = s1
        s2 = Shape((T1, H1 // 2, W1 // 2))
        ops += [conv("wavelet_tranform_2d", B * T1 * 3, Shape((1, H1, W1)), Shape((1, *s2[1:])), 1, 1, (2, 2),
                     "resample", "conv2d", owns=False)] * 4
        ops.append(conv("connect_l2", B, s2, s2, 12, ef[0], _3x3, op="conv2d"))
        l3, s3 = haar3d(w3, B, 3, s2)
        ops += disowned(l3) + [conv("connect_l3", B, s3, s3, 24, ef[0], _3x3, op="conv2d"),
                               conv("down1.0", B, s1, s1, 24, c, _3x3, op="conv2d")]
        if L:  # ResnetBlock2D (same widths), per frame: GroupNorm, 3x3 conv, twice
            ops += gn_conv_resblock("down1.{i}", B, s1, c, c, ("conv1", "conv2", ""), _3x3, blocks=range(1, L + 1))
        ops += [conv(f"down1.{L + 1}.conv", B, s1, s2, c, c, _3x3, "resample", "conv2d"),
                conv("down2.0", B, s2, s2, c + ef[0], 2 * c, _3x3, op="conv2d")]
        ops += res3ds("down2", B, s2, 2 * c, L, start=1)
        ops.append(conv(f"down2.{L + 1}.conv.conv", B, s2, s3, 2 * c, 2 * c, K3, "resample"))
        ops += mid("mid", B, s3, 2 * c + ef[0], 4 * c, 4 * c, spec.mid_attention)
        return ops + [norm("norm_out", "group_norm", B, 4 * c, s3),
                      conv("conv_out.conv", B, s3, s3, 4 * c, 2 * z, K3)]

    @staticmethod
    def decoder(spec: WFVAE, shape: Shape, B: Number, num_frames: Number | None = None) -> list[Op]:
        """conv_in, mid (its last ResnetBlock3D widens to 4c + ef) at (L, h, w); connect_l3 on the last ef channels
        (ResnetBlock3Ds, Conv2d -> 24) and its inverse 3D wavelet; up2 (ResnetBlock3Ds, Spatial2xTime2x3DUpsample:
        the frames after the first nearest x2 in time, trilinear x2 in H and W, 8 per output; a causal 3x3x3 conv at
        (2L - 1, 2h, 2w); a widening ResnetBlock3D); connect_l2 (ResnetBlock3Ds, Conv2d -> 12) and its inverse 2D
        wavelet; up1 (ResnetBlock3Ds, nearest x2 per frame and a 3x3 conv, ResnetBlock3D); layer; norm_out; Conv2d
        c -> 24 per frame; the output inverse 3D wavelet (T' -> 2T' - 1, 8h, 8w)."""
        c, L, z, ef = spec.block_out_channels[0], spec.layers_per_block, spec.latent_channels, \
            spec.energy_flow_channels
        assert ef is not None
        n, attn = spec.energy_flow_layers or WFVAE_FLOW_LAYERS, spec.mid_attention
        inv3 = "inverse_wavelet_tranform_3d"
        ops = [conv("conv_in.conv", B, shape, shape, z, 4 * c, K3)]
        ops += mid("mid", B, shape, 4 * c, 4 * c, 4 * c + ef[1], attn)
        ops += res3ds("connect_l3", B, shape, c, n)
        ops += [conv(f"connect_l3.{n}", B, shape, shape, c, 24, _3x3, op="conv2d"),
                inverse_haar(inv3, B, 24, shape, (2, 2, 2))]
        ops += res3ds("up2", B, shape, 4 * c, L)
        T, h, w = shape
        u = f"up2.{L}"
        if not skip(T - 1):
            doubled = Shape((2 * (T - 1), h, w))
            ops += [nearest(u, B, 4 * c, Shape((T - 1, h, w)), doubled),
                    trilinear(u, B, 4 * c, doubled, Shape((2 * (T - 1), 2 * h, 2 * w)))]
        ops.append(trilinear(u, B, 4 * c, Shape((1, h, w)), Shape((1, 2 * h, 2 * w))))
        s2 = Shape((2 * T - 1, 2 * h, 2 * w))
        ops.append(conv(f"{u}.conv.conv", B, s2, s2, 4 * c, 4 * c, K3, "resample"))
        ops += res3d(f"up2.{L + 1}", B, s2, 4 * c, 4 * c + ef[1])
        ops += res3ds("connect_l2", B, s2, c, n)
        ops += [conv(f"connect_l2.{n}", B, s2, s2, c, 12, _3x3, op="conv2d"),
                inverse_haar("inverse_wavelet_tranform_2d", B, 12, s2, (2, 2))]
        if L:
            ops += res3d("up1.0", B, s2, 4 * c, 2 * c) + res3ds("up1", B, s2, 2 * c, L - 1, start=1)
        s1 = Shape((s2[0], 4 * h, 4 * w))
        ops += [nearest(f"up1.{L}", B, 2 * c, s2, s1),
                conv(f"up1.{L}.conv", B, s1, s1, 2 * c, 2 * c, _3x3, "resample", "conv2d")]
        ops += res3d(f"up1.{L + 1}", B, s1, 2 * c, 2 * c)
        ops += res3d("layer.0", B, s1, 2 * c, c) + res3d("layer.1", B, s1, c, c)
        return ops + [norm("norm_out", "group_norm", B, c, s1),
                      conv("conv_out", B, s1, s1, c, 24, _3x3, op="conv2d"), inverse_haar(inv3, B, 24, s1, (2, 2, 2))]
