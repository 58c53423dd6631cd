"""family='mochi': Mochi-1's VAE (reference_model/vae/mochi.py; diffusers AutoencoderKLMochi): Fourier features and
a Linear in, ResNets of per-frame GroupNorm and causal 3x3x3 convs, (t, 2, 2) down-sampling convs, causal temporal
attention in the encoder's levels after the first, Linear up-sampling (depth-to-space) in the decoder."""

from __future__ import annotations

from sora_compute.ledger.formulas import Number
from sora_compute.ledger.ops import Op, attention_op, linear_op
from sora_compute.ledger.registry import register
from sora_compute.ledger.vae.common import K3, Shape, conv, norm
from sora_compute.specs.vae import MOCHI_FOURIER_FREQS, MOCHI_HEAD_DIM, MochiVAE

__all__ = ["MochiLedger"]


def mochi_resnet(prefix: str, B: Number, shape: Shape, c: int, blocks: range) -> list[Op]:
    """Per-frame GroupNorm, causal 3x3x3 conv, twice (same width)."""
    return [norm(f"{prefix}.norm1", "group_norm", B, c, shape, blocks=blocks),
            conv(f"{prefix}.conv1", B, shape, shape, c, c, K3, blocks=blocks),
            norm(f"{prefix}.norm2", "group_norm", B, c, shape, blocks=blocks),
            conv(f"{prefix}.conv2", B, shape, shape, c, c, K3, blocks=blocks)]


def mochi_attention(prefix: str, B: Number, shape: Shape, c: int, blocks: range) -> list[Op]:
    """Per-frame GroupNorm; at each of the H W positions a causal attention over its T frames in heads of 32 (the
    profilers count the full T x T scores): q, k, v (no bias) and output Linears, weightless RMSNorm of q and k (3 per
    element), SDPA 2 T^2 c per position. One frame (T = 1) runs only to_v and to_out."""
    T, H, W = shape
    rows, many = B * shape.positions, T > 1  # ``many``: 0/1 (array-safe) for the q, k and score terms
    return [norm(f"{prefix}.norm", "group_norm", B, c, shape, blocks=blocks),
            linear_op(f"{prefix}.to_q", "vae_attention", rows * many, c, c, blocks, bias=False),
            linear_op(f"{prefix}.to_k", "vae_attention", rows * many, c, c, blocks, bias=False),
            linear_op(f"{prefix}.to_v", "vae_attention", rows, c, c, blocks, bias=False),
            norm(prefix, "rms_norm", B * many, 2 * c, shape, affine=False, blocks=blocks),
            attention_op(prefix, "vae_attention", B * H * W * many, c // MOCHI_HEAD_DIM, T, T, MOCHI_HEAD_DIM, blocks),
            linear_op(f"{prefix}.to_out", "vae_attention", rows, c, c, blocks)]


def mochi_block(prefix: str, B: Number, shape: Shape, c: int, layers: int, attention: bool) -> list[Op]:
    """``layers`` ResNets (each followed by an attention when ``attention``), one record per op for all of them."""
    if not layers:
        return []
    blocks = range(layers)
    ops = mochi_resnet(f"{prefix}.resnets.{{i}}", B, shape, c, blocks)
    return ops + mochi_attention(f"{prefix}.attentions.{{i}}", B, shape, c, blocks) if attention else ops


@register("vae", "mochi")
class MochiLedger:
    @staticmethod
    def encoder(spec: MochiVAE, shape: Shape, B: Number) -> list[Op]:
        """Fourier features are elementwise; Linear in on 3 x (1 + 2 x 2) channels; down-sampling convs (t, 2, 2)
        with that stride map T -> (T - 1) // t + 1 (causal padding), H -> H // 2."""
        chans, layers, factors = spec.block_out_channels, spec.layers_per_level, spec.level_temporal_factors
        assert layers is not None
        ops = [linear_op("proj_in", "conv", B * shape.positions, spec.in_channels * (1 + 2 * MOCHI_FOURIER_FREQS),
                         chans[0])]
        ops += mochi_block("block_in", B, shape, chans[0], layers[0], False)
        for i, t in enumerate(factors):
            T, H, W = shape
            out = Shape(((T - 1) // t + 1, H // 2, W // 2))
            ops.append(conv(f"down.{i}.conv", B, shape, out, chans[i], chans[i + 1], (t, 2, 2), "resample"))
            shape = out
            ops += mochi_block(f"down.{i}.block", B, shape, chans[i + 1], layers[i + 1], True)
        ops += mochi_block("block_out", B, shape, chans[-1], layers[-1], True)
        return ops + [norm("norm_out", "group_norm", B, chans[-1], shape),
                      linear_op("proj_out", "conv", B * shape.positions, chans[-1], 2 * spec.latent_channels,
                                bias=False)]

    @staticmethod
    def decoder(spec: MochiVAE, shape: Shape, B: Number, num_frames: Number | None = None) -> list[Op]:
        """Up-sampling Linears c -> c' t 4 at the coarse grid, then T -> t T, H -> 2H (the first t - 1 frames of the
        output are dropped after the last Linear)."""
        rev, layers, factors = spec.decoder_channels, spec.layers_per_level, spec.level_temporal_factors
        assert layers is not None
        n = len(rev)
        ops = [conv("conv_in", B, shape, shape, spec.latent_channels, rev[0], (1, 1, 1))]
        ops += mochi_block("block_in", B, shape, rev[0], layers[-1], False)
        for j in range(n - 1):
            t = factors[n - 2 - j]
            ops += mochi_block(f"up.{j}.block", B, shape, rev[j], layers[n - 1 - j], False)
            ops.append(linear_op(f"up.{j}.proj", "resample", B * shape.positions, rev[j], rev[j + 1] * t * 4))
            T, H, W = shape
            shape = Shape((T * t, 2 * H, 2 * W))
        ops += mochi_block("block_out", B, shape, rev[-1], layers[0], False)
        return ops + [linear_op("proj_out", "conv", B * shape.positions, rev[-1], spec.in_channels)]
