"""family='wan': Wan2.1's VAE (reference_model/vae/wan.py; diffusers AutoencoderKLWan): ResNets of channel RMSNorm
(weight c) and causal 3x3x3 convs, 2D spatial resampling plus a separate temporal conv, per-frame mid attention,
1x1x1 quant convs.

Dataflow (``Flow`` records, for the liveness evaluator without gradients), following the reference code: a causal
3x3x3 conv pads a copy of its input (F.pad: 2 frames in front, 1 around H and W; scratch of the conv); the composite
RMSNorm holds x * rstd, its weighted copy and rstd (one per position) until its contiguous output is made, and that
output while SiLU makes its own (scratch of the norm); a ResNet computes its shortcut first and holds it, and its
input (held by the caller) to its residual sum, conv1's output until conv2 returns; a level's input is held by the
caller's loop until the level returns, so the first ResNet of a level is a record of its own and the rest a run; the
resample copies the frames, pads (down) or up-samples them; the decoder holds its last level's output to the end,
the encoder its mid block's output through norm_out.
"""

from __future__ import annotations

from sora_compute.ledger.formulas import Number
from sora_compute.ledger.ops import Flow, Op, attention_op, revise
from sora_compute.ledger.registry import register
from sora_compute.ledger.vae.common import K3, Flows, Shape, around, conv, nearest, norm
from sora_compute.specs.vae import WanVAE

__all__ = ["WanLedger", "CHUNKS"]

_1 = (1, 1, 1)


def _pad(B: Number, shape: Shape) -> Number:
    """Elements per channel of the causal conv's padded copy: (T + 2, H + 2, W + 2)."""
    T, H, W = shape
    return B * (T + 2) * (H + 2) * (W + 2)


CHUNKS = ("first", "second", "cached")  # the kinds of chunk a chunked decode's ledger is built for


def _old_frames(chunk: str, time_conv: bool) -> int:
    """Frames of the cache a causal conv finds when a chunk starts: none in the first chunk, nor in the second for a
    temporal up-sampler's conv (the first chunk does not call it); one in the second (the first chunk's single
    frame); ``CACHE_T`` = 2 from then on."""
    if chunk == "first" or (chunk == "second" and time_conv):
        return 0
    return 1 if chunk == "second" else 2


def _cache(op: Op, c: int, B: Number, shape: Shape, chunk: str | None, time_conv: bool = False) -> Op:
    """A causal conv of a chunked decode (``chunk`` one of ``CHUNKS``; None: the whole clip) with Wan2.1's feature
    cache (wan/modules/vae.py ``CACHE_T`` = 2 frames of its c-channel input, reference ``WanCausalConv3d``). Before
    the conv a step makes the new cache ``cache:<path>`` (``dims['feature_cache']`` elements), which lives to the
    chunk's end and beyond: a clone of the input's last min(T, 2) frames, made two by the old cache's last frame in
    front (or, for a temporal up-sampler's first call, a zero frame: Wan's 'Rep'), the one-frame clone (and the zero
    frame) its scratch. The conv reads the old cache ``old:<path>``, which its caller holds and lets go when the conv
    returns, concatenated before the input (old + T frames: scratch beside the padded copy)."""
    if chunk is None:
        return op
    T, H, W = shape
    plane = c * B * H * W
    old = _old_frames(chunk, time_conv)
    clone = T if T < 2 else 2
    joins = clone < 2 and (old > 0 or time_conv)
    new = 2 if joins else clone
    transient = (clone + (0 if old else clone)) if joins else 0
    f = op.flow
    steps = (f,) if isinstance(f, Flow) else tuple(f or ())
    first = steps[0]
    if old:
        first = first._replace(reads=(*first.reads, f"old:{op.path}"), scratch=first.scratch + plane * (old + T))
    make = Flow((), f"cache:{op.path}", plane * new, None, plane * transient)
    return revise(op, flow=(make, first, *steps[1:]), dims={**op.dims, "feature_cache": plane * new})


