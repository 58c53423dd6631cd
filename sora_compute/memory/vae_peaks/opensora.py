"""family='opensora' (reference_model/vae/opensora.py): the inference-peak walks of Open-Sora 1.2's VAE."""

from __future__ import annotations

from sora_compute.evaluate.liveness import ledger_peak
from sora_compute.ledger.ops import Op
from sora_compute.ledger.registry import register
from sora_compute.ledger.vae import vae_decoder_ledger, vae_encoder_ledger
from sora_compute.memory.vae_peaks.common import Live, Shape3, level, padded_conv
from sora_compute.specs.vae import OPENSORA_MICRO_BATCH, OpenSoraVAE

__all__: list[str] = []


def _os_conv(live: Live, c_in: int, c_out: int, shape: Shape3, k: int = 3, stride_t: int = 1) -> tuple[int, Shape3]:
    """Open-Sora's CausalConv3d: F.pad (k - 1 + 1 - stride frames in front, k // 2 around H and W; none for k = 1)."""
    T, H, W = shape
    pad_t = k - stride_t
    out_shape = ((T + pad_t - k) // stride_t + 1, H, W)
    if k == 1:
        return live.alloc(live.numel(c_out, out_shape)), out_shape
    return padded_conv(live, c_in, c_out, (T + pad_t, H + k - 1, W + k - 1), out_shape), out_shape


def _os_resblock(live: Live, c_in: int, c_out: int, shape: Shape3) -> int:
    """conv2(silu(norm2(conv1(silu(norm1(x)))))) + shortcut(x): each temporary freed once its consumer returns."""
    n1 = live.alloc(live.numel(c_in, shape))
    a1 = live.alloc(live.numel(c_in, shape))
    live.free(n1)
    y1, _ = _os_conv(live, c_in, c_out, shape)
    live.free(a1)
    n2 = live.alloc(live.numel(c_out, shape))
    live.free(y1)
    a2 = live.alloc(live.numel(c_out, shape))
    live.free(n2)
    y2, _ = _os_conv(live, c_out, c_out, shape)
    live.free(a2)
    short = live.alloc(live.numel(c_out, shape)) if c_in != c_out else 0
    out = live.alloc(live.numel(c_out, shape))
    live.free(y2, short)
    return out


def _os_temporal_encode(spec: OpenSoraVAE, live: Live, shape: Shape3) -> int:
    """One chunk (a view, held by the caller) through the temporal encoder and quant_conv; returns the moments."""
    tc, layers, factors, z, t = (spec.temporal_block_out_channels, spec.layers_per_level, spec.level_temporal_factors,
                                 spec.latent_channels, spec.temporal_compression)
    assert tc is not None and layers is not None
    T, H, W = shape
    shape = (T + -T % t, H, W)
    padded = live.alloc(live.numel(z, shape)) if T % t else 0
    x, _ = _os_conv(live, z, tc[0], shape)
    live.free(padded)
    c_prev = tc[0]
    for i, c in enumerate(tc):
        cur = level(live, x, [(c_prev if j == 0 else c, c) for j in range(layers[i])], shape, _os_resblock)
        made = layers[i] > 0
        c_prev = c
        if i < len(tc) - 1 and factors[i] > 1:
            out, shape = _os_conv(live, c, c, shape, 3, 2)
            live.free(cur if made else 0)
            cur, made = out, True
        if made:
            live.free(x)
        x = cur
    m = level(live, x, [(c_prev, c_prev)] * layers[-1], shape, _os_resblock)
    n = live.alloc(live.numel(c_prev, shape))
    live.free(m if layers[-1] else 0)
    a = live.alloc(live.numel(c_prev, shape))
    live.free(n)
    o = live.alloc(live.numel(2 * z, shape))
    live.free(a)
    q = live.alloc(live.numel(2 * z, shape))
    live.free(o, x)
    return q


def _os_temporal_decode(spec: OpenSoraVAE, live: Live, shape: Shape3) -> int:
    """One chunk of latents (a view) through post_quant_conv and the temporal decoder; returns conv_out's output
    (the kept frames are a view of it)."""
    tc, layers, factors, z = (spec.temporal_block_out_channels, spec.layers_per_level, spec.level_temporal_factors,
                              spec.latent_channels)
    assert tc is not None and layers is not None
    pq = live.alloc(live.numel(z, shape))
    ci, _ = _os_conv(live, z, tc[-1], shape)
    live.free(pq)
    x = level(live, ci, [(tc[-1], tc[-1])] * layers[-1], shape, _os_resblock)
    if layers[-1]:
        live.free(ci)
    c_prev = tc[-1]
    for i in reversed(range(len(tc))):
        cur = level(live, x, [(c_prev if r == 0 else tc[i], tc[i]) for r in range(layers[i])], shape, _os_resblock)
        made = layers[i] > 0
        c_prev = tc[i]
        if i > 0 and factors[i - 1] > 1:
            conv, _ = _os_conv(live, c_prev, 2 * c_prev, shape)
            T, H, W = shape
            shape = (2 * T, H, W)
            up = live.alloc(live.numel(c_prev, shape))  # depth-to-space copy
            live.free(conv)
            live.free(cur if made else 0)
            cur, made = up, True
        if made:
            live.free(x)
        x = cur
    n = live.alloc(live.numel(c_prev, shape))
    a = live.alloc(live.numel(c_prev, shape))
    live.free(n)
    out, _ = _os_conv(live, c_prev, z, shape)
    live.free(a, x)
    return out


def _sub_peak(live: Live, ops: list[Op]) -> None:
    """A sub-module's ledger run now: its peak (the liveness evaluator's) on top of the bytes alive now."""
    live.peak = max(live.peak, live.now + int(ledger_peak(ops, live.unit // live.batch)))


@register("vae_encode_peak", "opensora")
def _os_encode_peak(spec: OpenSoraVAE, shape: Shape3, live: Live) -> None:
    """2D encoder per micro-batch of frames (each keeps its quant_conv output: 2z channels, the mean a view), their
    concatenation, then the temporal encoder per chunk (moments kept) and their concatenation."""
    F, H, W = shape
    B, a, z, s = live.batch, live.unit // live.batch, spec.latent_channels, spec.spatial_compression
    h, w = H // s, W // s
    frames = live.alloc(live.numel(spec.in_channels, shape)) if B > 1 and F > 1 else 0  # per-frame copy
    held = []
    for i in range(0, B * F, OPENSORA_MICRO_BATCH):
        m = min(OPENSORA_MICRO_BATCH, B * F - i)
        _sub_peak(live, vae_encoder_ledger(spec.spatial_vae, (1, H, W), m))
        e = live.alloc(m * 2 * z * h * w * a)
        held.append(live.alloc(m * 2 * z * h * w * a))  # quant_conv
        live.free(e)
    lat = live.alloc(live.numel(z, (F, h, w)))
    live.free(*held)
    c = spec.chunk_frames or F
    parts = [_os_temporal_encode(spec, live, (min(c, F - i), h, w)) for i in range(0, F, c)]
    live.alloc(live.numel(2 * z, (spec.padded_latent_frames(F), h, w)))
    live.free(*parts, lat, frames)


@register("vae_decode_peak", "opensora")
def _os_decode_peak(spec: OpenSoraVAE, shape: Shape3, live: Live) -> None:
    """Temporal decoder per chunk (outputs kept), their concatenation, a per-frame copy, then post_quant_conv and
    the 2D decoder per micro-batch (outputs kept) and their concatenation."""
    L, h, w = shape
    B, a, z, s = live.batch, live.unit // live.batch, spec.latent_channels, spec.spatial_compression
    F = spec.decoded_frames(L)
    k = spec.chunk_latent_frames or L
    parts = [_os_temporal_decode(spec, live, (min(k, L - i), h, w)) for i in range(0, L, k)]
    lat = live.alloc(live.numel(z, (F, h, w)))
    frames = live.alloc(live.numel(z, (F, h, w))) if B > 1 and F > 1 else 0
    outs = []
    for i in range(0, B * F, OPENSORA_MICRO_BATCH):
        m = min(OPENSORA_MICRO_BATCH, B * F - i)
        pq = live.alloc(m * z * h * w * a)
        _sub_peak(live, vae_decoder_ledger(spec.spatial_vae, (1, h, w), m))
        outs.append(live.alloc(m * spec.in_channels * h * s * w * s * a))
        live.free(pq)
    live.alloc(live.numel(spec.in_channels, (F, h * s, w * s)))
    live.free(*outs, *parts, lat, frames)
