"""family='stepvideo' (reference_model/vae/stepvideo.py): the inference-peak walks of Step-Video's VAE v2."""

from __future__ import annotations

from sora_compute.ledger.registry import register
from sora_compute.memory.vae_peaks.common import Live, Shape3
from sora_compute.specs.vae import STEPVIDEO_HEAD, StepVideoVAE

__all__: list[str] = []


def _sv_norm(live: Live, c: int, shape: Shape3, g: int, silu: bool, strided: bool) -> int:
    """sv_frame_norm of a channel-last view (held by the caller): a conv output (NCDHW storage, ``strided``) with
    B > 1 and T > 1 is first copied to merge B and T; then a contiguous NCHW copy of the frames (none where that view
    is already contiguous: one frame of a conv output, or 1 x 1 frames), GroupNorm with its per-frame statistics,
    SiLU. Returns the output's bytes."""
    n, T = live.numel(c, shape), shape[0]
    merged = 0
    copy = live.alloc(n) if (T > 1 if strided else shape[1] * shape[2] > 1) else 0
    out = live.alloc(n)
    stat = g * shape[0] * live.unit  # mean and rstd per (frame, group)
    live.free(live.alloc(stat), live.alloc(stat), copy)
    if silu:
        act = live.alloc(n)
        live.free(out)
        out = act
    live.free(merged)
    return out


def _sv_norm_pad(live: Live, c: int, shape: Shape3, g: int, strided: bool) -> int:
    """sv_norm_zero_pad: the (T + 2)-frame buffer, then SiLU(norm) copied into it. Returns the buffer's bytes."""
    T, H, W = shape
    buf = live.alloc(live.numel(c, (T + 2, H, W)))
    live.free(_sv_norm(live, c, shape, g, True, strided))
    return buf


def _sv_linear(live: Live, c_in: int, c_out: int, shape: Shape3, strided_pad: bool = False) -> int:
    """A 1x1x1 conv as a matmul on a channel-last tensor: F.pad's copy (a strided clone when its input is the norm's
    NCHW output: then a copy to rows for the matmul, unless B T = 1), the output."""
    pad = live.alloc(live.numel(c_in, shape))
    flat = live.alloc(live.numel(c_in, shape)) if strided_pad and live.batch * shape[0] > 1 else 0
    out = live.alloc(live.numel(c_out, shape))
    live.free(flat, pad)
    return out


def _sv_resnet(live: Live, c_in: int, c_out: int, shape: Shape3, g: int, cl: bool, clc: bool) -> int:
    """SVResnet with its input held by the caller (``cl``: already channel-last, so not copied; ``clc``: conv outputs
    are channel-last, as cuDNN leaves them); returns the output's bytes."""
    x = 0 if cl else live.alloc(live.numel(c_in, shape))  # channel-last copy
    buf = _sv_norm_pad(live, c_in, shape, g, False)
    h = live.alloc(live.numel(c_out, shape))
    live.free(buf)
    if c_in != c_out:
        s = _sv_linear(live, c_in, c_out, shape)
        live.free(x)
        x = s
    buf = _sv_norm_pad(live, c_out, shape, g, not clc)
    live.free(h)
    out = live.alloc(live.numel(c_out, shape))
    live.free(x, buf)
    return out


def _sv_attention(live: Live, c: int, shape: Shape3, g: int, cl: bool) -> int:
    """SVAttention with its input held: channel-last copy, norm, q, k, v (each F.pad's strided clone and a contiguous
    copy for the matmul), SDPA output and fp32 log-sum-exp (the norm freed), proj_out (residual added in place)."""
    n = live.numel(c, shape)
    x = 0 if cl else live.alloc(n)
    h = _sv_norm(live, c, shape, g, False, False)
    qkv = [_sv_linear(live, c, c, shape, True) for _ in range(3)]
    out = live.alloc(n)
    live.free(live.alloc(shape[0] * shape[1] * shape[2] * 4 * live.batch), h)
    res = _sv_linear(live, c, c, shape)
    live.free(x, *qkv, out)
    return res


def _sv_mid(live: Live, c: int, shape: Shape3, g: int, cl: bool, clc: bool) -> int:
    """Resnet, attention, Resnet; the input held by the caller (``cl``: channel-last, the decoder's). The attention's
    output is channel-last: the decoder's channel-last copy of it and block_2's are views."""
    y = _sv_resnet(live, c, c, shape, g, cl, clc)
    a = _sv_attention(live, c, shape, g, clc)
    live.free(y)
    z = _sv_resnet(live, c, c, shape, g, True, clc)
    live.free(a)
    return z


def _sv_level(live: Live, blocks: list[tuple[int, int]], shape: Shape3, g: int, copy: bool, cl: bool,
              clc: bool) -> int:
    """SVLevel's blocks, the level input held by the caller (``cl``: channel-last); the decoder copies each block's
    input channel-last. Returns the last output's bytes (0: none ran)."""
    cur = 0
    for ci, co in blocks:
        is_cl = cl if not cur else clc
        cp = live.alloc(live.numel(ci, shape)) if copy and not is_cl else 0
        y = _sv_resnet(live, ci, co, shape, g, copy or is_cl, clc)
        live.free(cp, cur)
        cur = y
    return cur


