"""Closed-form MACs of the 3D VAE (reference_model/vae.py), one function per module type.

Shapes are (T, H, W) per sample; B is the batch. A kt x 3 x 3 convolution with stride s keeps
(T - 1) // s_t + 1 frames and (H - 1) // s + 1 rows whether causal (front padding kt - 1) or not
(symmetric padding kt // 2, kt odd), so encode and decode walk the same shapes in both modes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from sora_compute.ledger.formulas import (
    FVCORE,
    CountingConvention,
    Number,
    conv_elements,
    conv_macs,
    upsample_linear_macs,
    upsample_nearest_macs,
)
from sora_compute.ledger.ops import Op, attention_op, linear_op, norm_term
from sora_compute.specs import STEPVIDEO_HEAD, WFVAE_FLOW_LAYERS, VAESpec

__all__ = ["conv3d", "resnet_block", "attention_block", "mid_block", "upsample", "encoder_terms", "decoder_terms"]

class Shape(tuple[Number, Number, Number]):
    """(T, H, W) of one sample, with ``positions`` = T * H * W computed once (it is an array in sweeps)."""

    positions: Number

    def __new__(cls, dims: tuple[Number, Number, Number]) -> Shape:
        obj = super().__new__(cls, dims)
        obj.positions = dims[0] * dims[1] * dims[2]
        return obj


def conv3d(path: str, B: Number, shape: Shape, c_in: int, c_out: int, kernel: tuple[int, int, int],
           stride: tuple[int, int, int] = (1, 1, 1), kind: str = "conv") -> tuple[Op, Shape]:
    """Conv: B * T'H'W' * c_in * c_out * kt*kh*kw, with T' = (T - 1) // st + 1 (same for H, W)."""
    out = shape
    if stride != (1, 1, 1):
        T, H, W = shape
        out = Shape(((T - 1) // stride[0] + 1, (H - 1) // stride[1] + 1, (W - 1) // stride[2] + 1))
    volume = kernel[0] * kernel[1] * kernel[2]
    elements = conv_elements(B, shape.positions, out.positions, c_in, c_out, volume)
    return Op(path, kind, "conv3d", conv_macs(B, out.positions, c_in, c_out, volume), None, elements), out


def _group_norm(path: str, B: Number, c: int, shape: Shape, conv: CountingConvention) -> Op:
    return norm_term(path, "group_norm", c * B * shape.positions, True, conv)


def resnet_block(prefix: str, B: Number, shape: Shape, c_in: int, c_out: int, spec: VAESpec,
                 conv: CountingConvention) -> list[Op]:
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


def attention_block(prefix: str, B: Number, shape: Shape, c: int, conv: CountingConvention) -> list[Op]:
    """Single-head attention over n = T*H*W positions: GroupNorm, 4 n c^2 (q, k, v, proj), 2 n^2 c core."""
    n = shape.positions
    terms = [_group_norm(f"{prefix}.norm", B, c, shape, conv)]
    terms += [linear_op(f"{prefix}.{name}", "vae_attention", B * n, c, c) for name in "qkv"]
    terms.append(attention_op(prefix, "vae_attention", B, 1, n, n, c))
    terms.append(linear_op(f"{prefix}.proj", "vae_attention", B * n, c, c))
    return terms


def mid_block(prefix: str, B: Number, shape: Shape, c: int, spec: VAESpec, conv: CountingConvention) -> list[Op]:
    terms = resnet_block(f"{prefix}.resnet1", B, shape, c, c, spec, conv)
    if spec.mid_attention:
        terms += attention_block(f"{prefix}.attn", B, shape, c, conv)
    return terms + resnet_block(f"{prefix}.resnet2", B, shape, c, c, spec, conv)


def upsample(prefix: str, B: Number, shape: Shape, c: int, temporal: bool, spec: VAESpec,
             conv: CountingConvention) -> tuple[list[Op], Shape]:
    """Nearest x2 (H, W; and T: 2T, or 1 + 2(T - 1) when causal), 1 per output element; then a conv."""
    T, H, W = shape
    if temporal:
        T = 1 + 2 * (T - 1) if spec.causal else 2 * T
    out = Shape((T, 2 * H, 2 * W))
    moved = c * B * (shape.positions + out.positions)
    terms = [Op(prefix, "resample", "upsample", upsample_nearest_macs(c * B * out.positions, conv), None, moved)]
    terms.append(conv3d(f"{prefix}.conv.conv", B, out, c, c, spec.conv_kernel, kind="resample")[0])
    return terms, out


def encoder_terms(spec: VAESpec, video_shape: tuple[Number, Number, Number], batch: Number = 1,
                  convention: CountingConvention = FVCORE) -> list[Op]:
    """Encoder of a (T, H, W) video, paths relative to ``VAE3D.encoder``."""
    if spec.family != "generic":
        return _FAMILY_TERMS[spec.family][0](spec, Shape(video_shape), batch, convention)
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
    if spec.quant_convs:
        terms.append(conv3d("quant_conv", B, shape, z, z, (1, 1, 1))[0])
    return terms


def decoder_terms(spec: VAESpec, latent_shape: tuple[Number, Number, Number], batch: Number = 1,
                  convention: CountingConvention = FVCORE, num_frames: Number | None = None) -> list[Op]:
    """Decoder of a (T', H', W') latent, paths relative to ``VAE3D.decoder``. ``num_frames``: the frames decoded
    (family='opensora' cuts each chunk's padding frames before its 2D decoder; default ``decoded_frames(T')``)."""
    if spec.family == "opensora":
        return opensora_decoder_terms(spec, Shape(latent_shape), batch, convention, num_frames)
    if spec.family != "generic":
        return _FAMILY_TERMS[spec.family][1](spec, Shape(latent_shape), batch, convention)
    B, k = batch, spec.conv_kernel
    chans = tuple(reversed(spec.block_out_channels))
    shape, z = Shape(latent_shape), spec.latent_channels
    terms = [conv3d("post_quant_conv", B, shape, z, z, (1, 1, 1))[0]] if spec.quant_convs else []
    terms.append(conv3d("conv_in.conv", B, shape, z, chans[0], k)[0])
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


# ------------------------------------------------------------------------------------------------
# Published VAE families (reference_model/vae.py, family sections): one function per module type
# ------------------------------------------------------------------------------------------------

K3 = 27  # volume of a 3x3x3 kernel


def conv_term(path: str, B: Number, shape: Shape, out: Shape, c_in: int, c_out: int, volume: int,
              kind: str = "conv", op: str = "conv3d") -> Op:
    """A convolution from ``shape`` to ``out`` positions (2D convolutions run per frame: T H W positions too)."""
    return Op(path, kind, op, conv_macs(B, out.positions, c_in, c_out, volume), None,
                conv_elements(B, shape.positions, out.positions, c_in, c_out, volume))


def _norm(path: str, op: str, B: Number, c: int, shape: Shape, affine: bool, conv: CountingConvention) -> Op:
    return norm_term(path, op, c * B * shape.positions, affine, conv)


def _nearest(path: str, B: Number, c: int, shape: Shape, out: Shape, conv: CountingConvention) -> Op:
    """Nearest up-sampling to ``out``: 1 per output element."""
    return Op(path, "resample", "upsample", upsample_nearest_macs(c * B * out.positions, conv), None,
                c * B * (shape.positions + out.positions))


# --- Wan2.1 -------------------------------------------------------------------------------------

def wan_resnet(prefix: str, B: Number, shape: Shape, c_in: int, c_out: int, conv: CountingConvention) -> list[Op]:
    """1x1x1 shortcut (when widths differ), RMSNorm, 3x3x3 conv, RMSNorm, 3x3x3 conv."""
    terms = [conv_term(f"{prefix}.shortcut", B, shape, shape, c_in, c_out, 1)] if c_in != c_out else []
    return terms + [_norm(f"{prefix}.norm1", "rms_norm", B, c_in, shape, True, conv),
                    conv_term(f"{prefix}.conv1", B, shape, shape, c_in, c_out, K3),
                    _norm(f"{prefix}.norm2", "rms_norm", B, c_out, shape, True, conv),
                    conv_term(f"{prefix}.conv2", B, shape, shape, c_out, c_out, K3)]


def wan_attention(prefix: str, B: Number, shape: Shape, c: int, conv: CountingConvention) -> list[Op]:
    """Per frame: RMSNorm, 1x1 conv c -> 3c, single-head SDPA over H W positions (2 (H W)^2 c per frame), 1x1 conv."""
    T, H, W = shape
    return [_norm(f"{prefix}.norm", "rms_norm", B, c, shape, True, conv),
            conv_term(f"{prefix}.to_qkv", B, shape, shape, c, 3 * c, 1, "vae_attention", "conv2d"),
            attention_op(prefix, "vae_attention", B * T, 1, H * W, H * W, c),
            conv_term(f"{prefix}.proj", B, shape, shape, c, c, 1, "vae_attention", "conv2d")]


def wan_mid(prefix: str, B: Number, shape: Shape, c: int, conv: CountingConvention) -> list[Op]:
    return (wan_resnet(f"{prefix}.resnet1", B, shape, c, c, conv) + wan_attention(f"{prefix}.attn", B, shape, c, conv)
            + wan_resnet(f"{prefix}.resnet2", B, shape, c, c, conv))


def wan_downsample(prefix: str, B: Number, shape: Shape, c: int, temporal: bool) -> tuple[list[Op], Shape]:
    """Stride-2 3x3 conv per frame (H -> H // 2); temporal: a stride-2 (3, 1, 1) conv makes (T - 1) // 2 frames,
    appended to the first: T -> 1 + (T - 1) // 2."""
    T, H, W = shape
    out = Shape((T, H // 2, W // 2))
    terms = [conv_term(f"{prefix}.conv", B, shape, out, c, c, 9, "resample", "conv2d")]
    if temporal:
        made = Shape(((T - 1) // 2, H // 2, W // 2))
        terms.append(conv_term(f"{prefix}.time_conv", B, out, made, c, c, 3, "resample"))
        out = Shape((1 + made[0], H // 2, W // 2))
    return terms, out


def wan_upsample(prefix: str, B: Number, shape: Shape, c: int, temporal: bool,
                 conv: CountingConvention) -> tuple[list[Op], Shape]:
    """Temporal: a causal (3, 1, 1) conv c -> 2c on the T - 1 frames after the first (T -> 2T - 1); then per frame
    nearest x2 and a 3x3 conv c -> c / 2."""
    T, H, W = shape
    terms = []
    if temporal:
        rest = Shape((T - 1, H, W))
        terms.append(conv_term(f"{prefix}.time_conv", B, rest, rest, c, 2 * c, 3, "resample"))
        T = 2 * T - 1
    before, out = Shape((T, H, W)), Shape((T, 2 * H, 2 * W))
    terms.append(_nearest(prefix, B, c, before, out, conv))
    terms.append(conv_term(f"{prefix}.conv", B, out, out, c, c // 2, 9, "resample", "conv2d"))
    return terms, out


def wan_encoder_terms(spec: VAESpec, shape: Shape, B: Number, conv: CountingConvention) -> list[Op]:
    chans, factors, z2 = spec.block_out_channels, spec.level_temporal_factors, 2 * spec.latent_channels
    terms, c_prev = [conv_term("conv_in", B, shape, shape, spec.in_channels, chans[0], K3)], chans[0]
    for i, c in enumerate(chans):
        for j in range(spec.layers_per_block):
            terms += wan_resnet(f"down.{i}.resnets.{j}", B, shape, c_prev, c, conv)
            c_prev = c
        if i < len(chans) - 1:
            down, shape = wan_downsample(f"down.{i}.resample", B, shape, c, factors[i] > 1)
            terms += down
    terms += wan_mid("mid", B, shape, c_prev, conv)
    return terms + [_norm("norm_out", "rms_norm", B, c_prev, shape, True, conv),
                    conv_term("conv_out", B, shape, shape, c_prev, z2, K3),
                    conv_term("quant_conv", B, shape, shape, z2, z2, 1)]


def wan_decoder_terms(spec: VAESpec, shape: Shape, B: Number, conv: CountingConvention) -> list[Op]:
    chans, factors, z = spec.decoder_channels, spec.level_temporal_factors, spec.latent_channels
    terms = [conv_term("post_quant_conv", B, shape, shape, z, z, 1),
             conv_term("conv_in", B, shape, shape, z, chans[0], K3)] + wan_mid("mid", B, shape, chans[0], conv)
    c_prev = chans[0]
    for j, c in enumerate(chans):
        for r in range(spec.layers_per_block + 1):
            terms += wan_resnet(f"up.{j}.resnets.{r}", B, shape, c_prev, c, conv)
            c_prev = c
        if j < len(chans) - 1:
            up, shape = wan_upsample(f"up.{j}.resample", B, shape, c, factors[-1 - j] > 1, conv)
            terms += up
            c_prev = c // 2
    return terms + [_norm("norm_out", "rms_norm", B, c_prev, shape, True, conv),
                    conv_term("conv_out", B, shape, shape, c_prev, spec.in_channels, K3)]


# --- CogVideoX ----------------------------------------------------------------------------------

def spatial_norm(prefix: str, B: Number, shape: Shape, c: int, z: int, conv: CountingConvention) -> list[Op]:
    """The latent resized (nearest) to the features' grid (z x T H W outputs), GroupNorm, two 1x1x1 convs z -> c."""
    return [_nearest(prefix, B, z, shape, shape, conv), _norm(f"{prefix}.norm", "group_norm", B, c, shape, True, conv),
            conv_term(f"{prefix}.conv_y", B, shape, shape, z, c, 1),
            conv_term(f"{prefix}.conv_b", B, shape, shape, z, c, 1)]


def cog_resnet(prefix: str, B: Number, shape: Shape, c_in: int, c_out: int, spec: VAESpec, spatial: bool,
               conv: CountingConvention) -> list[Op]:
    """Two (norm, causal 3x3x3 conv) pairs, a 1x1x1 shortcut when widths differ; spatial norms in the decoder."""
    terms: list[Op] = []
    for i, (ci, co) in enumerate(((c_in, c_out), (c_out, c_out)), start=1):
        if spatial:
            terms += spatial_norm(f"{prefix}.norm{i}", B, shape, ci, spec.latent_channels, conv)
        else:
            terms.append(_norm(f"{prefix}.norm{i}", "group_norm", B, ci, shape, True, conv))
        terms.append(conv_term(f"{prefix}.conv{i}.conv", B, shape, shape, ci, co, K3))
    if c_in != c_out:
        terms.append(conv_term(f"{prefix}.shortcut", B, shape, shape, c_in, c_out, 1))
    return terms


def cog_encoder_terms(spec: VAESpec, shape: Shape, B: Number, conv: CountingConvention) -> list[Op]:
    chans, factors = spec.block_out_channels, spec.level_temporal_factors
    terms, c_prev = [conv_term("conv_in.conv", B, shape, shape, spec.in_channels, chans[0], K3)], chans[0]
    for i, c in enumerate(chans):
        for j in range(spec.layers_per_block):
            terms += cog_resnet(f"down.{i}.resnets.{j}", B, shape, c_prev, c, spec, False, conv)
            c_prev = c
        if i < len(chans) - 1:  # average frame pairs (temporal levels: T -> ceil(T / 2)), stride-2 3x3 conv
            T, H, W = shape
            before = Shape(((T + 1) // 2 if factors[i] > 1 else T, H, W))
            shape = Shape((before[0], H // 2, W // 2))
            terms.append(conv_term(f"down.{i}.resample.conv", B, before, shape, c, c, 9, "resample", "conv2d"))
    for j in range(2):
        terms += cog_resnet(f"mid.resnets.{j}", B, shape, c_prev, c_prev, spec, False, conv)
    return terms + [_norm("norm_out", "group_norm", B, c_prev, shape, True, conv),
                    conv_term("conv_out.conv", B, shape, shape, c_prev, 2 * spec.latent_channels, K3)]


def cog_decoder_terms(spec: VAESpec, shape: Shape, B: Number, conv: CountingConvention) -> list[Op]:
    chans, factors, z = spec.decoder_channels, spec.level_temporal_factors, spec.latent_channels
    terms = [conv_term("conv_in.conv", B, shape, shape, z, chans[0], K3)]
    for j in range(2):
        terms += cog_resnet(f"mid.resnets.{j}", B, shape, chans[0], chans[0], spec, True, conv)
    c_prev = chans[0]
    for j, c in enumerate(chans):
        for r in range(spec.layers_per_block + 1):
            terms += cog_resnet(f"up.{j}.resnets.{r}", B, shape, c_prev, c, spec, True, conv)
            c_prev = c
        if j < len(chans) - 1:  # nearest x2 (temporal levels: T -> 2T, or 2T - 1 when T is odd), 3x3 conv
            T, H, W = shape
            out = Shape((2 * T - T % 2 if factors[j] > 1 else T, 2 * H, 2 * W))
            terms += [_nearest(f"up.{j}.resample", B, c, shape, out, conv),
                      conv_term(f"up.{j}.resample.conv", B, out, out, c, c, 9, "resample", "conv2d")]
            shape = out
    return terms + spatial_norm("norm_out", B, shape, c_prev, z, conv) + [
        conv_term("conv_out.conv", B, shape, shape, c_prev, spec.in_channels, K3)]


# --- Mochi-1 ------------------------------------------------------------------------------------

MOCHI_HEAD_DIM = 32


def mochi_resnet(prefix: str, B: Number, shape: Shape, c: int, conv: CountingConvention) -> list[Op]:
    """Per-frame GroupNorm, causal 3x3x3 conv, twice (same width)."""
    return [_norm(f"{prefix}.norm1", "group_norm", B, c, shape, True, conv),
            conv_term(f"{prefix}.conv1", B, shape, shape, c, c, K3),
            _norm(f"{prefix}.norm2", "group_norm", B, c, shape, True, conv),
            conv_term(f"{prefix}.conv2", B, shape, shape, c, c, K3)]


def mochi_attention(prefix: str, B: Number, shape: Shape, c: int, conv: CountingConvention) -> list[Op]:
    """Per-frame GroupNorm; at each of the H W positions a causal attention over its T frames in heads of 32
    (the profilers count the full T x T scores): q, k, v and output Linears, weightless RMSNorm of q and k (3 per
    element), SDPA 2 T^2 c per position. One frame (T = 1) runs only to_v and to_out."""
    T, H, W = shape
    rows, many = B * shape.positions, T > 1  # ``many``: 0/1 (array-safe) for the q, k and score terms
    terms = [_norm(f"{prefix}.norm", "group_norm", B, c, shape, True, conv)]
    terms += [linear_op(f"{prefix}.to_{n}", "vae_attention", rows * many, c, c) for n in "qk"]
    terms.append(linear_op(f"{prefix}.to_v", "vae_attention", rows, c, c))
    terms.append(norm_term(prefix, "rms_norm", 2 * c * rows * many, False, conv))
    terms.append(attention_op(prefix, "vae_attention", B * H * W * many, c // MOCHI_HEAD_DIM, T, T, MOCHI_HEAD_DIM))
    return terms + [linear_op(f"{prefix}.to_out", "vae_attention", rows, c, c)]


def mochi_block(prefix: str, B: Number, shape: Shape, c: int, layers: int, attention: bool,
                conv: CountingConvention) -> list[Op]:
    terms: list[Op] = []
    for i in range(layers):
        terms += mochi_resnet(f"{prefix}.resnets.{i}", B, shape, c, conv)
        if attention:
            terms += mochi_attention(f"{prefix}.attentions.{i}", B, shape, c, conv)
    return terms


def mochi_encoder_terms(spec: VAESpec, shape: Shape, B: Number, conv: CountingConvention) -> list[Op]:
    """Fourier features are elementwise; Linear in on 3 x (1 + 2 x 2) channels; down-sampling convs (t, 2, 2) with
    that stride map T -> (T - 1) // t + 1 (causal padding), H -> H // 2."""
    chans, layers, factors = spec.block_out_channels, spec.layers_per_level, spec.level_temporal_factors
    assert layers is not None
    rows = B * shape.positions
    terms = [linear_op("proj_in", "conv", rows, spec.in_channels * 5, chans[0])]
    terms += mochi_block("block_in", B, shape, chans[0], layers[0], False, conv)
    for i, t in enumerate(factors):
        T, H, W = shape
        out = Shape(((T - 1) // t + 1, H // 2, W // 2))
        terms.append(conv_term(f"down.{i}.conv", B, shape, out, chans[i], chans[i + 1], 4 * t, "resample"))
        shape = out
        terms += mochi_block(f"down.{i}.block", B, shape, chans[i + 1], layers[i + 1], True, conv)
    terms += mochi_block("block_out", B, shape, chans[-1], layers[-1], True, conv)
    return terms + [_norm("norm_out", "group_norm", B, chans[-1], shape, True, conv),
                    linear_op("proj_out", "conv", B * shape.positions, chans[-1], 2 * spec.latent_channels)]


def mochi_decoder_terms(spec: VAESpec, shape: Shape, B: Number, conv: CountingConvention) -> list[Op]:
    """Up-sampling Linears c -> c' t 4 at the coarse grid, then T -> t T, H -> 2H (the first t - 1 frames of the
    output are dropped after the last Linear)."""
    rev, layers, factors = spec.decoder_channels, spec.layers_per_level, spec.level_temporal_factors
    assert layers is not None
    n = len(rev)
    terms = [conv_term("conv_in", B, shape, shape, spec.latent_channels, rev[0], 1)]
    terms += mochi_block("block_in", B, shape, rev[0], layers[-1], False, conv)
    for j in range(n - 1):
        t = factors[n - 2 - j]
        terms += mochi_block(f"up.{j}.block", B, shape, rev[j], layers[n - 1 - j], False, conv)
        terms.append(linear_op(f"up.{j}.proj", "resample", B * shape.positions, rev[j], rev[j + 1] * t * 4))
        T, H, W = shape
        shape = Shape((T * t, 2 * H, 2 * W))
    terms += mochi_block("block_out", B, shape, rev[-1], layers[0], False, conv)
    return terms + [linear_op("proj_out", "conv", B * shape.positions, rev[-1], spec.in_channels)]


# --- LTX-Video 0.9.0 ----------------------------------------------------------------------------

def ltx_resnet(prefix: str, B: Number, shape: Shape, c_in: int, c_out: int, conv: CountingConvention) -> list[Op]:
    """Weightless RMSNorm (3 per element), 3x3x3 conv, twice; widening: affine LayerNorm and 1x1x1 conv shortcut."""
    terms = [_norm(f"{prefix}.norm1", "rms_norm", B, c_in, shape, False, conv),
             conv_term(f"{prefix}.conv1", B, shape, shape, c_in, c_out, K3),
             _norm(f"{prefix}.norm2", "rms_norm", B, c_out, shape, False, conv),
             conv_term(f"{prefix}.conv2", B, shape, shape, c_out, c_out, K3)]
    if c_in != c_out:
        terms += [_norm(f"{prefix}.norm3", "layer_norm", B, c_in, shape, True, conv),
                  conv_term(f"{prefix}.shortcut", B, shape, shape, c_in, c_out, 1)]
    return terms


def ltx_encoder_terms(spec: VAESpec, shape: Shape, B: Number, conv: CountingConvention) -> list[Op]:
    """Pixel-unshuffle (free), conv_in; per level ResNets, a stride-2 conv (T -> (T - 1) // 2 + 1, H -> (H - 1) // 2
    + 1), a widening ResNet; mid ResNets; RMSNorm; conv_out to z + 1."""
    chans, layers, n, p = spec.block_out_channels, spec.layers_per_level, len(spec.block_out_channels), spec.patch_size
    assert layers is not None
    T, H, W = shape
    shape = Shape((T, H // p, W // p))
    terms = [conv_term("conv_in", B, shape, shape, spec.pixel_channels, chans[0], K3)]
    for i, c in enumerate(chans):
        for j in range(layers[i]):
            terms += ltx_resnet(f"down.{i}.resnets.{j}", B, shape, c, c, conv)
        if i < n - 1:
            T, H, W = shape
            out = Shape(((T - 1) // 2 + 1, (H - 1) // 2 + 1, (W - 1) // 2 + 1))
            terms.append(conv_term(f"down.{i}.downsample", B, shape, out, c, c, K3, "resample"))
            shape = out
        if chans[min(i + 1, n - 1)] != c:
            terms += ltx_resnet(f"down.{i}.widen", B, shape, c, chans[i + 1], conv)
    for j in range(layers[-1]):
        terms += ltx_resnet(f"mid.{j}", B, shape, chans[-1], chans[-1], conv)
    return terms + [_norm("norm_out", "rms_norm", B, chans[-1], shape, False, conv),
                    conv_term("conv_out", B, shape, shape, chans[-1], spec.latent_channels + 1, K3)]


def ltx_decoder_terms(spec: VAESpec, shape: Shape, B: Number, conv: CountingConvention) -> list[Op]:
    """conv_in, mid ResNets; per level a narrowing ResNet, an up-sampling conv c -> 8c at the coarse grid (then
    T -> 2T - 1, H -> 2H), ResNets; RMSNorm, conv_out (pixel-shuffle is free)."""
    rev, layers, n = spec.decoder_channels, spec.layers_per_level, len(spec.block_out_channels)
    assert layers is not None
    terms = [conv_term("conv_in", B, shape, shape, spec.latent_channels, rev[0], K3)]
    for j in range(layers[-1]):
        terms += ltx_resnet(f"mid.{j}", B, shape, rev[0], rev[0], conv)
    c_prev = rev[0]
    for j, c in enumerate(rev):
        if c_prev != c:
            terms += ltx_resnet(f"up.{j}.narrow", B, shape, c_prev, c, conv)
        if j > 0:
            terms.append(conv_term(f"up.{j}.upsample.conv", B, shape, shape, c, 8 * c, K3, "resample"))
            T, H, W = shape
            shape = Shape((2 * T - 1, 2 * H, 2 * W))
        for r in range(layers[n - 1 - j]):
            terms += ltx_resnet(f"up.{j}.resnets.{r}", B, shape, c, c, conv)
        c_prev = c
    return terms + [_norm("norm_out", "rms_norm", B, c_prev, shape, False, conv),
                    conv_term("conv_out", B, shape, shape, c_prev, spec.pixel_channels, K3)]


# --- Open-Sora 1.2 ------------------------------------------------------------------------------

def _prefixed(prefix: str, terms: list[Op]) -> list[Op]:
    return [replace(t, path=f"{prefix}.{t.path}") for t in terms]


def _gn_conv_resblock(prefix: str, B: Number, shape: Shape, c_in: int, c_out: int, conv: CountingConvention,
                      convs: tuple[str, str, str]) -> list[Op]:
    """GroupNorm, 3x3x3 conv, GroupNorm, 3x3x3 conv; a 1x1x1 shortcut when widths differ (``convs``: the paths of
    the two convs and the shortcut, as each code base names them)."""
    c1, c2, short = convs
    terms = [_norm(f"{prefix}.norm1", "group_norm", B, c_in, shape, True, conv),
             conv_term(f"{prefix}.{c1}", B, shape, shape, c_in, c_out, K3),
             _norm(f"{prefix}.norm2", "group_norm", B, c_out, shape, True, conv),
             conv_term(f"{prefix}.{c2}", B, shape, shape, c_out, c_out, K3)]
    if c_in != c_out:
        terms.append(conv_term(f"{prefix}.{short}", B, shape, shape, c_in, c_out, 1))
    return terms


def os_resblock(prefix: str, B: Number, shape: Shape, c_in: int, c_out: int, conv: CountingConvention) -> list[Op]:
    """VAE_Temporal_SD's ResBlock: GroupNorm, causal 3x3x3 conv, twice; a 1x1x1 shortcut when widths differ."""
    return _gn_conv_resblock(prefix, B, shape, c_in, c_out, conv, ("conv1", "conv2", "shortcut"))


def os_temporal_encoder_terms(spec: VAESpec, shape: Shape, B: Number, conv: CountingConvention) -> list[Op]:
    """The temporal VAE's encoder and quant_conv on a (T, h, w) chunk already padded to a multiple of t; a stride-2
    time conv (front padding 1) maps T -> (T - 2) // 2 + 1."""
    tc, layers, factors, z = spec.temporal_block_out_channels, spec.layers_per_level, spec.level_temporal_factors, \
        spec.latent_channels
    assert tc is not None and layers is not None
    terms, c_prev = [conv_term("conv_in", B, shape, shape, z, tc[0], K3)], tc[0]
    for i, c in enumerate(tc):
        for j in range(layers[i]):
            terms += os_resblock(f"down.{i}.resnets.{j}", B, shape, c_prev, c, conv)
            c_prev = c
        if i < len(tc) - 1 and factors[i] > 1:
            T, H, W = shape
            out = Shape(((T - 2) // 2 + 1, H, W))
            terms.append(conv_term(f"down.{i}.resample", B, shape, out, c, c, K3, "resample"))
            shape = out
    for j in range(layers[-1]):
        terms += os_resblock(f"mid.{j}", B, shape, c_prev, c_prev, conv)
    return terms + [_norm("norm_out", "group_norm", B, c_prev, shape, True, conv),
                    conv_term("conv_out", B, shape, shape, c_prev, 2 * z, 1),
                    conv_term("quant_conv", B, shape, shape, 2 * z, 2 * z, 1)]


def os_temporal_decoder_terms(spec: VAESpec, shape: Shape, B: Number, conv: CountingConvention) -> list[Op]:
    """The temporal VAE's post_quant_conv and decoder on a chunk of (T', h, w) latents; each doubling conv c -> 2c
    runs at the coarse grid, then T -> 2T (the cut of the padding frames is free)."""
    tc, layers, factors, z = spec.temporal_block_out_channels, spec.layers_per_level, spec.level_temporal_factors, \
        spec.latent_channels
    assert tc is not None and layers is not None
    terms = [conv_term("post_quant_conv", B, shape, shape, z, z, 1),
             conv_term("conv_in", B, shape, shape, z, tc[-1], K3)]
    for j in range(layers[-1]):
        terms += os_resblock(f"mid.{j}", B, shape, tc[-1], tc[-1], conv)
    c_prev = tc[-1]
    for j, i in enumerate(reversed(range(len(tc)))):
        for r in range(layers[i]):
            terms += os_resblock(f"up.{j}.resnets.{r}", B, shape, c_prev, tc[i], conv)
            c_prev = tc[i]
        if i > 0 and factors[i - 1] > 1:
            terms.append(conv_term(f"up.{j}.resample.conv", B, shape, shape, c_prev, 2 * c_prev, K3, "resample"))
            T, H, W = shape
            shape = Shape((2 * T, H, W))
    return terms + [_norm("norm_out", "group_norm", B, c_prev, shape, True, conv),
                    conv_term("conv_out", B, shape, shape, c_prev, z, K3)]


def _chunks(total: Number, size: int | None) -> tuple[Number, Number]:
    """(whole chunks, the remainder) of ``total`` in chunks of ``size`` (None: one chunk of everything)."""
    if size is None:
        return 0 * total, total
    return total // size, total % size


def _skip(n: Number) -> bool:
    """A scalar zero count: leave its terms out (arrays keep them, with zero MACs where the count is zero)."""
    return not hasattr(n, "shape") and n == 0


def opensora_encoder_terms(spec: VAESpec, shape: Shape, B: Number, conv: CountingConvention) -> list[Op]:
    """The 2D VAE on every frame (B F images of (h, w): generic per-frame terms and the 1x1 quant_conv), then the
    temporal VAE on F // c whole chunks (padded to ``chunk_latent_frames`` x t frames) and on the remainder chunk of
    F % c frames (padded to ceil(r / t) x t)."""
    F, H, W = shape
    sp, z, t, s = spec.spatial_vae, spec.latent_channels, spec.temporal_compression, spec.spatial_compression
    frames = B * F
    terms = _prefixed("spatial", encoder_terms(sp, (1, H, W), frames, conv))
    lat = Shape((1, H // s, W // s))
    terms.append(conv_term("quant_conv", frames, lat, lat, 2 * z, 2 * z, 1))
    whole, rest = _chunks(F, spec.chunk_frames)
    if not _skip(whole):
        padded = Shape(((spec.chunk_latent_frames or 0) * t, H // s, W // s))
        terms += _prefixed("temporal", os_temporal_encoder_terms(spec, padded, B * whole, conv))
    if not _skip(rest):
        terms += _prefixed("temporal", os_temporal_encoder_terms(spec, Shape((-(-rest // t) * t, H // s, W // s)), B,
                                                                 conv))
    return terms


def opensora_decoder_terms(spec: VAESpec, shape: Shape, B: Number, conv: CountingConvention,
                           num_frames: Number | None = None) -> list[Op]:
    """The temporal VAE on L // k whole chunks of k = ``chunk_latent_frames`` latent frames and on the remainder
    L % k, then post_quant_conv and the 2D decoder on each of the ``num_frames`` frames kept."""
    L, h, w = shape
    F = spec.decoded_frames(L) if num_frames is None else num_frames
    whole, rest = _chunks(L, spec.chunk_latent_frames)
    terms: list[Op] = []
    if not _skip(whole):
        terms += _prefixed("temporal", os_temporal_decoder_terms(spec, Shape((spec.chunk_latent_frames or 0, h, w)),
                                                                 B * whole, conv))
    if not _skip(rest):
        terms += _prefixed("temporal", os_temporal_decoder_terms(spec, Shape((rest, h, w)), B, conv))
    frames, lat = B * F, Shape((1, h, w))
    terms.append(conv_term("post_quant_conv", frames, lat, lat, spec.latent_channels, spec.latent_channels, 1))
    return terms + _prefixed("spatial", decoder_terms(spec.spatial_vae, (1, h, w), frames, conv))


# --- Step-Video Video-VAE v2 --------------------------------------------------------------------

def sv_resnet(prefix: str, B: Number, shape: Shape, c_in: int, c_out: int, conv: CountingConvention) -> list[Op]:
    """Per-frame GroupNorm, causal 3x3x3 conv (the zero frames come with the norm's output), twice; a 1x1x1
    nin_shortcut when widths differ (run as a matmul on the channel-last tensor: the same MACs)."""
    terms = [_norm(f"{prefix}.norm1", "group_norm", B, c_in, shape, True, conv),
             conv_term(f"{prefix}.conv1.conv", B, shape, shape, c_in, c_out, K3),
             _norm(f"{prefix}.norm2", "group_norm", B, c_out, shape, True, conv),
             conv_term(f"{prefix}.conv2.conv", B, shape, shape, c_out, c_out, K3)]
    if c_in != c_out:
        terms.append(linear_op(f"{prefix}.nin_shortcut", "conv", B * shape.positions, c_in, c_out))
    return terms


def sv_mid(prefix: str, B: Number, shape: Shape, c: int, conv: CountingConvention) -> list[Op]:
    """Resnet; per-frame GroupNorm, 1x1x1 q, k, v, single-head causal SDPA over the n = T H W positions (the profilers
    count the full n x n scores: 2 n^2 c), 1x1x1 proj_out; Resnet."""
    n, a = shape.positions, f"{prefix}.attn_1"
    terms = sv_resnet(f"{prefix}.block_1", B, shape, c, c, conv)
    terms.append(_norm(f"{a}.norm", "group_norm", B, c, shape, True, conv))
    terms += [linear_op(f"{a}.{p}", "vae_attention", B * n, c, c) for p in "qkv"]
    terms += [attention_op(a, "vae_attention", B, 1, n, n, c),
              linear_op(f"{a}.proj_out", "vae_attention", B * n, c, c)]
    return terms + sv_resnet(f"{prefix}.block_2", B, shape, c, c, conv)


def sv_encoder_chunk(spec: VAESpec, shape: Shape, B: Number, conv: CountingConvention) -> list[Op]:
    """One chunk of T frames: a 2D boundary maps H -> H / 2 per frame (stride-2 3x3 conv after a zero row and column),
    a 3D one (T, H) -> ((T - 1) // 2 + 1, H / 2) (causal stride-2 3x3x3 conv); the head's conv runs at the levels'
    grid, its pixel-unshuffle gives ((T + 1) // 2, H / 2), conv_out runs there. Channel averages are free."""
    chans, factors, z = spec.block_out_channels, spec.level_temporal_factors, spec.latent_channels
    stem = spec.stem_channels or chans[0]
    terms, c_prev = [conv_term("conv_in.conv", B, shape, shape, spec.in_channels, stem, K3)], stem
    for i, c in enumerate(chans):
        for j in range(spec.layers_per_block):
            terms += sv_resnet(f"down.{i}.block.{j}", B, shape, c_prev, c, conv)
            c_prev = c
        if i < len(chans) - 1:
            T, H, W = shape
            if factors[i] > 1:
                out = Shape(((T - 1) // 2 + 1, H // 2, W // 2))
                terms.append(conv_term(f"down.{i}.downsample.conv.conv", B, shape, out, c, c, K3, "resample"))
            else:
                out = Shape((T, H // 2, W // 2))
                terms.append(conv_term(f"down.{i}.downsample.conv", B, shape, out, c, c, 9, "resample", "conv2d"))
            shape = out
    terms += sv_mid("mid", B, shape, c_prev, conv)
    terms.append(_norm("norm_out", "group_norm", B, c_prev, shape, True, conv))
    head = STEPVIDEO_HEAD * z
    terms.append(conv_term("conv_patchify.conv.conv", B, shape, shape, c_prev, head // 8, K3, "resample"))
    T, H, W = shape
    out = Shape(((T + 1) // 2, H // 2, W // 2))
    return terms + [conv_term("conv_out.conv", B, out, out, head, 2 * z, K3)]


def sv_decoder_chunk(spec: VAESpec, shape: Shape, B: Number, conv: CountingConvention) -> list[Op]:
    """One chunk of L latent frames: conv_in and conv_unpatchify at (L, h, w), whose pixel-shuffle gives (2L - 1, 2h,
    2w); per level Resnets, then nearest x2 in (T, H, W) (1 per output element) and Res3DBlockUpsample's two 3x3x3
    convs and GroupNorms, or nearest x2 per frame and a 3x3 conv; norm_out and conv_out on every frame before the cut
    of the first 2^k - 1. Channel duplication and the cut are free."""
    rev, factors, z, n = spec.decoder_channels, spec.level_temporal_factors, spec.latent_channels, \
        len(spec.block_out_channels)
    head = STEPVIDEO_HEAD * z
    terms = [conv_term("conv_in.conv", B, shape, shape, z, head, K3),
             conv_term("conv_unpatchify.conv.conv", B, shape, shape, head, 8 * rev[0], K3, "resample")]
    L, h, w = shape
    shape = Shape((2 * L - (L > 0), 2 * h, 2 * w))  # 2L - 1 (0 for an empty remainder in sweeps)
    terms += sv_mid("mid", B, shape, rev[0], conv)
    c_prev = rev[0]
    for j, c in enumerate(rev):
        i_level = n - 1 - j
        for r in range(spec.layers_per_block + 1):
            terms += sv_resnet(f"up.{i_level}.block.{r}", B, shape, c_prev, c, conv)
            c_prev = c
        if i_level > 0:
            T, H, W = shape
            u = f"up.{i_level}.upsample"
            if factors[i_level - 1] > 1:
                out = Shape((2 * T, 2 * H, 2 * W))
                terms += [_nearest(u, B, c, shape, out, conv),
                          conv_term(f"{u}.conv3d.conv1.conv", B, out, out, c, c, K3, "resample"),
                          _norm(f"{u}.conv3d.norm1", "group_norm", B, c, out, True, conv),
                          conv_term(f"{u}.conv3d.conv2.conv", B, out, out, c, c, K3, "resample"),
                          _norm(f"{u}.conv3d.norm2", "group_norm", B, c, out, True, conv)]
            else:
                out = Shape((T, 2 * H, 2 * W))
                terms += [_nearest(u, B, c, shape, out, conv),
                          conv_term(f"{u}.conv", B, out, out, c, c, 9, "resample", "conv2d")]
            shape = out
    return terms + [_norm("norm_out", "group_norm", B, c_prev, shape, True, conv),
                    conv_term("conv_out.conv", B, shape, shape, c_prev, spec.in_channels, K3)]


def _per_chunk(chunk: Callable[[VAESpec, Shape, Number, CountingConvention], list[Op]], size: int | None,
               spec: VAESpec, shape: Shape, B: Number, conv: CountingConvention) -> list[Op]:
    """``chunk`` on T // size whole chunks of ``size`` frames (a batch of B x whole) and on the remainder chunk of
    T % size frames, each on its own."""
    T, H, W = shape
    whole, rest = _chunks(T, size)
    terms: list[Op] = []
    if not _skip(whole):
        terms += chunk(spec, Shape((size or 0, H, W)), B * whole, conv)
    if not _skip(rest):
        terms += chunk(spec, Shape((rest, H, W)), B, conv)
    return terms


def stepvideo_encoder_terms(spec: VAESpec, shape: Shape, B: Number, conv: CountingConvention) -> list[Op]:
    """F // c whole chunks of c = ``chunk_frames`` frames and the remainder chunk of F % c frames, each on its own."""
    return _per_chunk(sv_encoder_chunk, spec.chunk_frames, spec, shape, B, conv)


def stepvideo_decoder_terms(spec: VAESpec, shape: Shape, B: Number, conv: CountingConvention) -> list[Op]:
    """L // k whole chunks of k = ``chunk_latent_frames`` latent frames and the remainder chunk of L % k."""
    return _per_chunk(sv_decoder_chunk, spec.chunk_latent_frames, spec, shape, B, conv)


# --- Open-Sora-Plan v1.3 WF-VAE ------------------------------------------------------------------

HAAR_3D = ("h", "g", "hh", "gh", "h_v", "g_v", "hh_v", "gh_v")  # HaarWaveletTransform3D's convs, in call order


def wf_haar3d(prefix: str, B: Number, c: int, shape: Shape) -> tuple[list[Op], Shape]:
    """HaarWaveletTransform3D on c channels (a batch of B c one-channel videos): eight fixed causal stride-2 2x2x2
    convs (one copy of the first frame in front), each 8 MACs per output position: (T, H, W) -> ((T - 1) // 2 + 1,
    H // 2, W // 2), 8 c channels."""
    T, H, W = shape
    out = Shape(((T - 1) // 2 + 1, H // 2, W // 2))
    return [conv_term(f"{prefix}.{n}_conv.conv", B * c, shape, out, 1, 1, 8, "resample") for n in HAAR_3D], out


def wf_res3d(prefix: str, B: Number, shape: Shape, c_in: int, c_out: int, conv: CountingConvention) -> list[Op]:
    """ResnetBlock3D: GroupNorm, causal 3x3x3 conv, twice; a causal 1x1x1 nin_shortcut when widths differ."""
    return _gn_conv_resblock(prefix, B, shape, c_in, c_out, conv, ("conv1.conv", "conv2.conv", "nin_shortcut.conv"))


def wf_res2d(prefix: str, B: Number, shape: Shape, c: int, conv: CountingConvention) -> list[Op]:
    """ResnetBlock2D (same widths), per frame: GroupNorm, 3x3 conv, twice."""
    return [_norm(f"{prefix}.norm1", "group_norm", B, c, shape, True, conv),
            conv_term(f"{prefix}.conv1", B, shape, shape, c, c, 9, op="conv2d"),
            _norm(f"{prefix}.norm2", "group_norm", B, c, shape, True, conv),
            conv_term(f"{prefix}.conv2", B, shape, shape, c, c, 9, op="conv2d")]


def wf_mid(prefix: str, B: Number, shape: Shape, c_in: int, c: int, c_out: int, attention: bool,
           conv: CountingConvention) -> list[Op]:
    """ResnetBlock3D c_in -> c; AttnBlock3DFix (GroupNorm, 1x1x1 q, k, v, per-frame single-head attention over the
    H W positions as two bmm: 2 T (H W)^2 c, 1x1x1 proj_out); ResnetBlock3D c -> c_out."""
    T, H, W = shape
    terms = wf_res3d(f"{prefix}.0", B, shape, c_in, c, conv)
    if attention:
        a = f"{prefix}.1"
        terms.append(_norm(f"{a}.norm", "group_norm", B, c, shape, True, conv))
        terms += [conv_term(f"{a}.{n}.conv", B, shape, shape, c, c, 1, "vae_attention") for n in "qkv"]
        terms += [attention_op(a, "vae_attention", B * T, 1, H * W, H * W, c),
                  conv_term(f"{a}.proj_out.conv", B, shape, shape, c, c, 1, "vae_attention")]
    return terms + wf_res3d(f"{prefix}.{2 if attention else 1}", B, shape, c, c_out, conv)


def wfvae_encoder_terms(spec: VAESpec, shape: Shape, B: Number, conv: CountingConvention) -> list[Op]:
    """The input Haar wavelet (24 channels at (T1, H / 2, W / 2), T1 = (T - 1) // 2 + 1); the energy flow: a 2D Haar
    wavelet of the low band per frame (4 stride-2 2x2 convs, 4 MACs per output) and connect_l2 (Conv2d 12 -> ef), a
    3D Haar wavelet of its low band and connect_l3 (Conv2d 24 -> ef); down1 per frame (Conv2d 24 -> c, ResnetBlock2Ds,
    stride-2 Downsample); down2 (Conv2d c + ef -> 2c per frame, ResnetBlock3Ds, causal stride-2 3x3x3 conv); mid;
    norm_out; causal conv_out to 2z."""
    c, L, z, ef = spec.block_out_channels[0], spec.layers_per_block, spec.latent_channels, spec.energy_flow_channels
    assert ef is not None
    w3 = "wavelet_tranform_3d"
    terms, s1 = wf_haar3d(w3, B, spec.in_channels, shape)
    T1, H1, W1 = s1
    s2 = Shape((T1, H1 // 2, W1 // 2))
    terms += [conv_term("wavelet_tranform_2d", B * T1 * 3, Shape((1, H1, W1)), Shape((1, *s2[1:])), 1, 1, 4,
                        "resample", "conv2d")] * 4
    terms.append(conv_term("connect_l2", B, s2, s2, 12, ef[0], 9, op="conv2d"))
    l3, s3 = wf_haar3d(w3, B, 3, s2)
    terms += l3 + [conv_term("connect_l3", B, s3, s3, 24, ef[0], 9, op="conv2d"),
                   conv_term("down1.0", B, s1, s1, 24, c, 9, op="conv2d")]
    for i in range(L):
        terms += wf_res2d(f"down1.{i + 1}", B, s1, c, conv)
    terms += [conv_term(f"down1.{L + 1}.conv", B, s1, s2, c, c, 9, "resample", "conv2d"),
              conv_term("down2.0", B, s2, s2, c + ef[0], 2 * c, 9, op="conv2d")]
    for i in range(L):
        terms += wf_res3d(f"down2.{i + 1}", B, s2, 2 * c, 2 * c, conv)
    terms.append(conv_term(f"down2.{L + 1}.conv.conv", B, s2, s3, 2 * c, 2 * c, K3, "resample"))
    terms += wf_mid("mid", B, s3, 2 * c + ef[0], 4 * c, 4 * c, spec.mid_attention, conv)
    return terms + [_norm("norm_out", "group_norm", B, 4 * c, s3, True, conv),
                    conv_term("conv_out.conv", B, s3, s3, 4 * c, 2 * z, K3)]


def _trilinear(path: str, B: Number, c: int, shape: Shape, out: Shape, conv: CountingConvention) -> Op:
    """Trilinear up-sampling to ``out``: 8 per output element."""
    return Op(path, "resample", "upsample", upsample_linear_macs(c * B * out.positions, 8, conv), None,
                c * B * (shape.positions + out.positions))


def wf_inverse_haar(path: str, B: Number, c: int, shape: Shape, volume: int) -> Op:
    """An inverse Haar wavelet of c coefficient channels: stride-2 conv_transpose of volume 2^d per channel, counted
    per input position (fvcore's and FlopCounterMode's rule for transposed convs)."""
    return conv_term(path, B * c, shape, shape, 1, 1, volume, "resample", "conv_transpose")


def wfvae_decoder_terms(spec: VAESpec, shape: Shape, B: Number, conv: CountingConvention) -> list[Op]:
    """conv_in, mid (its last ResnetBlock3D widens to 4c + ef) at (L, h, w); connect_l3 on the last ef channels
    (ResnetBlock3Ds, Conv2d -> 24) and its inverse 3D wavelet; up2 (ResnetBlock3Ds, Spatial2xTime2x3DUpsample: the
    frames after the first nearest x2 in time, trilinear x2 in H and W, 8 per output; a causal 3x3x3 conv at (2L - 1,
    2h, 2w); a widening ResnetBlock3D); connect_l2 (ResnetBlock3Ds, Conv2d -> 12) and its inverse 2D wavelet; up1
    (ResnetBlock3Ds, nearest x2 per frame and a 3x3 conv, ResnetBlock3D); layer; norm_out; Conv2d c -> 24 per frame;
    the output inverse 3D wavelet (T' -> 2T' - 1, 8h, 8w)."""
    c, L, z, ef = spec.block_out_channels[0], spec.layers_per_block, spec.latent_channels, spec.energy_flow_channels
    assert ef is not None
    n, attn = spec.energy_flow_layers or WFVAE_FLOW_LAYERS, spec.mid_attention
    inv3 = "inverse_wavelet_tranform_3d"
    terms = [conv_term("conv_in.conv", B, shape, shape, z, 4 * c, K3)]
    terms += wf_mid("mid", B, shape, 4 * c, 4 * c, 4 * c + ef[1], attn, conv)
    for i in range(n):
        terms += wf_res3d(f"connect_l3.{i}", B, shape, c, c, conv)
    terms += [conv_term(f"connect_l3.{n}", B, shape, shape, c, 24, 9, op="conv2d"),
              wf_inverse_haar(inv3, B, 24, shape, 8)]
    for i in range(L):
        terms += wf_res3d(f"up2.{i}", B, shape, 4 * c, 4 * c, conv)
    T, h, w = shape
    u = f"up2.{L}"
    if not _skip(T - 1):
        doubled = Shape((2 * (T - 1), h, w))
        terms += [_nearest(u, B, 4 * c, Shape((T - 1, h, w)), doubled, conv),
                  _trilinear(u, B, 4 * c, doubled, Shape((2 * (T - 1), 2 * h, 2 * w)), conv)]
    terms.append(_trilinear(u, B, 4 * c, Shape((1, h, w)), Shape((1, 2 * h, 2 * w)), conv))
    s2 = Shape((2 * T - 1, 2 * h, 2 * w))
    terms += [conv_term(f"{u}.conv.conv", B, s2, s2, 4 * c, 4 * c, K3, "resample")]
    terms += wf_res3d(f"up2.{L + 1}", B, s2, 4 * c, 4 * c + ef[1], conv)
    for i in range(n):
        terms += wf_res3d(f"connect_l2.{i}", B, s2, c, c, conv)
    terms += [conv_term(f"connect_l2.{n}", B, s2, s2, c, 12, 9, op="conv2d"),
              wf_inverse_haar("inverse_wavelet_tranform_2d", B, 12, s2, 4)]
    for i in range(L):
        terms += wf_res3d(f"up1.{i}", B, s2, 4 * c if i == 0 else 2 * c, 2 * c, conv)
    s1 = Shape((s2[0], 4 * h, 4 * w))
    terms += [_nearest(f"up1.{L}", B, 2 * c, s2, s1, conv),
              conv_term(f"up1.{L}.conv", B, s1, s1, 2 * c, 2 * c, 9, "resample", "conv2d")]
    terms += wf_res3d(f"up1.{L + 1}", B, s1, 2 * c, 2 * c, conv)
    terms += wf_res3d("layer.0", B, s1, 2 * c, c, conv) + wf_res3d("layer.1", B, s1, c, c, conv)
    return terms + [_norm("norm_out", "group_norm", B, c, s1, True, conv),
                    conv_term("conv_out", B, s1, s1, c, 24, 9, op="conv2d"), wf_inverse_haar(inv3, B, 24, s1, 8)]


_FAMILY_TERMS: dict[str, tuple[Callable[[VAESpec, Shape, Number, CountingConvention], list[Op]], ...]] = {
    "wan": (wan_encoder_terms, wan_decoder_terms),
    "cogvideox": (cog_encoder_terms, cog_decoder_terms),
    "mochi": (mochi_encoder_terms, mochi_decoder_terms),
    "ltx": (ltx_encoder_terms, ltx_decoder_terms),
    "opensora": (opensora_encoder_terms, opensora_decoder_terms),
    "stepvideo": (stepvideo_encoder_terms, stepvideo_decoder_terms),
    "wfvae": (wfvae_encoder_terms, wfvae_decoder_terms),
}
