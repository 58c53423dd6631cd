"""What every VAE family's spec shares: the pixel and latent widths, the compression, the encoder's levels, the
default frame rule (causal: 1 + t k frames) and the layout checks the families reuse."""

from __future__ import annotations

from typing import Any

import numpy as np
from pydantic import Field, field_validator, model_validator

from sora_compute.specs.base import VideoShapeError, _is_power_of_two, _Spec

__all__ = ["VAEBase", "positive_entries"]


def positive_entries(v: tuple[int, ...] | None) -> tuple[int, ...] | None:
    """A tuple field's entries must be positive."""
    if v is not None and any(c <= 0 for c in v):
        raise ValueError(f"all entries must be positive, got {v}")
    return v


class VAEBase(_Spec):
    """Fields and derived layout of every 3D VAE; each family (one module in this package) adds its own fields, its
    checks and, where it differs, its frame rule."""

    family: str
    in_channels: int = Field(default=3, gt=0, description="pixel channels (RGB = 3)")
    latent_channels: int = Field(default=16, gt=0, description="latent channels")
    spatial_compression: int = Field(default=8, gt=0, description="pixels per latent, each of H and W")
    temporal_compression: int = Field(default=4, gt=0, description="frames per latent frame")
    causal: bool = Field(default=True, description="causal temporal convolution (first frame alone)")
    block_out_channels: tuple[int, ...] = Field(
        default=(128, 256, 512, 512), min_length=1, description="channels of each encoder level"
    )
    layers_per_block: int = Field(default=2, gt=0, description="ResNet blocks per encoder level")
    norm_groups: int = Field(default=32, gt=0, description="GroupNorm groups")
    patch_size: int = Field(default=1, gt=0, description="pixel-unshuffle p x p before the encoder (LTX-Video: 4)")

    @field_validator("block_out_channels", "decoder_block_out_channels", "layers_per_level", "temporal_factors",
                     "temporal_block_out_channels", "energy_flow_channels", check_fields=False)
    @classmethod
    def _positive_entries(cls, v: tuple[int, ...] | None) -> tuple[int, ...] | None:
        return positive_entries(v)

    @model_validator(mode="after")
    def _check_compression(self) -> VAEBase:
        s = self.spatial_compression
        if not _is_power_of_two(s):
            raise ValueError(f"spatial_compression must be a power of two, got {s}")
        if not _is_power_of_two(self.patch_size) or self.patch_size > s:
            raise ValueError(f"patch_size must be a power of two no larger than spatial_compression, got "
                             f"{self.patch_size}")
        return self

    # --- checks the families share ---------------------------------------------------------
    def _check_levels(self) -> None:
        """Every level but the last halves H and W (after the pixel-unshuffle)."""
        n = len(self.block_out_channels)
        if self.num_spatial_down != n - 1:
            raise ValueError(f"family={self.family!r} down-samples at every level but the last: spatial_compression "
                             f"must be patch_size x 2^{n - 1} = {self.patch_size * 2 ** (n - 1)}, got "
                             f"{self.spatial_compression}")

    def _check_halvings(self) -> None:
        """Time halves at up to every down-sampling level."""
        t, n = self.temporal_compression, len(self.block_out_channels)
        if not _is_power_of_two(t) or self.num_temporal_down > n - 1:
            raise ValueError(f"temporal_compression must be a power of two up to 2^{n - 1} (or give temporal_factors "
                             f"for family='mochi'), got {t}")

    def _check_groups(self, channels: tuple[int, ...], what: str = "every block_out_channels entry") -> None:
        for c in channels:
            if c % self.norm_groups:
                raise ValueError(f"norm_groups={self.norm_groups} must divide {what}, not {c}")

    # --- derived layout -------------------------------------------------------------------
    @property
    def level_temporal_factors(self) -> tuple[int, ...]:
        """Temporal stride of each encoder down-sampling level: 2 at the first log2(t) levels, 1 elsewhere (families
        that halve time at the last levels, or take the factors as a field, say so)."""
        n, k = self.num_spatial_down, self.num_temporal_down
        return (2,) * k + (1,) * (n - k)

    @property
    def decoder_channels(self) -> tuple[int, ...]:
        """Decoder channels per level, deepest first."""
        return tuple(reversed(self.block_out_channels))

    @property
    def num_spatial_down(self) -> int:
        """Levels that halve height and width: log2(spatial_compression / patch_size)."""
        return (self.spatial_compression // self.patch_size).bit_length() - 1

    @property
    def pixel_channels(self) -> int:
        """Channels at the encoder input / decoder output after pixel-unshuffle: in_channels x patch^2."""
        return self.in_channels * self.patch_size**2

    @property
    def num_temporal_down(self) -> int:
        """Levels that also halve time: log2(temporal_compression)."""
        return self.temporal_compression.bit_length() - 1

    def latent_frames(self, num_frames: int) -> int:
        """Latent frames for ``num_frames`` video frames (raises if they do not fit)."""
        t = self.temporal_compression
        if self.causal:
            if (num_frames - 1) % t:
                lo = 1 + (num_frames - 1) // t * t
                raise VideoShapeError(
                    f"num_frames={num_frames} does not fit a causal VAE with temporal compression {t}: "
                    f"use 1 + {t}k frames, e.g. {lo} or {lo + t}"
                )
            return 1 + (num_frames - 1) // t
        if num_frames % t:
            lo = num_frames // t * t
            hint = f"{lo} or {lo + t}" if lo else f"{t}"
            raise VideoShapeError(
                f"num_frames={num_frames} is not divisible by temporal compression {t}: use e.g. {hint}"
            )
        return num_frames // t

    def decoded_frames(self, latent_frames: Any) -> Any:
        """Video frames produced by decoding ``latent_frames`` (an int or a numpy array)."""
        t = self.temporal_compression
        return 1 + (latent_frames - 1) * t if self.causal else latent_frames * t

    def frame_grid(self, num_frames: np.ndarray) -> tuple[np.ndarray, np.ndarray, str]:
        """Vectorised ``latent_frames``: (latent frames, where ``num_frames`` (float64) does not fit, the rule that
        fits, as a sentence's end) for grids of shapes."""
        t = self.temporal_compression
        offset = 1 if self.causal else 0
        rule = f"1 + {t}k frames" if self.causal else f"a multiple of {t} frames"
        return (num_frames - offset) // t + offset, (num_frames < 1) | ((num_frames - offset) % t != 0), rule

    def snap_frames(self, num_frames: np.ndarray, pt: int) -> np.ndarray:
        """The frame counts (float64) nearest ``num_frames`` that this VAE takes with latent frames a multiple of the
        DiT's temporal patch ``pt`` (at least pt), ties going up: 1 + t k for a causal VAE, t k otherwise."""
        t = self.temporal_compression
        latent = (num_frames - 1) / t + 1 if self.causal else num_frames / t
        latent = np.maximum(pt, np.floor(latent / pt + 0.5) * pt)
        return 1 + t * (latent - 1) if self.causal else t * latent

    def _snap_decodable(self, num_frames: np.ndarray, pt: int, latent: np.ndarray) -> np.ndarray:
        """The frame counts nearest ``num_frames`` (ties going up) that decode exactly from a multiple of ``pt``
        latent frames, among those near ``latent`` (the latent frames ``num_frames`` give)."""
        base = np.floor(latent / pt) * pt
        cands = np.stack([np.maximum(pt, base + d * pt) for d in (-1, 0, 1, 2)])
        made = np.stack([np.asarray(self.decoded_frames(c), dtype=np.float64) for c in cands.astype(int)])
        dist = np.abs(made - num_frames) - (made > num_frames) * 0.25  # ties go up
        return np.take_along_axis(made, np.argmin(dist, axis=0)[None], axis=0)[0]
