"""Inference peaks of the reference models, in bytes: the peak of live activation bytes during one forward, by a
liveness walk that follows the reference code (which tensors a caller still holds while a module runs).

Training activations (what autograd saves for backward) are read from the ledger: ``evaluate/saved.py``.
Activations are in ``act_bytes`` (2 for bf16, 4 for fp32).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

from sora_compute.evaluate.liveness import Segment, ledger_peak, peak_bytes
from sora_compute.evaluate.saved import AttentionKernel
from sora_compute.ledger.dit import DiTShape
from sora_compute.ledger.formulas import Number
from sora_compute.ledger.registry import lookup, register
from sora_compute.ledger.text_encoder import text_encoder_ledger
from sora_compute.specs import STEPVIDEO_HEAD, WFVAE_FLOW_LAYERS, DiTSpec, TextEncoderSpec, VAESpec
from sora_compute.specs.vae import LTXVAE, WFVAE, CogVideoXVAE, GenericVAE, MochiVAE, OpenSoraVAE, StepVideoVAE, WanVAE

__all__ = [
    "dit_inference_peak",
    "vae_decode_peak",
    "vae_encode_peak",
    "text_encoder_peak",
]


def _grid_rows(spec: DiTSpec, grid: tuple[int, int, int], L: int, B: int) -> tuple[int, int, int]:
    T, H, W = grid
    N = T * H * W
    L = L if spec.text_conditioned else 0
    return N, L, B * (N + L if spec.conditioning in ("joint", "dual_stream") else N)


# ------------------------------------------------------------------------------------------------
# Inference peaks (no gradients): a liveness walk that mirrors the reference code
# ------------------------------------------------------------------------------------------------

class _Live:
    """Bytes alive now and the high-water mark; ``unit`` = bytes per activation element x batch."""

    def __init__(self, act_bytes: int = 2, batch: int = 1) -> None:
        self.now = 0
        self.peak = 0
        self.unit = act_bytes * batch
        self.batch = batch

    def numel(self, c: int, shape: tuple[int, int, int]) -> int:
        """Bytes of a (batch, c, T, H, W) tensor."""
        return c * shape[0] * shape[1] * shape[2] * self.unit

    def alloc(self, n: int) -> int:
        self.now += n
        self.peak = max(self.peak, self.now)
        return n

    def free(self, *ns: int) -> None:
        self.now -= sum(ns)


def dit_inference_peak(spec: DiTSpec, grid: tuple[int, int, int], text_tokens: int = 0, batch: int = 1,
                       kernel: AttentionKernel = "fused", act_bytes: int = 2) -> int:
    """Peak live activation bytes of one DiT forward without gradients (weights not included).

    The liveness evaluator (evaluate/liveness.py) over each block run's dataflow in the ledger (adaLN blocks: full,
    spatial, temporal, Skiparse, joint, cross-attention; MMDiT dual- and single-stream; Mochi's asymmetric blocks),
    on top of what the caller holds: the block input (video and text streams), the conditioning vector or shared
    projection, the projected text of cross-attention. Every block instance of a run starts from the same live set,
    so one instance per run gives the peak; the embedders and the final layer hold less than a block."""
    N, L, R = _grid_rows(spec, grid, text_tokens, batch)
    B, d, a = batch, spec.hidden_size, act_bytes
    shape = DiTShape(B, *grid, L)
    Lk = L + spec.cross_tokens_extra  # cross-attention keys (a second encoder's tokens prepended)
    cond = B * spec.modulation_chunks * d if spec.modulation == "shared" else B * spec.cond
    if spec.conditioning in ("dual_stream", "asymmetric"):  # the streams apart: video and text
        inputs = {"x": B * N * d, "y": B * L * (spec.text_width if spec.conditioning == "asymmetric" else d),
                  "c": cond}
    else:
        inputs = {"x": R * d, "c": cond, **({"y": B * Lk * d} if spec.conditioning == "cross_attention" else {})}
    segments = [Segment(lookup("dit_block", mode)(spec, shape, mode, blocks), inputs)
                for mode, blocks in spec.block_schedule()]
    return int(peak_bytes(segments, a, kernel))


def text_encoder_peak(spec: TextEncoderSpec, tokens: Number, batch: Number = 1, act_bytes: int = 2) -> Number:
    """Peak live activation bytes of a text-encoder forward without gradients (weights not included): the liveness
    evaluator over the encoder's ledger (``ledger/text_encoder.py``). Equal to the live-tensor tracker on the
    reference modules of every kind (tests/test_text_encoders.py, tests/test_memory.py)."""
    return ledger_peak(text_encoder_ledger(spec, tokens, batch), act_bytes)


def _conv(live: _Live, c_in: int, c_out: int, shape: tuple[int, int, int], spec: GenericVAE, stride_t: int = 1,
          stride_s: int = 1) -> tuple[int, tuple[int, int, int]]:
    """A causal conv copies its input with kt - 1 padding frames (torch.cat), then writes its output."""
    T, H, W = shape
    kt = spec.temporal_kernel
    pad = live.alloc(live.numel(c_in, (T + kt - 1, H, W))) if spec.causal and kt > 1 else 0
    out_shape = ((T - 1) // stride_t + 1, (H - 1) // stride_s + 1, (W - 1) // stride_s + 1)
    out = live.alloc(live.numel(c_out, out_shape))
    live.free(pad)
    return out, out_shape


def _resnet(live: _Live, x: int, c_in: int, c_out: int, shape: tuple[int, int, int], spec: GenericVAE) -> int:
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


def _attention_block(live: _Live, x: int, c: int, shape: tuple[int, int, int]) -> int:
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


def _mid(live: _Live, x: int, c: int, shape: tuple[int, int, int], spec: GenericVAE) -> int:
    y = _resnet(live, x, c, c, shape, spec)
    if spec.mid_attention:
        res = _attention_block(live, y, c, shape)
        live.free(y)
        y = res
    z = _resnet(live, y, c, c, shape, spec)
    live.free(y)
    return z


def vae_decode_peak(spec: VAESpec, latent_shape: tuple[int, int, int], batch: int = 1, act_bytes: int = 2) -> int:
    """Peak live activation bytes of decoding one latent (the latent input itself not counted)."""
    live = _Live(act_bytes, batch)
    if not isinstance(spec, GenericVAE):  # a family's own walk, from the one registry
        lookup("vae_decode_peak", spec.family)(spec, latent_shape, live)
        return live.peak
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
    return live.peak


def vae_encode_peak(spec: VAESpec, video_shape: tuple[int, int, int], batch: int = 1, act_bytes: int = 2) -> int:
    """Peak live activation bytes of encoding one video (the video input itself not counted)."""
    live = _Live(act_bytes, batch)
    if not isinstance(spec, GenericVAE):  # a family's own walk, from the one registry
        lookup("vae_encode_peak", spec.family)(spec, video_shape, live)
        return live.peak
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
    return live.peak


# ------------------------------------------------------------------------------------------------
# Inference peaks of the published VAE families (reference_model/vae/, one module per family)
# ------------------------------------------------------------------------------------------------

Shape3 = tuple[int, int, int]


def _pos(shape: Shape3) -> int:
    return shape[0] * shape[1] * shape[2]


def _rms_norm(live: _Live, c: int, shape: Shape3, n: int = 0, stat: int = 0) -> int:
    """Composite RMSNorm over channels (a transposed view): x^2, its mean and rstd; x * rstd, times the weight,
    and a contiguous copy: 2 tensors of the input's size plus rstd at the peak. Returns the output's bytes.
    (``n``, ``stat``: bytes of the input and of rstd, for other layouts.)"""
    n = n or live.numel(c, shape)
    scaled = live.alloc(n)
    rstd = live.alloc(stat or live.numel(1, shape))
    weighted = live.alloc(n)
    live.free(scaled)
    out = live.alloc(n)
    live.free(weighted, rstd)
    return out


def _padded_conv(live: _Live, c_in: int, c_out: int, padded: Shape3, out: Shape3) -> int:
    """A convolution on a padded copy of its input (F.pad or torch.cat), freed when the conv returns."""
    pad = live.alloc(live.numel(c_in, padded))
    y = live.alloc(live.numel(c_out, out))
    live.free(pad)
    return y


def _wan_conv(live: _Live, c_in: int, c_out: int, shape: Shape3) -> int:
    """Wan's causal 3x3x3 conv: F.pad (2 frames in front, 1 around H and W), then the conv."""
    T, H, W = shape
    return _padded_conv(live, c_in, c_out, (T + 2, H + 2, W + 2), shape)