def _many(T: Number) -> bool:
    """More than one frame (arrays, in sweeps: the dataflow of T > 1)."""
    return hasattr(T, "shape") or T > 1


def wan_resnet(prefix: str, B: Number, shape: Shape, c_in: int, c_out: int, blocks: range | None = None,
               x: str = "x", y: str = "x", held: tuple[str, ...] = (), chunk: str | None = None) -> list[Op]:
    """1x1x1 shortcut (when widths differ), RMSNorm, 3x3x3 conv, RMSNorm, 3x3x3 conv; reads ``x`` (and ``held``,
    tensors the caller keeps to the block's end), makes ``y``."""
    rows, pad = B * shape.positions, _pad(B, shape)
    n_in, n_out = c_in * rows, c_out * rows
    short = ("s",) if c_in != c_out else ()
    ops = [conv(f"{prefix}.shortcut", B, shape, shape, c_in, c_out, _1, flow=Flow((x,), "s", n_out))] if short else []
    return ops + [norm(f"{prefix}.norm1", "rms_norm", B, c_in, shape, blocks=blocks,
                       flow=Flow((x,), "a1", n_in, None, n_in + rows)),
                  _cache(conv(f"{prefix}.conv1", B, shape, shape, c_in, c_out, K3, blocks=blocks,
                              flow=Flow(("a1",), "h1", n_out, None, c_in * pad)), c_in, B, shape, chunk),
                  norm(f"{prefix}.norm2", "rms_norm", B, c_out, shape, blocks=blocks,
                       flow=Flow(("h1",), "a2", n_out, None, n_out + rows)),
                  _cache(conv(f"{prefix}.conv2", B, shape, shape, c_out, c_out, K3, blocks=blocks,
                              flow=(Flow(("a2", "h1"), "h2", n_out, None, c_out * pad),
                                    Flow(("h2", *short, x, *held), y, n_out))), c_out, B, shape, chunk)]


def wan_resnets(prefix: str, B: Number, shape: Shape, c_in: int, c: int, n: int, x: str, y: str,
                chunk: str | None = None) -> list[Op]:
    """``n`` ResNets: the first c_in -> c on the level input ``x``, the rest c -> c (one record per op, blocks
    1 .. n-1; a chunk's ledger: a record per ResNet, each with caches of its own) while the caller holds ``x``; the
    output is ``y``."""
    if not n:
        return []
    ops = wan_resnet(f"{prefix}.0", B, shape, c_in, c, x=x, y=y, chunk=chunk)
    if n > 1 and chunk is not None:
        for k in range(1, n):
            ops += wan_resnet(f"{prefix}.{k}", B, shape, c, c, x=y, y=y, held=(x,), chunk=chunk)
    elif n > 1:
        ops += wan_resnet(prefix + ".{i}", B, shape, c, c, range(1, n), x=y, y=y, held=(x,), chunk=chunk)
    return ops


def _attention_flows(c: int, rows: Number, x: str, y: str) -> tuple[Flows, ...]:
    """A per-frame copy of the input beside the RMSNorm's temporaries; to_qkv and contiguous q, k, v (kept to the
    end); the core's output with its fp32 log-sum-exp; a transposed copy for the projection, the projection, the
    residual sum (reading ``x``)."""
    n = c * rows
    return (Flow((x,), "an", n, None, 2 * n + rows),
            (Flow(("an",), "qkv", 3 * n), Flow(("qkv",), "qkvt", 3 * n)),
            Flow(("qkvt",), "o", n, None, rows, "act", "stat"),
            (Flow(("o",), "cp", n), Flow(("cp", "o"), "p", n), Flow(("p", "qkvt", x), y, n)))


