"""family='wfvae' (reference_model/vae/wfvae.py): the inference-peak walks of Open-Sora-Plan v1.3's WF-VAE."""

from __future__ import annotations

from collections.abc import Callable

from sora_compute.ledger.registry import register
from sora_compute.memory.vae_peaks.common import Live, Shape3
from sora_compute.specs.vae import WFVAE, WFVAE_FLOW_LAYERS

__all__: list[str] = []


def _wf_silu(live: Live, n: int) -> int:
    """ops.nonlinearity x * sigmoid(x): the sigmoid, then the product."""
    s = live.alloc(n)
    out = live.alloc(n)
    live.free(s)
    return out


def _wf_norm_silu(live: Live, n: int) -> int:
    """GroupNorm, then x * sigmoid(x); the norm's output freed when the activation returns."""
    g = live.alloc(n)
    out = _wf_silu(live, n)
    live.free(g)
    return out


def _wf_causal_conv(live: Live, c_in: int, c_out: int, shape: Shape3, k: int, stride: int = 1,
                    pad: int = 0) -> tuple[int, Shape3]:
    """CausalConv3d: k - 1 copies of the first frame (Tensor.repeat; empty for k = 1), their concatenation in front of
    the input (a copy), the conv (padding ``pad`` in H and W)."""
    T, H, W = shape
    rep = live.alloc(live.numel(c_in, (k - 1, H, W)))
    cat = live.alloc(live.numel(c_in, (T + k - 1, H, W)))
    live.free(rep)
    out_shape = ((T - 1) // stride + 1, (H + 2 * pad - k) // stride + 1, (W + 2 * pad - k) // stride + 1)
    out = live.alloc(live.numel(c_out, out_shape))
    live.free(cat)
    return out, out_shape


def _wf_res3d(live: Live, c_in: int, c_out: int, shape: Shape3) -> int:
    """ResnetBlock3D (input held by the caller): conv1(silu(norm1)), conv2(silu(norm2)), the causal 1x1x1 shortcut
    computed last, the sum."""
    a = _wf_norm_silu(live, live.numel(c_in, shape))
    y1, _ = _wf_causal_conv(live, c_in, c_out, shape, 3, pad=1)
    live.free(a)
    a = _wf_norm_silu(live, live.numel(c_out, shape))
    y2, _ = _wf_causal_conv(live, c_out, c_out, shape, 3, pad=1)
    live.free(a, y1)
    short = _wf_causal_conv(live, c_in, c_out, shape, 1)[0] if c_in != c_out else 0
    out = live.alloc(live.numel(c_out, shape))
    live.free(short, y2)
    return out


def _wf_per_frame(live: Live, c_out: int, shape: Shape3, frame: Callable[[], int]) -> int:
    """video_to_image: ``frame()`` (its temporaries freed, its output returned) on each of the T frames, the outputs
    kept, then concatenated."""
    T, H, W = shape
    outs = [frame() for _ in range(T)]
    out = live.alloc(live.numel(c_out, shape))
    live.free(*outs)
    return out


def _wf_conv2d(live: Live, c_out: int, shape: Shape3) -> int:
    """modules.Conv2d (3x3, padding 1) frame by frame."""
    return _wf_per_frame(live, c_out, shape, lambda: live.alloc(live.numel(c_out, (1, *shape[1:]))))


def _wf_res2d(live: Live, c: int, shape: Shape3) -> int:
    """ResnetBlock2D frame by frame (same widths)."""
    one = (1, *shape[1:])

    def frame() -> int:
        a = _wf_norm_silu(live, live.numel(c, one))
        y1 = live.alloc(live.numel(c, one))
        live.free(a)
        a = _wf_norm_silu(live, live.numel(c, one))
        y2 = live.alloc(live.numel(c, one))
        live.free(a, y1)
        out = live.alloc(live.numel(c, one))
        live.free(y2)
        return out

    return _wf_per_frame(live, c, shape, frame)


def _wf_haar3d(live: Live, c: int, shape: Shape3, copy: bool) -> tuple[int, Shape3]:
    """HaarWaveletTransform3D of c channels (a copy first when they are not one contiguous block): per conv a
    first-frame copy, the concatenation, the conv (outputs kept); the 8 c channel concatenation."""
    T, H, W = shape
    x = live.alloc(live.numel(c, shape)) if copy else 0
    out_shape = ((T - 1) // 2 + 1, H // 2, W // 2)
    outs = [_wf_causal_conv(live, c, c, shape, 2, 2)[0] for _ in range(8)]
    out = live.alloc(live.numel(8 * c, out_shape))
    live.free(*outs, x)
    return out, out_shape


@register("vae_encode_peak", "wfvae")
def _wf_encode_peak(spec: WFVAE, shape: Shape3, live: Live) -> None:
    """Mirrors reference_model.vae.WFVAEEncoder: the input wavelet (24 channels), the energy-flow branches (a copy of
    the low band's frames as images unless B = 1 and T1 = 1, its 2D wavelet, connect_l2; a copy of its low band for B
    > 1, the 3D wavelet, connect_l3), all held to the end; down1, concatenation, down2, concatenation, mid, norm_out,
    conv_out."""
    c, L, z, ef = spec.block_out_channels[0], spec.layers_per_block, spec.latent_channels, spec.energy_flow_channels
    assert ef is not None
    B = live.batch
    coeffs, s1 = _wf_haar3d(live, 3, shape, False)
    T1, H1, W1 = s1
    s2 = (T1, H1 // 2, W1 // 2)
    copy = live.alloc(live.numel(3, s1)) if B > 1 or T1 > 1 else 0
    parts = [live.alloc(live.numel(3, s2)) for _ in range(4)]
    l2_coeffs = live.alloc(live.numel(12, s2))
    live.free(*parts, copy)
    l2 = _wf_conv2d(live, ef[0], s2)
    w3, s3 = _wf_haar3d(live, 3, s2, B > 1)
    l3 = _wf_conv2d(live, ef[0], s3)
    live.free(w3)
    h = _wf_conv2d(live, c, s1)
    for _ in range(L):
        nxt = _wf_res2d(live, c, s1)
        live.free(h)
        h = nxt

    def down() -> int:
        p = live.alloc(live.numel(c, (1, H1 + 1, W1 + 1)))
        out = live.alloc(live.numel(c, (1, *s2[1:])))
        live.free(p)
        return out

    nxt = _wf_per_frame(live, c, s2, down)
    live.free(h)
    cat = live.alloc(live.numel(c + ef[0], s2))  # held by the encoder's h while down2 runs
    live.free(nxt)
    h = _wf_conv2d(live, 2 * c, s2)
    for _ in range(L):
        nxt = _wf_res3d(live, 2 * c, 2 * c, s2)
        live.free(h)
        h = nxt
    padded = live.alloc(live.numel(2 * c, (T1, s2[1] + 1, s2[2] + 1)))
    nxt, _ = _wf_causal_conv(live, 2 * c, 2 * c, (T1, s2[1] + 1, s2[2] + 1), 3, 2)
    live.free(padded, h, cat)
    cat = live.alloc(live.numel(2 * c + ef[0], s3))
    live.free(nxt)
    h = _wf_mid(live, cat, 2 * c + ef[0], 4 * c, 4 * c, s3, spec.mid_attention)
    live.free(cat)
    a = _wf_norm_silu(live, live.numel(4 * c, s3))
    _wf_causal_conv(live, 4 * c, 2 * z, s3, 3, pad=1)
    live.free(a, h, coeffs, l2_coeffs, l2, l3)


def _wf_attention(live: Live, c: int, shape: Shape3) -> int:
    """AttnBlock3DFix (input held by the caller): GroupNorm; q, k, v causal 1x1x1 convs, each a frame-major copy
    (none for one frame) replacing it; scores, scaled, softmax (each replacing the last); the weighted sum replaces
    the norm's output; proj_out, the residual sum; the rest freed on return."""
    T, H, W = shape
    n = live.numel(c, shape)
    h_ = live.alloc(n)
    held = []
    for _ in range(3):
        y, _ = _wf_causal_conv(live, c, c, shape, 1)
        if T > 1:
            cp = live.alloc(n)
            live.free(y)
            y = cp
        held.append(y)
    scores = T * (H * W) ** 2 * live.unit
    w = live.alloc(scores)
    for _ in range(2):
        nxt = live.alloc(scores)
        live.free(w)
        w = nxt
    o = live.alloc(n)
    live.free(h_)
    p, _ = _wf_causal_conv(live, c, c, shape, 1)
    out = live.alloc(n)
    live.free(p, o, w, *held)
    return out


def _wf_mid(live: Live, x: int, c_in: int, c: int, c_out: int, shape: Shape3, attention: bool) -> int:
    """nn.Sequential: ResnetBlock3D, AttnBlock3DFix, ResnetBlock3D; the input ``x`` is held by the caller, each later
    input freed once the next module returns."""
    blocks: list[Callable[[], int]] = [lambda: _wf_res3d(live, c_in, c, shape)]
    if attention:
        blocks.append(lambda: _wf_attention(live, c, shape))
    blocks.append(lambda: _wf_res3d(live, c, c_out, shape))
    held = 0
    for block in blocks:
        nxt = block()
        live.free(held)
        held = nxt
    return held


def _wf_inverse_haar(live: Live, c: int, shape: Shape3, dims: int, copy: bool) -> int:
    """Inverse Haar wavelet of c coefficient channels (2^dims chunks of c / 2^dims): per chunk a copy of its channels
    as one-channel images / videos (``copy``), freed once its conv_transpose returns (T -> 2T in 3D); the outputs
    kept and summed pairwise (3D: the first frame of each dropped); returns the sum."""
    k = 2**dims
    T, H, W = shape
    out_shape = (2 * T, 2 * H, 2 * W) if dims == 3 else (T, 2 * H, 2 * W)
    sum_shape = (2 * T - 1, 2 * H, 2 * W) if dims == 3 else out_shape
    parts = []
    for _ in range(k):
        cp = live.alloc(live.numel(c // k, shape)) if copy else 0
        parts.append(live.alloc(live.numel(c // k, out_shape)))
        live.free(cp)
    total = 0
    for _ in range(k - 1):
        nxt = live.alloc(live.numel(c // k, sum_shape))
        live.free(total)
        total = nxt
    live.free(*parts)
    return total


def _wf_sequential(live: Live, blocks: list[Callable[[], int]]) -> int:
    """nn.Sequential: the input is held by the caller; each later input freed once the next module returns."""
    held = 0
    for block in blocks:
        nxt = block()
        live.free(held)
        held = nxt
    return held


@register("vae_decode_peak", "wfvae")
def _wf_decode_peak(spec: WFVAE, shape: Shape3, live: Live) -> None:
    """Mirrors reference_model.vae.WFVAEDecoder: conv_in and mid; connect_l3 on the last ef channels (a view) and its
    inverse 3D wavelet (held to the end); up2 on the first 4c channels (the mid output freed when it returns: nearest
    x2 in time, trilinear x2 in H and W, concatenation, causal conv); connect_l2 (held to the end), the l3 band added
    into it through a temporary; its frames as images (a copy unless B = 1 or T = 1), the inverse 2D wavelet (held);
    up1 and layer, norm_out, silu, Conv2d per frame; the l2 band added through a temporary; the inverse 3D wavelet."""
    c, L, ef = spec.block_out_channels[0], spec.layers_per_block, spec.energy_flow_channels
    assert ef is not None
    n, z, B = spec.energy_flow_layers or WFVAE_FLOW_LAYERS, spec.latent_channels, live.batch
    e = ef[1]
    T, h, w = shape
    ci, _ = _wf_causal_conv(live, z, 4 * c, shape, 3, pad=1)
    m = _wf_mid(live, ci, 4 * c, 4 * c, 4 * c + e, shape, spec.mid_attention)
    live.free(ci)

    def connect(s: Shape3, c_out: int) -> int:
        blocks: list[Callable[[], int]] = [lambda: _wf_res3d(live, c, c, s) for _ in range(n)]
        blocks.append(lambda: _wf_conv2d(live, c_out, s))
        return _wf_sequential(live, blocks)

    coeffs = connect(shape, 24)
    l3 = _wf_inverse_haar(live, 24, shape, 3, B > 1)
    live.free(coeffs)
    s2 = (2 * T - 1, 2 * h, 2 * w)

    def upsample() -> int:
        if T > 1:
            near = live.alloc(live.numel(4 * c, (2 * (T - 1), h, w)))
            rest = live.alloc(live.numel(4 * c, (2 * (T - 1), 2 * h, 2 * w)))
            live.free(near)
            first = live.alloc(live.numel(4 * c, (1, 2 * h, 2 * w)))
            x = live.alloc(live.numel(4 * c, s2))
            live.free(first)
        else:
            rest, x = 0, live.alloc(live.numel(4 * c, s2))
        out, _ = _wf_causal_conv(live, 4 * c, 4 * c, s2, 3, pad=1)
        live.free(x, rest)
        return out

    up2: list[Callable[[], int]] = [lambda: _wf_res3d(live, 4 * c, 4 * c, shape) for _ in range(L)]
    up2 += [upsample, lambda: _wf_res3d(live, 4 * c, 4 * c + e, s2)]
    u2 = _wf_sequential(live, up2)
    live.free(m)
    l2_coeffs = connect(s2, 12)
    live.free(live.alloc(live.numel(3, s2)))  # l2_coeffs[:, :3] + l3, copied into the slice
    frames = live.alloc(live.numel(12, s2)) if B > 1 and s2[0] > 1 else 0
    l2 = _wf_inverse_haar(live, 12, s2, 2, B * s2[0] > 1)
    live.free(frames)
    s1 = (s2[0], 4 * h, 4 * w)

    def upsample2d() -> int:
        def frame() -> int:
            x = live.alloc(live.numel(2 * c, (1, *s1[1:])))
            out = live.alloc(live.numel(2 * c, (1, *s1[1:])))
            live.free(x)
            return out

        return _wf_per_frame(live, 2 * c, s1, frame)

    up1: list[Callable[[], int]] = [lambda i=i: _wf_res3d(live, 4 * c if i == 0 else 2 * c, 2 * c, s2)  # type: ignore[misc]
                                     for i in range(L)]
    up1 += [upsample2d, lambda: _wf_res3d(live, 2 * c, 2 * c, s1)]
    u1 = _wf_sequential(live, up1)
    x = _wf_sequential(live, [lambda: _wf_res3d(live, 2 * c, c, s1), lambda: _wf_res3d(live, c, c, s1)])
    live.free(u1, u2)
    a = _wf_norm_silu(live, live.numel(c, s1))
    out = _wf_conv2d(live, 24, s1)
    live.free(a, x)
    live.free(live.alloc(live.numel(3, s1)))  # h[:, :3] + l2, copied into the slice
    _wf_inverse_haar(live, 24, s1, 3, B > 1)
    live.free(out, l3, l2_coeffs, l2)
