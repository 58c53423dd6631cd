"""family='cogvideox': CogVideoX's VAE (diffusers AutoencoderKLCogVideoX; reference_model/vae/cogvideox.py)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from sora_compute.specs.vae.base import VAEBase

__all__ = ["CogVideoXVAE"]


class CogVideoXVAE(VAEBase):
    """AutoencoderKLCogVideoX: GroupNorm encoder, decoder norms conditioned on the latent. Every level but the last
    halves H and W; the first log2(t) of those also halve time."""

    family: Literal["cogvideox"] = "cogvideox"
    causal: Literal[True] = Field(default=True, description="causal (the first frame is encoded alone)")
    patch_size: Literal[1] = Field(default=1, description="no pixel-unshuffle")

    @model_validator(mode="after")
    def _check_layout(self) -> CogVideoXVAE:
        self._check_levels()
        self._check_halvings()
        self._check_groups(self.block_out_channels)
        return self
