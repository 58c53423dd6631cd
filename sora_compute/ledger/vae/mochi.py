"""family='mochi': Mochi-1's VAE (reference_model/vae/mochi.py; diffusers AutoencoderKLMochi): Fourier features and
a Linear in, ResNets of per-frame GroupNorm and causal 3x3x3 convs, (t, 2, 2) down-sampling convs, causal temporal
attention in the encoder's levels after the first, Linear up-sampling (depth-to-space) in the decoder.

Dataflow (``Flow`` records, for the liveness evaluator without gradients), following the reference code: the
per-frame GroupNorm normalises a (B T, C, H, W) copy (with its mean and rstd per frame and group), its output lives
while SiLU makes its own; a causal conv concatenates two copies of the first frame in front of its input; a ResNet
holds its input and conv1's output to its residual sum; a Linear copies its input channels-last, multiplies, adds
its bias out of place; the attention copies the normalised tokens, normalises q and k (composite RMSNorm, rstd per
head), holds the normalised q, k and v to its residual sum; a block's input is held by the caller until the block
returns, so its first (ResNet, attention) is a record of its own and the rest a run; the Fourier features are x times
the frequencies, their sine and cosine, and the concatenation.
"""

from __future__ import annotations

from sora_compute.ledger.formulas import Number
from sora_compute.ledger.ops import Flow, Op, attention_op, linear_op
from sora_compute.ledger.registry import register
from sora_compute.ledger.vae.common import K3, Shape, conv, many, norm
from sora_compute.specs.vae import MOCHI_FOURIER_FREQS, MOCHI_HEAD_DIM, MochiVAE

__all__ = ["MochiLedger"]


def _linear(x: str, y: str, n_in: Number, n_out: Number, held: tuple[str, ...] = ()) -> tuple[Flow, ...]:
    """A Linear on a channels-first tensor: its channels-last copy, the matmul, the bias added out of place (the copy
    and the matmul freed when it returns; ``held`` kept to then)."""
    return (Flow((x,), "cp", n_in), Flow(("cp",), "mm", n_out), Flow(("mm", "cp", x, *held), y, n_out))


def mochi_resnet(prefix: str, B: Number, shape: Shape, c: int, blocks: range, g: int, x: str, y: str,
                 held: tuple[str, ...] = (), drops: tuple[str, ...] = ()) -> list[Op]:
    """Per-frame GroupNorm, causal 3x3x3 conv, twice (same width); reads ``x`` (and ``held``), makes ``y`` (and lets
    go of ``drops`` when it returns)."""
    T, H, W = shape
    n, pad, stats = c * B * shape.positions, c * B * (T + 2) * H * W, 2 * g * T * B
    return [norm(f"{prefix}.norm1", "group_norm", B, c, shape, blocks=blocks,
                 flow=Flow((x,), "a1", n, None, n + stats)),
            conv(f"{prefix}.conv1", B, shape, shape, c, c, K3, blocks=blocks, flow=Flow(("a1",), "h1", n, None, pad)),
            norm(f"{prefix}.norm2", "group_norm", B, c, shape, blocks=blocks,
                 flow=Flow(("h1",), "a2", n, None, n + stats)),
            conv(f"{prefix}.conv2", B, shape, shape, c, c, K3, blocks=blocks,
                 flow=(Flow(("a2",), "h2", n, None, pad),
                       Flow(("h2", "h1", x, *held), y, n, None, 0, "act", None, drops)))]


