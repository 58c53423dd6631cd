"""Closed-form MACs of the 3D VAE (reference_model/vae.py), one function per module type.

Shapes are (T, H, W) per sample; B is the batch. A kt x 3 x 3 convolution with stride s keeps
(T - 1) // s_t + 1 frames and (H - 1) // s + 1 rows whether causal (front padding kt - 1) or not
(symmetric padding kt // 2, kt odd), so encode and decode walk the same shapes in both modes.
"""

from __future__ import annotations

from sora_compute.flops.breakdown import Term, attention_term, linear_term, norm_term
from sora_compute.flops.ops import (
    FVCORE,
    CountingConvention,
    Number,
    conv_elements,
    conv_macs,
    upsample_nearest_macs,
)
from sora_compute.specs import VAESpec

__all__ = ["conv3d", "resnet_block", "attention_block", "mid_block", "upsample", "encoder_terms", "decoder_terms"]

class Shape(tuple[Number, Number, Number]):
    """(T, H, W) of one sample, with ``positions`` = T * H * W computed once (it is an array in sweeps)."""

    positions: Number

    def __new__(cls, dims: tuple[Number, Number, Number]) -> Shape:
        obj = super().__new__(cls, dims)
        obj.positions = dims[0] * dims[1] * dims[2]
        return obj