def _wan_resnet(live: _Live, c_in: int, c_out: int, shape: Shape3) -> int:
    """Input held by the caller; the shortcut is computed first and held to the end."""
    short = live.alloc(live.numel(c_out, shape)) if c_in != c_out else 0
    h = _rms_norm(live, c_in, shape)
    act = live.alloc(live.numel(c_in, shape))
    live.free(h)
    y1 = _wan_conv(live, c_in, c_out, shape)
    live.free(act)
    h = _rms_norm(live, c_out, shape)
    act = live.alloc(live.numel(c_out, shape))
    live.free(h)
    y2 = _wan_conv(live, c_out, c_out, shape)
    live.free(act, y1)
    out = live.alloc(live.numel(c_out, shape))
    live.free(y2, short)
    return out


def _wan_attention(live: _Live, c: int, shape: Shape3) -> int:
    """Per-frame copy, RMSNorm, qkv (3n) made contiguous (3n, kept to the end), SDPA output and its log-sum-exp,
    a transposed copy for the 1x1 projection, the projection, the residual sum."""
    n = live.numel(c, shape)
    frames = live.alloc(n)
    h = _rms_norm(live, c, shape)
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


def _wan_mid(live: _Live, c: int, shape: Shape3) -> int:
    y = _wan_resnet(live, c, c, shape)
    a = _wan_attention(live, c, shape)
    live.free(y)
    z = _wan_resnet(live, c, c, shape)
    live.free(a)
    return z


