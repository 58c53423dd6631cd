"""family='ltx': LTX-Video 0.9.0's VAE (diffusers AutoencoderKLLTXVideo; reference_model/vae/ltx.py)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from sora_compute.specs.vae.base import VAEBase

__all__ = ["LTXVAE"]


class LTXVAE(VAEBase):
    """AutoencoderKLLTXVideo 0.9.0: pixel-unshuffle ``patch_size``, weightless RMSNorm, ``layers_per_level``,
    non-causal decoder; every down-sampling level halves time too (t = 2^(levels - 1))."""

    family: Literal["ltx"] = "ltx"
    causal: Literal[True] = Field(default=True, description="causal (the first frame is encoded alone)")
    layers_per_level: tuple[int, ...] = Field(description="ResNets per encoder level, then in the mid-block "
                                              "(levels + 1 entries)")

    @model_validator(mode="after")
    def _check_layout(self) -> LTXVAE:
        n, t = len(self.block_out_channels), self.temporal_compression
        self._check_levels()
        if len(self.layers_per_level) != n + 1:
            raise ValueError(f"family='ltx' needs layers_per_level with {n + 1} entries (levels, mid)")
        self._check_halvings()
        if t != 2 ** (n - 1):
            raise ValueError(f"family='ltx' halves time at every down-sampling level: temporal_compression must be "
                             f"{2 ** (n - 1)}, got {t}")
        return self
