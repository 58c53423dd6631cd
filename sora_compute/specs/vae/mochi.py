"""family='mochi': Mochi-1's VAE (diffusers AutoencoderKLMochi; reference_model/vae/mochi.py)."""

from __future__ import annotations

import math
from typing import Literal

from pydantic import Field, model_validator

from sora_compute.specs.vae.base import VAEBase

__all__ = ["MochiVAE", "MOCHI_FOURIER_FREQS", "MOCHI_HEAD_DIM"]

MOCHI_FOURIER_FREQS = 2  # Mochi's FourierFeatures(start=6, stop=8): sin and cos of 2 frequencies per pixel channel
MOCHI_HEAD_DIM = 32  # Mochi's VAE attention head width


class MochiVAE(VAEBase):
    """AutoencoderKLMochi: Fourier features, asymmetric widths ``decoder_block_out_channels``, per-level
    ``layers_per_level`` and ``temporal_factors`` (1, 2, 3: 6x), causal temporal attention in the encoder."""

    family: Literal["mochi"] = "mochi"
    causal: Literal[True] = Field(default=True, description="causal (the first frame is encoded alone)")
    patch_size: Literal[1] = Field(default=1, description="no pixel-unshuffle")
    layers_per_level: tuple[int, ...] = Field(description="ResNets per encoder level, then in the mid-block "
                                              "(levels + 1 entries)")
    decoder_block_out_channels: tuple[int, ...] | None = Field(
        default=None, description="decoder channels per level if not the encoder's")
    temporal_factors: tuple[int, ...] | None = Field(
        default=None, description="temporal stride of each down-sampling level (1, 2, 3)")

    @model_validator(mode="after")
    def _check_layout(self) -> MochiVAE:
        chans, n, t = self.block_out_channels, len(self.block_out_channels), self.temporal_compression
        self._check_levels()
        if len(self.layers_per_level) != n + 1:
            raise ValueError(f"family='mochi' needs layers_per_level with {n + 1} entries (levels, mid)")
        dec = self.decoder_block_out_channels
        if dec is not None and len(dec) != n:
            raise ValueError(f"decoder_block_out_channels needs {n} entries, got {dec}")
        for c in chans[1:] + (dec or chans):
            if c % 32:
                raise ValueError(f"family='mochi' attends with 32-channel heads and normalises with GroupNorm: "
                                 f"channels must be multiples of 32, got {c}")
        if self.temporal_factors is not None:
            if len(self.temporal_factors) != n - 1 or math.prod(self.temporal_factors) != t:
                raise ValueError(f"temporal_factors must have {n - 1} entries whose product is temporal_compression="
                                 f"{t}, got {self.temporal_factors}")
        else:
            self._check_halvings()
        self._check_groups(chans + (dec or ()))
        return self

    @property
    def level_temporal_factors(self) -> tuple[int, ...]:
        """``temporal_factors``, else 2 at the last log2(t) down-sampling levels."""
        if self.temporal_factors is not None:
            return self.temporal_factors
        n, k = self.num_spatial_down, self.num_temporal_down
        return (1,) * (n - k) + (2,) * k

    @property
    def decoder_channels(self) -> tuple[int, ...]:
        return tuple(reversed(self.decoder_block_out_channels or self.block_out_channels))
