"""family='wfvae': Open-Sora-Plan v1.3's WF-VAE (reference_model/vae/wfvae.py; modeling_wfvae.py): Haar wavelets as
fixed convs (the encoder's 3D one holds eight frozen 2x2x2 weights, 64 parameters; the 2D and inverse wavelets are
buffers), per-frame 2D and causal 3D levels with energy-flow branches, mid attention per frame.

Dataflow (``Flow`` records, for the liveness evaluator without gradients), following the reference code: a causal
conv repeats its first frame k - 1 times and concatenates the copies in front of its input (both scratch of the conv;
for k = 1 the concatenation is still a copy); GroupNorm's output lives while SiLU makes the sigmoid and the product; a
ResnetBlock3D holds conv1's output until conv2 returns and computes its shortcut last; 2D modules run frame by frame
(video_to_image): each frame's output is kept until all are concatenated; a Haar wavelet keeps its eight (four)
outputs until their concatenation, an inverse one its parts until the last pairwise sum; the attention replaces each
of q, k, v by a frame-major copy, holds the scores (scaled, softmaxed) and q, k, v to its residual sum; nn.Sequential
lets go of each module's input when the next returns, so its first block (reading the caller's input) is a record of
its own and the rest a run. The encoder holds the input wavelet, both energy-flow branches and their coefficients to
the end, the decoder the connect outputs and inverse wavelets of both branches.
"""

from __future__ import annotations

from sora_compute.ledger.formulas import Number
from sora_compute.ledger.ops import Flow, Op, attention_op, revise
from sora_compute.ledger.registry import register
from sora_compute.ledger.vae.common import (
    K3,
    Flows,
    Shape,
    around,
    conv,
    disowned,
    gn_conv_resblock,
    many,
    nearest,
    norm,
    skip,
    trilinear,
)
from sora_compute.specs.vae import WFVAE, WFVAE_FLOW_LAYERS

__all__ = ["WFVAELedger"]

HAAR_3D = ("h", "g", "hh", "gh", "h_v", "g_v", "hh_v", "gh_v")  # HaarWaveletTransform3D's convs, in call order
_1 = (1, 1, 1)
_3x3 = (3, 3)
_3D = ("conv1.conv", "conv2.conv", "nin_shortcut.conv")


def _norm_silu(x: str, y: str, n: Number) -> tuple[Flow, ...]:
    """GroupNorm, then x * sigmoid(x): the norm's output and the sigmoid live until the product is made."""
    return Flow((x,), "g", n), Flow(("g",), "sg", n), Flow(("sg", "g"), y, n)


def _causal(x: str, y: str, B: Number, c_in: int, n_out: Number, shape: Shape, k: int,
            held: tuple[str, ...] = ()) -> tuple[Flow, ...]:
    """CausalConv3d: k - 1 copies of the first frame and their concatenation before the input (scratch), the conv
    (``held`` read, kept to its end). ``x`` empty: the module's own input, made before the ledger."""
    T, H, W = shape
    ins = (x,) if x else ()
    return (Flow(ins, "cat", c_in * B * (T + k - 1) * H * W, None, c_in * B * (k - 1) * H * W),
            Flow(("cat", *ins, *held), y, n_out))


def _per_frame(x: str, y: str, n_frame: Number, T: Number, scratch: Number = 0,
               held: tuple[str, ...] = ()) -> tuple[Flow, ...]:
    """A 2D module frame by frame: the earlier frames' outputs kept, the last frame's made, all concatenated."""
    return (Flow((), "earlier", (T - 1) * n_frame), Flow((x,), "f", n_frame, None, scratch),
            Flow(("earlier", "f", x, *held), y, T * n_frame))


def res3d(prefix: str, B: Number, shape: Shape, c_in: int, c_out: int, blocks: range | None = None,
          x: str = "x", y: str = "x", held: tuple[str, ...] = ()) -> list[Op]:
    """ResnetBlock3D: GroupNorm, causal 3x3x3 conv, twice; a causal 1x1x1 nin_shortcut when widths differ. Reads ``x``
    (and ``held``, kept by the caller to the block's end), makes ``y``."""
    rows = B * shape.positions
    n_in, n_out = c_in * rows, c_out * rows
    sum_ = Flow(("s", "h2", x, *held) if c_in != c_out else ("h2", x, *held), y, n_out)
    conv2 = _causal("a2", "h2", B, c_out, n_out, shape, 3, ("h1",))
    flows: tuple[Flows, ...] = (
        _norm_silu(x, "a1", n_in), _causal("a1", "h1", B, c_in, n_out, shape, 3), _norm_silu("h1", "a2", n_out),
        conv2 if c_in != c_out else (*conv2, sum_), (*_causal(x, "s", B, c_in, n_out, shape, 1), sum_))
    return gn_conv_resblock(prefix, B, shape, c_in, c_out, _3D, blocks=blocks, flows=flows)


