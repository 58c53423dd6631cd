"""Mochi-1 (diffusers AutoencoderKLMochi; genmoai/mochi)
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from reference_model.vae.common import FramePadConv3d, VAEConfig, from_frames, per_frame

MOCHI_HEAD_DIM = 32


def channels_last_linear(linear: nn.Linear, x: torch.Tensor) -> torch.Tensor:
    """A Linear over the channels of a (B, C, T, H, W) tensor (on a channels-last copy)."""
    return linear(x.permute(0, 2, 3, 4, 1).contiguous()).permute(0, 4, 1, 2, 3)


class PerFrameGroupNorm(nn.GroupNorm):
    """GroupNorm of each frame on its own (Mochi normalises (B T, C, H, W), in chunks of 8 frames)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return from_frames(super().forward(per_frame(x)), x.shape[2])


class MochiResnet(nn.Module):
    def __init__(self, c: int, groups: int):
        super().__init__()
        self.norm1 = PerFrameGroupNorm(groups, c)
        self.conv1 = FramePadConv3d(c, c)
        self.norm2 = PerFrameGroupNorm(groups, c)
        self.conv2 = FramePadConv3d(c, c)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        return self.conv2(F.silu(self.norm2(h))) + x


class MochiAttention(nn.Module):
    """Causal attention across frames at each position (H W sequences of T tokens), heads of 32 channels, q and k
    L2-normalised (written as a weightless RMSNorm, i.e. sqrt(32) x unit vectors, with the scale divided by 32).
    A single frame attends only to itself: the output is to_out(to_v(x))."""

    def __init__(self, c: int, groups: int):
        super().__init__()
        self.norm = PerFrameGroupNorm(groups, c)
        self.to_q, self.to_k, self.to_v = (nn.Linear(c, c, bias=False) for _ in range(3))
        self.to_out = nn.Linear(c, c)
        self.heads = c // MOCHI_HEAD_DIM

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, C, T, H, W = x.shape
        h = self.norm(x).permute(0, 3, 4, 2, 1).reshape(B * H * W, T, C).contiguous()
        if T == 1:
            out = self.to_out(self.to_v(h))
        else:
            q, k, v = (p(h).reshape(B * H * W, T, self.heads, MOCHI_HEAD_DIM).transpose(1, 2)
                       for p in (self.to_q, self.to_k, self.to_v))
            q, k = F.rms_norm(q, (MOCHI_HEAD_DIM,)), F.rms_norm(k, (MOCHI_HEAD_DIM,))
            out = F.scaled_dot_product_attention(q, k, v, is_causal=True, scale=MOCHI_HEAD_DIM ** -1.5)
            out = self.to_out(out.transpose(1, 2).reshape(B * H * W, T, C))
        return x + out.reshape(B, H, W, T, C).permute(0, 4, 3, 1, 2)


class MochiBlock(nn.Module):
    """``layers`` ResNets, each followed by attention when ``attention``."""

    def __init__(self, c: int, layers: int, groups: int, attention: bool):
        super().__init__()
        self.resnets = nn.ModuleList(MochiResnet(c, groups) for _ in range(layers))
        self.attentions = nn.ModuleList(MochiAttention(c, groups) for _ in range(layers)) if attention else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for i, resnet in enumerate(self.resnets):
            x = resnet(x)
            if self.attentions is not None:
                x = self.attentions[i](x)
        return x


