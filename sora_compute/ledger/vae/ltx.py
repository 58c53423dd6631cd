"""family='ltx': LTX-Video 0.9.0's VAE (reference_model/vae/ltx.py; diffusers AutoencoderKLLTXVideo): pixel-unshuffle
``patch_size``, ResNets of weightless RMSNorm and 3x3x3 convs (a widening one adds an affine LayerNorm and a 1x1x1
shortcut), stride-2 3x3x3 down-sampling, depth-to-space up-sampling convs, conv_out to z + 1 channels.

Dataflow (``Flow`` records, for the liveness evaluator without gradients), following the reference code: a causal
conv concatenates two copies of the first frame in front of its input (scratch of the conv); the composite RMSNorm
holds its temporaries and rstd until its output is made, and that output while SiLU makes its own; a widening
ResNet's LayerNorm drops its mean and rstd at once; a ResNet's input is held by the caller to its residual sum,
conv1's output until conv2 returns; a level's input is held until the level returns, so the first ResNet of a run is
a record of its own; the up-sampling conv's output is copied depth-to-space; the encoder holds the mid block's input
through conv_out and writes mean and log-variance beside conv_out's output; the decoder holds its last output to the
end (the pixel-shuffle copy beside conv_out's output).
"""

from __future__ import annotations

from sora_compute.ledger.formulas import Number
from sora_compute.ledger.ops import Flow, Op
from sora_compute.ledger.registry import register
from sora_compute.ledger.vae.common import K3, Shape, conv, norm
from sora_compute.specs.vae import LTXVAE

__all__ = ["LTXLedger"]


def _pad(B: Number, shape: Shape) -> Number:
    """Elements per channel of a causal conv's input with two front frames: (T + 2, H, W)."""
    T, H, W = shape
    return B * (T + 2) * H * W


def ltx_resnet(prefix: str, B: Number, shape: Shape, c_in: int, c_out: int, blocks: range | None = None,
               x: str = "x", y: str = "x", held: tuple[str, ...] = ()) -> list[Op]:
    """Weightless RMSNorm (3 per element), 3x3x3 conv, twice; widening: affine LayerNorm and 1x1x1 conv shortcut.
    Reads ``x`` (and ``held``, kept by the caller to the block's end), makes ``y``."""
    rows, pad = B * shape.positions, _pad(B, shape)
    n_in, n_out = c_in * rows, c_out * rows
    conv2 = Flow(("a2", "h1"), "h2", n_out, None, c_out * pad)
    ops = [norm(f"{prefix}.norm1", "rms_norm", B, c_in, shape, False, blocks,
                flow=Flow((x,), "a1", n_in, None, n_in + rows)),
           conv(f"{prefix}.conv1", B, shape, shape, c_in, c_out, K3, blocks=blocks,
                flow=Flow(("a1",), "h1", n_out, None, c_in * pad)),
           norm(f"{prefix}.norm2", "rms_norm", B, c_out, shape, False, blocks,
                flow=Flow(("h1",), "a2", n_out, None, n_out + rows)),
           conv(f"{prefix}.conv2", B, shape, shape, c_out, c_out, K3, blocks=blocks,
                flow=conv2 if c_in != c_out else (conv2, Flow(("h2", x, *held), y, n_out)))]
    if c_in != c_out:
        ops += [norm(f"{prefix}.norm3", "layer_norm", B, c_in, shape, True, blocks,
                     flow=Flow((x,), "ln", n_in, None, 2 * rows)),
                conv(f"{prefix}.shortcut", B, shape, shape, c_in, c_out, (1, 1, 1), blocks=blocks,
                     flow=(Flow(("ln",), "s", n_out), Flow(("s", "h2", x, *held), y, n_out)))]
    return ops


def ltx_resnets(prefix: str, B: Number, shape: Shape, c: int, n: int, x: str, y: str,
                held: tuple[str, ...] = ()) -> list[Op]:
    """``n`` ResNets of width c at ``prefix``.0 .. n-1 on ``x``: the first a record of its own, the rest one record
    per op (blocks 1 .. n-1) while the caller holds ``held``; the output is ``y``."""
    if not n:
        return []
    ops = ltx_resnet(f"{prefix}.0", B, shape, c, c, x=x, y=y, held=held)
    if n > 1:
        ops += ltx_resnet(prefix + ".{i}", B, shape, c, c, range(1, n), x=y, y=y, held=held)
    return ops