def _chain(live: _Live, x: int, steps: list[Callable[[], int]]) -> int:
    """Steps in sequence on ``x`` (held by the caller); each step's output is freed when the next step returns."""
    cur = x
    for i, step in enumerate(steps):
        nxt = step()
        if i > 0:
            live.free(cur)
        cur = nxt
    return cur


def _level(live: _Live, x: int, blocks: list[tuple[int, int]], shape: Shape3,
           resnet: Callable[[_Live, int, int, Shape3], int]) -> int:
    """ResNets (c_in, c_out) in sequence on ``x`` (held by the caller); each output is freed when the next returns."""
    return _chain(live, x, [partial(resnet, live, ci, co, shape) for ci, co in blocks])


@register("vae_encode_peak", "wan")
def _wan_encode_peak(spec: WanVAE, shape: Shape3, live: _Live) -> None:
    chans, factors, z2 = spec.block_out_channels, spec.level_temporal_factors, 2 * spec.latent_channels
    x = _wan_conv(live, spec.in_channels, chans[0], shape)
    c_prev = chans[0]
    for i, c in enumerate(chans):
        blocks = [(c_prev if j == 0 else c, c) for j in range(spec.layers_per_block)]
        cur = _level(live, x, blocks, shape, _wan_resnet)
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
    h = _rms_norm(live, c_prev, shape)
    act = live.alloc(live.numel(c_prev, shape))
    live.free(h, y)
    out = _wan_conv(live, c_prev, z2, shape)
    live.free(act)
    live.alloc(live.numel(z2, shape))  # quant_conv


