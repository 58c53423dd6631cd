"""family='opensora': Open-Sora 1.2's OpenSoraVAE_V1_2 (reference_model/vae/opensora.py)."""

from __future__ import annotations

import math
from typing import Any, Literal

import numpy as np
from pydantic import Field, model_validator

from sora_compute.specs.base import VideoShapeError
from sora_compute.specs.vae.base import VAEBase
from sora_compute.specs.vae.generic import GenericVAE

__all__ = ["OpenSoraVAE", "OPENSORA_MICRO_BATCH"]

#: Frames per call of the 2D VAE: OpenSoraVAE_V1_2(micro_batch_size=4) (hpcai-tech/Open-Sora
#: opensora/models/vae/vae.py); reference_model/vae/opensora.py keeps the same value (tests check they agree).
OPENSORA_MICRO_BATCH = 4


class OpenSoraVAE(VAEBase):
    """Two VAEs stacked: a per-frame SD/SDXL VAE (``block_out_channels``, ``layers_per_block``,
    ``spatial_compression``; diffusers AutoencoderKL with its quant convs, run over the frames in micro-batches of
    ``OPENSORA_MICRO_BATCH``) that maps pixels to ``latent_channels`` channels, then a causal MAGVIT-v2
    style temporal VAE (VAE_Temporal_SD: ``temporal_block_out_channels`` widths, ``layers_per_level`` ResBlocks per
    level and after the last, ``temporal_factors`` of 1 or 2 per level boundary) over the same channels. The temporal
    VAE runs on chunks of ``chunk_frames`` frames (``micro_frame_size``), each padded in front to a multiple of
    ``temporal_compression``: a chunk of r frames gives ceil(r / t) latent frames (17 -> 5), so any frame count fits.
    """

    family: Literal["opensora"] = "opensora"
    patch_size: Literal[1] = Field(default=1, description="no pixel-unshuffle")
    temporal_block_out_channels: tuple[int, ...] = Field(
        description="widths of the temporal VAE's levels (128, 256, 256, 512)")
    layers_per_level: tuple[int, ...] = Field(description="ResBlocks per temporal level, then after the last")
    temporal_factors: tuple[int, ...] | None = Field(
        default=None, description="1 or 2 per temporal level boundary (default: 2 at the last log2(t))")
    chunk_frames: int | None = Field(
        default=None, gt=0, description="frames per independently encoded chunk (17; None = whole clip)")
    chunk_latent_frames: int | None = Field(
        default=None, gt=0, description="latent frames of a whole chunk (ceil(chunk_frames / t) = 5)")

    @model_validator(mode="after")
    def _check_layout(self) -> OpenSoraVAE:
        """A per-frame SD VAE (every level but the last halves H and W) and a temporal VAE."""
        n, tc, t = len(self.block_out_channels), self.temporal_block_out_channels, self.temporal_compression
        if (self.chunk_frames is None) != (self.chunk_latent_frames is None):
            raise ValueError("give chunk_frames and chunk_latent_frames together")
        if self.num_spatial_down != n - 1:
            raise ValueError(f"family='opensora' down-samples at every 2D level but the last: spatial_compression must "
                             f"be 2^{n - 1} = {2 ** (n - 1)} (patch_size 1), got {self.spatial_compression}")
        if len(self.layers_per_level) != len(tc) + 1:
            raise ValueError(f"family='opensora' needs layers_per_level with {len(tc) + 1} entries (ResBlocks per "
                             f"temporal level, then after the last)")
        factors = self.level_temporal_factors
        if len(factors) != len(tc) - 1 or any(f not in (1, 2) for f in factors) or math.prod(factors) != t:
            raise ValueError(f"family='opensora' halves time or not between temporal levels: temporal_factors needs "
                             f"{len(tc) - 1} entries of 1 or 2 whose product is temporal_compression={t}, "
                             f"got {factors}")
        self._check_groups(self.block_out_channels + tc, "every channel count")
        if self.chunk_frames is not None and self.chunk_latent_frames != -(-self.chunk_frames // t):
            raise ValueError(f"family='opensora' pads each chunk to a multiple of {t} frames: chunk_latent_frames must "
                             f"be ceil({self.chunk_frames} / {t}) = {-(-self.chunk_frames // t)}")
        return self

    @property
    def spatial_vae(self) -> GenericVAE:
        """The per-frame 2D VAE as a generic spec (quant convs not included)."""
        return GenericVAE(in_channels=self.in_channels, latent_channels=self.latent_channels,
                          spatial_compression=self.spatial_compression, temporal_compression=1, causal=False,
                          block_out_channels=self.block_out_channels, layers_per_block=self.layers_per_block,
                          norm_groups=self.norm_groups, temporal_kernel=1)

    @property
    def level_temporal_factors(self) -> tuple[int, ...]:
        """The temporal VAE's factors: ``temporal_factors``, else 2 at its last log2(t) level boundaries."""
        if self.temporal_factors is not None:
            return self.temporal_factors
        n, k = len(self.temporal_block_out_channels) - 1, self.num_temporal_down
        return (1,) * (n - k) + (2,) * k

    def padded_latent_frames(self, num_frames: Any) -> Any:
        """Latent frames of ``num_frames`` (an int or a numpy array) in chunks of ``chunk_frames``, each padded in
        front to a multiple of t: ``F // c x chunk_latent_frames + ceil((F % c) / t)``."""
        t, c = self.temporal_compression, self.chunk_frames
        if c is None or self.chunk_latent_frames is None:
            return -(-num_frames // t)
        return num_frames // c * self.chunk_latent_frames + -(-(num_frames % c) // t)

    def latent_frames(self, num_frames: int) -> int:
        """Latent frames for ``num_frames`` video frames: it pads, so any count of at least 1 fits."""
        if num_frames < 1:
            raise VideoShapeError(f"num_frames={num_frames}: use at least 1 frame")
        return int(self.padded_latent_frames(num_frames))

    def decoded_frames(self, latent_frames: Any) -> Any:
        """The most frames that give ``latent_frames``: ``L // k x chunk_frames + (L % k) x t`` with k =
        chunk_latent_frames; fewer are cut from the front."""
        t, k, c = self.temporal_compression, self.chunk_latent_frames, self.chunk_frames
        if k is None or c is None:
            return latent_frames * t
        return latent_frames // k * c + latent_frames % k * t

    def frame_grid(self, num_frames: np.ndarray) -> tuple[np.ndarray, np.ndarray, str]:
        """Chunks padded to a multiple of t: any whole number of frames fits."""
        return (self.padded_latent_frames(num_frames), (num_frames < 1) | (num_frames % 1 != 0),
                "a whole number >= 1")

    def snap_frames(self, num_frames: np.ndarray, pt: int) -> np.ndarray:
        """It pads, so any count fits: the nearest whole number (pt = 1), else the nearest count that decodes to a
        multiple of pt latent frames with no padding."""
        if pt == 1:
            return np.maximum(1.0, np.floor(num_frames + 0.5))
        return self._snap_decodable(num_frames, pt, self.padded_latent_frames(np.maximum(num_frames, 1.0)))
