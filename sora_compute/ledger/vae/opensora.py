"""family='opensora': Open-Sora 1.2's OpenSoraVAE_V1_2 (reference_model/vae/opensora.py): a per-frame SD VAE (the
generic ledger on 1-frame videos, with its 1x1 quant convs) stacked with a causal temporal VAE (VAE_Temporal_SD:
GroupNorm ResBlocks of bias-free causal 3x3x3 convs) run on chunks of ``chunk_frames`` frames, each padded in front to a
multiple of t."""

from __future__ import annotations

from sora_compute.ledger.formulas import Number
from sora_compute.ledger.ops import Op
from sora_compute.ledger.registry import register
from sora_compute.ledger.vae.common import (
    K3,
    Shape,
    chunks,
    conv,
    disowned,
    gn_conv_resblock,
    norm,
    prefixed,
    repeated,
    skip,
)
from sora_compute.ledger.vae.generic import GenericLedger
from sora_compute.specs.vae import OpenSoraVAE

__all__ = ["OpenSoraLedger"]

_1 = (1, 1, 1)


def os_resblocks(prefix: str, B: Number, shape: Shape, c_in: int, c: int, n: int) -> list[Op]:
    """``n`` VAE_Temporal_SD ResBlocks (GroupNorm, bias-free causal 3x3x3 conv, twice; a bias-free 1x1x1 shortcut
    when widths differ): the first c_in -> c, the rest c -> c."""
    return repeated(lambda path, ci, blocks: gn_conv_resblock(path, B, shape, ci, c, ("conv1", "conv2", "shortcut"),
                                                              bias=False, blocks=blocks), prefix, c_in, c, n)


def temporal_encoder(spec: OpenSoraVAE, shape: Shape, B: Number) -> list[Op]:
    """The temporal VAE's encoder and quant_conv on a (T, h, w) chunk already padded to a multiple of t; a stride-2
    time conv (front padding 1) maps T -> (T - 2) // 2 + 1."""
    tc, layers, factors, z = spec.temporal_block_out_channels, spec.layers_per_level, spec.level_temporal_factors, \
        spec.latent_channels
    assert tc is not None and layers is not None
    ops, c_prev = [conv("conv_in", B, shape, shape, z, tc[0], K3, bias=False)], tc[0]
    for i, c in enumerate(tc):
        ops += os_resblocks(f"down.{i}.resnets", B, shape, c_prev, c, layers[i])
        c_prev = c if layers[i] else c_prev
        if i < len(tc) - 1 and factors[i] > 1:
            T, H, W = shape
            out = Shape(((T - 2) // 2 + 1, H, W))
            ops.append(conv(f"down.{i}.resample", B, shape, out, c, c, K3, "resample"))
            shape = out
    ops += os_resblocks("mid", B, shape, c_prev, c_prev, layers[-1])
    return ops + [norm("norm_out", "group_norm", B, c_prev, shape),
                  conv("conv_out", B, shape, shape, c_prev, 2 * z, _1),
                  conv("quant_conv", B, shape, shape, 2 * z, 2 * z, _1)]


def temporal_decoder(spec: OpenSoraVAE, shape: Shape, B: Number) -> list[Op]:
    """The temporal VAE's post_quant_conv and decoder on a chunk of (T', h, w) latents; each doubling conv c -> 2c
    runs at the coarse grid, then T -> 2T (the cut of the padding frames is free)."""
    tc, layers, factors, z = spec.temporal_block_out_channels, spec.layers_per_level, spec.level_temporal_factors, \
        spec.latent_channels
    assert tc is not None and layers is not None
    ops = [conv("post_quant_conv", B, shape, shape, z, z, _1), conv("conv_in", B, shape, shape, z, tc[-1], K3)]
    ops += os_resblocks("mid", B, shape, tc[-1], tc[-1], layers[-1])
    c_prev = tc[-1]
    for j, i in enumerate(reversed(range(len(tc)))):
        ops += os_resblocks(f"up.{j}.resnets", B, shape, c_prev, tc[i], layers[i])
        c_prev = tc[i] if layers[i] else c_prev
        if i > 0 and factors[i - 1] > 1:
            ops.append(conv(f"up.{j}.resample.conv", B, shape, shape, c_prev, 2 * c_prev, K3, "resample"))
            T, H, W = shape
            shape = Shape((2 * T, H, W))
    return ops + [norm("norm_out", "group_norm", B, c_prev, shape),
                  conv("conv_out", B, shape, shape, c_prev, z, K3)]


def _chunked(run: list[Op], more: list[Op]) -> list[Op]:
    """The temporal VAE's second chunk run: its weights belong to the first."""
    return run + prefixed("temporal", disowned(more) if run else more)


@register("vae", "opensora")
class OpenSoraLedger:
    @staticmethod
    def encoder(spec: OpenSoraVAE, shape: Shape, B: Number) -> list[Op]:
        """The 2D VAE on every frame (B F images of (h, w) and the 1x1 quant_conv), then the temporal VAE on F // c
        whole chunks (padded to ``chunk_latent_frames`` x t frames) and on the remainder chunk of F % c frames
        (padded to ceil(r / t) x t)."""
        F, H, W = shape
        z, t, s = spec.latent_channels, spec.temporal_compression, spec.spatial_compression
        frames = B * F
        ops = prefixed("spatial", GenericLedger.encoder(spec.spatial_vae, Shape((1, H, W)), frames))
        lat = Shape((1, H // s, W // s))
        ops.append(conv("quant_conv", frames, lat, lat, 2 * z, 2 * z, (1, 1)))
        whole, rest = chunks(F, spec.chunk_frames)
        temporal: list[Op] = []
        if not skip(whole):
            padded = Shape(((spec.chunk_latent_frames or 0) * t, H // s, W // s))
            temporal = prefixed("temporal", temporal_encoder(spec, padded, B * whole))
        if not skip(rest):
            temporal = _chunked(temporal, temporal_encoder(spec, Shape((-(-rest // t) * t, H // s, W // s)), B))
        return ops + temporal

    @staticmethod
    def decoder(spec: OpenSoraVAE, shape: Shape, B: Number, num_frames: Number | None = None) -> list[Op]:
        """The temporal VAE on L // k whole chunks of k = ``chunk_latent_frames`` latent frames and on the remainder
        L % k, then post_quant_conv and the 2D decoder on each of the ``num_frames`` frames kept (default: the most
        frames that give L latent frames)."""
        L, h, w = shape
        F = spec.decoded_frames(L) if num_frames is None else num_frames
        whole, rest = chunks(L, spec.chunk_latent_frames)
        ops: list[Op] = []
        if not skip(whole):
            ops = prefixed("temporal", temporal_decoder(spec, Shape((spec.chunk_latent_frames or 0, h, w)), B * whole))
        if not skip(rest):
            ops = _chunked(ops, temporal_decoder(spec, Shape((rest, h, w)), B))
        frames, lat = B * F, Shape((1, h, w))
        ops.append(conv("post_quant_conv", frames, lat, lat, spec.latent_channels, spec.latent_channels, (1, 1)))
        return ops + prefixed("spatial", GenericLedger.decoder(spec.spatial_vae, lat, frames))