@register("vae", "ltx")
class LTXLedger:
    @staticmethod
    def encoder(spec: LTXVAE, shape: Shape, B: Number) -> list[Op]:
        """Pixel-unshuffle (free), conv_in; per level ResNets, a stride-2 conv (T -> (T - 1) // 2 + 1, H -> (H - 1)
        // 2 + 1), a widening ResNet; mid ResNets; RMSNorm; conv_out to z + 1."""
        chans, layers, n, p = spec.block_out_channels, spec.layers_per_level, len(spec.block_out_channels), \
            spec.patch_size
        assert layers is not None
        T, H, W = shape
        shape = Shape((T, H // p, W // p))
        rows = B * shape.positions
        unshuffled = spec.pixel_channels * rows if p > 1 else 0  # the pixel-unshuffle copy, freed after conv_in
        ops = [conv("conv_in", B, shape, shape, spec.pixel_channels, chans[0], K3,
                    flow=Flow((), "x", chans[0] * rows, None, spec.pixel_channels * _pad(B, shape) + unshuffled))]
        x = "x"
        for i, c in enumerate(chans):  # the level input x held to the level's end
            cur = f"r{i}" if layers[i] else x
            ops += ltx_resnets(f"down.{i}.resnets", B, shape, c, layers[i], x, cur, (x,))
            if i < n - 1:
                T, H, W = shape
                out = Shape(((T - 1) // 2 + 1, (H - 1) // 2 + 1, (W - 1) // 2 + 1))
                ops.append(conv(f"down.{i}.downsample", B, shape, out, c, c, K3, "resample",
                                flow=Flow((cur, x), f"d{i}", c * B * out.positions, None, c * _pad(B, shape))))
                shape, cur = out, f"d{i}"
            if chans[min(i + 1, n - 1)] != c:
                ops += ltx_resnet(f"down.{i}.widen", B, shape, c, chans[i + 1], x=cur, y=f"w{i}", held=(x,))
                cur = f"w{i}"
            x = cur
        rows, c = B * shape.positions, chans[-1]
        m = "m" if layers[-1] else x
        ops += ltx_resnets("mid", B, shape, c, layers[-1], x, m, (x,))
        z1, z2 = (spec.latent_channels + 1) * rows, 2 * spec.latent_channels * rows
        return ops + [norm("norm_out", "rms_norm", B, c, shape, False, flow=Flow((m,), "a", c * rows, None,
                                                                                   c * rows + rows)),
                      conv("conv_out", B, shape, shape, c, spec.latent_channels + 1, K3,  # then mean, log-variance
                           flow=(Flow(("a", x), "o", z1, None, c * _pad(B, shape)), Flow(("o",), "mv", z2)))]

    @staticmethod
    def decoder(spec: LTXVAE, shape: Shape, B: Number, num_frames: Number | None = None) -> list[Op]:
        """conv_in, mid ResNets; per level a narrowing ResNet, an up-sampling conv c -> 8c at the coarse grid (then
        T -> 2T - 1, H -> 2H), ResNets; RMSNorm, conv_out (pixel-shuffle is free)."""
        rev, layers, n = spec.decoder_channels, spec.layers_per_level, len(spec.block_out_channels)
        assert layers is not None
        rows = B * shape.positions
        ops = [conv("conv_in", B, shape, shape, spec.latent_channels, rev[0], K3,
                    flow=Flow((), "ci", rev[0] * rows, None, spec.latent_channels * _pad(B, shape)))]
        x = "m" if layers[-1] else "ci"
        ops += ltx_resnets("mid", B, shape, rev[0], layers[-1], "ci", x, ("ci",))
        c_prev = rev[0]
        for j, c in enumerate(rev):  # the level input x held to the level's end
            cur = x
            if c_prev != c:
                ops += ltx_resnet(f"up.{j}.narrow", B, shape, c_prev, c, x=x, y=f"nw{j}", held=(x,))
                cur = f"nw{j}"
            if j > 0:
                T, H, W = shape
                ops.append(conv(f"up.{j}.upsample.conv", B, shape, shape, c, 8 * c, K3, "resample",
                                flow=(Flow((cur,), "cv", 8 * c * B * shape.positions, None, c * _pad(B, shape)),
                                      Flow(("cv", cur, x), f"up{j}", c * B * 2 * T * 4 * H * W))))
                shape, cur = Shape((2 * T - 1, 2 * H, 2 * W)), f"up{j}"
            if layers[n - 1 - j]:
                ops += ltx_resnets(f"up.{j}.resnets", B, shape, c, layers[n - 1 - j], cur, f"r{j}", (x,))
                cur = f"r{j}"
            x, c_prev = cur, c
        rows = B * shape.positions
        n_out, pixels = c_prev * rows, spec.pixel_channels * rows
        conv_out = Flow(("a", x), "o", pixels, None, c_prev * _pad(B, shape))
        return ops + [norm("norm_out", "rms_norm", B, c_prev, shape, False,
                           flow=Flow((x,), "a", n_out, None, n_out + rows)),
                      conv("conv_out", B, shape, shape, c_prev, spec.pixel_channels, K3,  # then the pixel-shuffle copy
                           flow=(conv_out, Flow(("o", x), "sh", pixels)) if spec.patch_size > 1 else conv_out)]
