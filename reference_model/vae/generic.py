"""A 3D (optionally causal) convolutional VAE, in the style of the CogVideoX and HunyuanVideo VAEs.

Encoder: conv_in -> levels of ResNet blocks (GroupNorm, SiLU, 3D conv), each of the first
log2(s) levels ending in a stride-2 conv (stride 2 in time too for the first log2(t) levels)
-> mid-block (ResNet, attention over all latent positions, ResNet) -> GroupNorm, SiLU, conv_out
to 2 x latent channels (mean, log-variance). The decoder mirrors it with one more ResNet per
level and nearest-neighbour up-sampling followed by a conv.

Causal convolutions pad time only at the front (replicating the first frame), so frame f
sees frames <= f and the first frame is encoded on its own: F = 1 + t*k frames give 1 + k
latent frames, and the decoder's causal up-sampling maps n latent frames back to 1 + t*(n-1).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from reference_model.vae.common import (
    Conv3d,
    Downsample3D,
    Level,
    MidBlock3D,
    ResnetBlock3D,
    Upsample3D,
    VAEConfig,
    pixel_shuffle,
    pixel_unshuffle,
)


class Encoder3D(nn.Module):
    """(B, 3, F, H, W) -> (B, 2*latent, F', H/s, W/s) (mean and log-variance when double_z)."""

    def __init__(self, cfg: VAEConfig):
        super().__init__()
        chans = cfg.block_out_channels
        self.patch = cfg.patch_size
        self.conv_in = Conv3d(cfg.in_channels * cfg.patch_size**2, chans[0], cfg.temporal_kernel, cfg.causal)
        levels, c_prev = [], chans[0]
        for i, c in enumerate(chans):
            resnets = []
            for _ in range(cfg.layers_per_block):
                resnets.append(ResnetBlock3D(c_prev, c, cfg))
                c_prev = c
            down = Downsample3D(c, cfg, temporal=i < cfg.num_temporal_down) if i < cfg.num_spatial_down else None
            levels.append(Level(resnets, down))
        self.down = nn.ModuleList(levels)
        self.mid = MidBlock3D(c_prev, cfg)
        self.norm_out = nn.GroupNorm(cfg.norm_groups, c_prev, eps=1e-6)
        z_channels = cfg.latent_channels * (2 if cfg.double_z else 1)
        self.conv_out = Conv3d(c_prev, z_channels, cfg.temporal_kernel, cfg.causal)
        self.quant_conv = nn.Conv3d(z_channels, z_channels, 1) if cfg.quant_convs else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv_in(pixel_unshuffle(x, self.patch))
        for level in self.down:
            x = level(x)
        x = self.mid(x)
        moments = self.conv_out(F.silu(self.norm_out(x)))
        return self.quant_conv(moments) if self.quant_conv is not None else moments


class Decoder3D(nn.Module):
    """(B, latent, F', H', W') -> (B, 3, F, H'*s, W'*s)."""

    def __init__(self, cfg: VAEConfig):
        super().__init__()
        chans = tuple(reversed(cfg.block_out_channels))
        z = cfg.latent_channels
        self.post_quant_conv = nn.Conv3d(z, z, 1) if cfg.quant_convs else None
        self.conv_in = Conv3d(z, chans[0], cfg.temporal_kernel, cfg.causal)
        self.mid = MidBlock3D(chans[0], cfg)
        levels, c_prev = [], chans[0]
        for j, c in enumerate(chans):
            resnets = []
            for _ in range(cfg.layers_per_block + 1):
                resnets.append(ResnetBlock3D(c_prev, c, cfg))
                c_prev = c
            up = Upsample3D(c, cfg, temporal=j < cfg.num_temporal_down) if j < cfg.num_spatial_down else None
            levels.append(Level(resnets, up))
        self.up = nn.ModuleList(levels)
        self.norm_out = nn.GroupNorm(cfg.norm_groups, c_prev, eps=1e-6)
        self.patch = cfg.patch_size
        self.conv_out = Conv3d(c_prev, cfg.in_channels * cfg.patch_size**2, cfg.temporal_kernel, cfg.causal)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        if self.post_quant_conv is not None:
            z = self.post_quant_conv(z)
        x = self.mid(self.conv_in(z))
        for level in self.up:
            x = level(x)
        return pixel_shuffle(self.conv_out(F.silu(self.norm_out(x))), self.patch)
