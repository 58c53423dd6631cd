"""LTX-Video 0.9.0 (diffusers AutoencoderKLLTXVideo)
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from reference_model.vae.common import ChannelRMSNorm, FramePadConv3d, VAEConfig, pixel_shuffle, pixel_unshuffle


class LTXResnet(nn.Module):
    """Weightless RMSNorm, SiLU, 3x3x3 conv, twice; when widths differ the shortcut is an affine LayerNorm and a
    1x1x1 conv. The encoder's convs are causal, the decoder's pad time with edge frames on both sides."""

    def __init__(self, c_in: int, c_out: int, causal: bool):
        super().__init__()
        self.norm1 = ChannelRMSNorm(c_in, affine=False, eps=1e-8)
        self.conv1 = FramePadConv3d(c_in, c_out, causal=causal)
        self.norm2 = ChannelRMSNorm(c_out, affine=False, eps=1e-8)
        self.conv2 = FramePadConv3d(c_out, c_out, causal=causal)
        self.norm3 = nn.LayerNorm(c_in, eps=1e-6) if c_in != c_out else None
        self.shortcut = nn.Conv3d(c_in, c_out, kernel_size=1) if c_in != c_out else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        h = self.conv2(F.silu(self.norm2(h)))
        if self.norm3 is not None and self.shortcut is not None:
            return h + self.shortcut(self.norm3(x.transpose(1, -1)).transpose(1, -1))
        return h + x


class LTXDownLevel(nn.Module):
    """ResNets, a stride-2 3x3x3 causal conv (T -> (T - 1) // 2 + 1, H -> H / 2), a widening ResNet."""

    def __init__(self, c: int, c_out: int, layers: int, down: bool):
        super().__init__()
        self.resnets = nn.ModuleList(LTXResnet(c, c, causal=True) for _ in range(layers))
        self.downsample = FramePadConv3d(c, c, stride=(2, 2, 2)) if down else None
        self.widen = LTXResnet(c, c_out, causal=True) if c != c_out else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for r in self.resnets:
            x = r(x)
        if self.downsample is not None:
            x = self.downsample(x)
        return self.widen(x) if self.widen is not None else x


class LTXUpsample(nn.Module):
    """A 3x3x3 conv c -> 8c whose outputs become 2 x 2 x 2 neighbours (depth-to-space); the first frame is dropped:
    T -> 2T - 1."""

    def __init__(self, c: int):
        super().__init__()
        self.conv = FramePadConv3d(c, 8 * c, causal=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, C, T, H, W = x.shape
        x = self.conv(x).reshape(B, C, 2, 2, 2, T, H, W).permute(0, 1, 5, 2, 6, 3, 7, 4)
        return x.reshape(B, C, 2 * T, 2 * H, 2 * W)[:, :, 1:]


class LTXUpLevel(nn.Module):
    """A narrowing ResNet, the up-sampler, ResNets."""

    def __init__(self, c_in: int, c: int, layers: int, up: bool):
        super().__init__()
        self.narrow = LTXResnet(c_in, c, causal=False) if c_in != c else None
        self.upsample = LTXUpsample(c) if up else None
        self.resnets = nn.ModuleList(LTXResnet(c, c, causal=False) for _ in range(layers))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.narrow is not None:
            x = self.narrow(x)
        if self.upsample is not None:
            x = self.upsample(x)
        for r in self.resnets:
            x = r(x)
        return x


class LTXEncoder(nn.Module):
    """Pixel-unshuffle p x p -> conv_in -> levels -> mid ResNets -> RMSNorm, SiLU, conv_out to z + 1 channels; the
    last (log-variance) channel is repeated to give 2 z moments."""

    def __init__(self, cfg: VAEConfig):
        super().__init__()
        chans, layers, n = cfg.block_out_channels, cfg.layers_per_level, len(cfg.block_out_channels)
        assert layers is not None
        self.patch, self.z = cfg.patch_size, cfg.latent_channels
        self.conv_in = FramePadConv3d(cfg.in_channels * cfg.patch_size**2, chans[0])
        self.down = nn.ModuleList(LTXDownLevel(c, chans[min(i + 1, n - 1)], layers[i], i < n - 1)
                                  for i, c in enumerate(chans))
        self.mid = nn.Sequential(*(LTXResnet(chans[-1], chans[-1], causal=True) for _ in range(layers[-1])))
        self.norm_out = ChannelRMSNorm(chans[-1], affine=False, eps=1e-8)
        self.conv_out = FramePadConv3d(chans[-1], cfg.latent_channels + 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv_in(pixel_unshuffle(x, self.patch))
        for level in self.down:
            x = level(x)
        x = self.conv_out(F.silu(self.norm_out(self.mid(x))))
        return torch.cat([x, x[:, -1:].expand(-1, self.z - 1, -1, -1, -1)], dim=1)


class LTXDecoder(nn.Module):
    """conv_in -> mid ResNets -> levels (all but the first up-sample) -> RMSNorm, SiLU, conv_out -> pixel-shuffle.
    Every conv pads time with edge frames on both sides (not causal)."""

    def __init__(self, cfg: VAEConfig):
        super().__init__()
        rev, layers, n = cfg.decoder_channels, cfg.layers_per_level, len(cfg.block_out_channels)
        assert layers is not None
        self.patch = cfg.patch_size
        self.conv_in = FramePadConv3d(cfg.latent_channels, rev[0], causal=False)
        self.mid = nn.Sequential(*(LTXResnet(rev[0], rev[0], causal=False) for _ in range(layers[-1])))
        self.up = nn.ModuleList(LTXUpLevel(rev[max(j - 1, 0)], c, layers[n - 1 - j], j > 0) for j, c in enumerate(rev))
        self.norm_out = ChannelRMSNorm(rev[-1], affine=False, eps=1e-8)
        self.conv_out = FramePadConv3d(rev[-1], cfg.in_channels * cfg.patch_size**2, causal=False)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        x = self.mid(self.conv_in(z))
        for level in self.up:
            x = level(x)
        return pixel_shuffle(self.conv_out(F.silu(self.norm_out(x))), self.patch)