def wan_mid(prefix: str, B: Number, shape: Shape, c: int, x: str = "x", y: str = "x",
            chunk: str | None = None) -> list[Op]:
    """ResNet; per frame: RMSNorm, 1x1 conv c -> 3c, single-head SDPA over H W positions (2 (H W)^2 c per frame),
    1x1 conv; ResNet. ``x`` held by the caller to the end."""
    T, H, W = shape
    a = f"{prefix}.attn"
    f = _attention_flows(c, B * shape.positions, "m1", "m2")
    return (wan_resnet(f"{prefix}.resnet1", B, shape, c, c, x=x, y="m1", chunk=chunk)
            + [norm(f"{a}.norm", "rms_norm", B, c, shape, flow=f[0]),
               conv(f"{a}.to_qkv", B, shape, shape, c, 3 * c, (1, 1), "vae_attention", "conv2d", flow=f[1]),
               attention_op(a, "vae_attention", B * T, 1, H * W, H * W, c, flow=f[2]),
               conv(f"{a}.proj", B, shape, shape, c, c, (1, 1), "vae_attention", "conv2d", flow=f[3])]
            + wan_resnet(f"{prefix}.resnet2", B, shape, c, c, x="m2", y=y, held=(x,), chunk=chunk))


def wan_downsample(prefix: str, B: Number, shape: Shape, c: int, temporal: bool, h: str, x: str,
                   y: str, chunk: str | None = None) -> tuple[list[Op], Shape]:
    """Stride-2 3x3 conv per frame (H -> H // 2); temporal: a stride-2 (3, 1, 1) conv makes (T - 1) // 2 frames,
    appended to the first: T -> 1 + (T - 1) // 2. Dataflow: a per-frame copy of the level's output ``h``, its
    zero-padded copy, the conv; the time conv's frames and their concatenation; ``h`` and the level input ``x`` held
    to the end; makes ``y``. A chunk of a chunked encode (``chunk``; Wan2.1 ``Resample`` downsample3d with its
    feature cache): the first keeps its frame and clones it as the cache; a later one clones its last frame as the
    new cache, then runs the time conv on the old cache's last frame and its T frames concatenated (T -> T // 2)."""
    T, H, W = shape
    out = Shape((T, H // 2, W // 2))
    more = temporal and (_many(T) if chunk is None else chunk != "first")
    conv_flow = (Flow((h,), "fr", c * B * shape.positions), Flow(("fr",), "pd", c * B * T * (H + 1) * (W + 1)),
                 Flow(("pd", h, x), "d" if more else y, c * B * out.positions))
    ops = [conv(f"{prefix}.conv", B, shape, out, c, c, (3, 3), "resample", "conv2d", flow=conv_flow)]
    if temporal and chunk is not None:
        path, plane = f"{prefix}.time_conv", c * B * out[1] * out[2]
        made = Shape((0 if chunk == "first" else T // 2, H // 2, W // 2))
        flow: Flows = (Flow((y,), f"cache:{path}", plane) if chunk == "first" else
                       (Flow((), f"cache:{path}", plane),
                        Flow(("d", h, x, f"old:{path}"), y, c * B * made.positions, None, plane * (T + 1))))
        op = conv(path, B, out, made, c, c, (3, 1, 1), "resample", flow=flow)
        ops.append(revise(op, dims={**op.dims, "feature_cache": plane}))
        return ops, out if chunk == "first" else made
    if temporal:
        made = Shape(((T - 1) // 2, H // 2, W // 2))
        joined = Shape((1 + made[0], H // 2, W // 2))
        ops.append(conv(f"{prefix}.time_conv", B, out, made, c, c, (3, 1, 1), "resample",
                        flow=(Flow(("d",), "made", c * B * made.positions),
                              Flow(("made", "d", h, x), y, c * B * joined.positions)) if more else None))
        out = joined
    return ops, out


def wan_upsample(prefix: str, B: Number, shape: Shape, c: int, temporal: bool, h: str, x: str,
                 y: str, chunk: str | None = None) -> tuple[list[Op], Shape]:
    """Temporal: a causal (3, 1, 1) conv c -> 2c on the T - 1 frames after the first (T -> 2T - 1); then per frame
    nearest x2 and a 3x3 conv c -> c / 2. Dataflow: the time conv on a padded copy, its output's reshaped copy, the
    frames doubled (a concatenation); a per-frame copy, the up-sampled frames, the conv; the level's output ``h`` and
    input ``x`` held to the end; makes ``y``. A chunk after the first (``chunk`` 'second' or 'cached') doubles all
    its T frames (T -> 2T): the time conv on the cache and its input concatenated (and padded: a copy), its output's
    halves stacked as frame pairs (a copy); the first chunk keeps its frame."""
    T, H, W = shape
    ops = []
    src, more = h, temporal and _many(T)
    if temporal and chunk in ("second", "cached"):
        n2 = 2 * c * B * T * H * W
        op = conv(f"{prefix}.time_conv", B, shape, shape, c, 2 * c, (3, 1, 1), "resample",
                  flow=(Flow((h,), "made", n2, None, c * B * (T + 2) * H * W), Flow(("made",), "dbl", n2)))
        ops.append(_cache(op, c, B, shape, chunk, time_conv=True))
        src, T = "dbl", 2 * T
    elif temporal and chunk is None:
        rest = Shape((T - 1, H, W))
        n2 = 2 * c * B * rest.positions
        ops.append(conv(f"{prefix}.time_conv", B, rest, rest, c, 2 * c, (3, 1, 1), "resample",
                        flow=(Flow((h,), "made", n2, None, c * B * (T + 1) * H * W), Flow(("made",), "pairs", n2),
                              Flow(("pairs", "made"), "dbl", c * B * (2 * T - 1) * H * W)) if more else None))
        src = "dbl" if more else h
        T = 2 * T - 1
    before, out = Shape((T, H, W)), Shape((T, 2 * H, 2 * W))
    n = c * B * out.positions
    ops += [nearest(prefix, B, c, before, out, (Flow((src,), "fr", c * B * before.positions), Flow(("fr",), "up", n))),
            conv(f"{prefix}.conv", B, out, out, c, c // 2, (3, 3), "resample", "conv2d",
                 flow=Flow(("up", src, h, x), y, c // 2 * B * out.positions))]
    return ops, out


def _keep_caches(ops: list[Op]) -> list[Op]:
    """A chunk's ops with a last step reading every new feature cache (held to the chunk's end and beyond)."""
    kept = tuple(f"cache:{op.path}" for op in ops if "feature_cache" in op.dims)
    last = ops[-1]
    return [*ops[:-1], around(last, after=(Flow(kept),))]


@register("vae", "wan")
class WanLedger:
    @staticmethod
    def encoder(spec: WanVAE, shape: Shape, B: Number, chunk: str | None = None) -> list[Op]:
        """The whole clip (``chunk`` None), or one chunk of Wan2.1's chunked encode before quant_conv (run once over
        the concatenated chunks' outputs by the caller): the first video frame ('first'), the second chunk of
        ``temporal_compression`` frames ('second') or a later one ('cached'), whose causal convs and temporal
        down-samplers replace their feature caches; the chunk's last step reads every new cache (they outlive it)."""
        chans, factors, z2 = spec.block_out_channels, spec.level_temporal_factors, 2 * spec.latent_channels
        ops = [_cache(conv("conv_in", B, shape, shape, spec.in_channels, chans[0], K3,
                           flow=Flow((), "x", chans[0] * B * shape.positions, None, spec.in_channels * _pad(B, shape))),
                      spec.in_channels, B, shape, chunk)]
        c_prev, x = chans[0], "x"
        for i, c in enumerate(chans):
            h = f"r{i}" if spec.layers_per_block else x
            ops += wan_resnets(f"down.{i}.resnets", B, shape, c_prev, c, spec.layers_per_block, x, h, chunk)
            c_prev = c
            if i < len(chans) - 1:
                down, shape = wan_downsample(f"down.{i}.resample", B, shape, c, factors[i] > 1, h, x, f"x{i}", chunk)
                ops += down
                h = f"x{i}"
            x = h
        ops += wan_mid("mid", B, shape, c_prev, x, "y", chunk)
        n, rows = c_prev * B * shape.positions, B * shape.positions
        ops += [norm("norm_out", "rms_norm", B, c_prev, shape, flow=Flow(("y",), "a", n, None, n + rows)),
                _cache(conv("conv_out", B, shape, shape, c_prev, z2, K3,
                            flow=Flow(("a",), "m", z2 * rows, None, c_prev * _pad(B, shape))), c_prev, B, shape, chunk)]
        if chunk is None:
            return ops + [conv("quant_conv", B, shape, shape, z2, z2, _1, flow=Flow(("m",), "q", z2 * rows))]
        return _keep_caches(ops)

    @staticmethod
    def decoder(spec: WanVAE, shape: Shape, B: Number, num_frames: Number | None = None,
                chunk: str | None = None) -> list[Op]:
        """The whole clip (``chunk`` None), or one chunk of Wan2.1's chunked decode after post_quant_conv (run once
        over the whole latent, held by the caller): the first chunk ('first', one latent frame), the second
        ('second') or a later one ('cached'), whose causal convs replace their feature caches (``_cache``); the
        chunk's last step reads every new cache (they outlive it)."""
        chans, factors, z = spec.decoder_channels, spec.level_temporal_factors, spec.latent_channels
        rows = B * shape.positions
        pq = [] if chunk else [conv("post_quant_conv", B, shape, shape, z, z, _1, flow=Flow((), "pq", z * rows))]
        ops = pq + [_cache(conv("conv_in", B, shape, shape, z, chans[0], K3,
                                flow=Flow(("pq",) if chunk is None else (), "x", chans[0] * rows, None,
                                          z * _pad(B, shape))), z, B, shape, chunk)]
        ops += wan_mid("mid", B, shape, chans[0], "x", "y", chunk)
        c_prev, x = chans[0], "y"
        for j, c in enumerate(chans):
            h = f"r{j}"
            ops += wan_resnets(f"up.{j}.resnets", B, shape, c_prev, c, spec.layers_per_block + 1, x, h, chunk)
            c_prev = c
            if j < len(chans) - 1:
                up, shape = wan_upsample(f"up.{j}.resample", B, shape, c, factors[-1 - j] > 1, h, x, f"x{j}", chunk)
                ops += up
                c_prev, h = c // 2, f"x{j}"
            x = h
        n, rows = c_prev * B * shape.positions, B * shape.positions
        ops += [norm("norm_out", "rms_norm", B, c_prev, shape, flow=Flow((x,), "a", n, None, n + rows)),
                _cache(conv("conv_out", B, shape, shape, c_prev, spec.in_channels, K3,
                            flow=Flow(("a", x), "o", spec.in_channels * rows, None, c_prev * _pad(B, shape))),
                       c_prev, B, shape, chunk)]
        return ops if chunk is None else _keep_caches(ops)


@register("vae_chunked", "wan")
def wan_chunk_ledger(spec: WanVAE, shape: Shape, B: Number, chunk: str) -> list[Op]:
    """One chunk of Wan2.1's chunked decode (one of ``CHUNKS``; see ``WanLedger.decoder``)."""
    return WanLedger.decoder(spec, Shape(shape), B, chunk=chunk)


@register("vae_encode_chunked", "wan")
def wan_encode_chunk_ledger(spec: WanVAE, shape: Shape, B: Number, chunk: str) -> list[Op]:
    """One chunk of Wan2.1's chunked encode (one of ``CHUNKS``; see ``WanLedger.encoder``)."""
    return WanLedger.encoder(spec, Shape(shape), B, chunk=chunk)
