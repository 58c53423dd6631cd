"""Tiled decoding as diffusers runs it (AutoencoderKLHunyuanVideo ``tiled_decode`` and ``_temporal_tiled_decode``;
CogVideoX, LTX-Video and Mochi tile the same way): overlapping latent tiles decoded one by one and kept, blended
linearly across each overlap, cropped to the stride and concatenated; and spatially tiled encoding (``tiled_encode``).
Sizes in pixels and video frames."""

from __future__ import annotations

import torch
from torch import nn


def _blend(a: torch.Tensor, b: torch.Tensor, extent: int, dim: int) -> torch.Tensor:
    """b's first ``extent`` positions along ``dim`` faded in from a's last ones (in place, as diffusers' blend_*)."""
    extent = min(a.shape[dim], b.shape[dim], extent)
    for x in range(extent):
        bs = b.select(dim, x)
        bs.copy_(a.select(dim, a.shape[dim] - extent + x) * (1 - x / extent) + bs * (x / extent))
    return b


def tiled_decode(decoder: nn.Module, z: torch.Tensor, compression: int, tile_px: tuple[int, int],
                 stride_px: tuple[int, int]) -> torch.Tensor:
    """Spatial tiles of ``tile_px`` every ``stride_px`` pixels (latent: // compression)."""
    _, _, _, H, W = z.shape
    th, tw = tile_px[0] // compression, tile_px[1] // compression
    sh, sw = stride_px[0] // compression, stride_px[1] // compression
    rows = []
    for i in range(0, H, sh):
        rows.append([decoder(z[:, :, :, i:i + th, j:j + tw]) for j in range(0, W, sw)])
    result_rows = []
    for i, row in enumerate(rows):
        result_row = []
        for j, tile in enumerate(row):
            if i > 0:
                tile = _blend(rows[i - 1][j], tile, tile_px[0] - stride_px[0], 3)
            if j > 0:
                tile = _blend(row[j - 1], tile, tile_px[1] - stride_px[1], 4)
            result_row.append(tile[:, :, :, :stride_px[0], :stride_px[1]])
        result_rows.append(torch.cat(result_row, dim=4))
        del result_row
    return torch.cat(result_rows, dim=3)[:, :, :, :H * compression, :W * compression]


def temporal_tiled_decode(decoder: nn.Module, z: torch.Tensor, compression: int, temporal: int,
                          tile_px: tuple[int, int] | None, stride_px: tuple[int, int] | None, tile_frames: int,
                          stride_frames: int) -> torch.Tensor:
    """Temporal tiles of ``tile_frames`` // temporal + 1 latent frames every ``stride_frames`` // temporal, each
    spatially tiled when it exceeds ``tile_px`` (causal VAE: the first decoded frame of later tiles dropped)."""
    _, _, T, H, W = z.shape
    tl, sl = tile_frames // temporal, stride_frames // temporal
    row = []
    for i in range(0, T, sl):
        tile = z[:, :, i:i + tl + 1]
        if tile_px is not None and stride_px is not None and (tile_px[0] // compression < H
                                                              or tile_px[1] // compression < W):
            decoded = tiled_decode(decoder, tile, compression, tile_px, stride_px)
        else:
            decoded = decoder(tile)
        row.append(decoded[:, :, 1:] if i > 0 else decoded)
        del decoded, tile
    result = []
    for i, tile in enumerate(row):
        if i > 0:
            tile = _blend(row[i - 1], tile, tile_frames - stride_frames, 2)
            result.append(tile[:, :, :stride_frames])
        else:
            result.append(tile[:, :, :stride_frames + 1])
    return torch.cat(result, dim=2)[:, :, :(T - 1) * temporal + 1]


def tiled_encode(encoder: nn.Module, x: torch.Tensor, compression: int, tile_px: tuple[int, int],
                 stride_px: tuple[int, int]) -> torch.Tensor:
    """Spatial tiles of ``tile_px`` pixels every ``stride_px`` encoded one by one and kept, blended over
    (tile - stride) // compression latent positions, cropped to stride // compression and concatenated
    (HunyuanVideo ``spatial_tiled_encode``, diffusers ``tiled_encode``)."""
    _, _, _, H, W = x.shape
    rows = []
    for i in range(0, H, stride_px[0]):
        rows.append([encoder(x[:, :, :, i:i + tile_px[0], j:j + tile_px[1]]) for j in range(0, W, stride_px[1])])
    bh, bw = (tile_px[0] - stride_px[0]) // compression, (tile_px[1] - stride_px[1]) // compression
    sh, sw = stride_px[0] // compression, stride_px[1] // compression
    result_rows = []
    for i, row in enumerate(rows):
        result_row = []
        for j, tile in enumerate(row):
            if i > 0:
                tile = _blend(rows[i - 1][j], tile, bh, 3)
            if j > 0:
                tile = _blend(row[j - 1], tile, bw, 4)
            result_row.append(tile[:, :, :, :sh, :sw])
        result_rows.append(torch.cat(result_row, dim=4))
        del result_row
    return torch.cat(result_rows, dim=3)[:, :, :, :H // compression, :W // compression]
