"""family='generic' (reference_model.vae.VAE3D): the inference-peak walk of the layout-driven 3D VAE."""

from __future__ import annotations

from sora_compute.memory.vae_peaks.common import Live, Shape3
from sora_compute.specs.vae import GenericVAE

__all__ = ["generic_encode_peak", "generic_decode_peak"]


def _conv(live: Live, c_in: int, c_out: int, shape: tuple[int, int, int], spec: GenericVAE, stride_t: int = 1,
          stride_s: int = 1) -> tuple[int, tuple[int, int, int]]:
    """A causal conv copies its input with kt - 1 padding frames (torch.cat), then writes its output."""
    T, H, W = shape
    kt = spec.temporal_kernel
    pad = live.alloc(live.numel(c_in, (T + kt - 1, H, W))) if spec.causal and kt > 1 else 0
    out_shape = ((T - 1) // stride_t + 1, (H - 1) // stride_s + 1, (W - 1) // stride_s + 1)
    out = live.alloc(live.numel(c_out, out_shape))
    live.free(pad)
    return out, out_shape


def _resnet(live: Live, x: int, c_in: int, c_out: int, shape: tuple[int, int, int], spec: GenericVAE) -> int:
    """ResNet block with its input ``x`` alive (held for the shortcut); returns the output's bytes."""
    n_in, n_out = live.numel(c_in, shape), live.numel(c_out, shape)
    norm = live.alloc(n_in)
    act = live.alloc(n_in)
    live.free(norm)
    h, _ = _conv(live, c_in, c_out, shape, spec)
    live.free(act)
    norm = live.alloc(n_out)
    act = live.alloc(n_out)
    live.free(norm)
    h2, _ = _conv(live, c_out, c_out, shape, spec)
    live.free(act, h)
    short = live.alloc(n_out) if c_in != c_out else 0
    out = live.alloc(n_out)
    live.free(h2, short)
    return out


def _attention_block(live: Live, x: int, c: int, shape: tuple[int, int, int]) -> int:
    """VAE mid-block attention over n = T*H*W positions, input ``x`` held. The normalised input stays alive
    (transposed) through the block; each of q, k, v is a Linear on a non-contiguous input: a copy, a matmul,
    then an out-of-place bias add. Returns the output's bytes."""
    n = live.numel(c, shape)
    norm = live.alloc(n)
    qkv = []
    for _ in range(3):
        copy = live.alloc(n)
        mm = live.alloc(n)
        live.free(copy)
        qkv.append(live.alloc(n))
        live.free(mm)
    out = live.alloc(n)
    lse = live.alloc(shape[0] * shape[1] * shape[2] * 4 * live.batch)  # fp32 log-sum-exp, one per position
    live.free(*qkv, lse)
    proj = live.alloc(n)
    back = live.alloc(n)  # (B, n, c) -> (B, c, T, H, W) copy
    live.free(proj)
    res = live.alloc(n)
    live.free(back, out, norm)
    return res


def _mid(live: Live, x: int, c: int, shape: tuple[int, int, int], spec: GenericVAE) -> int:
    y = _resnet(live, x, c, c, shape, spec)
    if spec.mid_attention:
        res = _attention_block(live, y, c, shape)
        live.free(y)
        y = res
    z = _resnet(live, y, c, c, shape, spec)
    live.free(y)
    return z


def generic_decode_peak(spec: GenericVAE, latent_shape: Shape3, live: Live) -> None:
    """Decoding one latent (the latent input itself not counted) into ``live``."""
    chans = tuple(reversed(spec.block_out_channels))
    shape = latent_shape
    if spec.quant_convs:  # post_quant_conv's output: the decoder's input from then on, held to the end
        live.alloc(live.numel(spec.latent_channels, shape))
    x, _ = _conv(live, spec.latent_channels, chans[0], shape, spec)
    y = _mid(live, x, chans[0], shape, spec)
    live.free(x)
    x, c_prev = y, chans[0]
    for j, c in enumerate(chans):
        level_in = x  # held by the decoder loop while the level runs
        cur = x
        for r in range(spec.layers_per_block + 1):
            nxt = _resnet(live, cur, c_prev, c, shape, spec)
            if r > 0:
                live.free(cur)
            cur, c_prev = nxt, c
        if j < spec.num_spatial_down:
            T, H, W = shape
            if j < spec.num_temporal_down:
                T = 1 + 2 * (T - 1) if spec.causal else 2 * T
            shape = (T, 2 * H, 2 * W)
            up = live.alloc(live.numel(c, shape))
            out, _ = _conv(live, c, c, shape, spec)
            live.free(up, cur)
            cur = out
        live.free(level_in)
        x = cur
    norm = live.alloc(live.numel(c_prev, shape))
    act = live.alloc(live.numel(c_prev, shape))
    live.free(norm)
    out, _ = _conv(live, c_prev, spec.pixel_channels, shape, spec)
    live.free(act)  # a temporary argument of the conv: freed when it returns
    if spec.patch_size > 1:  # pixel-shuffle copy of the output while the conv's output is still referenced
        live.alloc(out)


def generic_encode_peak(spec: GenericVAE, video_shape: Shape3, live: Live) -> None:
    """Encoding one video (the video input itself not counted) into ``live``."""
    chans, p = spec.block_out_channels, spec.patch_size
    shape = (video_shape[0], video_shape[1] // p, video_shape[2] // p)
    unshuffled = live.alloc(live.numel(spec.pixel_channels, shape)) if p > 1 else 0  # the pixel-unshuffle copy
    x, shape = _conv(live, spec.pixel_channels, chans[0], shape, spec)
    live.free(unshuffled)
    c_prev = chans[0]
    for i, c in enumerate(chans):
        level_in, cur = x, x
        for r in range(spec.layers_per_block):
            nxt = _resnet(live, cur, c_prev, c, shape, spec)
            if r > 0:
                live.free(cur)
            cur, c_prev = nxt, c
        if i < spec.num_spatial_down:
            out, shape = _conv(live, c, c, shape, spec, 2 if i < spec.num_temporal_down else 1, 2)
            live.free(cur)
            cur = out
        live.free(level_in)
        x = cur
    y = _mid(live, x, c_prev, shape, spec)
    live.free(x)
    norm = live.alloc(live.numel(c_prev, shape))
    act = live.alloc(live.numel(c_prev, shape))
    live.free(norm)
    z = spec.latent_channels * (2 if spec.double_z else 1)
    moments, _ = _conv(live, c_prev, z, shape, spec)
    live.free(act)
    if spec.quant_convs:  # quant_conv's output beside its input
        live.alloc(live.numel(z, shape))
    live.free(y)