def sequential(prefix: str, B: Number, shape: Shape, c: int, n: int, x: str, y: str) -> list[Op]:
    """``n`` ResnetBlock3Ds of width c in an nn.Sequential at ``prefix``.0 .. n-1 on ``x``, making ``y``: the first a
    record of its own, the rest a run."""
    if not n:
        return []
    ops = res3d(f"{prefix}.0", B, shape, c, c, x=x, y=y)
    return ops + (res3d(prefix + ".{i}", B, shape, c, c, range(1, n), y, y) if n > 1 else [])


def haar3d(prefix: str, B: Number, c: int, shape: Shape, x: str, y: str, copy: bool) -> tuple[list[Op], Shape]:
    """HaarWaveletTransform3D on c channels (a batch of B c one-channel videos): eight fixed causal stride-2 2x2x2
    convs without bias (one copy of the first frame in front), each 8 MACs per output position: (T, H, W) ->
    ((T - 1) // 2 + 1, H // 2, W // 2), 8 c channels. Dataflow: the channels copied first (``copy``), each conv's
    output kept until the 8 c channels are concatenated as ``y``."""
    T, H, W = shape
    out = Shape(((T - 1) // 2 + 1, H // 2, W // 2))
    src = "wx" if copy else x
    ops = []
    for j, n in enumerate(HAAR_3D):
        flows = _causal(src, f"w{j}", B, c, c * B * out.positions, shape, 2)
        if j == 0 and copy:
            flows = (Flow((x,), "wx", c * B * shape.positions), *flows)
        if j == len(HAAR_3D) - 1:
            flows += (Flow((*(f"w{i}" for i in range(8)), *((src,) if src else ())), y, 8 * c * B * out.positions),)
        ops.append(conv(f"{prefix}.{n}_conv.conv", B * c, shape, out, 1, 1, (2, 2, 2), "resample", bias=False,
                        flow=flows))
    return ops, out


def _attention(prefix: str, B: Number, shape: Shape, c: int, x: str, y: str) -> list[Op]:
    """AttnBlock3DFix (GroupNorm, 1x1x1 q, k, v, per-frame single-head attention over the H W positions as two bmm:
    2 T (H W)^2 c, 1x1x1 proj_out). Dataflow: q, k, v each replaced by a frame-major copy (none for one frame), the
    scores, scaled and softmaxed (each replacing the last) and q, k, v held to the residual sum."""
    T, H, W = shape
    n, scores = c * B * shape.positions, B * T * (H * W) ** 2
    qkv = []
    for name in "qkv":
        f = _causal("hn", name, B, c, n, shape, 1)
        qkv.append(conv(f"{prefix}.{name}.conv", B, shape, shape, c, c, _1, "vae_attention",
                        flow=(*f, Flow((name,), name, n)) if many(T) else f))
    return [norm(f"{prefix}.norm", "group_norm", B, c, shape, flow=Flow((x,), "hn", n)), *qkv,
            attention_op(prefix, "vae_attention", B * T, 1, H * W, H * W, c,
                         flow=(Flow(("q", "k", "v"), "w", scores), Flow(("w",), "w", scores),
                               Flow(("w",), "w", scores), Flow(("w", "hn"), "o", n))),
            conv(f"{prefix}.proj_out.conv", B, shape, shape, c, c, _1, "vae_attention",
                 flow=_causal("o", "p", B, c, n, shape, 1) + (Flow(("p", "o", "w", "q", "k", "v", x), y, n),))]


def mid(prefix: str, B: Number, shape: Shape, c_in: int, c: int, c_out: int, attention: bool, x: str,
        y: str) -> list[Op]:
    """ResnetBlock3D c_in -> c; AttnBlock3DFix; ResnetBlock3D c -> c_out. ``x`` held by the caller to the end."""
    ops = res3d(f"{prefix}.0", B, shape, c_in, c, x=x, y="m1")
    if attention:
        ops += _attention(f"{prefix}.1", B, shape, c, "m1", "m2")
    return ops + res3d(f"{prefix}.{2 if attention else 1}", B, shape, c, c_out, x="m2" if attention else "m1", y=y,
                       held=(x,))


def inverse_haar(path: str, B: Number, c: int, shape: Shape, kernel: tuple[int, ...], x: str, y: str, copy: bool,
                 held: tuple[str, ...] = ()) -> Op:
    """An inverse Haar wavelet of c coefficient channels (buffers): stride-2 conv_transpose of volume 2^d per
    channel, counted per input position (fvcore's and FlopCounterMode's rule for transposed convs). Dataflow: per
    chunk of c / 2^d channels a copy as one-channel images / videos (``copy``) and its conv_transpose (T -> 2T in 3D),
    the outputs kept and summed pairwise (3D: the first frame of each dropped) into ``y`` (``held`` read by the last
    sum)."""
    k = 2 ** len(kernel)
    T, H, W = shape
    part = c // k * B * H * W * 4 * (2 * T if len(kernel) == 3 else T)
    total = c // k * B * H * W * 4 * (2 * T - 1 if len(kernel) == 3 else T)
    flows: list[Flow] = []
    for j in range(k):
        if copy:
            flows.append(Flow((x,), "cp", c // k * B * shape.positions))
        flows.append(Flow(("cp",) if copy else (x,), f"ip{j}", part))
    for j in range(1, k):
        reads = ("sum",) if j > 1 else ("ip0",)
        flows.append(Flow((*reads, f"ip{j}", *((*(f"ip{i}" for i in range(k)), x, *held) if j == k - 1 else ())),
                          "sum" if j < k - 1 else y, total))
    return conv(path, B * c, shape, shape, 1, 1, kernel, "resample", "conv_transpose", owns=False, flow=tuple(flows))


def _tmp(x: str, n: Number, *reads: str) -> Flow:
    """A temporary made and let go at once (a band added into a slice of ``x`` through an out-of-place sum)."""
    return Flow((x, *reads), "tmp", n)


@register("vae", "wfvae")
class WFVAELedger:
    #: the reference decodes in its own chunks (or frame by frame) inside the decoder: a pipeline's tiled or chunked
    #: decode schedule is not modelled for it (ledger/vae_schedule.py)
    inner_chunks = True

    @staticmethod
    def encoder(spec: WFVAE, shape: Shape, B: Number) -> list[Op]:
        """The input Haar wavelet (24 channels at (T1, H / 2, W / 2), T1 = (T - 1) // 2 + 1); the energy flow: a 2D
        Haar wavelet of the low band per frame (4 stride-2 2x2 convs, 4 MACs per output) and connect_l2 (Conv2d 12 ->
        ef), a 3D Haar wavelet of its low band (the same module again) and connect_l3 (Conv2d 24 -> ef); down1 per
        frame (Conv2d 24 -> c, ResnetBlock2Ds, stride-2 Downsample); down2 (Conv2d c + ef -> 2c per frame,
        ResnetBlock3Ds, causal stride-2 3x3x3 conv); mid; norm_out; causal conv_out to 2z."""
        c, L, z, ef = spec.block_out_channels[0], spec.layers_per_block, spec.latent_channels, \
            spec.energy_flow_channels
        assert ef is not None
        w3 = "wavelet_tranform_3d"
        ops, s1 = haar3d(w3, B, spec.in_channels, shape, "", "coeffs", False)
        T1, H1, W1 = s1
        s2 = Shape((T1, H1 // 2, W1 // 2))
        copy = hasattr(T1, "shape") or B > 1 or T1 > 1  # the low band's frames copied as images
        band = 3 * B * s2.positions
        for j in range(4):
            f = Flow(("fr",) if copy else ("coeffs",), f"p{j}", band)
            steps = ((Flow(("coeffs",), "fr", 3 * B * s1.positions), f) if j == 0 and copy else (f,)) + (
                (Flow(("p0", "p1", "p2", "p3", *(("fr",) if copy else ())), "l2c", 4 * band),) if j == 3 else ())
            ops.append(conv("wavelet_tranform_2d", B * T1 * 3, Shape((1, H1, W1)), Shape((1, *s2[1:])), 1, 1, (2, 2),
                            "resample", "conv2d", owns=False, flow=steps))
        ops.append(conv("connect_l2", B, s2, s2, 12, ef[0], _3x3, op="conv2d",
                        flow=_per_frame("l2c", "l2", ef[0] * B * s2[1] * s2[2], T1)))
        l3, s3 = haar3d(w3, B, 3, s2, "l2c", "w3", hasattr(B, "shape") or B > 1)
        ops += disowned(l3) + [conv("connect_l3", B, s3, s3, 24, ef[0], _3x3, op="conv2d",
                                    flow=_per_frame("w3", "l3", ef[0] * B * s3[1] * s3[2], s3[0])),
                               conv("down1.0", B, s1, s1, 24, c, _3x3, op="conv2d",
                                    flow=_per_frame("coeffs", "d1", c * B * H1 * W1, T1))]
        if L:  # ResnetBlock2D (same widths), per frame: GroupNorm, 3x3 conv, twice
            nf = c * B * H1 * W1
            flows: tuple[Flows, ...] = (
                (Flow((), "earlier", (T1 - 1) * nf), *_norm_silu("d1", "a1", nf)), Flow(("a1",), "h1", nf),
                _norm_silu("h1", "a2", nf), (Flow(("a2", "h1"), "h2", nf), Flow(("h2",), "fo", nf),
                                             Flow(("earlier", "fo", "d1"), "d1", T1 * nf)))
            ops += gn_conv_resblock("down1.{i}", B, s1, c, c, ("conv1", "conv2", ""), _3x3, blocks=range(1, L + 1),
                                    flows=flows)
        ops += [conv(f"down1.{L + 1}.conv", B, s1, s2, c, c, _3x3, "resample", "conv2d",
                     flow=_per_frame("d1", "dn", c * B * s2[1] * s2[2], T1, c * B * (H1 + 1) * (W1 + 1))),
                conv("down2.0", B, s2, s2, c + ef[0], 2 * c, _3x3, op="conv2d",
                     flow=(Flow(("dn", "l2"), "cat2", (c + ef[0]) * B * s2.positions),
                           *_per_frame("cat2", "d2", 2 * c * B * s2[1] * s2[2], T1)))]
        ops += res3d("down2.{i}", B, s2, 2 * c, 2 * c, range(1, L + 1), "d2", "d2", ("cat2",)) if L else []
        padded = Shape((T1, s2[1] + 1, s2[2] + 1))
        ops.append(conv(f"down2.{L + 1}.conv.conv", B, s2, s3, 2 * c, 2 * c, K3, "resample",
                        flow=(Flow(("d2",), "pd", 2 * c * B * padded.positions),
                              *_causal("pd", "x3", B, 2 * c, 2 * c * B * s3.positions, padded, 3, ("d2", "cat2")))))
        m = mid("mid", B, s3, 2 * c + ef[0], 4 * c, 4 * c, spec.mid_attention, "cat3", "m3")
        ops += [around(m[0], (Flow(("x3", "l3"), "cat3", (2 * c + ef[0]) * B * s3.positions),)), *m[1:]]
        n = 4 * c * B * s3.positions
        return ops + [norm("norm_out", "group_norm", B, 4 * c, s3, flow=_norm_silu("m3", "a", n)),
                      conv("conv_out.conv", B, s3, s3, 4 * c, 2 * z, K3,
                           flow=_causal("a", "moments", B, 4 * c, 2 * z * B * s3.positions, s3, 3,
                                        ("m3", "coeffs", "l2c", "l2", "l3")))]

    @staticmethod
    def decoder(spec: WFVAE, shape: Shape, B: Number, num_frames: Number | None = None) -> list[Op]:
        """conv_in, mid (its last ResnetBlock3D widens to 4c + ef) at (L, h, w); connect_l3 on the last ef channels
        (ResnetBlock3Ds, Conv2d -> 24) and its inverse 3D wavelet; up2 (ResnetBlock3Ds, Spatial2xTime2x3DUpsample:
        the frames after the first nearest x2 in time, trilinear x2 in H and W, 8 per output; a causal 3x3x3 conv at
        (2L - 1, 2h, 2w); a widening ResnetBlock3D); connect_l2 (ResnetBlock3Ds, Conv2d -> 12) and its inverse 2D
        wavelet; up1 (ResnetBlock3Ds, nearest x2 per frame and a 3x3 conv, ResnetBlock3D); layer; norm_out; Conv2d
        c -> 24 per frame; the output inverse 3D wavelet (T' -> 2T' - 1, 8h, 8w)."""
        c, L, z, ef = spec.block_out_channels[0], spec.layers_per_block, spec.latent_channels, \
            spec.energy_flow_channels
        assert ef is not None
        n, attn = spec.energy_flow_layers or WFVAE_FLOW_LAYERS, spec.mid_attention
        inv3 = "inverse_wavelet_tranform_3d"
        T, h, w = shape
        ops = [conv("conv_in.conv", B, shape, shape, z, 4 * c, K3,
                    flow=_causal("", "ci", B, z, 4 * c * B * shape.positions, shape, 3))]
        ops += mid("mid", B, shape, 4 * c, 4 * c, 4 * c + ef[1], attn, "ci", "m")
        ops += sequential("connect_l3", B, shape, c, n, "m", "k")
        ops += [conv(f"connect_l3.{n}", B, shape, shape, c, 24, _3x3, op="conv2d",
                     flow=_per_frame("k", "c3", 24 * B * h * w, T)),
                inverse_haar(inv3, B, 24, shape, (2, 2, 2), "c3", "l3", hasattr(B, "shape") or B > 1)]
        ops += sequential("up2", B, shape, 4 * c, L, "m", "u")
        src = "u" if L else "m"
        u = f"up2.{L}"
        s2 = Shape((2 * T - 1, 2 * h, 2 * w))
        n2 = 4 * c * B * s2.positions
        if not skip(T - 1):
            doubled = Shape((2 * (T - 1), h, w))
            ops += [nearest(u, B, 4 * c, Shape((T - 1, h, w)), doubled,
                            Flow((src,), "near", 4 * c * B * doubled.positions)),
                    revise(trilinear(u, B, 4 * c, doubled, Shape((2 * (T - 1), 2 * h, 2 * w))),
                           flow=Flow(("near",), "rest", 4 * c * B * 2 * (T - 1) * 4 * h * w))]
        more = many(T)
        ops.append(revise(trilinear(u, B, 4 * c, Shape((1, h, w)), Shape((1, 2 * h, 2 * w))),
                          flow=Flow((src,), "first" if more else "ux", (4 * c * B * 4 * h * w) if more else n2)))
        ops.append(conv(f"{u}.conv.conv", B, s2, s2, 4 * c, 4 * c, K3, "resample",
                        flow=((Flow(("first", "rest"), "ux", n2),) if more else ())
                        + _causal("ux", "v", B, 4 * c, n2, s2, 3, (("rest",) if more else ()) + (src,))))
        ops += res3d(f"up2.{L + 1}", B, s2, 4 * c, 4 * c + ef[1], x="v", y="u2", held=("m",))
        l2_flow = _per_frame("k", "l2c", 12 * B * s2[1] * s2[2], s2[0]) + (_tmp("l2c", 3 * B * s2.positions, "l3"),)
        ops += sequential("connect_l2", B, s2, c, n, "u2", "k")
        frames = hasattr(B, "shape") or (B > 1 and many(s2[0]))  # the coefficients' frames copied as images
        ops += [conv(f"connect_l2.{n}", B, s2, s2, c, 12, _3x3, op="conv2d", flow=l2_flow),
                inverse_haar("inverse_wavelet_tranform_2d", B, 12, s2, (2, 2), "fr" if frames else "l2c", "l2",
                             many(B * s2[0]), ("fr",) if frames else ())]
        if frames:
            ops[-1] = around(ops[-1], (Flow(("l2c",), "fr", 12 * B * s2.positions),))
        s1 = Shape((s2[0], 4 * h, 4 * w))
        if L:
            ops += res3d("up1.0", B, s2, 4 * c, 2 * c, x="u2", y="w")
            ops += res3d("up1.{i}", B, s2, 2 * c, 2 * c, range(1, L), "w", "w") if L > 1 else []
        src = "w" if L else "u2"
        nf = 2 * c * B * s1[1] * s1[2]
        ops += [nearest(f"up1.{L}", B, 2 * c, s2, s1, (Flow((), "earlier", (s1[0] - 1) * nf), Flow((src,), "nf", nf))),
                conv(f"up1.{L}.conv", B, s1, s1, 2 * c, 2 * c, _3x3, "resample", "conv2d",
                     flow=(Flow(("nf",), "cf", nf), Flow(("earlier", "cf", src), "w2", s1[0] * nf)))]
        ops += res3d(f"up1.{L + 1}", B, s1, 2 * c, 2 * c, x="w2", y="u1")
        ops += res3d("layer.0", B, s1, 2 * c, c, x="u1", y="l0") + res3d("layer.1", B, s1, c, c, x="l0", y="x",
                                                                         held=("u1", "u2"))
        n1 = c * B * s1.positions
        return ops + [norm("norm_out", "group_norm", B, c, s1, flow=_norm_silu("x", "a", n1)),
                      conv("conv_out", B, s1, s1, c, 24, _3x3, op="conv2d",
                           flow=_per_frame("a", "co", 24 * B * s1[1] * s1[2], s1[0], held=("x",))
                           + (_tmp("co", 3 * B * s1.positions, "l2"),)),
                      inverse_haar(inv3, B, 24, s1, (2, 2, 2), "co", "video", hasattr(B, "shape") or B > 1,
                                   ("l3", "l2c", "l2"))]
