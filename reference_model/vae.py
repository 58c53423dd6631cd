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

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass(frozen=True)
class VAEConfig:
    in_channels: int = 3
    latent_channels: int = 16
    spatial_compression: int = 8
    temporal_compression: int = 4
    causal: bool = True
    block_out_channels: tuple[int, ...] = (128, 256, 512, 512)
    layers_per_block: int = 2
    norm_groups: int = 32
    mid_attention: bool = True
    double_z: bool = True
    temporal_kernel: int = 3
    patch_size: int = 1  # pixel-unshuffle p x p before the encoder, pixel-shuffle after the decoder (LTX-Video)

    @property
    def num_spatial_down(self) -> int:
        return (self.spatial_compression // self.patch_size).bit_length() - 1

    @property
    def num_temporal_down(self) -> int:
        return self.temporal_compression.bit_length() - 1


class Conv3d(nn.Module):
    """kt x 3 x 3 convolution that keeps T, H, W (at stride 1). Spatial padding is symmetric;
    temporal padding is front-only (replicate the first frame) when causal, symmetric otherwise."""

    def __init__(self, c_in: int, c_out: int, kt: int, causal: bool, stride: tuple[int, int, int] = (1, 1, 1)):
        super().__init__()
        self.causal, self.kt = causal, kt
        pad_t = 0 if causal else kt // 2
        self.conv = nn.Conv3d(c_in, c_out, kernel_size=(kt, 3, 3), stride=stride, padding=(pad_t, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.causal and self.kt > 1:
            x = torch.cat([x[:, :, :1].expand(-1, -1, self.kt - 1, -1, -1), x], dim=2)
        return self.conv(x)


class ResnetBlock3D(nn.Module):
    """GroupNorm -> SiLU -> conv -> GroupNorm -> SiLU -> conv, plus a 1x1x1 shortcut when widths differ."""

    def __init__(self, c_in: int, c_out: int, cfg: VAEConfig):
        super().__init__()
        self.norm1 = nn.GroupNorm(cfg.norm_groups, c_in, eps=1e-6)
        self.conv1 = Conv3d(c_in, c_out, cfg.temporal_kernel, cfg.causal)
        self.norm2 = nn.GroupNorm(cfg.norm_groups, c_out, eps=1e-6)
        self.conv2 = Conv3d(c_out, c_out, cfg.temporal_kernel, cfg.causal)
        self.shortcut = nn.Conv3d(c_in, c_out, kernel_size=1) if c_in != c_out else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        h = self.conv2(F.silu(self.norm2(h)))
        return h + (self.shortcut(x) if self.shortcut is not None else x)


class AttnBlock3D(nn.Module):
    """Single-head self-attention over all T*H*W positions (GroupNorm, q/k/v/proj linears)."""

    def __init__(self, c: int, cfg: VAEConfig):
        super().__init__()
        self.norm = nn.GroupNorm(cfg.norm_groups, c, eps=1e-6)
        self.q, self.k, self.v, self.proj = (nn.Linear(c, c) for _ in range(4))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, C, T, H, W = x.shape
        h = self.norm(x).flatten(2).transpose(1, 2)  # (B, THW, C)
        out = F.scaled_dot_product_attention(self.q(h)[:, None], self.k(h)[:, None], self.v(h)[:, None])[:, 0]
        return x + self.proj(out).transpose(1, 2).reshape(B, C, T, H, W)


class MidBlock3D(nn.Module):
    def __init__(self, c: int, cfg: VAEConfig):
        super().__init__()
        self.resnet1 = ResnetBlock3D(c, c, cfg)
        self.attn = AttnBlock3D(c, cfg) if cfg.mid_attention else None
        self.resnet2 = ResnetBlock3D(c, c, cfg)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.resnet1(x)
        if self.attn is not None:
            x = self.attn(x)
        return self.resnet2(x)


class Downsample3D(nn.Module):
    """Stride-2 conv in H and W (and in T when ``temporal``)."""

    def __init__(self, c: int, cfg: VAEConfig, temporal: bool):
        super().__init__()
        self.conv = Conv3d(c, c, cfg.temporal_kernel, cfg.causal, stride=(2 if temporal else 1, 2, 2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


class Upsample3D(nn.Module):
    """Nearest-neighbour x2 in H and W (and T when ``temporal``; causal keeps frame 0 single), then conv."""

    def __init__(self, c: int, cfg: VAEConfig, temporal: bool):
        super().__init__()
        self.temporal, self.causal = temporal, cfg.causal
        self.conv = Conv3d(c, c, cfg.temporal_kernel, cfg.causal)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.temporal:
            x = F.interpolate(x, scale_factor=(1.0, 2.0, 2.0), mode="nearest")
        elif self.causal:
            first = F.interpolate(x[:, :, :1], scale_factor=(1.0, 2.0, 2.0), mode="nearest")
            rest = x[:, :, 1:]
            if rest.shape[2]:
                first = torch.cat([first, F.interpolate(rest, scale_factor=(2.0, 2.0, 2.0), mode="nearest")], dim=2)
            x = first
        else:
            x = F.interpolate(x, scale_factor=(2.0, 2.0, 2.0), mode="nearest")
        return self.conv(x)


class Level(nn.Module):
    """ResNet blocks at one resolution, then an optional resampler."""

    def __init__(self, resnets: list[ResnetBlock3D], resample: nn.Module | None):
        super().__init__()
        self.resnets = nn.ModuleList(resnets)
        self.resample = resample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for r in self.resnets:
            x = r(x)
        return self.resample(x) if self.resample is not None else x


def pixel_unshuffle(x: torch.Tensor, p: int) -> torch.Tensor:
    """(B, C, T, H, W) -> (B, C p^2, T, H/p, W/p): each p x p block of pixels becomes channels."""
    if p == 1:
        return x
    B, C, T, H, W = x.shape
    x = x.reshape(B, C, T, H // p, p, W // p, p).permute(0, 1, 4, 6, 2, 3, 5)
    return x.reshape(B, C * p * p, T, H // p, W // p)


def pixel_shuffle(x: torch.Tensor, p: int) -> torch.Tensor:
    """Inverse of pixel_unshuffle: (B, C p^2, T, H, W) -> (B, C, T, H p, W p)."""
    if p == 1:
        return x
    B, Cpp, T, H, W = x.shape
    x = x.reshape(B, Cpp // (p * p), p, p, T, H, W).permute(0, 1, 4, 5, 2, 6, 3)
    return x.reshape(B, Cpp // (p * p), T, H * p, W * p)


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

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv_in(pixel_unshuffle(x, self.patch))
        for level in self.down:
            x = level(x)
        x = self.mid(x)
        return self.conv_out(F.silu(self.norm_out(x)))


class Decoder3D(nn.Module):
    """(B, latent, F', H', W') -> (B, 3, F, H'*s, W'*s)."""

    def __init__(self, cfg: VAEConfig):
        super().__init__()
        chans = tuple(reversed(cfg.block_out_channels))
        self.conv_in = Conv3d(cfg.latent_channels, chans[0], cfg.temporal_kernel, cfg.causal)
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
        x = self.mid(self.conv_in(z))
        for level in self.up:
            x = level(x)
        return pixel_shuffle(self.conv_out(F.silu(self.norm_out(x))), self.patch)


class VAE3D(nn.Module):
    """Encoder and decoder; ``encode`` returns the posterior mean (sampling adds no FLOPs of note)."""

    def __init__(self, cfg: VAEConfig):
        super().__init__()
        self.cfg = cfg
        self.encoder = Encoder3D(cfg)
        self.decoder = Decoder3D(cfg)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        moments = self.encoder(x)
        return moments[:, : self.cfg.latent_channels]

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder(z)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(x))
