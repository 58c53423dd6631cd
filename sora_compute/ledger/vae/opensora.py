"""family='opensora': Open-Sora 1.2's OpenSoraVAE_V1_2 (reference_model/vae/opensora.py): a per-frame SD VAE (the
generic ledger on 1-frame videos, with its 1x1 quant convs) stacked with a causal temporal VAE (VAE_Temporal_SD:
GroupNorm ResBlocks of bias-free causal 3x3x3 convs) run on chunks of ``chunk_frames`` frames, each padded in front to a
multiple of t.

Dataflow (``Flow`` records, for the liveness evaluator without gradients), following the reference code. The 2D VAE
runs on micro-batches of ``OPENSORA_MICRO_BATCH`` frames and the temporal VAE on chunks; each keeps its output until
all are concatenated. The ops of all micro-batches (of all whole chunks) are one record each, carrying the dataflow of
one call (``flows_of``): the last whole micro-batch (the first when there is none), on top of the outputs of the
calls before it; the remainder micro-batch's output is held from then on. Inside a call: a causal conv pads a copy
of its input (F.pad: k - stride front frames, one around H and W; scratch of the conv); a norm's output lives while
SiLU makes its own; a ResBlock frees conv1's output once norm2 has made its own, computes its shortcut after conv2;
a level's input is held until the level (and its resample conv) returns, so its first ResBlock is a record of its own
and the rest a run; the encoder holds its mid input through quant_conv, the decoder its last level's output through
conv_out; a time-doubling conv's output is copied depth-to-space. With B > 1 videos of several frames, the frames are
copied (B F, C, H, W) before the 2D VAE.
"""

from __future__ import annotations

from sora_compute.ledger.formulas import Number
from sora_compute.ledger.ops import Flow, Op, revise
from sora_compute.ledger.registry import register
from sora_compute.ledger.vae.common import (
    K3,
    Flows,
    Shape,
    around,
    chunks,
    conv,
    disowned,
    flows_of,
    gn_conv_resblock,
    norm,
    prefixed,
    skip,
    steps,
)
from sora_compute.ledger.vae.generic import GenericLedger
from sora_compute.specs.vae import OPENSORA_MICRO_BATCH, OpenSoraVAE

__all__ = ["OpenSoraLedger"]

_1 = (1, 1, 1)


def _pad(B: Number, shape: Shape, front: int = 2) -> Number:
    """Elements per channel of a causal 3x3x3 conv's padded copy: (T + front, H + 2, W + 2)."""
    T, H, W = shape
    return B * (T + front) * (H + 2) * (W + 2)


def os_resblock(prefix: str, B: Number, shape: Shape, c_in: int, c_out: int, blocks: range | None = None,
                x: str = "x", y: str = "x", held: tuple[str, ...] = ()) -> list[Op]:
    """GroupNorm, bias-free causal 3x3x3 conv, twice; a bias-free 1x1x1 shortcut when widths differ. Reads ``x`` (and
    ``held``, kept by the caller to the block's end), makes ``y``."""
    rows, pad = B * shape.positions, _pad(B, shape)
    n_in, n_out = c_in * rows, c_out * rows
    conv2 = Flow(("a2",), "h2", n_out, None, c_out * pad)
    flows: tuple[Flows, ...] = (
        (Flow((x,), "n1", n_in), Flow(("n1",), "a1", n_in)), Flow(("a1",), "h1", n_out, None, c_in * pad),
        (Flow(("h1",), "n2", n_out), Flow(("n2",), "a2", n_out)),
        (conv2, Flow(("h2", x, *held), y, n_out)) if c_in == c_out else conv2,
        (Flow((x,), "s", n_out), Flow(("s", "h2", x, *held), y, n_out)))
    return gn_conv_resblock(prefix, B, shape, c_in, c_out, ("conv1", "conv2", "shortcut"), bias=False, blocks=blocks,
                            flows=flows)