def _sv_encode_chunk(spec: StepVideoVAE, shape: Shape3, live: Live, clc: bool) -> int:
    """One chunk (held by the caller) through the encoder; returns the moments' bytes (kept by the caller)."""
    chans, factors, g, z = spec.block_out_channels, spec.level_temporal_factors, spec.norm_groups, spec.latent_channels
    stem = spec.stem_channels or chans[0]
    T, H, W = shape
    pad = live.alloc(live.numel(spec.in_channels, (T + 2, H + 2, W + 2)))
    ci = live.alloc(live.numel(stem, shape))
    live.free(pad)
    x = live.alloc(live.numel(stem, shape))  # channel-last copy
    live.free(ci)
    c_prev, is_cl = stem, True  # conv_in's output is a channel-last copy; so is a 2D conv's (channels-last input)
    for i, c in enumerate(chans):
        blocks = [(c_prev if j == 0 else c, c) for j in range(spec.layers_per_block)]
        cur = _sv_level(live, blocks, shape, g, False, is_cl, clc)
        c_prev, is_cl = c, clc or (i < len(chans) - 1 and factors[i] == 1)
        if i < len(chans) - 1:
            T, H, W = shape
            if factors[i] > 1:  # causal stride-2 conv on F.pad's copy
                frames = 0
                pad = live.alloc(live.numel(c, (T + 2, H + 2, W + 2)))
                shape = ((T - 1) // 2 + 1, H // 2, W // 2)
            else:  # per frame: a (B T, H, W, C) copy, F.pad's copy (a zero row and column), stride-2 conv
                frames = 0 if clc else live.alloc(live.numel(c, shape))
                pad = live.alloc(live.numel(c, (T, H + 1, W + 1)))
                shape = (T, H // 2, W // 2)
            y = live.alloc(live.numel(c, shape))
            live.free(pad, frames, cur)
            cur = y
        live.free(x)
        x = cur
    y = _sv_mid(live, c_prev, shape, g, clc, clc)
    live.free(x)
    if not clc:  # channel-last copy of the mid-block's output
        cp = live.alloc(live.numel(c_prev, shape))
        live.free(y)
        y = cp
    h = act = _sv_norm(live, c_prev, shape, g, True, False)
    if shape[0] > 1:  # NCDHW copy (a view for one frame)
        h = live.alloc(live.numel(c_prev, shape))
        live.free(act)
    live.free(y)
    T, H, W = shape
    head, grid = STEPVIDEO_HEAD * z, ((T + 1) // 2, H // 2, W // 2)
    padded = (2 * grid[0], H, W)
    p = live.alloc(live.numel(c_prev, padded))  # channel-averaged shortcut: F.pad, unshuffled copy, mean
    u = live.alloc(live.numel(c_prev, padded))
    live.free(p)
    s1 = live.alloc(live.numel(head, grid))
    live.free(u)
    p = live.alloc(live.numel(c_prev, (T + 2, H + 2, W + 2)))  # conv_patchify: causal conv, F.pad, unshuffle
    cv = live.alloc(live.numel(head // 8, shape))
    live.free(p)
    p = live.alloc(live.numel(head // 8, padded))
    hh = live.alloc(live.numel(head, grid))
    live.free(p, cv, h)
    p = live.alloc(live.numel(head, grid))  # conv_out's shortcut: F.pad's copy (no frames), the mean
    s2 = live.alloc(live.numel(2 * z, grid))
    live.free(p, s1)
    cp = live.alloc(live.numel(head, grid))  # channel-last copy
    gT, gH, gW = grid
    p = live.alloc(live.numel(head, (gT + 2, gH + 2, gW + 2)))
    out = live.alloc(live.numel(2 * z, grid))
    live.free(p, cp, hh, s2)
    return out


@register("vae_encode_peak", "stepvideo")
def _sv_encode_peak(spec: StepVideoVAE, shape: Shape3, live: Live, conv_channels_last: bool = True) -> None:
    """Chunks of ``chunk_frames`` frames (a contiguous copy each when there are several), each encoded on its own
    (moments kept), then concatenated. ``conv_channels_last``: 3D convolutions of channel-last inputs return
    channel-last outputs (cuDNN; PyTorch's CPU conv3d only for B > 1), making the code's channel-last copies views."""
    F, H, W = shape
    c, s, z = spec.chunk_frames or F, spec.spatial_compression, spec.latent_channels
    parts = []
    for i in range(0, F, c):
        chunk = (min(c, F - i), H, W)
        x = live.alloc(live.numel(spec.in_channels, chunk)) if c < F else 0
        parts.append(_sv_encode_chunk(spec, chunk, live, conv_channels_last))
        live.free(x)
    latent, _ = spec.chunked_causal_frames(F)
    live.alloc(live.numel(2 * z, (int(latent), H // s, W // s)))
    live.free(*parts)


def _sv_duplicate(live: Live, c_out: int, factor: int, shape: Shape3) -> int:
    """Channel duplication (repeat_interleave) then pixel_shuffle_3d's permuted copy; returns the latter's bytes."""
    T, H, W = shape
    rep = live.alloc(live.numel(c_out * factor**3, shape))
    out = live.alloc(live.numel(c_out, (T * factor, H * factor, W * factor)))
    live.free(rep)
    return out


def _sv_upsample3d(live: Live, c: int, shape: Shape3, g: int, clc: bool) -> tuple[int, Shape3]:
    """Nearest x2 on channel slices of c // 8 (concatenated, held), then Res3DBlockUpsample: a channel-last copy (the
    residual), two causal convs on F.pad's copies, each followed by a per-frame norm."""
    T, H, W = shape
    shape = (2 * T, 2 * H, 2 * W)
    k = c // 8
    slices = [live.alloc(live.numel(min(k, c - j), shape)) for j in range(0, c, k)]
    up = live.alloc(live.numel(c, shape))
    live.free(*slices)
    T, H, W = shape
    r = live.alloc(live.numel(c, shape))
    pad = live.alloc(live.numel(c, (T + 2, H + 2, W + 2)))
    y = live.alloc(live.numel(c, shape))
    live.free(pad)
    a = _sv_norm(live, c, shape, g, True, not clc)
    live.free(y)
    pad = live.alloc(live.numel(c, (T + 2, H + 2, W + 2)))
    y = live.alloc(live.numel(c, shape))
    live.free(pad)
    b = _sv_norm(live, c, shape, g, False, not clc)
    live.free(y, a, r, up)
    return b, shape


def _sv_decode_chunk(spec: StepVideoVAE, shape: Shape3, live: Live, clc: bool) -> int:
    """One chunk of latents (a view) through the decoder; returns conv_out's output (the kept frames are a view)."""
    rev, factors, g, z = spec.decoder_channels, spec.level_temporal_factors, spec.norm_groups, spec.latent_channels
    n, head = len(spec.block_out_channels), STEPVIDEO_HEAD * z
    L, h, w = shape
    pad = live.alloc(live.numel(z, (L + 2, h + 2, w + 2)))
    x = live.alloc(live.numel(head, shape))
    live.free(pad)
    live.free(live.alloc(live.numel(head, shape)))  # the duplicated latent (repeat_interleave), added in place
    short = _sv_duplicate(live, rev[0], 2, shape)  # held to the end of the chunk
    pad = live.alloc(live.numel(head, (L + 2, h + 2, w + 2)))
    cv = live.alloc(live.numel(8 * rev[0], shape))
    live.free(pad)
    sh = live.alloc(live.numel(rev[0], (2 * L, 2 * h, 2 * w)))  # pixel_shuffle_3d's copy (the cut frame a view)
    live.free(cv, x)
    shape = (2 * L - 1, 2 * h, 2 * w)
    cp = live.alloc(live.numel(rev[0], shape))  # channel-last copy
    x = _sv_mid(live, rev[0], shape, g, True, clc)
    live.free(cp, sh)
    c_prev, is_cl = rev[0], clc
    for j, c in enumerate(rev):
        i_level = n - 1 - j
        blocks = [(c_prev if r == 0 else c, c) for r in range(spec.layers_per_block + 1)]
        cur = _sv_level(live, blocks, shape, g, True, is_cl, clc)  # after a 2D up-sampler the input is channel-last
        c_prev, is_cl = c, i_level > 0 and factors[i_level - 1] == 1
        if i_level > 0:
            T, H, W = shape
            if factors[i_level - 1] > 1:
                y, shape = _sv_upsample3d(live, c, shape, g, clc)
            else:  # per frame: a channels-last copy (none when the conv output is channel-last), nearest x2, 3x3 conv
                tmp = 0 if clc else live.alloc(live.numel(c, shape))
                shape = (T, 2 * H, 2 * W)
                u = live.alloc(live.numel(c, shape))
                live.free(tmp)
                y = live.alloc(live.numel(c, shape))
                live.free(u)
            live.free(cur)
            cur = y
        live.free(x)
        x = cur
    buf = _sv_norm_pad(live, c_prev, shape, g, not clc)
    live.free(x)
    out = live.alloc(live.numel(spec.in_channels, shape))
    live.free(buf, short)
    return out


@register("vae_decode_peak", "stepvideo")
def _sv_decode_peak(spec: StepVideoVAE, shape: Shape3, live: Live, conv_channels_last: bool = True) -> None:
    """Chunks of ``chunk_latent_frames`` latent frames decoded on their own (outputs kept), their frame-major
    concatenation, then the in-place blending of each chunk boundary (three temporaries of one frame per seam)."""
    L, h, w = shape
    k, s = spec.chunk_latent_frames or L, spec.spatial_compression
    parts = [_sv_decode_chunk(spec, (min(k, L - i), h, w), live, conv_channels_last) for i in range(0, L, k)]
    live.alloc(live.numel(spec.in_channels, (spec.decoded_frames(L), h * s, w * s)))
    live.free(*parts)
    seams = (L - 1) // k if spec.chunk_frames is not None else 0
    if seams:
        live.free(live.alloc(3 * live.numel(spec.in_channels, (seams, h * s, w * s))))