@register("vae_decode_peak", "wan")
def _wan_decode_peak(spec: WanVAE, shape: Shape3, live: _Live) -> None:
    chans, factors, z = spec.decoder_channels, spec.level_temporal_factors, spec.latent_channels
    pq = live.alloc(live.numel(z, shape))
    x = _wan_conv(live, z, chans[0], shape)
    live.free(pq)
    y = _wan_mid(live, chans[0], shape)
    live.free(x)
    x, c_prev = y, chans[0]
    for j, c in enumerate(chans):
        blocks = [(c_prev if r == 0 else c, c) for r in range(spec.layers_per_block + 1)]
        cur = _level(live, x, blocks, shape, _wan_resnet)
        c_prev = c
        if j < len(chans) - 1:
            T, H, W = shape
            doubled = 0
            if factors[-1 - j] > 1 and T > 1:
                made = _padded_conv(live, c, 2 * c, (T + 1, H, W), (T - 1, H, W))
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
    h = _rms_norm(live, c_prev, shape)
    act = live.alloc(live.numel(c_prev, shape))
    live.free(h)
    _wan_conv(live, c_prev, spec.in_channels, shape)
    live.free(act)


def _cat_conv(live: _Live, c_in: int, c_out: int, shape: Shape3) -> int:
    """Causal 3x3x3 conv padding time with two copies of the first frame (torch.cat)."""
    T, H, W = shape
    return _padded_conv(live, c_in, c_out, (T + 2, H, W), shape)


def _spatial_norm(live: _Live, c: int, z: int, shape: Shape3) -> int:
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


def _cog_resnet(live: _Live, c_in: int, c_out: int, shape: Shape3, z: int = 0) -> int:
    """GroupNorm (or spatial norm with latent channels ``z``), SiLU, conv, twice; 1x1x1 shortcut; input held."""
    h1 = 0
    for ci, co in ((c_in, c_out), (c_out, c_out)):
        norm = _spatial_norm(live, ci, z, shape) if z else live.alloc(live.numel(ci, shape))
        act = live.alloc(live.numel(ci, shape))
        live.free(norm)
        y = _cat_conv(live, ci, co, shape)
        live.free(act, h1)
        h1 = y
    short = live.alloc(live.numel(c_out, shape)) if c_in != c_out else 0
    out = live.alloc(live.numel(c_out, shape))
    live.free(h1, short)
    return out


@register("vae_encode_peak", "cogvideox")
def _cog_encode_peak(spec: CogVideoXVAE, shape: Shape3, live: _Live) -> None:
    chans, factors = spec.block_out_channels, spec.level_temporal_factors
    x, c_prev = _cat_conv(live, spec.in_channels, chans[0], shape), chans[0]
    for i, c in enumerate(chans):
        blocks = [(c_prev if j == 0 else c, c) for j in range(spec.layers_per_block)]
        cur = _level(live, x, blocks, shape, _cog_resnet)
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
    y = _level(live, x, [(c_prev, c_prev)] * 2, shape, _cog_resnet)
    live.free(x)
    norm = live.alloc(live.numel(c_prev, shape))
    act = live.alloc(live.numel(c_prev, shape))
    live.free(norm, y)
    _cat_conv(live, c_prev, 2 * spec.latent_channels, shape)
    live.free(act)


@register("vae_decode_peak", "cogvideox")
def _cog_decode_peak(spec: CogVideoXVAE, shape: Shape3, live: _Live) -> None:
    chans, factors, z = spec.decoder_channels, spec.level_temporal_factors, spec.latent_channels

    def resnet(live: _Live, ci: int, co: int, shape: Shape3) -> int:
        return _cog_resnet(live, ci, co, shape, z)

    x = _cat_conv(live, z, chans[0], shape)
    y = _level(live, x, [(chans[0], chans[0])] * 2, shape, resnet)
    live.free(x)
    x, c_prev = y, chans[0]
    for j, c in enumerate(chans):
        blocks = [(c_prev if r == 0 else c, c) for r in range(spec.layers_per_block + 1)]
        cur = _level(live, x, blocks, shape, resnet)
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
    _cat_conv(live, c_prev, spec.in_channels, shape)
    live.free(act)


def _frame_group_norm(live: _Live, c: int, shape: Shape3, groups: int) -> int:
    """Per-frame GroupNorm: a (B T, C, H, W) copy, the output with mean and rstd per frame and group (dropped at
    once); the copy is freed on return."""
    frames = live.alloc(live.numel(c, shape))
    out = live.alloc(live.numel(c, shape))
    live.free(live.alloc(2 * groups * shape[0] * live.unit))
    live.free(frames)
    return out


