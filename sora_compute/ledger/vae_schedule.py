"""A VAE decode schedule as ledger structure: the decoder calls a pipeline makes over one latent (``DecodeSchedule``),
each a family ledger on its tile or chunk shape, in order, with the activation elements its caller holds beneath it
(tiles decoded before it, a chunked decode's feature caches and video so far) and the moment the pieces are
assembled. Evaluators read it: the live peak (``memory/vae_schedule.py``: each call's liveness walk on top of what is
held) and MACs (every call counted, so overlapping tiles' recompute is in the total).

Tiling follows diffusers' ``tiled_decode`` / ``_temporal_tiled_decode`` (AutoencoderKLHunyuanVideo, CogVideoX, LTX,
Mochi): latent tiles of tile // compression every stride // compression, edge tiles cut short; every decoded tile is
kept until all are blended, then each row is concatenated (cropped to the stride) and the rows are; temporal tiles
read one latent frame more than their stride and keep their outputs' storage (a view drops the first frame).
Chunking follows Wan2.1's ``WanVAE_.decode``: the post-quant conv over the whole latent, then the decoder on the
first latent frame and on each chunk after it, each causal conv replacing its feature cache as it runs (the old caches
are released inputs of a call, the new ones its ledger's ``cache:`` tensors), the video grown by concatenation after
every chunk (``out = torch.cat([out, out_], 2)``: the video so far, and from the third chunk the last chunk's output
``out_``, still bound, are held beneath each call).
Encoding (``scheduled_encode``) follows Wan2.1's ``WanVAE_.encode``: the encoder on the first frame, then
on chunks of temporal-compression frames with the same caches, the outputs concatenated, quant_conv over them last;
or diffusers' CogVideoX ``_encode``: frame batches of 8 video frames with the causal convs' conv_cache.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sora_compute.ledger.formulas import Number
from sora_compute.ledger.ops import Flow, Op, revise
from sora_compute.ledger.registry import lookup, registered
from sora_compute.ledger.vae import vae_decoder_ledger, vae_encoder_ledger
from sora_compute.ledger.vae.common import steps
from sora_compute.specs.vae import VAESpec
from sora_compute.specs.vae.schedule import DecodeSchedule

__all__ = ["DecodeCall", "ScheduledDecode", "frame_batches", "scheduled_decode", "scheduled_encode", "Shape3"]

Shape3 = tuple[int, int, int]  # (T, H, W) of a latent


@dataclass(frozen=True)
class DecodeCall:
    """One decoder call: the ledger ``key`` (latent shape, chunk kind: None, a chunked decode's 'first', 'second',
    'cached', or 'prologue' for its post-quant conv), the activation elements its caller holds beneath it, and the
    tensors it lets go of while it runs (``released``: a chunked decode's old feature caches, (name, elements), each
    freed when the conv that replaces it returns)."""

    key: tuple[Shape3, str | None]
    held: int
    released: tuple[tuple[str, int], ...] = ()


@dataclass(frozen=True)
class ScheduledDecode:
    """The calls in order, each distinct ledger once (``ledgers``), and the elements live while the output is
    assembled (0 for one whole call)."""

    schedule: DecodeSchedule
    calls: list[DecodeCall]
    ledgers: dict[tuple[Shape3, str | None], list[Op]] = field(repr=False)
    assembly: int = 0

    @property
    def n_calls(self) -> int:
        """Decoder (encoder) calls (tiles or chunks; a chunked decode's post-quant conv, a chunked encode's quant conv
        not counted)."""
        return sum(1 for c in self.calls if c.key[1] not in ("prologue", "epilogue"))


class _Builder:
    """Collects calls and builds each distinct ledger once."""

    def __init__(self, spec: VAESpec, batch: int, encode: bool = False) -> None:
        self.spec, self.batch, self.encode = spec, batch, encode
        self.calls: list[DecodeCall] = []
        self.ledgers: dict[tuple[Shape3, str | None], list[Op]] = {}

    def ledger(self, shape: Shape3, chunk: str | None) -> list[Op]:
        key = (shape, chunk)
        if key not in self.ledgers and self.encode:
            self.ledgers[key] = _encoder_ledger(self.spec, shape, self.batch, chunk)
        if key not in self.ledgers:
            if chunk is None:
                self.ledgers[key] = vae_decoder_ledger(self.spec, shape, self.batch)
            elif chunk == "batch":
                self.ledgers[key] = lookup("vae_frame_batch", self.spec.family)(self.spec, shape, self.batch)
            elif chunk == "prologue":
                self.ledgers[key] = [op for op in vae_decoder_ledger(self.spec, shape, self.batch)
                                     if op.path == "post_quant_conv"]
            else:
                self.ledgers[key] = lookup("vae_chunked", self.spec.family)(self.spec, shape, self.batch, chunk)
        return self.ledgers[key]

    def call(self, shape: Shape3, chunk: str | None, held: int, released: tuple[tuple[str, int], ...] = ()) -> None:
        self.ledger(shape, chunk)
        self.calls.append(DecodeCall((shape, chunk), held, released))

    def pixels(self, frames: int, h: int, w: int) -> int:
        """Elements of ``batch`` decoded videos of ``frames`` x (h x w latent pixels)."""
        s = self.spec.spatial_compression
        return self.batch * self.spec.in_channels * frames * h * s * w * s

    def frames(self, shape: Shape3, chunk: str | None = None) -> int:
        """Video frames a call on ``shape`` decodes: its ledger's output (the last op's last step that makes one) per
        pixel plane."""
        f = self.ledger(shape, chunk)[-1].flow
        last = f if isinstance(f, Flow) else next((s for s in reversed(f) if s.out is not None), None) if f else None
        if last is None:
            raise ValueError(f"family {self.spec.family!r}: its decoder ledger carries no dataflow")
        return int(last.numel) // self.pixels(1, shape[1], shape[2])


def _starts(size: int, stride: int) -> list[int]:
    return list(range(0, size, stride))


def frame_batches(frames: Number, batch: int) -> list[tuple[Number, Number]]:
    """diffusers' frame-batched decode of ``frames`` latent frames (``for k in range(0, frames, batch)``) as (latent
    frames per call, calls), in order: ``frames // batch`` calls of ``batch``, then one of the ``frames % batch`` left
    (0 calls where none is left). Ints, or float arrays of a grid (elementwise)."""
    rest = frames % batch
    return [(batch, frames // batch), (rest, (rest > 0) * 1)]


def _piece(b: _Builder, t: int, h: int, w: int, sched: DecodeSchedule, held: int) -> tuple[int, int]:
    """One decoder input (t, h, w) on top of ``held``: one call, or (``frame_batch``) diffusers' frame-batched decode:
    calls of ``frame_batch`` latent frames, each on the outputs so far and the previous call's caches (held until it
    returns, its own made as it runs), then the outputs concatenated beside the last caches. (peak elements of the
    concatenation, 0 for one call; elements of the output)."""
    fb = sched.frame_batch
    if fb is None:
        b.call((t, h, w), None, held)
        return 0, b.pixels(b.frames((t, h, w)), h, w)
    if b.spec.family not in registered("vae_frame_batch"):
        raise ValueError(f"frame-batched decoding (a conv cache) is modelled for VAE families "
                         f"{', '.join(registered('vae_frame_batch'))}, not {b.spec.family!r}")
    outs, caches = 0, 0
    for frames, calls in frame_batches(t, fb):
        for _ in range(int(calls)):
            shape = (int(frames), h, w)
            b.call(shape, "batch", held + outs + caches)
            caches = sum(int(op.dims["feature_cache"]) for op in b.ledger(shape, "batch") if "feature_cache" in op.dims)
            outs += b.pixels(b.frames(shape, "batch"), h, w)
    return held + caches + 2 * outs, outs  # torch.cat of the outputs, even of one


def _spatial(b: _Builder, t: int, H: int, W: int, sched: DecodeSchedule, held: int) -> tuple[int, int]:
    """diffusers ``tiled_decode`` of a (t, H, W) latent on top of ``held``: (peak elements of the assembly, elements
    of its output)."""
    assert sched.tile_px is not None and sched.stride_px is not None
    s = b.spec.spatial_compression
    th, tw = sched.tile_px[0] // s, sched.tile_px[1] // s
    sh, sw = max(1, sched.stride_px[0] // s), max(1, sched.stride_px[1] // s)
    outs = 0
    rows = 0
    inner = 0
    for i in _starts(H, sh):
        h = min(th, H - i)
        row_w = 0
        for j in _starts(W, sw):
            w = min(tw, W - j)
            peak, out = _piece(b, t, h, w, sched, held + outs)
            inner = max(inner, peak)
            frames = out // b.pixels(1, h, w)
            outs += out
            row_w += min(sched.stride_px[1], w * s)
        rows += b.batch * b.spec.in_channels * frames * min(sched.stride_px[0], h * s) * row_w
    return max(inner, held + outs + 2 * rows), rows  # at the last concatenation: every tile, every row, the result


def _one(b: _Builder, t: int, H: int, W: int, sched: DecodeSchedule, held: int) -> tuple[int, int]:
    """One latent (t, H, W) decoded whole or, if it exceeds a tile (diffusers' rule), spatially tiled."""
    s = b.spec.spatial_compression
    if sched.tile_px is not None and (sched.tile_px[0] // s < H or sched.tile_px[1] // s < W):
        return _spatial(b, t, H, W, sched, held)
    return _piece(b, t, H, W, sched, held)


def _tiled(b: _Builder, T: int, H: int, W: int, sched: DecodeSchedule) -> int:
    """The whole tiled decode; returns the assembly peak in elements."""
    tc = b.spec.temporal_compression
    if sched.tile_frames is None or sched.stride_frames is None or sched.tile_frames // tc >= T:
        return _one(b, T, H, W, sched, 0)[0]
    tl, sl = sched.tile_frames // tc, max(1, sched.stride_frames // tc)
    outs, assembly, final = 0, 0, 0
    plane = b.pixels(1, H, W)
    for k, i in enumerate(_starts(T, sl)):
        t = min(tl + 1, T - i)
        inner, out = _one(b, t, H, W, sched, outs)
        assembly = max(assembly, inner)
        outs += out
        frames = out // plane - (1 if k else 0)
        final += plane * min(sched.stride_frames + (0 if k else 1), frames)
    return max(assembly, outs + final)


def _caches(ops: list[Op]) -> tuple[tuple[str, int], ...]:
    """The feature caches a chunk's ledger leaves (``cache:<path>``), as the next chunk's old caches (``old:<path>``,
    elements)."""
    return tuple((f"old:{op.path}", int(op.dims["feature_cache"])) for op in ops if "feature_cache" in op.dims)


def _chunked(b: _Builder, T: int, H: int, W: int, sched: DecodeSchedule) -> int:
    """Wan2.1's chunked decode (the first latent frame alone, then ``chunk_latent_frames`` at a time); returns the
    elements live at the last concatenation."""
    if b.spec.family not in registered("vae_chunked"):
        raise ValueError(f"chunked decoding (a causal feature cache) is modelled for VAE families "
                         f"{', '.join(registered('vae_chunked'))}; family {b.spec.family!r} decodes 'whole' or "
                         "'tiled'")
    k = sched.chunk_latent_frames
    z = b.batch * b.spec.latent_channels * T * H * W  # the post-quant latent, held throughout
    b.call((T, H, W), "prologue", 0)
    video, out = 0, 0
    caches: tuple[tuple[str, int], ...] = ()
    for n, i in enumerate([0, *range(1, T, k)]):
        t = 1 if n == 0 else min(k, T - i)
        kind = ("first", "second", "cached")[min(n, 2)]
        b.call((t, H, W), kind, z + video + (out if n > 1 else 0), caches)  # out_: the last chunk's, still bound
        caches = _caches(b.ledger((t, H, W), kind))
        out = b.pixels(b.frames((t, H, W), kind), H, W)
        video += out
    cache = sum(n for _, n in caches)
    return z + cache + (2 * video if video > out else video)  # the old video, the chunk's, their concatenation


def _encoder_ledger(spec: VAESpec, video: Shape3, batch: int, chunk: str | None) -> list[Op]:
    """The encoder's ledger on ``video`` frames: the whole, one chunk of a chunked encode, or its quant conv over the
    concatenated chunks ('epilogue': their output, held by the caller, its input)."""
    if chunk is None:
        return vae_encoder_ledger(spec, video, batch)
    if chunk == "batch":
        return lookup("vae_encode_frame_batch", spec.family)(spec, video, batch)
    if chunk != "epilogue":
        return lookup("vae_encode_chunked", spec.family)(spec, video, batch, chunk)
    ops = [op for op in vae_encoder_ledger(spec, video, batch) if op.path == "quant_conv"]
    return [revise(op, flow=Flow((), "q", int(op.dims["voxels"]) * int(op.dims["c_out"]))) for op in ops]


def _output(ops: list[Op]) -> int:
    """Elements of a ledger's output: its last op's last step that makes one."""
    return int(next(f.numel for f in reversed(steps(ops[-1].flow)) if f.out is not None))


def _tiled_encode(b: _Builder, F: int, H: int, W: int, sched: DecodeSchedule) -> int:
    """A spatially tiled encode (HunyuanVideo ``spatial_tiled_encode``, diffusers ``tiled_encode``): pixel tiles of
    ``tile_px`` every ``stride_px``, edge tiles cut short, each encoded on top of the tiles kept before it; then each
    row's tiles cropped to the stride // compression and concatenated, and the rows. Returns the elements live at the
    last concatenation: every tile, every row, the result."""
    assert sched.tile_px is not None and sched.stride_px is not None
    s = b.spec.spatial_compression
    outs, rows = 0, 0
    for i in range(0, H, sched.stride_px[0]):
        h = min(sched.tile_px[0], H - i)
        row = 0
        for j in range(0, W, sched.stride_px[1]):
            w = min(sched.tile_px[1], W - j)
            b.call((F, h, w), None, outs)
            out = _output(b.ledger((F, h, w), None))
            outs += out
            per_position = out // ((h // s) * (w // s))
            row += per_position * (min(sched.stride_px[0], h) // s) * (min(sched.stride_px[1], w) // s)
        rows += row
    return outs + 2 * rows


def _frame_batches(b: _Builder, F: int, H: int, W: int, fb: int) -> int:
    """diffusers' frame-batched encode (AutoencoderKLCogVideoX ``_encode``): max(F // fb, 1) calls, the first with
    the F % fb frames left over too, each on the outputs so far and the previous call's caches (held until it
    returns); then the outputs concatenated beside the last caches. Returns the elements live at the concatenation."""
    r = F % fb
    outs, caches = 0, 0
    for i in range(max(F // fb, 1)):
        t = min(fb * (i + 1) + r, F) - (fb * i + (r if i else 0))
        b.call((t, H, W), "batch", outs + caches)
        ops = b.ledger((t, H, W), "batch")
        caches = sum(int(op.dims["feature_cache"]) for op in ops if "feature_cache" in op.dims)
        outs += int(next(f.numel for op in reversed(ops) for f in reversed(steps(op.flow)) if f.out == "m"))
    return caches + 2 * outs  # torch.cat of the outputs, even of one


def scheduled_encode(spec: VAESpec, video: Shape3, schedule: DecodeSchedule, batch: int = 1) -> ScheduledDecode:
    """The encoder calls of ``schedule`` (whole; whole in frame batches: CogVideoX, ``_frame_batches``; or chunked:
    Wan2.1's ``WanVAE_.encode``) over ``batch`` videos of (F, H, W) frames. Chunked: the first frame alone, then
    ``chunk_latent_frames`` x temporal compression frames per call, each on the outputs so far and the previous
    chunk's output (still bound) and replacing the caches; after each chunk the outputs concatenated beside the
    caches; then quant_conv over the whole ('epilogue'), the caches and the last chunk's output still held.
    ``assembly``: the elements live at the largest concatenation."""
    F, H, W = (int(v) for v in video)
    b = _Builder(spec, batch, encode=True)
    if schedule.mode == "whole" and schedule.frame_batch is None:
        b.call((F, H, W), None, 0)
        return ScheduledDecode(schedule, b.calls, b.ledgers, 0)
    s = spec.spatial_compression
    if schedule.mode == "tiled" and schedule.tile_frames is None and schedule.frame_batch is None:
        assert schedule.tile_px is not None
        if schedule.tile_px[0] >= H and schedule.tile_px[1] >= W:  # no larger than a tile: one call
            b.call((F, H, W), None, 0)
            return ScheduledDecode(schedule, b.calls, b.ledgers, 0)
        return ScheduledDecode(schedule, b.calls, b.ledgers, _tiled_encode(b, F, H, W, schedule))
    if schedule.mode == "whole" and spec.family in registered("vae_encode_frame_batch"):
        return ScheduledDecode(schedule, b.calls, b.ledgers, _frame_batches(b, F, H, W, int(schedule.frame_batch or 1)))
    if schedule.mode != "chunked" or spec.family not in registered("vae_encode_chunked"):
        raise ValueError(f"VAE encode schedules modelled: 'whole' for every family, 'chunked' for "
                         f"{', '.join(registered('vae_encode_chunked'))}, frame batches for "
                         f"{', '.join(registered('vae_encode_frame_batch'))}; not {schedule.label()!r} for "
                         f"{spec.family!r}")
    k = schedule.chunk_latent_frames * spec.temporal_compression
    plane = batch * 2 * spec.latent_channels * (H // s) * (W // s)  # one latent frame of the encoder's output
    outs, last, assembly = 0, 0, 0
    caches: tuple[tuple[str, int], ...] = ()
    for n, i in enumerate([0, *range(1, F, k)]):
        t = 1 if n == 0 else min(k, F - i)
        kind = ("first", "second", "cached")[min(n, 2)]
        b.call((t, H, W), kind, outs + last, caches)
        caches = _caches(b.ledger((t, H, W), kind))
        out = plane * (1 if n == 0 else -(-t // spec.temporal_compression))
        if n:
            assembly = max(assembly, sum(c for _, c in caches) + 2 * (outs + out))
        outs, last = outs + out, (out if n else 0)
    b.call((F, H, W), "epilogue", sum(c for _, c in caches) + outs + last)
    return ScheduledDecode(schedule, b.calls, b.ledgers, assembly)


def scheduled_decode(spec: VAESpec, latent: Shape3, schedule: DecodeSchedule, batch: int = 1) -> ScheduledDecode:
    """The decoder calls of ``schedule`` over ``batch`` latents of (T, H, W)."""
    T, H, W = (int(v) for v in latent)
    if schedule.mode != "whole" and getattr(lookup("vae", spec.family), "inner_chunks", False):
        raise ValueError(f"family {spec.family!r} decodes in its own chunks inside the decoder: only the 'whole' "
                         "schedule is modelled for it")
    b = _Builder(spec, batch)
    if schedule.mode == "whole":
        assembly = _piece(b, T, H, W, schedule, 0)[0]
    elif schedule.mode == "tiled":
        assembly = _tiled(b, T, H, W, schedule)
    else:
        assembly = _chunked(b, T, H, W, schedule)
    return ScheduledDecode(schedule, b.calls, b.ledgers, assembly)

