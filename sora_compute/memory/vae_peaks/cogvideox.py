"""family='cogvideox' (reference_model/vae/cogvideox.py): the inference-peak walks of CogVideoX's VAE."""

from __future__ import annotations

from sora_compute.ledger.registry import register
from sora_compute.memory.vae_peaks.common import Live, Shape3, cat_conv, level
from sora_compute.specs.vae import CogVideoXVAE

__all__: list[str] = []


def _spatial_norm(live: Live, c: int, z: int, shape: Shape3) -> int:
    """Latent resized to the grid (first frame alone for odd T > 1: two pieces and their concatenation), GroupNorm,
    conv_y, their product, conv_b, the sum; the resized latent is freed on return."""
    T, H, W = shape
    if T > 1 and T % 2:
        first, rest = live.alloc(live.numel(z, (1, H, W))), live.alloc(live.numel(z, (T - 1, H, W)))
        zq = live.alloc(live.numel(z, shape))
        live.free(first, rest)
    else:
        zq = live.alloc(live.numel(z, shape))
    n = live.numel(c, shape)
    norm, y = live.alloc(n), live.alloc(n)
    prod = live.alloc(n)
    live.free(norm, y)
    b = live.alloc(n)
    out = live.alloc(n)
    live.free(prod, b, zq)
    return out


def _cog_resnet(live: Live, c_in: int, c_out: int, shape: Shape3, z: int = 0) -> int:
    """GroupNorm (or spatial norm with latent channels ``z``), SiLU, conv, twice; 1x1x1 shortcut; input held."""
    h1 = 0
    for ci, co in ((c_in, c_out), (c_out, c_out)):
        norm = _spatial_norm(live, ci, z, shape) if z else live.alloc(live.numel(ci, shape))
        act = live.alloc(live.numel(ci, shape))
        live.free(norm)
        y = cat_conv(live, ci, co, shape)
        live.free(act, h1)
        h1 = y
    short = live.alloc(live.numel(c_out, shape)) if c_in != c_out else 0
    out = live.alloc(live.numel(c_out, shape))
    live.free(h1, short)
    return out


@register("vae_encode_peak", "cogvideox")
def _cog_encode_peak(spec: CogVideoXVAE, shape: Shape3, live: Live) -> None:
    chans, factors = spec.block_out_channels, spec.level_temporal_factors
    x, c_prev = cat_conv(live, spec.in_channels, chans[0], shape), chans[0]
    for i, c in enumerate(chans):
        blocks = [(c_prev if j == 0 else c, c) for j in range(spec.layers_per_block)]
        cur = level(live, x, blocks, shape, _cog_resnet)
        c_prev = c
        if i < len(chans) - 1:
            T, H, W = shape
            held = []
            if factors[i] > 1 and T > 1:
                held.append(live.alloc(live.numel(c, (T // 2, H, W))))  # frame-pair means
                if T % 2:
                    held.append(live.alloc(live.numel(c, (1 + T // 2, H, W))))  # with the first frame
                T = (T + 1) // 2
            frames = live.alloc(live.numel(c, (T, H, W)))
            padded = live.alloc(live.numel(c, (T, H + 1, W + 1)))
            live.free(frames)
            shape = (T, H // 2, W // 2)
            out = live.alloc(live.numel(c, shape))
            live.free(padded, *held, cur)
            cur = out
        live.free(x)
        x = cur
    y = level(live, x, [(c_prev, c_prev)] * 2, shape, _cog_resnet)
    live.free(x)
    norm = live.alloc(live.numel(c_prev, shape))
    act = live.alloc(live.numel(c_prev, shape))
    live.free(norm, y)
    cat_conv(live, c_prev, 2 * spec.latent_channels, shape)
    live.free(act)


@register("vae_decode_peak", "cogvideox")
def _cog_decode_peak(spec: CogVideoXVAE, shape: Shape3, live: Live) -> None:
    chans, factors, z = spec.decoder_channels, spec.level_temporal_factors, spec.latent_channels

    def resnet(live: Live, ci: int, co: int, shape: Shape3) -> int:
        return _cog_resnet(live, ci, co, shape, z)

    x = cat_conv(live, z, chans[0], shape)
    y = level(live, x, [(chans[0], chans[0])] * 2, shape, resnet)
    live.free(x)
    x, c_prev = y, chans[0]
    for j, c in enumerate(chans):
        blocks = [(c_prev if r == 0 else c, c) for r in range(spec.layers_per_block + 1)]
        cur = level(live, x, blocks, shape, resnet)
        c_prev = c
        if j < len(chans) - 1:
            T, H, W = shape
            if factors[j] > 1 and T > 1:
                if T % 2:
                    a = live.alloc(live.numel(c, (1, 2 * H, 2 * W)))
                    b = live.alloc(live.numel(c, (2 * T - 2, 2 * H, 2 * W)))
                    up = live.alloc(live.numel(c, (2 * T - 1, 2 * H, 2 * W)))
                    live.free(a, b)
                else:
                    up = live.alloc(live.numel(c, (2 * T, 2 * H, 2 * W)))
                shape = (2 * T - T % 2, 2 * H, 2 * W)
                frames = live.alloc(live.numel(c, shape))
                live.free(up)
            else:
                copy = live.alloc(live.numel(c, shape))
                shape = (T, 2 * H, 2 * W)
                frames = live.alloc(live.numel(c, shape))
                live.free(copy)
            out = live.alloc(live.numel(c, shape))
            live.free(frames, cur)
            cur = out
        live.free(x)
        x = cur
    norm = _spatial_norm(live, c_prev, z, shape)
    act = live.alloc(live.numel(c_prev, shape))
    live.free(norm)
    cat_conv(live, c_prev, spec.in_channels, shape)
    live.free(act)