class MochiDown(nn.Module):
    """A (t, 2, 2) conv with that stride (causal: t - 1 copies of the first frame in front), then a block."""

    def __init__(self, c_in: int, c_out: int, layers: int, t: int, groups: int):
        super().__init__()
        self.conv = FramePadConv3d(c_in, c_out, (t, 2, 2), stride=(t, 2, 2))
        self.block = MochiBlock(c_out, layers, groups, attention=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.block(self.conv(x))


class MochiUp(nn.Module):
    """A block, then a Linear c_in -> c_out t 4 whose outputs become t frames of 2 x 2 pixels (depth-to-space)."""

    def __init__(self, c_in: int, c_out: int, layers: int, t: int, groups: int):
        super().__init__()
        self.block = MochiBlock(c_in, layers, groups, attention=False)
        self.proj = nn.Linear(c_in, c_out * t * 4)
        self.t = t

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = channels_last_linear(self.proj, self.block(x))
        B, _, T, H, W = x.shape
        x = x.reshape(B, -1, self.t, 2, 2, T, H, W).permute(0, 1, 5, 2, 6, 3, 7, 4)
        return x.reshape(B, -1, T * self.t, 2 * H, 2 * W)


class MochiEncoder(nn.Module):
    """Fourier features (x, sin and cos of 2^6 and 2^7 x 2 pi x) -> Linear -> block (no attention) -> down levels
    (conv, ResNets and attention) -> block with attention -> per-frame GroupNorm, SiLU, Linear to 2 z (no bias)."""

    def __init__(self, cfg: VAEConfig):
        super().__init__()
        chans, layers, g = cfg.block_out_channels, cfg.layers_per_level, cfg.norm_groups
        assert layers is not None
        self.freqs: torch.Tensor
        self.register_buffer("freqs", 2.0 ** torch.arange(6.0, 8.0) * 2 * math.pi, persistent=False)
        self.proj_in = nn.Linear(cfg.in_channels * (1 + 2 * len(self.freqs)), chans[0])
        self.block_in = MochiBlock(chans[0], layers[0], g, attention=False)
        self.down = nn.ModuleList(MochiDown(chans[i], chans[i + 1], layers[i + 1], t, g)
                                  for i, t in enumerate(cfg.level_temporal_factors))
        self.block_out = MochiBlock(chans[-1], layers[-1], g, attention=True)
        self.norm_out = PerFrameGroupNorm(g, chans[-1])
        self.proj_out = nn.Linear(chans[-1], 2 * cfg.latent_channels, bias=False)

    def fourier_features(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, T, H, W) -> (B, C (1 + 2 freqs), T, H, W): x, then sin and cos of each frequency times x."""
        h = (x.unsqueeze(2) * self.freqs[:, None, None, None]).flatten(1, 2)
        return torch.cat([x, h.sin(), h.cos()], dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.block_in(channels_last_linear(self.proj_in, self.fourier_features(x)))
        for level in self.down:
            x = level(x)
        x = self.block_out(x)
        return channels_last_linear(self.proj_out, F.silu(self.norm_out(x)))


class MochiDecoder(nn.Module):
    """1x1x1 conv -> block -> up levels (block, Linear, depth-to-space) -> block -> SiLU, Linear to pixels; the
    first t - 1 of the t T frames are dropped: 1 + t (T - 1) frames."""

    def __init__(self, cfg: VAEConfig):
        super().__init__()
        rev, layers, g = cfg.decoder_channels, cfg.layers_per_level, cfg.norm_groups
        assert layers is not None
        factors, n = cfg.level_temporal_factors, len(rev)
        self.conv_in = nn.Conv3d(cfg.latent_channels, rev[0], 1)
        self.block_in = MochiBlock(rev[0], layers[-1], g, attention=False)
        self.up = nn.ModuleList(MochiUp(rev[j], rev[j + 1], layers[n - 1 - j], factors[n - 2 - j], g)
                                for j in range(n - 1))
        self.block_out = MochiBlock(rev[-1], layers[0], g, attention=False)
        self.proj_out = nn.Linear(rev[-1], cfg.in_channels)
        self.t = cfg.temporal_compression

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        x = self.block_in(self.conv_in(z))
        for level in self.up:
            x = level(x)
        x = channels_last_linear(self.proj_out, F.silu(self.block_out(x)))
        return x[:, :, self.t - 1:]
