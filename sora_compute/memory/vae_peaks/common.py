"""What the VAE inference-peak walks share: ``Live`` (bytes alive now and the high-water mark) and the blocks
several families run (a conv on a padded copy, chains of blocks)."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

__all__ = ["Live", "Shape3", "padded_conv", "chain", "level"]

Shape3 = tuple[int, int, int]  # (T, H, W) of one sample


class Live:
    """Bytes alive now and the high-water mark; ``unit`` = bytes per activation element x batch."""

    def __init__(self, act_bytes: int = 2, batch: int = 1) -> None:
        self.now = 0
        self.peak = 0
        self.unit = act_bytes * batch
        self.batch = batch

    def numel(self, c: int, shape: tuple[int, int, int]) -> int:
        """Bytes of a (batch, c, T, H, W) tensor."""
        return c * shape[0] * shape[1] * shape[2] * self.unit

    def alloc(self, n: int) -> int:
        self.now += n
        self.peak = max(self.peak, self.now)
        return n

    def free(self, *ns: int) -> None:
        self.now -= sum(ns)


def padded_conv(live: Live, c_in: int, c_out: int, padded: Shape3, out: Shape3) -> int:
    """A convolution on a padded copy of its input (F.pad or torch.cat), freed when the conv returns."""
    pad = live.alloc(live.numel(c_in, padded))
    y = live.alloc(live.numel(c_out, out))
    live.free(pad)
    return y


def chain(live: Live, x: int, steps: list[Callable[[], int]]) -> int:
    """Steps in sequence on ``x`` (held by the caller); each step's output is freed when the next step returns."""
    cur = x
    for i, step in enumerate(steps):
        nxt = step()
        if i > 0:
            live.free(cur)
        cur = nxt
    return cur


def level(live: Live, x: int, blocks: list[tuple[int, int]], shape: Shape3,
           resnet: Callable[[Live, int, int, Shape3], int]) -> int:
    """ResNets (c_in, c_out) in sequence on ``x`` (held by the caller); each output is freed when the next returns."""
    return chain(live, x, [partial(resnet, live, ci, co, shape) for ci, co in blocks])

