"""A spatially tiled VAE encode over a grid of shapes, vectorised: the ops of every tile the official schedule
encodes (``ledger/vae_schedule.py`` ``_tiled_encode``: HunyuanVideo ``spatial_tiled_encode``, pixel tiles of
``tile_px`` every ``stride_px``, edge tiles cut short, overlapping tiles recomputed), summed per op.

Along one side of S pixels the tiles start at 0, stride, 2 stride, ... < S: ``floor((S - tile) / stride) + 1`` of
them are whole tiles (0 when S < tile), and the at most ceil(tile / stride) starts after those are edge tiles of
S - start pixels. The encode's MACs are then sum over (row slot a, column slot b) of count_a x count_b x
MACs(F, size_a, size_b): the ledger evaluated once per distinct (F, tile height, tile width) of the grid.
A clip no larger than a tile in both sides is one call on the whole clip (the schedule's rule).

A tiled decode (``scheduled_decode``'s ``_tiled``) is cut the same way on the latent grid: latent tiles of
tile_px // compression every stride_px // compression, and (temporal tiles) tile_frames // tc + 1 latent frames every
stride_frames // tc, edge tiles cut short; a frame-batched decode (CogVideoX) calls its frame-batch ledger on each
tile's batches (``frame_batches``), as the single-shape schedule does.

Both return the ledger on the distinct call shapes and the ``Gather`` of each grid point's calls onto them
(``evaluate/gather.py``): the FLOP count sums the ledger's MACs and traffic through it, the time model the seconds of
each distinct call, so a grid point is priced exactly as its single-shape schedule."""

from __future__ import annotations

import numpy as np

from sora_compute.evaluate.gather import Gather, Piece, gather
from sora_compute.ledger.ops import Op
from sora_compute.ledger.registry import lookup
from sora_compute.ledger.vae import vae_decoder_ledger, vae_encoder_ledger
from sora_compute.ledger.vae_schedule import frame_batches
from sora_compute.specs.vae import VAESpec
from sora_compute.specs.vae.schedule import DecodeSchedule

__all__ = ["spatially_tiled", "tiled_encode_calls", "tiled_decode_calls"]


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


def _spatial(f: np.ndarray, h: np.ndarray, w: np.ndarray, th: int, tw: int, sh: int, sw: int) -> list[Piece]:
    """The calls of ``f`` frames over an (h, w) plane tiled by (th, tw) every (sh, sw): one on the whole plane where
    it is no larger than a tile, else each tile slot."""
    one = (h <= th) & (w <= tw)
    pieces = [(f, h, w, one.astype(np.float64))]
    pieces += [(f, np.where(one, th, ha), np.where(one, tw, wb), np.where(one, 0.0, ca * cb))
               for ha, ca in _slots(h, th, sh) for wb, cb in _slots(w, tw, sw)]
    return pieces


def tiled_encode_calls(spec: VAESpec, frames: np.ndarray, height: np.ndarray, width: np.ndarray,
                       schedule: DecodeSchedule, batch: float = 1) -> tuple[list[Op], Gather]:
    """The encoder's ledger on each distinct tile of ``schedule`` over the grid of clips, and each point's tiles
    (a whole-pixel tile's MACs are whole numbers, so the gathered sums are exact below 2^53)."""
    assert schedule.tile_px is not None and schedule.stride_px is not None
    f, h, w = np.broadcast_arrays(*(np.asarray(v, dtype=np.float64) for v in (frames, height, width)))
    (th, tw), (sh, sw) = schedule.tile_px, schedule.stride_px
    shape, g = gather(_spatial(f, h, w, th, tw, sh, sw))
    return vae_encoder_ledger(spec, shape, batch), g


def tiled_decode_calls(spec: VAESpec, frames: np.ndarray, height: np.ndarray, width: np.ndarray,
                       schedule: DecodeSchedule, batch: float = 1) -> tuple[list[Op], Gather]:
    """The decoder's ledger (a frame batch's, for a frame-batched schedule) on each distinct call of the tiled
    decode ``schedule`` of latents (``frames``, ``height``, ``width``) over the grid, and each point's calls."""
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
    fb = schedule.frame_batch
    if fb is None:
        shape, g = gather(pieces)
        return vae_decoder_ledger(spec, shape, batch), g
    batched = [(np.where(k > 0, frames_, fb), ph, pw, n * k) for pf, ph, pw, n in pieces
               for frames_, k in frame_batches(pf, fb)]
    shape, g = gather(batched)
    return lookup("vae_frame_batch", spec.family)(spec, shape, batch), g