def os_resblocks(prefix: str, B: Number, shape: Shape, c_in: int, c: int, n: int, x: str, y: str) -> list[Op]:
    """``n`` ResBlocks: the first c_in -> c on the level input ``x``, the rest c -> c (one record per op, blocks
    1 .. n-1) while the caller holds ``x``; the output is ``y``."""
    if not n:
        return []
    ops = os_resblock(f"{prefix}.0", B, shape, c_in, c, x=x, y=y)
    if n > 1:
        ops += os_resblock(prefix + ".{i}", B, shape, c, c, range(1, n), y, y, (x,))
    return ops


def temporal_encoder(spec: OpenSoraVAE, shape: Shape, B: Number, copied: bool = False, out: str = "q",
                     before: Number = 0) -> list[Op]:
    """The temporal VAE's encoder and quant_conv on a (T, h, w) chunk already padded to a multiple of t; a stride-2
    time conv (front padding 1) maps T -> (T - 2) // 2 + 1. Dataflow: ``before`` elements held (earlier chunks'
    moments), the chunk (a view of ``lat``) padded in front by a copy when ``copied``; makes ``out``."""
    tc, layers, factors, z = spec.temporal_block_out_channels, spec.layers_per_level, spec.level_temporal_factors, \
        spec.latent_channels
    assert tc is not None and layers is not None
    rows = B * shape.positions
    pre = (Flow((), f"{out}_before", before), *((Flow(("lat",), "pc", z * rows),) if copied else ()))
    ops = [conv("conv_in", B, shape, shape, z, tc[0], K3, bias=False,
                flow=(*pre, Flow(("pc",) if copied else (), "x", tc[0] * rows, None, z * _pad(B, shape))))]
    c_prev, x = tc[0], "x"
    for i, c in enumerate(tc):
        h = f"r{i}" if layers[i] else x
        ops += os_resblocks(f"down.{i}.resnets", B, shape, c_prev, c, layers[i], x, h)
        c_prev = c if layers[i] else c_prev
        if i < len(tc) - 1 and factors[i] > 1:
            T, H, W = shape
            down = Shape(((T - 2) // 2 + 1, H, W))
            ops.append(conv(f"down.{i}.resample", B, shape, down, c, c, K3, "resample",
                            flow=Flow((h, x), f"x{i}", c * B * down.positions, None, c * _pad(B, shape, 1))))
            shape, h = down, f"x{i}"
        x = h
    m = "m" if layers[-1] else x
    ops += os_resblocks("mid", B, shape, c_prev, c_prev, layers[-1], x, m)
    rows = B * shape.positions
    return ops + [norm("norm_out", "group_norm", B, c_prev, shape,
                       flow=(Flow((m,), "n", c_prev * rows), Flow(("n",), "a", c_prev * rows))),
                  conv("conv_out", B, shape, shape, c_prev, 2 * z, _1, flow=Flow(("a",), "o", 2 * z * rows)),
                  conv("quant_conv", B, shape, shape, 2 * z, 2 * z, _1, flow=Flow(("o", x), out, 2 * z * rows))]


def temporal_decoder(spec: OpenSoraVAE, shape: Shape, B: Number, out: str = "t", before: Number = 0) -> list[Op]:
    """The temporal VAE's post_quant_conv and decoder on a chunk of (T', h, w) latents; each doubling conv c -> 2c
    runs at the coarse grid, then T -> 2T (the cut of the padding frames is free). Dataflow: ``before`` elements held
    (earlier chunks' outputs); makes ``out``."""
    tc, layers, factors, z = spec.temporal_block_out_channels, spec.layers_per_level, spec.level_temporal_factors, \
        spec.latent_channels
    assert tc is not None and layers is not None
    rows = B * shape.positions
    ops = [conv("post_quant_conv", B, shape, shape, z, z, _1,
                flow=(Flow((), f"{out}_before", before), Flow((), "pq", z * rows))),
           conv("conv_in", B, shape, shape, z, tc[-1], K3, flow=Flow(("pq",), "ci", tc[-1] * rows, None,
                                                                      z * _pad(B, shape)))]
    x = "m" if layers[-1] else "ci"
    ops += os_resblocks("mid", B, shape, tc[-1], tc[-1], layers[-1], "ci", x)
    c_prev = tc[-1]
    for j, i in enumerate(reversed(range(len(tc)))):
        h = f"r{j}" if layers[i] else x
        ops += os_resblocks(f"up.{j}.resnets", B, shape, c_prev, tc[i], layers[i], x, h)
        c_prev = tc[i] if layers[i] else c_prev
        if i > 0 and factors[i - 1] > 1:
            T, H, W = shape
            rows = B * shape.positions
            ops.append(conv(f"up.{j}.resample.conv", B, shape, shape, c_prev, 2 * c_prev, K3, "resample",
                            flow=(Flow((h,), "cv", 2 * c_prev * rows, None, c_prev * _pad(B, shape)),
                                  Flow(("cv", h, x), f"u{j}", 2 * c_prev * rows))))
            shape, h = Shape((2 * T, H, W)), f"u{j}"
        x = h
    n = c_prev * B * shape.positions
    return ops + [norm("norm_out", "group_norm", B, c_prev, shape, flow=(Flow((x,), "n", n), Flow(("n",), "a", n))),
                  conv("conv_out", B, shape, shape, c_prev, z, K3,
                       flow=Flow(("a", x), out, z * B * shape.positions, None, c_prev * _pad(B, shape)))]


def _micro_batch(frames: Number) -> tuple[Number, Number, Number]:
    """(frames of the micro-batch whose dataflow the 2D VAE's records carry, micro-batches before it, frames after
    it): the last whole micro-batch, or the only one (arrays, in sweeps: a whole one)."""
    whole, rest = chunks(frames, OPENSORA_MICRO_BATCH)
    if hasattr(frames, "shape") or whole >= 1:
        return OPENSORA_MICRO_BATCH, whole - 1, rest
    return rest, 0, 0


def _output(ops: list[Op]) -> str:
    """The tensor a ledger's last step makes."""
    name = steps(ops[-1].flow)[-1].out
    assert name is not None
    return name


@register("vae", "opensora")
class OpenSoraLedger:
    #: the reference decodes in its own chunks (or frame by frame) inside the decoder: a pipeline's tiled or chunked
    #: decode schedule is not modelled for it (ledger/vae_schedule.py)
    inner_chunks = True

    @staticmethod
    def encoder(spec: OpenSoraVAE, shape: Shape, B: Number) -> list[Op]:
        """The 2D VAE on every frame (B F images of (h, w) and the 1x1 quant_conv), then the temporal VAE on F // c
        whole chunks (padded to ``chunk_latent_frames`` x t frames) and on the remainder chunk of F % c frames
        (padded to ceil(r / t) x t)."""
        F, H, W = shape
        z, t, s, c = spec.latent_channels, spec.temporal_compression, spec.spatial_compression, spec.chunk_frames
        frames, image, lat = B * F, Shape((1, H, W)), Shape((1, H // s, W // s))
        m, earlier, after = _micro_batch(frames)
        one = prefixed("spatial", GenericLedger.encoder(spec.spatial_vae, image, m))
        ops = flows_of(prefixed("spatial", GenericLedger.encoder(spec.spatial_vae, image, frames)), one)
        copy = hasattr(F, "shape") or (B > 1 and F > 1)  # the video's frames copied as images
        q = 2 * z * lat.positions  # a frame's moments
        ops[0] = around(ops[0], ((Flow((), "frames", spec.in_channels * B * F * H * W),) if copy else ())
                        + (Flow((), "earlier", earlier * OPENSORA_MICRO_BATCH * q),))
        ops.append(conv("quant_conv", frames, lat, lat, 2 * z, 2 * z, (1, 1),
                        flow=(Flow((_output(one),), "sq", m * q), Flow((), "later", after * q),
                              Flow(("earlier", "sq", "later"), "lat", z * frames * lat.positions))))
        whole, rest = chunks(F, c)
        grid = (H // s, W // s)
        per = 2 * z * B * (spec.chunk_latent_frames or 0) * grid[0] * grid[1]  # a whole chunk's moments
        parts: list[str] = []
        if not skip(whole):
            padded = Shape(((spec.chunk_latent_frames or 0) * t, *grid))
            ops += prefixed("temporal", flows_of(temporal_encoder(spec, padded, B * whole),
                                                 temporal_encoder(spec, padded, B, (c or 0) % t != 0, "q0",
                                                                  (whole - 1) * per)))
            parts += ["q0_before", "q0"]
        if not skip(rest):
            more = temporal_encoder(spec, Shape((-(-rest // t) * t, *grid)), B, hasattr(rest, "shape") or rest % t != 0,
                                    "q1", whole * per)
            ops += prefixed("temporal", disowned(more) if parts else more)
            parts.append("q1")
        moments = Flow((*parts, "lat", *(("frames",) if copy else ())), "moments",
                       2 * z * B * spec.padded_latent_frames(F) * grid[0] * grid[1])
        return ops[:-1] + [around(ops[-1], after=(moments,))]

    @staticmethod
    def decoder(spec: OpenSoraVAE, shape: Shape, B: Number, num_frames: Number | None = None) -> list[Op]:
        """The temporal VAE on L // k whole chunks of k = ``chunk_latent_frames`` latent frames and on the remainder
        L % k, then post_quant_conv and the 2D decoder on each of the ``num_frames`` frames kept (default: the most
        frames that give L latent frames)."""
        L, h, w = shape
        z, k, s = spec.latent_channels, spec.chunk_latent_frames, spec.spatial_compression
        F = spec.decoded_frames(L) if num_frames is None else num_frames
        factors = spec.level_temporal_factors[:len(spec.temporal_block_out_channels or ()) - 1]
        per = z * B * (k or 0) * 2 ** sum(f > 1 for f in factors) * h * w  # a whole chunk's output
        whole, rest = chunks(L, k)
        ops: list[Op] = []
        parts: list[str] = []
        if not skip(whole):
            lat = Shape((k or 0, h, w))
            ops = prefixed("temporal", flows_of(temporal_decoder(spec, lat, B * whole),
                                                temporal_decoder(spec, lat, B, "t0", (whole - 1) * per)))
            parts += ["t0_before", "t0"]
        if not skip(rest):
            more = temporal_decoder(spec, Shape((rest, h, w)), B, "t1", whole * per)
            ops += prefixed("temporal", disowned(more) if ops else more)
            parts.append("t1")
        frames, image = B * F, Shape((1, h, w))
        m, earlier, after = _micro_batch(frames)
        copy = hasattr(F, "shape") or (B > 1 and F > 1)  # the latent's frames copied as images
        pixels = spec.in_channels * h * s * w * s  # a frame's
        ops.append(conv("post_quant_conv", frames, image, image, z, z, (1, 1),
                        flow=(Flow((), "lat", z * frames * image.positions),
                              *((Flow(("lat",), "frames", z * frames * image.positions),) if copy else ()),
                              Flow((), "earlier", earlier * OPENSORA_MICRO_BATCH * pixels),
                              Flow((), "pq", z * m * image.positions))))
        one = prefixed("spatial", GenericLedger.decoder(spec.spatial_vae, image, m))
        spatial = flows_of(prefixed("spatial", GenericLedger.decoder(spec.spatial_vae, image, frames)), one)
        *done, last = steps(spatial[-1].flow)  # post_quant_conv's output held to the end of the 2D decoder
        video = (Flow((), "later", after * pixels),
                 Flow((*parts, "lat", *(("frames",) if copy else ()), "earlier", _output(spatial), "later"), "video",
                      spec.in_channels * frames * (h * s) * (w * s)))
        return ops + spatial[:-1] + [revise(spatial[-1], flow=(*done, last._replace(reads=(*last.reads, "pq")),
                                                                *video))]
