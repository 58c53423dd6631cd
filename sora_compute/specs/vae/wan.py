"""family='wan': Wan2.1's VAE (diffusers AutoencoderKLWan; reference_model/vae/wan.py)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from sora_compute.specs.vae.base import VAEBase

__all__ = ["WanVAE"]


class WanVAE(VAEBase):
    """AutoencoderKLWan 2.1: channel RMSNorm, 2D spatial resampling plus a separate temporal conv, per-frame mid
    attention, quant convs. Every level but the last halves H and W; the last log2(t) of those also halve time."""

    family: Literal["wan"] = "wan"
    causal: Literal[True] = Field(default=True, description="causal (the first frame is encoded alone)")
    patch_size: Literal[1] = Field(default=1, description="no pixel-unshuffle")

    @model_validator(mode="after")
    def _check_layout(self) -> WanVAE:
        self._check_levels()
        self._check_halvings()
        if any(c % 2 for c in self.block_out_channels[1:]):
            raise ValueError(f"family='wan' halves channels when up-sampling: channels must be even, got "
                             f"{self.block_out_channels}")
        return self

    @property
    def level_temporal_factors(self) -> tuple[int, ...]:
        """2 at the last log2(t) down-sampling levels, 1 before."""
        n, k = self.num_spatial_down, self.num_temporal_down
        return (1,) * (n - k) + (2,) * k
