"""A spatially tiled VAE encode over a grid of shapes, vectorised: the ops of every tile the official schedule
encodes (``ledger/vae_schedule.py`` ``_tiled_encode``: HunyuanVideo ``spatial_tiled_encode``, pixel tiles of
``tile_px`` every ``stride_px``, edge tiles cut short, overlapping tiles recomputed), summed per op.

Along one side of S pixels the tiles start at 0, stride, 2 stride, ... < S: ``floor((S - tile) / stride) + 1`` of
them are whole tiles (0 when S < tile), and the at most ceil(tile / stride) starts after those are edge tiles of
S - start pixels. The encode's MACs are then sum over (row slot a, column slot b) of count_a x count_b x
MACs(F, size_a, size_b): the ledger evaluated once per distinct (F, tile height, tile width) of the grid.
A clip no larger than a tile in both sides is one call on the whole clip (the schedule's rule).

A tiled decode (``scheduled_decode``'s ``_tiled``) is counted the same way on the latent grid: latent tiles of
tile_px // compression every stride_px // compression, and (temporal tiles) tile_frames // tc + 1 latent frames every
stride_frames // tc, edge tiles cut short; a tile's frame batches compute its whole convolutions, so each tile is
counted as one decoder call on it."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from sora_compute.ledger.ops import Op, revise
from sora_compute.ledger.vae import vae_decoder_ledger, vae_encoder_ledger
from sora_compute.specs.vae import VAESpec
from sora_compute.specs.vae.schedule import DecodeSchedule

__all__ = ["spatially_tiled", "tiled_encode_ops", "tiled_decode_ops"]


def spatially_tiled(schedule: DecodeSchedule) -> bool:
    """Whether ``schedule`` is an encode in spatial tiles only (what ``scheduled_encode`` tiles; chunked and
    frame-batched encodes compute the whole clip's convolutions, so the whole-clip ledger counts them)."""
    return (schedule.mode == "tiled" and schedule.tile_px is not None and schedule.tile_frames is None
            and schedule.frame_batch is None)


def _slots(size: np.ndarray, tile: int, stride: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """(tile side in pixels, tiles of that side) per slot along one side of ``size`` pixels: the whole tiles, then
    each edge tile (count 0 where there is none; its side then a whole tile's, a valid placeholder)."""
    full = np.where(size >= tile, np.floor((size - tile) / stride) + 1, 0.0)
    slots = [(np.full_like(size, float(tile)), full)]
    for k in range(-(-tile // stride)):
        side = size - (full + k) * stride
        there = side > 0
        slots.append((np.where(there, side, float(tile)), there.astype(np.float64)))
    return slots


def tiled_encode_ops(spec: VAESpec, frames: np.ndarray, height: np.ndarray, width: np.ndarray,
                     schedule: DecodeSchedule, batch: float = 1) -> list[Op]:
    """The encoder's ledger with each op's MACs and traffic summed over every tile of ``schedule`` at each grid point
    (float64 arrays; each tile's MACs are whole numbers, so the sums are exact below 2^53)."""
    assert schedule.tile_px is not None and schedule.stride_px is not None
    f, h, w = np.broadcast_arrays(*(np.asarray(v, dtype=np.float64) for v in (frames, height, width)))
    (th, tw), (sh, sw) = schedule.tile_px, schedule.stride_px
    return _summed(lambda shape: vae_encoder_ledger(spec, shape, batch), _spatial(f, h, w, th, tw, sh, sw))


Piece = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]  # (frames, height, width, calls) at each grid point


def _spatial(f: np.ndarray, h: np.ndarray, w: np.ndarray, th: int, tw: int, sh: int, sw: int) -> list[Piece]:
    """The calls of ``f`` frames over an (h, w) plane tiled by (th, tw) every (sh, sw): one on the whole plane where
    it is no larger than a tile, else each tile slot."""
    one = (h <= th) & (w <= tw)
    pieces = [(f, h, w, one.astype(np.float64))]
    pieces += [(f, np.where(one, th, ha), np.where(one, tw, wb), np.where(one, 0.0, ca * cb))
               for ha, ca in _slots(h, th, sh) for wb, cb in _slots(w, tw, sw)]
    return pieces


def tiled_decode_ops(spec: VAESpec, frames: np.ndarray, height: np.ndarray, width: np.ndarray,
                     schedule: DecodeSchedule, batch: float = 1) -> list[Op]:
    """The decoder's ledger with each op's MACs and traffic summed over every tile of the tiled decode ``schedule``
    of latents (``frames``, ``height``, ``width``) at each grid point (float64 arrays, exact below 2^53)."""
    t, h, w = np.broadcast_arrays(*(np.asarray(v, dtype=np.float64) for v in (frames, height, width)))
    s, tc = spec.spatial_compression, spec.temporal_compression
    tiles = None
    if schedule.tile_px is not None and schedule.stride_px is not None:  # latent tiles, as ``_spatial`` cuts them
        tiles = (schedule.tile_px[0] // s, schedule.tile_px[1] // s, max(1, schedule.stride_px[0] // s),
                 max(1, schedule.stride_px[1] // s))
    temporal: list[tuple[np.ndarray, np.ndarray]] = [(t, np.ones_like(t))]
    if schedule.tile_frames is not None and schedule.stride_frames is not None:
        tl, sl = schedule.tile_frames // tc, max(1, schedule.stride_frames // tc)
        one = t <= tl  # no longer than a tile: one temporal piece
        temporal = [(t, one.astype(np.float64))]
        temporal += [(np.where(one, tl + 1, ta), np.where(one, 0.0, ca)) for ta, ca in _slots(t, tl + 1, sl)]
    pieces: list[Piece] = []
    for ta, ca in temporal:
        plane = _spatial(ta, h, w, *tiles) if tiles is not None else [(ta, h, w, np.ones_like(t))]
        pieces += [(pf, ph, pw, n * ca) for pf, ph, pw, n in plane]
    return _summed(lambda shape: vae_decoder_ledger(spec, shape, batch), pieces)


def _summed(ledger: Callable[[tuple[np.ndarray, np.ndarray, np.ndarray]], list[Op]], pieces: list[Piece]) -> list[Op]:
    """The ledger's ops with MACs and traffic summed over ``pieces`` ((frames, tile height, tile width, calls) arrays
    at each point): the ledger evaluated once per distinct (frames, height, width) among all pieces (tile sides take
    few values), then gathered back per piece and weighted."""
    f = pieces[0][0]
    side = int(max(max(float(t.max()), float(h.max()), float(w.max())) for t, h, w, _ in pieces)) + 1
    keys = np.concatenate([(t.astype(np.int64) * side + h.astype(np.int64)) * side + w.astype(np.int64)
                           for t, h, w, _ in pieces])
    uniq, inverse = np.unique(keys, return_inverse=True)
    shape = (uniq // (side * side)).astype(np.float64), (uniq // side % side).astype(np.float64), (
        uniq % side).astype(np.float64)
    ops = ledger(shape)
    per_shape = np.stack([np.broadcast_to(np.asarray(v, dtype=np.float64), uniq.shape)
                          for op in ops for v in (op.macs, op.elements)], axis=1)  # (shapes, 2 x ops): rows gather fast
    inverse = inverse.reshape(len(pieces), -1)
    total = np.zeros((f.size, per_shape.shape[1]))
    buf = np.empty_like(total)
    for p, (_, _, _, n) in enumerate(pieces):
        tiles = n.ravel()
        there = np.flatnonzero(tiles)
        if there.size == tiles.size:  # in place: no temporaries of (points, 2 x ops)
            np.take(per_shape, inverse[p], axis=0, out=buf)
            total += np.multiply(buf, tiles[:, None], out=buf)
        elif there.size:
            total[there] += per_shape[inverse[p][there]] * tiles[there, None]
    total = total.T
    return [revise(op, macs=total[2 * k].reshape(f.shape), elements=total[2 * k + 1].reshape(f.shape))
            for k, op in enumerate(ops)]