def _channels_last_linear(live: _Live, c_in: int, c_out: int, shape: Shape3) -> int:
    """Channels-last copy of the input, matmul, bias add (a new tensor); the copy is freed on return."""
    copy = live.alloc(live.numel(c_in, shape))
    mm = live.alloc(live.numel(c_out, shape))
    out = live.alloc(live.numel(c_out, shape))
    live.free(mm, copy)
    return out


def _mochi_resnet(live: _Live, c: int, shape: Shape3, g: int) -> int:
    """(per-frame GroupNorm, SiLU, causal conv) twice, plus the input (held by the caller)."""
    h = 0
    for _ in range(2):
        norm = _frame_group_norm(live, c, shape, g)
        act = live.alloc(live.numel(c, shape))
        live.free(norm)
        y = _cat_conv(live, c, c, shape)
        live.free(act)
        if h:
            out = live.alloc(live.numel(c, shape))
            live.free(y, h)
            return out
        h = y
    raise AssertionError


def _mochi_attention(live: _Live, c: int, shape: Shape3, g: int) -> int:
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
    qn = _rms_norm(live, c, shape, n, per_head)
    kn = _rms_norm(live, c, shape, n, per_head)
    live.free(q, k)
    out = live.alloc(n)
    live.free(live.alloc(per_head * 4 * live.batch // live.unit))  # log-sum-exp (fp32)
    copy = live.alloc(n)
    proj = live.alloc(n)
    live.free(copy, out)
    res = live.alloc(n)
    live.free(proj, qn, kn, v, h)
    return res


MOCHI_HEAD_DIM = 32


def _mochi_block(live: _Live, x: int, c: int, layers: int, attention: bool, shape: Shape3, g: int) -> int:
    """``layers`` x (ResNet, attention) on ``x`` (held by the caller); each output freed once the next returns."""
    steps = [_mochi_resnet, _mochi_attention] * layers if attention else [_mochi_resnet] * layers
    return _chain(live, x, [partial(step, live, c, shape, g) for step in steps])


@register("vae_encode_peak", "mochi")
def _mochi_encode_peak(spec: MochiVAE, shape: Shape3, live: _Live) -> None:
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
        conv = _padded_conv(live, chans[i], chans[i + 1], (T + t - 1, H, W), shape)
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
def _mochi_decode_peak(spec: MochiVAE, shape: Shape3, live: _Live) -> None:
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


def _ltx_resnet(live: _Live, c_in: int, c_out: int, shape: Shape3) -> int:
    """(RMSNorm, SiLU, conv padded by torch.cat) twice; widening: LayerNorm (with its dropped mean and rstd) and a
    1x1x1 conv on the input (held by the caller); the sum."""
    h1 = 0
    for ci, co in ((c_in, c_out), (c_out, c_out)):
        norm = _rms_norm(live, ci, shape)
        act = live.alloc(live.numel(ci, shape))
        live.free(norm)
        y = _cat_conv(live, ci, co, shape)
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
def _ltx_encode_peak(spec: LTXVAE, shape: Shape3, live: _Live) -> None:
    chans, layers, n, p = spec.block_out_channels, spec.layers_per_level, len(spec.block_out_channels), spec.patch_size
    assert layers is not None
    shape = (shape[0], shape[1] // p, shape[2] // p)
    unshuffled = live.alloc(live.numel(spec.pixel_channels, shape)) if p > 1 else 0
    x = _cat_conv(live, spec.pixel_channels, chans[0], shape)
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
            out = _padded_conv(live, c, c, (T + 2, H, W), shape)
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
    norm = _rms_norm(live, chans[-1], shape)
    live.free(m if made else 0)
    act = live.alloc(live.numel(chans[-1], shape))
    live.free(norm)
    out = _cat_conv(live, chans[-1], spec.latent_channels + 1, shape)
    live.free(act, x)
    live.alloc(live.numel(2 * spec.latent_channels, shape))  # mean and the repeated log-variance
    live.free(out)


@register("vae_decode_peak", "ltx")
def _ltx_decode_peak(spec: LTXVAE, shape: Shape3, live: _Live) -> None:
    rev, layers, n, p = spec.decoder_channels, spec.layers_per_level, len(spec.block_out_channels), spec.patch_size
    assert layers is not None
    ci = _cat_conv(live, spec.latent_channels, rev[0], shape)
    x = _level(live, ci, [(rev[0], rev[0])] * layers[-1], shape, _ltx_resnet)
    if layers[-1]:
        live.free(ci)
    c_prev = rev[0]
    for j, c in enumerate(rev):
        cur, made = x, False
        if c_prev != c:
            cur, made = _ltx_resnet(live, c_prev, c, shape), True
        if j > 0:
            T, H, W = shape
            conv = _padded_conv(live, c, 8 * c, (T + 2, H, W), shape)
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
    norm = _rms_norm(live, c_prev, shape)
    act = live.alloc(live.numel(c_prev, shape))
    live.free(norm)
    out = _cat_conv(live, c_prev, spec.pixel_channels, shape)
    live.free(act)
    if p > 1:  # pixel-shuffle copy while the conv's output is still referenced
        live.alloc(out)


# --- Open-Sora 1.2: per-frame 2D VAE in micro-batches + a temporal VAE over chunks ----------------------

def _os_conv(live: _Live, c_in: int, c_out: int, shape: Shape3, k: int = 3, stride_t: int = 1) -> tuple[int, Shape3]:
    """Open-Sora's CausalConv3d: F.pad (k - 1 + 1 - stride frames in front, k // 2 around H and W; none for k = 1)."""
    T, H, W = shape
    pad_t = k - stride_t
    out_shape = ((T + pad_t - k) // stride_t + 1, H, W)
    if k == 1:
        return live.alloc(live.numel(c_out, out_shape)), out_shape
    return _padded_conv(live, c_in, c_out, (T + pad_t, H + k - 1, W + k - 1), out_shape), out_shape


def _os_resblock(live: _Live, c_in: int, c_out: int, shape: Shape3) -> int:
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


def _os_temporal_encode(spec: OpenSoraVAE, live: _Live, shape: Shape3) -> int:
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
        cur = _level(live, x, [(c_prev if j == 0 else c, c) for j in range(layers[i])], shape, _os_resblock)
        made = layers[i] > 0
        c_prev = c
        if i < len(tc) - 1 and factors[i] > 1:
            out, shape = _os_conv(live, c, c, shape, 3, 2)
            live.free(cur if made else 0)
            cur, made = out, True
        if made:
            live.free(x)
        x = cur
    m = _level(live, x, [(c_prev, c_prev)] * layers[-1], shape, _os_resblock)
    n = live.alloc(live.numel(c_prev, shape))
    live.free(m if layers[-1] else 0)
    a = live.alloc(live.numel(c_prev, shape))
    live.free(n)
    o = live.alloc(live.numel(2 * z, shape))
    live.free(a)
    q = live.alloc(live.numel(2 * z, shape))
    live.free(o, x)
    return q


def _os_temporal_decode(spec: OpenSoraVAE, live: _Live, shape: Shape3) -> int:
    """One chunk of latents (a view) through post_quant_conv and the temporal decoder; returns conv_out's output
    (the kept frames are a view of it)."""
    tc, layers, factors, z = (spec.temporal_block_out_channels, spec.layers_per_level, spec.level_temporal_factors,
                              spec.latent_channels)
    assert tc is not None and layers is not None
    pq = live.alloc(live.numel(z, shape))
    ci, _ = _os_conv(live, z, tc[-1], shape)
    live.free(pq)
    x = _level(live, ci, [(tc[-1], tc[-1])] * layers[-1], shape, _os_resblock)
    if layers[-1]:
        live.free(ci)
    c_prev = tc[-1]
    for i in reversed(range(len(tc))):
        cur = _level(live, x, [(c_prev if r == 0 else tc[i], tc[i]) for r in range(layers[i])], shape, _os_resblock)
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


def _sub_peak(live: _Live, peak: int) -> None:
    """A sub-walk that starts now and peaks ``peak`` bytes above the bytes alive now."""
    live.peak = max(live.peak, live.now + peak)


@register("vae_encode_peak", "opensora")
def _os_encode_peak(spec: OpenSoraVAE, shape: Shape3, live: _Live) -> None:
    """2D encoder per micro-batch of frames (each keeps its quant_conv output: 2z channels, the mean a view), their
    concatenation, then the temporal encoder per chunk (moments kept) and their concatenation."""
    from reference_model.vae import OPENSORA_MICRO_BATCH

    F, H, W = shape
    B, a, z, s = live.batch, live.unit // live.batch, spec.latent_channels, spec.spatial_compression
    h, w = H // s, W // s
    frames = live.alloc(live.numel(spec.in_channels, shape)) if B > 1 and F > 1 else 0  # per-frame copy
    held = []
    for i in range(0, B * F, OPENSORA_MICRO_BATCH):
        m = min(OPENSORA_MICRO_BATCH, B * F - i)
        _sub_peak(live, vae_encode_peak(spec.spatial_vae, (1, H, W), m, a))
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
def _os_decode_peak(spec: OpenSoraVAE, shape: Shape3, live: _Live) -> None:
    """Temporal decoder per chunk (outputs kept), their concatenation, a per-frame copy, then post_quant_conv and
    the 2D decoder per micro-batch (outputs kept) and their concatenation."""
    from reference_model.vae import OPENSORA_MICRO_BATCH

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
        _sub_peak(live, vae_decode_peak(spec.spatial_vae, (1, h, w), m, a))
        outs.append(live.alloc(m * spec.in_channels * h * s * w * s * a))
        live.free(pq)
    live.alloc(live.numel(spec.in_channels, (F, h * s, w * s)))
    live.free(*outs, *parts, lat, frames)


# --- Step-Video Video-VAE v2: chunks, channel-last copies, zero-padded norms ---------------------------------------

def _sv_norm(live: _Live, c: int, shape: Shape3, g: int, silu: bool, strided: bool) -> int:
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


def _sv_norm_pad(live: _Live, c: int, shape: Shape3, g: int, strided: bool) -> int:
    """sv_norm_zero_pad: the (T + 2)-frame buffer, then SiLU(norm) copied into it. Returns the buffer's bytes."""
    T, H, W = shape
    buf = live.alloc(live.numel(c, (T + 2, H, W)))
    live.free(_sv_norm(live, c, shape, g, True, strided))
    return buf


def _sv_linear(live: _Live, c_in: int, c_out: int, shape: Shape3, strided_pad: bool = False) -> int:
    """A 1x1x1 conv as a matmul on a channel-last tensor: F.pad's copy (a strided clone when its input is the norm's
    NCHW output: then a copy to rows for the matmul, unless B T = 1), the output."""
    pad = live.alloc(live.numel(c_in, shape))
    flat = live.alloc(live.numel(c_in, shape)) if strided_pad and live.batch * shape[0] > 1 else 0
    out = live.alloc(live.numel(c_out, shape))
    live.free(flat, pad)
    return out


def _sv_resnet(live: _Live, c_in: int, c_out: int, shape: Shape3, g: int, cl: bool, clc: bool) -> int:
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


def _sv_attention(live: _Live, c: int, shape: Shape3, g: int, cl: bool) -> int:
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


def _sv_mid(live: _Live, c: int, shape: Shape3, g: int, cl: bool, clc: bool) -> int:
    """Resnet, attention, Resnet; the input held by the caller (``cl``: channel-last, the decoder's). The attention's
    output is channel-last: the decoder's channel-last copy of it and block_2's are views."""
    y = _sv_resnet(live, c, c, shape, g, cl, clc)
    a = _sv_attention(live, c, shape, g, clc)
    live.free(y)
    z = _sv_resnet(live, c, c, shape, g, True, clc)
    live.free(a)
    return z


def _sv_level(live: _Live, blocks: list[tuple[int, int]], shape: Shape3, g: int, copy: bool, cl: bool,
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


def _sv_encode_chunk(spec: StepVideoVAE, shape: Shape3, live: _Live, clc: bool) -> int:
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
def _sv_encode_peak(spec: StepVideoVAE, shape: Shape3, live: _Live, conv_channels_last: bool = True) -> None:
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


def _sv_duplicate(live: _Live, c_out: int, factor: int, shape: Shape3) -> int:
    """Channel duplication (repeat_interleave) then pixel_shuffle_3d's permuted copy; returns the latter's bytes."""
    T, H, W = shape
    rep = live.alloc(live.numel(c_out * factor**3, shape))
    out = live.alloc(live.numel(c_out, (T * factor, H * factor, W * factor)))
    live.free(rep)
    return out


def _sv_upsample3d(live: _Live, c: int, shape: Shape3, g: int, clc: bool) -> tuple[int, Shape3]:
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


def _sv_decode_chunk(spec: StepVideoVAE, shape: Shape3, live: _Live, clc: bool) -> int:
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
def _sv_decode_peak(spec: StepVideoVAE, shape: Shape3, live: _Live, conv_channels_last: bool = True) -> None:
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


# --- Open-Sora-Plan v1.3 WF-VAE: per-frame 2D modules, first-frame copies, wavelet energy flow -------------------

def _wf_silu(live: _Live, n: int) -> int:
    """ops.nonlinearity x * sigmoid(x): the sigmoid, then the product."""
    s = live.alloc(n)
    out = live.alloc(n)
    live.free(s)
    return out


def _wf_norm_silu(live: _Live, n: int) -> int:
    """GroupNorm, then x * sigmoid(x); the norm's output freed when the activation returns."""
    g = live.alloc(n)
    out = _wf_silu(live, n)
    live.free(g)
    return out


def _wf_causal_conv(live: _Live, c_in: int, c_out: int, shape: Shape3, k: int, stride: int = 1,
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


def _wf_res3d(live: _Live, c_in: int, c_out: int, shape: Shape3) -> int:
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


def _wf_per_frame(live: _Live, c_out: int, shape: Shape3, frame: Callable[[], int]) -> int:
    """video_to_image: ``frame()`` (its temporaries freed, its output returned) on each of the T frames, the outputs
    kept, then concatenated."""
    T, H, W = shape
    outs = [frame() for _ in range(T)]
    out = live.alloc(live.numel(c_out, shape))
    live.free(*outs)
    return out


def _wf_conv2d(live: _Live, c_out: int, shape: Shape3) -> int:
    """modules.Conv2d (3x3, padding 1) frame by frame."""
    return _wf_per_frame(live, c_out, shape, lambda: live.alloc(live.numel(c_out, (1, *shape[1:]))))


def _wf_res2d(live: _Live, c: int, shape: Shape3) -> int:
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


def _wf_haar3d(live: _Live, c: int, shape: Shape3, copy: bool) -> tuple[int, Shape3]:
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
def _wf_encode_peak(spec: WFVAE, shape: Shape3, live: _Live) -> None:
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


def _wf_attention(live: _Live, c: int, shape: Shape3) -> int:
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


def _wf_mid(live: _Live, x: int, c_in: int, c: int, c_out: int, shape: Shape3, attention: bool) -> int:
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


def _wf_inverse_haar(live: _Live, c: int, shape: Shape3, dims: int, copy: bool) -> int:
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


def _wf_sequential(live: _Live, blocks: list[Callable[[], int]]) -> int:
    """nn.Sequential: the input is held by the caller; each later input freed once the next module returns."""
    held = 0
    for block in blocks:
        nxt = block()
        live.free(held)
        held = nxt
    return held


@register("vae_decode_peak", "wfvae")
def _wf_decode_peak(spec: WFVAE, shape: Shape3, live: _Live) -> None:
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

