"""family='wan' (reference_model/vae/wan.py): the inference-peak walks of Wan2.1's VAE."""

from __future__ import annotations

from sora_compute.ledger.registry import register
from sora_compute.memory.vae_peaks.common import Live, Shape3, level, padded_conv, rms_norm
from sora_compute.specs.vae import WanVAE

__all__: list[str] = []


def _wan_conv(live: Live, c_in: int, c_out: int, shape: Shape3) -> int:
    """Wan's causal 3x3x3 conv: F.pad (2 frames in front, 1 around H and W), then the conv."""
    T, H, W = shape
    return padded_conv(live, c_in, c_out, (T + 2, H + 2, W + 2), shape)


def _wan_resnet(live: Live, c_in: int, c_out: int, shape: Shape3) -> int:
    """Input held by the caller; the shortcut is computed first and held to the end."""
    short = live.alloc(live.numel(c_out, shape)) if c_in != c_out else 0
    h = rms_norm(live, c_in, shape)
    act = live.alloc(live.numel(c_in, shape))
    live.free(h)
    y1 = _wan_conv(live, c_in, c_out, shape)
    live.free(act)
    h = rms_norm(live, c_out, shape)
    act = live.alloc(live.numel(c_out, shape))
    live.free(h)
    y2 = _wan_conv(live, c_out, c_out, shape)
    live.free(act, y1)
    out = live.alloc(live.numel(c_out, shape))
    live.free(y2, short)
    return out


def _wan_attention(live: Live, c: int, shape: Shape3) -> int:
    """Per-frame copy, RMSNorm, qkv (3n) made contiguous (3n, kept to the end), SDPA output and its log-sum-exp,
    a transposed copy for the 1x1 projection, the projection, the residual sum."""
    n = live.numel(c, shape)
    frames = live.alloc(n)
    h = rms_norm(live, c, shape)
    live.free(frames)
    qkv = live.alloc(3 * n)
    live.free(h)
    qkv_t = live.alloc(3 * n)
    live.free(qkv)
    out = live.alloc(n)
    lse = live.alloc(live.batch * shape[0] * shape[1] * shape[2] * 4)  # fp32, one per query
    live.free(lse)
    copy = live.alloc(n)
    proj = live.alloc(n)
    live.free(copy, out)
    res = live.alloc(n)
    live.free(qkv_t, proj)
    return res


def _wan_mid(live: Live, c: int, shape: Shape3) -> int:
    y = _wan_resnet(live, c, c, shape)
    a = _wan_attention(live, c, shape)
    live.free(y)
    z = _wan_resnet(live, c, c, shape)
    live.free(a)
    return z


@register("vae_encode_peak", "wan")
def _wan_encode_peak(spec: WanVAE, shape: Shape3, live: Live) -> None:
    chans, factors, z2 = spec.block_out_channels, spec.level_temporal_factors, 2 * spec.latent_channels
    x = _wan_conv(live, spec.in_channels, chans[0], shape)
    c_prev = chans[0]
    for i, c in enumerate(chans):
        blocks = [(c_prev if j == 0 else c, c) for j in range(spec.layers_per_block)]
        cur = level(live, x, blocks, shape, _wan_resnet)
        c_prev = c
        if i < len(chans) - 1:
            T, H, W = shape
            frames = live.alloc(live.numel(c, shape))
            padded = live.alloc(live.numel(c, (T, H + 1, W + 1)))
            live.free(frames)
            shape = (T, H // 2, W // 2)
            out = live.alloc(live.numel(c, shape))
            live.free(padded)
            if factors[i] > 1 and T > 1:
                made = live.alloc(live.numel(c, ((T - 1) // 2, H // 2, W // 2)))
                shape = (1 + (T - 1) // 2, H // 2, W // 2)
                cat = live.alloc(live.numel(c, shape))
                live.free(made, out)
                out = cat
            live.free(cur)
            cur = out
        live.free(x)
        x = cur
    y = _wan_mid(live, c_prev, shape)
    live.free(x)
    h = rms_norm(live, c_prev, shape)
    act = live.alloc(live.numel(c_prev, shape))
    live.free(h, y)
    out = _wan_conv(live, c_prev, z2, shape)
    live.free(act)
    live.alloc(live.numel(z2, shape))  # quant_conv


@register("vae_decode_peak", "wan")
def _wan_decode_peak(spec: WanVAE, shape: Shape3, live: Live) -> None:
    chans, factors, z = spec.decoder_channels, spec.level_temporal_factors, spec.latent_channels
    pq = live.alloc(live.numel(z, shape))
    x = _wan_conv(live, z, chans[0], shape)
    live.free(pq)
    y = _wan_mid(live, chans[0], shape)
    live.free(x)
    x, c_prev = y, chans[0]
    for j, c in enumerate(chans):
        blocks = [(c_prev if r == 0 else c, c) for r in range(spec.layers_per_block + 1)]
        cur = level(live, x, blocks, shape, _wan_resnet)
        c_prev = c
        if j < len(chans) - 1:
            T, H, W = shape
            doubled = 0
            if factors[-1 - j] > 1 and T > 1:
                made = padded_conv(live, c, 2 * c, (T + 1, H, W), (T - 1, H, W))
                pairs = live.alloc(live.numel(2 * c, (T - 1, H, W)))
                T = 2 * T - 1
                doubled = live.alloc(live.numel(c, (T, H, W)))
                live.free(pairs, made)
            frames = live.alloc(live.numel(c, (T, H, W)))
            shape = (T, 2 * H, 2 * W)
            up = live.alloc(live.numel(c, shape))
            live.free(frames)
            out = live.alloc(live.numel(c // 2, shape))
            live.free(up, doubled)
            live.free(cur)
            cur, c_prev = out, c // 2
        live.free(x)
        x = cur
    h = rms_norm(live, c_prev, shape)
    act = live.alloc(live.numel(c_prev, shape))
    live.free(h)
    _wan_conv(live, c_prev, spec.in_channels, shape)
    live.free(act)
