"""Grid totals of calls on a few distinct shapes: a tiled VAE pass over a grid of clips calls its ledger on tiles of
a handful of sizes, so any per-call quantity (MACs and traffic per op, predicted seconds) is evaluated once per
distinct shape and gathered back to each grid point, weighted by how many calls the point makes on it:

    total[p] = sum over pieces k of calls[k, p] x value[index[k, p]]

One implementation for every evaluator: the FLOP count (``evaluate/flops.count_calls``) and the time model
(``evaluate/time_grid.calls_seconds``) gather through the same ``Gather``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ["Gather", "Piece", "gather"]

Piece = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]  # (frames, height, width, calls) at each grid point


@dataclass(frozen=True, eq=False)
class Gather:
    """``index[k, p]``: the distinct shape piece k calls at grid point p; ``calls[k, p]``: how many times (0 where the
    point has no such piece); ``shape``: the grid's shape."""

    index: np.ndarray  # (pieces, points) int
    calls: np.ndarray  # (pieces, points) float64
    shape: tuple[int, ...]

    def total(self, per_shape: np.ndarray) -> np.ndarray:
        """(distinct shapes, k) values -> (points, k) totals: each piece's rows gathered and weighted by its calls,
        in place where every point has the piece, else only where it does (measured faster than gathering only the
        (point, piece) pairs with calls: whole-row takes run at memory speed)."""
        total = np.zeros((self.index.shape[1], per_shape.shape[1]))
        buf = np.empty_like(total)
        for index, calls in zip(self.index, self.calls, strict=True):
            there = np.flatnonzero(calls)
            if there.size == calls.size:
                np.take(per_shape, index, axis=0, out=buf)
                total += np.multiply(buf, calls[:, None], out=buf)
            elif there.size:
                total[there] += per_shape[index[there]] * calls[there, None]
        return total


def gather(pieces: Sequence[Piece]) -> tuple[tuple[np.ndarray, np.ndarray, np.ndarray], Gather]:
    """The distinct (frames, height, width) among ``pieces`` (float64 arrays, whole numbers) and the ``Gather`` of
    the pieces' calls onto them."""
    f = pieces[0][0]
    side = int(max(max(float(t.max()), float(h.max()), float(w.max())) for t, h, w, _ in pieces)) + 1
    keys = np.concatenate([((t.astype(np.int64) * side + h.astype(np.int64)) * side + w.astype(np.int64)).ravel()
                           for t, h, w, _ in pieces])
    uniq, inverse = np.unique(keys, return_inverse=True)
    shape = ((uniq // (side * side)).astype(np.float64), (uniq // side % side).astype(np.float64),
             (uniq % side).astype(np.float64))
    calls = np.stack([np.broadcast_to(n, f.shape).ravel() for _, _, _, n in pieces]).astype(np.float64)
    return shape, Gather(inverse.reshape(len(pieces), -1), calls, tuple(f.shape))
