"""family='wfvae': Open-Sora-Plan v1.3's WF-VAE (modeling_wfvae.py; reference_model/vae/wfvae.py)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from sora_compute.specs.vae.base import VAEBase

__all__ = ["WFVAE", "WFVAE_FLOW_LAYERS", "WFVAE_HAAR_PARAMS"]

WFVAE_FLOW_LAYERS = 2  # WF-VAE decoder energy-flow ResnetBlock3Ds: the v1.3.0 Decoder's connect_res_layer_num default
WFVAE_HAAR_PARAMS = 64  # HaarWaveletTransform3D's eight fixed 2x2x2 conv weights (frozen parameters, not buffers)


class WFVAE(VAEBase):
    """WFVAEModel(latent_dim=8, base_channels=128, ...): a 3D Haar wavelet (fixed causal stride-2 2x2x2 convs) maps
    the 3 pixel channels to 24 at (1 + (T - 1) / 2, H / 2, W / 2); level 1 (per frame: Conv2d, ``layers_per_block``
    ResnetBlock2D, stride-2 Downsample) and level 2 (Conv2d, ResnetBlock3Ds, causal stride-2 3x3x3 conv) at
    ``block_out_channels`` (c, 2c, 4c), each followed by the concatenation of an energy-flow branch (a 2D and a 3D
    wavelet of the low band, each a Conv2d to ``energy_flow_channels[0]``); mid ResnetBlock3D, per-frame attention,
    ResnetBlock3D; causal conv_out to 2z. The decoder mirrors it; its energy-flow branches (``energy_flow_layers``
    ResnetBlock3Ds of width ``energy_flow_channels[1]`` = c and a Conv2d to 24 / 12 wavelet coefficients) are added
    back through inverse wavelets. Fixed layout: s = 8, t = 4, causal (1 + 4k frames).
    """

    family: Literal["wfvae"] = "wfvae"
    in_channels: Literal[3] = Field(default=3, description="RGB")
    spatial_compression: Literal[8] = Field(default=8, description="fixed by the wavelet levels")
    temporal_compression: Literal[4] = Field(default=4, description="fixed by the wavelet levels")
    causal: Literal[True] = Field(default=True, description="causal (the first frame is encoded alone)")
    patch_size: Literal[1] = Field(default=1, description="no pixel-unshuffle")
    mid_attention: bool = Field(default=True, description="per-frame self-attention in the mid-block")
    energy_flow_channels: tuple[int, int] = Field(description="encoder and decoder energy-flow widths (64, 128)")
    energy_flow_layers: int | None = Field(
        default=None, gt=0, description="ResnetBlock3Ds per decoder energy-flow branch (v1.3.0 code: 2)")

    @model_validator(mode="after")
    def _check_layout(self) -> WFVAE:
        """The decoder's energy-flow branches run ResnetBlock3D(c) on the energy_flow_channels[1] channels split off
        (v1.3.0 code)."""
        chans, ef = self.block_out_channels, self.energy_flow_channels
        if len(chans) != 3 or chans[1] != 2 * chans[0] or chans[2] != 4 * chans[0]:
            raise ValueError(f"family='wfvae' widths are base_channels x (1, 2, 4): block_out_channels (c, 2c, 4c), "
                             f"got {chans}")
        if ef[1] != chans[0]:
            raise ValueError(f"family='wfvae' (v1.3.0 code) runs the decoder's energy-flow ResnetBlock3Ds at "
                             f"base_channels: energy_flow_channels[1] must be {chans[0]}, got {ef[1]}")
        self._check_groups((*chans, chans[1] + ef[0], chans[2] + ef[1]), "every normalised width")
        return self
