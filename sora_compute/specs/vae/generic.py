"""family='generic': the layout-driven 3D VAE of the CogVideoX / HunyuanVideo style (reference_model/vae/generic.py)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from sora_compute.specs.base import _is_power_of_two
from sora_compute.specs.vae.base import VAEBase

__all__ = ["GenericVAE"]


class GenericVAE(VAEBase):
    """A 3D convolutional VAE (encoder + decoder) of the CogVideoX / HunyuanVideo family.

    Levels of ResNet blocks with GroupNorm; the first ``log2(spatial_compression)`` levels
    down-sample height and width by 2, and the first ``log2(temporal_compression)`` of those
    also halve time. A mid-block (ResNet, optional attention over all latent positions,
    ResNet) sits between encoder and decoder levels. With ``causal`` temporal convolutions the
    first frame is encoded on its own: ``1 + (F - 1) / t`` latent frames (CogVideoX/Hunyuan);
    otherwise ``F / t``. ``temporal_kernel=1`` gives a per-frame 2D VAE (e.g. SD's VAE).
    """

    family: Literal["generic"] = Field(default="generic", description="the layout-driven VAE")
    mid_attention: bool = Field(default=True, description="self-attention in the mid-block")
    double_z: bool = Field(default=True, description="encoder outputs mean and log-variance")
    temporal_kernel: int = Field(default=3, gt=0, description="temporal size of 3x3 conv kernels (1 = 2D VAE)")
    quant_convs: bool = Field(default=False, description="1x1x1 quant_conv after the encoder and post_quant_conv "
                              "before the decoder (diffusers' AutoencoderKL family)")

    @model_validator(mode="after")
    def _check_layout(self) -> GenericVAE:
        s, t = self.spatial_compression, self.temporal_compression
        if not _is_power_of_two(t):
            raise ValueError(f"temporal_compression must be a power of two, got {t}")
        if self.num_spatial_down > len(self.block_out_channels) - 1:
            raise ValueError(f"spatial_compression={s} needs {self.num_spatial_down + 1} levels in "
                             f"block_out_channels, got {len(self.block_out_channels)}")
        if self.num_temporal_down > self.num_spatial_down:
            raise ValueError(f"temporal_compression={t} must not exceed spatial_compression={s}")
        if self.temporal_kernel % 2 == 0:
            raise ValueError(f"temporal_kernel must be odd (it keeps the frame count), got {self.temporal_kernel}")
        if t > 1 and self.temporal_kernel == 1:
            raise ValueError("temporal_compression > 1 needs temporal_kernel > 1")
        self._check_groups(self.block_out_channels)
        return self

    @property
    def conv_kernel(self) -> tuple[int, int, int]:
        """Kernel of the 3x3 convolutions: (temporal_kernel, 3, 3)."""
        return (self.temporal_kernel, 3, 3)
