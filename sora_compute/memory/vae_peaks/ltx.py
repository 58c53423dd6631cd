"""family='ltx' (reference_model/vae/ltx.py): the inference-peak walks of LTX-Video's VAE."""

from __future__ import annotations

from sora_compute.ledger.registry import register
from sora_compute.memory.vae_peaks.common import Live, Shape3, cat_conv, level, padded_conv, rms_norm
from sora_compute.specs.vae import LTXVAE

__all__: list[str] = []


def _ltx_resnet(live: Live, c_in: int, c_out: int, shape: Shape3) -> int:
    """(RMSNorm, SiLU, conv padded by torch.cat) twice; widening: LayerNorm (with its dropped mean and rstd) and a
    1x1x1 conv on the input (held by the caller); the sum."""
    h1 = 0
    for ci, co in ((c_in, c_out), (c_out, c_out)):
        norm = rms_norm(live, ci, shape)
        act = live.alloc(live.numel(ci, shape))
        live.free(norm)
        y = cat_conv(live, ci, co, shape)
        live.free(act, h1)
        h1 = y
    short = 0
    if c_in != c_out:
        ln = live.alloc(live.numel(c_in, shape))
        live.free(live.alloc(2 * live.numel(1, shape)))
        short = live.alloc(live.numel(c_out, shape))
        live.free(ln)
    out = live.alloc(live.numel(c_out, shape))
    live.free(h1, short)
    return out


@register("vae_encode_peak", "ltx")
def _ltx_encode_peak(spec: LTXVAE, shape: Shape3, live: Live) -> None:
    chans, layers, n, p = spec.block_out_channels, spec.layers_per_level, len(spec.block_out_channels), spec.patch_size
    assert layers is not None
    shape = (shape[0], shape[1] // p, shape[2] // p)
    unshuffled = live.alloc(live.numel(spec.pixel_channels, shape)) if p > 1 else 0
    x = cat_conv(live, spec.pixel_channels, chans[0], shape)
    live.free(unshuffled)
    for i, c in enumerate(chans):  # each new output frees the previous one; the level input when the level returns
        cur, made = x, False
        for _ in range(layers[i]):
            nxt = _ltx_resnet(live, c, c, shape)
            live.free(cur if made else 0)
            cur, made = nxt, True
        if i < n - 1:
            T, H, W = shape
            shape = ((T - 1) // 2 + 1, (H - 1) // 2 + 1, (W - 1) // 2 + 1)
            out = padded_conv(live, c, c, (T + 2, H, W), shape)
            live.free(cur if made else 0)
            cur, made = out, True
        if chans[min(i + 1, n - 1)] != c:
            out = _ltx_resnet(live, c, chans[i + 1], shape)
            live.free(cur if made else 0)
            cur, made = out, True
        live.free(x if made else 0)
        x = cur
    m, made = x, False
    for _ in range(layers[-1]):
        nxt = _ltx_resnet(live, chans[-1], chans[-1], shape)
        live.free(m if made else 0)
        m, made = nxt, True
    norm = rms_norm(live, chans[-1], shape)
    live.free(m if made else 0)
    act = live.alloc(live.numel(chans[-1], shape))
    live.free(norm)
    out = cat_conv(live, chans[-1], spec.latent_channels + 1, shape)
    live.free(act, x)
    live.alloc(live.numel(2 * spec.latent_channels, shape))  # mean and the repeated log-variance
    live.free(out)


@register("vae_decode_peak", "ltx")
def _ltx_decode_peak(spec: LTXVAE, shape: Shape3, live: Live) -> None:
    rev, layers, n, p = spec.decoder_channels, spec.layers_per_level, len(spec.block_out_channels), spec.patch_size
    assert layers is not None
    ci = cat_conv(live, spec.latent_channels, rev[0], shape)
    x = level(live, ci, [(rev[0], rev[0])] * layers[-1], shape, _ltx_resnet)
    if layers[-1]:
        live.free(ci)
    c_prev = rev[0]
    for j, c in enumerate(rev):
        cur, made = x, False
        if c_prev != c:
            cur, made = _ltx_resnet(live, c_prev, c, shape), True
        if j > 0:
            T, H, W = shape
            conv = padded_conv(live, c, 8 * c, (T + 2, H, W), shape)
            up = live.alloc(live.numel(c, (2 * T, 2 * H, 2 * W)))  # depth-to-space copy (first frame sliced off)
            live.free(conv)
            if made:
                live.free(cur)
            cur, made, shape = up, True, (2 * T - 1, 2 * H, 2 * W)
        for _ in range(layers[n - 1 - j]):
            nxt = _ltx_resnet(live, c, c, shape)
            if made:
                live.free(cur)
            cur, made = nxt, True
        if made:
            live.free(x)
        x, c_prev = cur, c
    norm = rms_norm(live, c_prev, shape)
    act = live.alloc(live.numel(c_prev, shape))
    live.free(norm)
    out = cat_conv(live, c_prev, spec.pixel_channels, shape)
    live.free(act)
    if p > 1:  # pixel-shuffle copy while the conv's output is still referenced
        live.alloc(out)