def mochi_attention(prefix: str, B: Number, shape: Shape, c: int, blocks: range, g: int = 1, x: str = "x",
                    y: str = "x", held: tuple[str, ...] = ()) -> list[Op]:
    """Per-frame GroupNorm; at each of the H W positions a causal attention over its T frames in heads of 32 (the
    profilers count the full T x T scores): q, k, v (no bias) and output Linears, weightless RMSNorm of q and k (3 per
    element), SDPA 2 T^2 c per position. One frame (T = 1) runs only to_v and to_out. Reads ``x`` (and ``held``),
    makes ``y``."""
    T, H, W = shape
    rows, more = B * shape.positions, T > 1  # ``more``: 0/1 (array-safe) for the q, k and score terms
    n, per_head = c * rows, c // MOCHI_HEAD_DIM * rows
    q: Flow | None
    k: Flow | None
    qk: tuple[Flow, ...] | None
    core: Flow | None
    out: tuple[Flow, ...]
    if many(T):
        q, k, v, qk, core = (Flow(("tok",), "q", n), Flow(("tok",), "k", n), Flow(("tok",), "v", n),
                             (Flow(("q",), "qn", n, None, n + per_head), Flow(("k", "q"), "kn", n, None, n + per_head)),
                             Flow(("qn", "kn", "v"), "o", n, None, per_head, "act", "stat"))
        out = (Flow(("o",), "cp", n), Flow(("cp", "o"), "p", n), Flow(("p", "qn", "kn", "v", "tok", x, *held), y, n))
    else:
        q = k = qk = core = None
        v = Flow(("tok",), "v", n)
        out = (Flow(("v",), "o", n), Flow(("o", "tok", x, *held), y, n))
    return [norm(f"{prefix}.norm", "group_norm", B, c, shape, blocks=blocks,
                 flow=Flow((x,), "tok", n, None, n + 2 * g * T * B)),
            linear_op(f"{prefix}.to_q", "vae_attention", rows * more, c, c, blocks, bias=False, flow=q),
            linear_op(f"{prefix}.to_k", "vae_attention", rows * more, c, c, blocks, bias=False, flow=k),
            linear_op(f"{prefix}.to_v", "vae_attention", rows, c, c, blocks, bias=False, flow=v),
            norm(prefix, "rms_norm", B * more, 2 * c, shape, affine=False, blocks=blocks, flow=qk),
            attention_op(prefix, "vae_attention", B * H * W * more, c // MOCHI_HEAD_DIM, T, T, MOCHI_HEAD_DIM, blocks,
                         flow=core),
            linear_op(f"{prefix}.to_out", "vae_attention", rows, c, c, blocks, flow=out)]


def mochi_block(prefix: str, B: Number, shape: Shape, c: int, layers: int, attention: bool, g: int = 1,
                x: str = "x", y: str = "x", held: tuple[str, ...] = ()) -> list[Op]:
    """``layers`` ResNets (each followed by an attention when ``attention``): the first pair one record per op
    (blocks 0 .. 0, it reads the block input ``x``), the rest one record per op for all of them, while the caller
    holds ``x`` and ``held``; the output is ``y``."""
    if not layers:
        return []
    kept = (x, *held)
    ops: list[Op] = []
    for blocks, src in ((range(1), x), (range(1, layers), y)):
        if not blocks:
            continue
        if attention:  # the ResNet's input is let go when it returns (the attention is a call of its own)
            ops += mochi_resnet(f"{prefix}.resnets.{{i}}", B, shape, c, blocks, g, src, "r", drops=(src,))
            ops += mochi_attention(f"{prefix}.attentions.{{i}}", B, shape, c, blocks, g, "r", y, kept)
        else:
            ops += mochi_resnet(f"{prefix}.resnets.{{i}}", B, shape, c, blocks, g, src, y, kept)
    return ops


