"""Open-Sora 1.2 (hpcaitech/Open-Sora opensora/models/vae/vae.py OpenSoraVAE_V1_2, vae_temporal.py VAE_Temporal_SD)
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from reference_model.vae.common import Level, VAEConfig, from_frames, per_frame
from reference_model.vae.generic import Decoder3D, Encoder3D

OPENSORA_MICRO_BATCH = 4  # OpenSoraVAE_V1_2(micro_batch_size=4): frames per call of the 2D VAE


def spatial_config(cfg: VAEConfig) -> VAEConfig:
    """The per-frame SD/SDXL VAE (diffusers AutoencoderKL) of an opensora config, in the generic layout."""
    return VAEConfig(in_channels=cfg.in_channels, latent_channels=cfg.latent_channels,
                     spatial_compression=cfg.spatial_compression, temporal_compression=1, causal=False,
                     block_out_channels=cfg.block_out_channels, layers_per_block=cfg.layers_per_block,
                     norm_groups=cfg.norm_groups, temporal_kernel=1)


class OSCausalConv3d(nn.Conv3d):
    """Open-Sora's CausalConv3d: F.pad with zeros, ``kt - 1 + (1 - stride_t)`` frames in front and k // 2 around H
    and W, then the conv (stride in time only)."""

    def __init__(self, c_in: int, c_out: int, k: int, stride_t: int = 1, bias: bool = True):
        super().__init__(c_in, c_out, k, stride=(stride_t, 1, 1), bias=bias)
        self.pad = (k // 2, k // 2, k // 2, k // 2, k - 1 + 1 - stride_t, 0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(F.pad(x, self.pad) if any(self.pad) else x)


class OSResBlock(nn.Module):
    """GroupNorm, SiLU, bias-free causal 3x3x3 conv, twice; a bias-free 1x1x1 conv on the shortcut when widths
    differ."""

    def __init__(self, c_in: int, c_out: int, groups: int):
        super().__init__()
        self.norm1 = nn.GroupNorm(groups, c_in)
        self.conv1 = OSCausalConv3d(c_in, c_out, 3, bias=False)
        self.norm2 = nn.GroupNorm(groups, c_out)
        self.conv2 = OSCausalConv3d(c_out, c_out, 3, bias=False)
        self.shortcut = OSCausalConv3d(c_in, c_out, 1, bias=False) if c_in != c_out else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv2(F.silu(self.norm2(self.conv1(F.silu(self.norm1(x))))))
        return h + (self.shortcut(x) if self.shortcut is not None else x)


class OSTimeUp(nn.Module):
    """A causal 3x3x3 conv c -> 2c whose channel pairs become two frames (depth-to-space in time): T -> 2T."""

    def __init__(self, c: int):
        super().__init__()
        self.conv = OSCausalConv3d(c, 2 * c, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, C, T, H, W = x.shape
        x = self.conv(x).reshape(B, C, 2, T, H, W).permute(0, 1, 3, 2, 4, 5)
        return x.reshape(B, C, 2 * T, H, W)


class OSTemporalEncoder(nn.Module):
    """VAE_Temporal's encode: zero frames in front up to a multiple of t, conv_in, levels of ResBlocks (a stride-2
    time conv after each halving level), ResBlocks, GroupNorm, SiLU, 1x1x1 conv_out to 2z, 1x1x1 quant_conv."""

    def __init__(self, cfg: VAEConfig):
        super().__init__()
        tc, layers, g, z = cfg.temporal_block_out_channels, cfg.layers_per_level, cfg.norm_groups, cfg.latent_channels
        assert tc is not None and layers is not None
        factors = cfg.level_temporal_factors
        self.t = cfg.temporal_compression
        self.conv_in = OSCausalConv3d(z, tc[0], 3, bias=False)
        levels, c_prev = [], tc[0]
        for i, c in enumerate(tc):
            resnets = []
            for _ in range(layers[i]):
                resnets.append(OSResBlock(c_prev, c, g))
                c_prev = c
            down = OSCausalConv3d(c, c, 3, stride_t=2) if i < len(tc) - 1 and factors[i] > 1 else None
            levels.append(Level(resnets, down))
        self.down = nn.ModuleList(levels)
        self.mid = nn.Sequential(*(OSResBlock(c_prev, c_prev, g) for _ in range(layers[-1])))
        self.norm_out = nn.GroupNorm(g, c_prev)
        self.conv_out = OSCausalConv3d(c_prev, 2 * z, 1)
        self.quant_conv = OSCausalConv3d(2 * z, 2 * z, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pad = -int(x.shape[2]) % self.t
        x = self.conv_in(F.pad(x, (0, 0, 0, 0, pad, 0)) if pad else x)
        for level in self.down:
            x = level(x)
        return self.quant_conv(self.conv_out(F.silu(self.norm_out(self.mid(x)))))


class OSTemporalDecoder(nn.Module):
    """VAE_Temporal's decode: 1x1x1 post_quant_conv, conv_in, ResBlocks, levels deepest first (ResBlocks, then a
    time-doubling conv where the encoder halved), GroupNorm, SiLU, conv_out; the front padding frames are cut."""

    def __init__(self, cfg: VAEConfig):
        super().__init__()
        tc, layers, g, z = cfg.temporal_block_out_channels, cfg.layers_per_level, cfg.norm_groups, cfg.latent_channels
        assert tc is not None and layers is not None
        factors = cfg.level_temporal_factors
        self.t = cfg.temporal_compression
        self.post_quant_conv = OSCausalConv3d(z, z, 1)
        self.conv_in = OSCausalConv3d(z, tc[-1], 3)
        self.mid = nn.Sequential(*(OSResBlock(tc[-1], tc[-1], g) for _ in range(layers[-1])))
        levels, c_prev = [], tc[-1]
        for i in reversed(range(len(tc))):
            resnets = []
            for _ in range(layers[i]):
                resnets.append(OSResBlock(c_prev, tc[i], g))
                c_prev = tc[i]
            levels.append(Level(resnets, OSTimeUp(c_prev) if i > 0 and factors[i - 1] > 1 else None))
        self.up = nn.ModuleList(levels)
        self.norm_out = nn.GroupNorm(g, c_prev)
        self.conv_out = OSCausalConv3d(c_prev, z, 3)

    def forward(self, z: torch.Tensor, num_frames: int) -> torch.Tensor:
        x = self.mid(self.conv_in(self.post_quant_conv(z)))
        for level in self.up:
            x = level(x)
        x = self.conv_out(F.silu(self.norm_out(x)))
        return x[:, :, -num_frames % self.t:]


class OpenSoraEncoder(nn.Module):
    """The 2D VAE over all frames in micro-batches (encoder, quant_conv, the mean), then the temporal VAE over chunks
    of ``chunk_frames`` frames; returns the temporal moments (2z channels) of all chunks."""

    def __init__(self, cfg: VAEConfig):
        super().__init__()
        z = cfg.latent_channels
        self.spatial = Encoder3D(spatial_config(cfg))
        self.quant_conv = nn.Conv3d(2 * z, 2 * z, 1)
        self.temporal = OSTemporalEncoder(cfg)
        self.z, self.chunk = z, cfg.chunk_frames

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        T = int(x.shape[2])
        frames = per_frame(x).unsqueeze(2)  # (B T, C, 1, H, W)
        lat = torch.cat([self.quant_conv(self.spatial(frames[i:i + OPENSORA_MICRO_BATCH]))[:, :self.z]
                         for i in range(0, frames.shape[0], OPENSORA_MICRO_BATCH)])
        lat = from_frames(lat.squeeze(2), T)
        c = self.chunk or T
        return torch.cat([self.temporal(lat[:, :, i:i + c]) for i in range(0, T, c)], dim=2)


class OpenSoraDecoder(nn.Module):
    """The temporal VAE over chunks of ``chunk_latent_frames`` latent frames (each cut to its frame count), then the
    2D VAE per frame in micro-batches (post_quant_conv, decoder)."""

    def __init__(self, cfg: VAEConfig):
        super().__init__()
        z = cfg.latent_channels
        self.temporal = OSTemporalDecoder(cfg)
        self.post_quant_conv = nn.Conv3d(z, z, 1)
        self.spatial = Decoder3D(spatial_config(cfg))
        self.t, self.chunk, self.chunk_latent = cfg.temporal_compression, cfg.chunk_frames, cfg.chunk_latent_frames

    def decoded_frames(self, latent_frames: int) -> int:
        if self.chunk is None or self.chunk_latent is None:
            return latent_frames * self.t
        return latent_frames // self.chunk_latent * self.chunk + latent_frames % self.chunk_latent * self.t

    def forward(self, z: torch.Tensor, num_frames: int | None = None) -> torch.Tensor:
        L = int(z.shape[2])
        left = self.decoded_frames(L) if num_frames is None else num_frames
        c, k = (self.chunk, self.chunk_latent) if self.chunk and self.chunk_latent else (left, L)
        parts = []
        for i in range(0, L, k):
            parts.append(self.temporal(z[:, :, i:i + k], min(c, left)))
            left -= c
        lat = torch.cat(parts, dim=2)
        T = int(lat.shape[2])
        frames = per_frame(lat).unsqueeze(2)  # (B T, z, 1, h, w)
        out = torch.cat([self.spatial(self.post_quant_conv(frames[i:i + OPENSORA_MICRO_BATCH]))
                         for i in range(0, frames.shape[0], OPENSORA_MICRO_BATCH)])
        return from_frames(out.squeeze(2), T)