def conv3d(path: str, B: Number, shape: Shape, c_in: int, c_out: int, kernel: tuple[int, int, int],
           stride: tuple[int, int, int] = (1, 1, 1), kind: str = "conv") -> tuple[Term, Shape]:
    """Conv: B * T'H'W' * c_in * c_out * kt*kh*kw, with T' = (T - 1) // st + 1 (same for H, W)."""
    out = shape
    if stride != (1, 1, 1):
        T, H, W = shape
        out = Shape(((T - 1) // stride[0] + 1, (H - 1) // stride[1] + 1, (W - 1) // stride[2] + 1))
    volume = kernel[0] * kernel[1] * kernel[2]
    elements = conv_elements(B, shape.positions, out.positions, c_in, c_out, volume)
    return Term(path, kind, "conv3d", conv_macs(B, out.positions, c_in, c_out, volume), None, elements), out


def _group_norm(path: str, B: Number, c: int, shape: Shape, conv: CountingConvention) -> Term:
    return norm_term(path, "group_norm", c * B * shape.positions, True, conv)


def resnet_block(prefix: str, B: Number, shape: Shape, c_in: int, c_out: int, spec: VAESpec,
                 conv: CountingConvention) -> list[Term]:
    """GroupNorm, conv(c_in -> c_out), GroupNorm, conv(c_out -> c_out), 1x1x1 shortcut when widths differ."""
    k = spec.conv_kernel
    terms = [_group_norm(f"{prefix}.norm1", B, c_in, shape, conv)]
    t1, _ = conv3d(f"{prefix}.conv1.conv", B, shape, c_in, c_out, k)
    terms += [t1, _group_norm(f"{prefix}.norm2", B, c_out, shape, conv)]
    t2, _ = conv3d(f"{prefix}.conv2.conv", B, shape, c_out, c_out, k)
    terms.append(t2)
    if c_in != c_out:
        terms.append(conv3d(f"{prefix}.shortcut", B, shape, c_in, c_out, (1, 1, 1))[0])
    return terms


def attention_block(prefix: str, B: Number, shape: Shape, c: int, conv: CountingConvention) -> list[Term]:
    """Single-head attention over n = T*H*W positions: GroupNorm, 4 n c^2 (q, k, v, proj), 2 n^2 c core."""
    n = shape.positions
    terms = [_group_norm(f"{prefix}.norm", B, c, shape, conv)]
    terms += [linear_term(f"{prefix}.{name}", "vae_attention", B * n, c, c) for name in "qkv"]
    terms.append(attention_term(prefix, "vae_attention", B, 1, n, n, c))
    terms.append(linear_term(f"{prefix}.proj", "vae_attention", B * n, c, c))
    return terms


def mid_block(prefix: str, B: Number, shape: Shape, c: int, spec: VAESpec, conv: CountingConvention) -> list[Term]:
    terms = resnet_block(f"{prefix}.resnet1", B, shape, c, c, spec, conv)
    if spec.mid_attention:
        terms += attention_block(f"{prefix}.attn", B, shape, c, conv)
    return terms + resnet_block(f"{prefix}.resnet2", B, shape, c, c, spec, conv)


def upsample(prefix: str, B: Number, shape: Shape, c: int, temporal: bool, spec: VAESpec,
             conv: CountingConvention) -> tuple[list[Term], Shape]:
    """Nearest x2 (H, W; and T: 2T, or 1 + 2(T - 1) when causal), 1 per output element; then a conv."""
    T, H, W = shape
    if temporal:
        T = 1 + 2 * (T - 1) if spec.causal else 2 * T
    out = Shape((T, 2 * H, 2 * W))
    moved = c * B * (shape.positions + out.positions)
    terms = [Term(prefix, "resample", "upsample", upsample_nearest_macs(c * B * out.positions, conv), None, moved)]
    terms.append(conv3d(f"{prefix}.conv.conv", B, out, c, c, spec.conv_kernel, kind="resample")[0])
    return terms, out


def encoder_terms(spec: VAESpec, video_shape: tuple[Number, Number, Number], batch: Number = 1,
                  convention: CountingConvention = FVCORE) -> list[Term]:
    """Encoder of a (T, H, W) video, paths relative to ``VAE3D.encoder``."""
    B, k, chans, p = batch, spec.conv_kernel, spec.block_out_channels, spec.patch_size
    T, H, W = video_shape
    t, shape = conv3d("conv_in.conv", B, Shape((T, H // p, W // p)), spec.pixel_channels, chans[0], k)
    terms, c_prev = [t], chans[0]
    for i, c in enumerate(chans):
        for j in range(spec.layers_per_block):
            terms += resnet_block(f"down.{i}.resnets.{j}", B, shape, c_prev, c, spec, convention)
            c_prev = c
        if i < spec.num_spatial_down:
            stride = (2 if i < spec.num_temporal_down else 1, 2, 2)
            t, shape = conv3d(f"down.{i}.resample.conv.conv", B, shape, c, c, k, stride, kind="resample")
            terms.append(t)
    terms += mid_block("mid", B, shape, c_prev, spec, convention)
    terms.append(_group_norm("norm_out", B, c_prev, shape, convention))
    z = spec.latent_channels * (2 if spec.double_z else 1)
    terms.append(conv3d("conv_out.conv", B, shape, c_prev, z, k)[0])
    return terms


def decoder_terms(spec: VAESpec, latent_shape: tuple[Number, Number, Number], batch: Number = 1,
                  convention: CountingConvention = FVCORE) -> list[Term]:
    """Decoder of a (T', H', W') latent, paths relative to ``VAE3D.decoder``."""
    B, k = batch, spec.conv_kernel
    chans = tuple(reversed(spec.block_out_channels))
    shape = Shape(latent_shape)
    terms = [conv3d("conv_in.conv", B, shape, spec.latent_channels, chans[0], k)[0]]
    terms += mid_block("mid", B, shape, chans[0], spec, convention)
    c_prev = chans[0]
    for j, c in enumerate(chans):
        for r in range(spec.layers_per_block + 1):
            terms += resnet_block(f"up.{j}.resnets.{r}", B, shape, c_prev, c, spec, convention)
            c_prev = c
        if j < spec.num_spatial_down:
            up, shape = upsample(f"up.{j}.resample", B, shape, c, j < spec.num_temporal_down, spec, convention)
            terms += up
    terms.append(_group_norm("norm_out", B, c_prev, shape, convention))
    terms.append(conv3d("conv_out.conv", B, shape, c_prev, spec.pixel_channels, k)[0])
    return terms
