"""family='mochi' (reference_model/vae/mochi.py): the inference-peak walks of Mochi's VAE."""

from __future__ import annotations

from functools import partial

from sora_compute.ledger.registry import register
from sora_compute.memory.vae_peaks.common import Live, Shape3, cat_conv, chain, padded_conv, rms_norm
from sora_compute.specs.vae import MOCHI_HEAD_DIM, MochiVAE

__all__: list[str] = []


def _frame_group_norm(live: Live, c: int, shape: Shape3, groups: int) -> int:
    """Per-frame GroupNorm: a (B T, C, H, W) copy, the output with mean and rstd per frame and group (dropped at
    once); the copy is freed on return."""
    frames = live.alloc(live.numel(c, shape))
    out = live.alloc(live.numel(c, shape))
    live.free(live.alloc(2 * groups * shape[0] * live.unit))
    live.free(frames)
    return out


def _channels_last_linear(live: Live, c_in: int, c_out: int, shape: Shape3) -> int:
    """Channels-last copy of the input, matmul, bias add (a new tensor); the copy is freed on return."""
    copy = live.alloc(live.numel(c_in, shape))
    mm = live.alloc(live.numel(c_out, shape))
    out = live.alloc(live.numel(c_out, shape))
    live.free(mm, copy)
    return out


def _mochi_resnet(live: Live, c: int, shape: Shape3, g: int) -> int:
    """(per-frame GroupNorm, SiLU, causal conv) twice, plus the input (held by the caller)."""
    h = 0
    for _ in range(2):
        norm = _frame_group_norm(live, c, shape, g)
        act = live.alloc(live.numel(c, shape))
        live.free(norm)
        y = cat_conv(live, c, c, shape)
        live.free(act)
        if h:
            out = live.alloc(live.numel(c, shape))
            live.free(y, h)
            return out
        h = y
    raise AssertionError


def _mochi_attention(live: Live, c: int, shape: Shape3, g: int) -> int:
    """Tokens (a contiguous copy of the normalised input); q, k, v; q and k normalised (composite RMSNorm); SDPA
    output and its fp32 log-sum-exp; a transposed copy for to_out; the residual sum. One frame: to_v, to_out."""
    n = live.numel(c, shape)
    norm = _frame_group_norm(live, c, shape, g)
    h = live.alloc(n)
    live.free(norm)
    if shape[0] == 1:
        v = live.alloc(n)
        out = live.alloc(n)
        live.free(v)
        res = live.alloc(n)
        live.free(out, h)
        return res
    q, k, v = live.alloc(n), live.alloc(n), live.alloc(n)
    per_head = n // MOCHI_HEAD_DIM  # bytes of one value per token and head
    qn = rms_norm(live, c, shape, n, per_head)
    kn = rms_norm(live, c, shape, n, per_head)
    live.free(q, k)
    out = live.alloc(n)
    live.free(live.alloc(per_head * 4 * live.batch // live.unit))  # log-sum-exp (fp32)
    copy = live.alloc(n)
    proj = live.alloc(n)
    live.free(copy, out)
    res = live.alloc(n)
    live.free(proj, qn, kn, v, h)
    return res




def _mochi_block(live: Live, x: int, c: int, layers: int, attention: bool, shape: Shape3, g: int) -> int:
    """``layers`` x (ResNet, attention) on ``x`` (held by the caller); each output freed once the next returns."""
    steps = [_mochi_resnet, _mochi_attention] * layers if attention else [_mochi_resnet] * layers
    return chain(live, x, [partial(step, live, c, shape, g) for step in steps])


@register("vae_encode_peak", "mochi")
def _mochi_encode_peak(spec: MochiVAE, shape: Shape3, live: Live) -> None:
    chans, layers, g = spec.block_out_channels, spec.layers_per_level, spec.norm_groups
    assert layers is not None
    c0 = spec.in_channels
    h = live.alloc(live.numel(2 * c0, shape))  # x times 2 frequencies
    sin, cos = live.alloc(live.numel(2 * c0, shape)), live.alloc(live.numel(2 * c0, shape))
    feats = live.alloc(live.numel(5 * c0, shape))
    live.free(sin, cos, h)
    x = _channels_last_linear(live, 5 * c0, chans[0], shape)
    live.free(feats)
    y = _mochi_block(live, x, chans[0], layers[0], False, shape, g)
    live.free(x)
    x = y
    for i, t in enumerate(spec.level_temporal_factors):
        T, H, W = shape
        shape = ((T - 1) // t + 1, H // 2, W // 2)
        conv = padded_conv(live, chans[i], chans[i + 1], (T + t - 1, H, W), shape)
        y = _mochi_block(live, conv, chans[i + 1], layers[i + 1], True, shape, g)
        live.free(conv, x)
        x = y
    y = _mochi_block(live, x, chans[-1], layers[-1], True, shape, g)
    live.free(x)
    norm = _frame_group_norm(live, chans[-1], shape, g)
    act = live.alloc(live.numel(chans[-1], shape))
    live.free(norm, y)
    _channels_last_linear(live, chans[-1], 2 * spec.latent_channels, shape)
    live.free(act)


@register("vae_decode_peak", "mochi")
def _mochi_decode_peak(spec: MochiVAE, shape: Shape3, live: Live) -> None:
    rev, layers, g = spec.decoder_channels, spec.layers_per_level, spec.norm_groups
    factors = spec.level_temporal_factors
    assert layers is not None
    n = len(rev)
    conv = live.alloc(live.numel(rev[0], shape))
    x = _mochi_block(live, conv, rev[0], layers[-1], False, shape, g)
    live.free(conv)
    for j in range(n - 1):
        t = factors[n - 2 - j]
        y = _mochi_block(live, x, rev[j], layers[n - 1 - j], False, shape, g)
        proj = _channels_last_linear(live, rev[j], rev[j + 1] * t * 4, shape)
        live.free(y)
        T, H, W = shape
        shape = (T * t, 2 * H, 2 * W)
        out = live.alloc(live.numel(rev[j + 1], shape))  # depth-to-space copy
        live.free(proj, x)
        x = out
    y = _mochi_block(live, x, rev[-1], layers[0], False, shape, g)
    act = live.alloc(live.numel(rev[-1], shape))
    live.free(y)
    _channels_last_linear(live, rev[-1], spec.in_channels, shape)
    live.free(act, x)
