"""A spatially tiled VAE encode over a grid of shapes, vectorised: the ops of every tile the official schedule
encodes (``ledger/vae_schedule.py`` ``_tiled_encode``: HunyuanVideo ``spatial_tiled_encode``, pixel tiles of
``tile_px`` every ``stride_px``, edge tiles cut short, overlapping tiles recomputed), summed per op.

Along one side of S pixels the tiles start at 0, stride, 2 stride, ... < S: ``floor((S - tile) / stride) + 1`` of
them are whole tiles (0 when S < tile), and the at most ceil(tile / stride) starts after those are edge tiles of
S - start pixels. The encode's MACs are then sum over (row slot a, column slot b) of count_a x count_b x
MACs(F, size_a, size_b): the ledger evaluated once per distinct (F, tile height, tile width) of the grid.
A clip no larger than a tile in both sides is one call on the whole clip (the schedule's rule)."""

from __future__ import annotations

import numpy as np

from sora_compute.ledger.ops import Op, revise
from sora_compute.ledger.vae import vae_encoder_ledger
from sora_compute.specs.vae import VAESpec
from sora_compute.specs.vae.schedule import DecodeSchedule

__all__ = ["spatially_tiled", "tiled_encode_ops"]


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
    one = (h <= th) & (w <= tw)  # no larger than a tile: one call on the whole clip
    pieces = [(h, w, one.astype(np.float64))]
    pieces += [(np.where(one, th, ha), np.where(one, tw, wb), np.where(one, 0.0, ca * cb))
               for ha, ca in _slots(h, th, sh) for wb, cb in _slots(w, tw, sw)]
    return _summed(spec, f, pieces, batch)


def _summed(spec: VAESpec, f: np.ndarray, pieces: list[tuple[np.ndarray, np.ndarray, np.ndarray]],
            batch: float) -> list[Op]:
    """The encoder's ops with MACs and traffic summed over ``pieces`` ((tile height, tile width, tiles) arrays at each
    point): the ledger evaluated once per distinct (frames, height, width) among all pieces (tile sides take few
    values), then gathered back per piece and weighted."""
    side = int(max(max(float(h.max()), float(w.max())) for h, w, _ in pieces)) + 1
    keys = np.concatenate([(f.astype(np.int64) * side + h.astype(np.int64)) * side + w.astype(np.int64)
                           for h, w, _ in pieces])
    uniq, inverse = np.unique(keys, return_inverse=True)
    shape = (uniq // (side * side)).astype(np.float64), (uniq // side % side).astype(np.float64), (
        uniq % side).astype(np.float64)
    ops = vae_encoder_ledger(spec, shape, batch)
    per_shape = np.stack([np.broadcast_to(np.asarray(v, dtype=np.float64), uniq.shape)
                          for op in ops for v in (op.macs, op.elements)], axis=1)  # (shapes, 2 x ops): rows gather fast
    inverse = inverse.reshape(len(pieces), -1)
    total = np.zeros((f.size, per_shape.shape[1]))
    buf = np.empty_like(total)
    for p, (_, _, n) in enumerate(pieces):
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