@register("vae", "mochi")
class MochiLedger:
    @staticmethod
    def encoder(spec: MochiVAE, shape: Shape, B: Number) -> list[Op]:
        """Fourier features are elementwise; Linear in on 3 x (1 + 2 x 2) channels; down-sampling convs (t, 2, 2)
        with that stride map T -> (T - 1) // t + 1 (causal padding), H -> H // 2."""
        chans, layers, factors = spec.block_out_channels, spec.layers_per_level, spec.level_temporal_factors
        assert layers is not None
        g, rows, c0 = spec.norm_groups, B * shape.positions, spec.in_channels
        fourier = (Flow((), "f", 2 * c0 * rows), Flow(("f",), "sin", 2 * c0 * rows), Flow(("f",), "cos", 2 * c0 * rows),
                   Flow(("sin", "cos", "f"), "feats", 5 * c0 * rows))
        ops = [linear_op("proj_in", "conv", rows, c0 * (1 + 2 * MOCHI_FOURIER_FREQS), chans[0],
                         flow=fourier + _linear("feats", "x", 5 * c0 * rows, chans[0] * rows))]
        ops += mochi_block("block_in", B, shape, chans[0], layers[0], False, g, "x", "b")
        h = "b"
        for i, t in enumerate(factors):  # the conv's input held until the level's block returns
            T, H, W = shape
            out = Shape(((T - 1) // t + 1, H // 2, W // 2))
            ops.append(conv(f"down.{i}.conv", B, shape, out, chans[i], chans[i + 1], (t, 2, 2), "resample",
                            flow=Flow((h,), f"d{i}", chans[i + 1] * B * out.positions, None,
                                      chans[i] * B * (T + t - 1) * H * W)))
            shape = out
            ops += mochi_block(f"down.{i}.block", B, shape, chans[i + 1], layers[i + 1], True, g, f"d{i}", f"b{i}",
                               (h,))
            h = f"b{i}"
        ops += mochi_block("block_out", B, shape, chans[-1], layers[-1], True, g, h, "y")
        n, rows = chans[-1] * B * shape.positions, B * shape.positions
        return ops + [norm("norm_out", "group_norm", B, chans[-1], shape,
                           flow=Flow(("y",), "a", n, None, n + 2 * g * shape[0] * B)),
                      linear_op("proj_out", "conv", rows, chans[-1], 2 * spec.latent_channels, bias=False,
                                flow=_linear("a", "o", n, 2 * spec.latent_channels * rows))]

    @staticmethod
    def decoder(spec: MochiVAE, shape: Shape, B: Number, num_frames: Number | None = None) -> list[Op]:
        """Up-sampling Linears c -> c' t 4 at the coarse grid, then T -> t T, H -> 2H (the first t - 1 frames of the
        output are dropped after the last Linear)."""
        rev, layers, factors = spec.decoder_channels, spec.layers_per_level, spec.level_temporal_factors
        assert layers is not None
        n = len(rev)
        g, rows = spec.norm_groups, B * shape.positions
        ops = [conv("conv_in", B, shape, shape, spec.latent_channels, rev[0], (1, 1, 1),
                    flow=Flow((), "ci", rev[0] * rows))]
        ops += mochi_block("block_in", B, shape, rev[0], layers[-1], False, g, "ci", "x")
        for j in range(n - 1):
            t = factors[n - 2 - j]
            rows = B * shape.positions
            ops += mochi_block(f"up.{j}.block", B, shape, rev[j], layers[n - 1 - j], False, g, "x", "y")
            proj = _linear("y", "pj", rev[j] * rows, rev[j + 1] * t * 4 * rows)  # then depth-to-space
            ops.append(linear_op(f"up.{j}.proj", "resample", rows, rev[j], rev[j + 1] * t * 4,
                                 flow=(*proj, Flow(("pj", "x"), "x", rev[j + 1] * t * 4 * rows))))
            T, H, W = shape
            shape = Shape((T * t, 2 * H, 2 * W))
        ops += mochi_block("block_out", B, shape, rev[-1], layers[0], False, g, "x", "y")
        n_out, rows = rev[-1] * B * shape.positions, B * shape.positions
        return ops + [linear_op("proj_out", "conv", rows, rev[-1], spec.in_channels,  # after SiLU
                                flow=(Flow(("y",), "a", n_out), *_linear("a", "o", n_out, spec.in_channels * rows,
                                                                          ("x",))))]
