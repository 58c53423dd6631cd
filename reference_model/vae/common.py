"""Shared pieces of the reference VAEs: the config, the generic 3D blocks (Conv3d, ResnetBlock3D, AttnBlock3D,
MidBlock3D, Down/Upsample3D, Level), pixel (un)shuffle, and helpers the published families use (channel RMSNorm,
frame-padded convs, per-frame reshapes).

Published VAE families, block for block (parameter counts equal diffusers' classes at their defaults), are in
one module each. Each runs the whole clip at once; diffusers runs the same convolutions over chunks of frames
with a cache of the previous chunk's last frames, which gives the same outputs and the same operation counts.
"""

from __future__ import annotations

from collections.abc import Sequence
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
    family: str = "generic"  # generic | wan | cogvideox | mochi | ltx (see the family sections below)
    quant_convs: bool = False  # generic: 1x1x1 quant_conv / post_quant_conv (diffusers' AutoencoderKL family)
    layers_per_level: tuple[int, ...] | None = None  # mochi, ltx: ResNets per encoder level, then the mid-block
    decoder_block_out_channels: tuple[int, ...] | None = None  # mochi: decoder widths per level (shallowest first)
    temporal_factors: tuple[int, ...] | None = None  # mochi: temporal stride of each down-sampling level
    temporal_block_out_channels: tuple[int, ...] | None = None  # opensora: the temporal VAE's level widths
    chunk_frames: int | None = None  # opensora: frames per independently encoded chunk (micro_frame_size)
    chunk_latent_frames: int | None = None  # opensora: latent frames of a whole chunk
    stem_channels: int | None = None  # stepvideo: the encoder's conv_in width (else block_out_channels[0])
    energy_flow_channels: tuple[int, int] | None = None  # wfvae: encoder, decoder energy-flow widths
    energy_flow_layers: int | None = None  # wfvae: ResnetBlock3Ds per decoder energy-flow branch (None: 2)

    @property
    def num_spatial_down(self) -> int:
        return (self.spatial_compression // self.patch_size).bit_length() - 1

    @property
    def num_temporal_down(self) -> int:
        return self.temporal_compression.bit_length() - 1

    @property
    def level_temporal_factors(self) -> tuple[int, ...]:
        """Temporal stride of each down-sampling level: given (mochi), else 2 at the last log2(t) levels (wan,
        mochi) or the first (generic, cogvideox, ltx)."""
        if self.temporal_factors is not None:
            return self.temporal_factors
        n, k = self.num_spatial_down, self.num_temporal_down
        if self.family == "opensora" and self.temporal_block_out_channels is not None:
            n = len(self.temporal_block_out_channels) - 1
        if self.family == "stepvideo":  # the last halving is the v2 head's 3D pixel-unshuffle, after the levels
            n, k = len(self.block_out_channels) - 1, k - 1
            return (1,) * (n - k) + (2,) * k
        return (1,) * (n - k) + (2,) * k if self.family in ("wan", "mochi", "opensora") else (2,) * k + (1,) * (n - k)

    @property
    def decoder_channels(self) -> tuple[int, ...]:
        """Decoder widths per level, deepest first."""
        return tuple(reversed(self.decoder_block_out_channels or self.block_out_channels))


class Conv3d(nn.Module):
    """kt x 3 x 3 convolution that keeps T, H, W (at stride 1). Spatial padding is symmetric;
    temporal padding is front-only (replicate the first frame) when causal, symmetric otherwise."""

    def __init__(self, c_in: int, c_out: int, kt: int, causal: bool, stride: tuple[int, int, int] = (1, 1, 1)):
        super().__init__()
        self.causal, self.kt = causal, kt
        pad_t = 0 if causal else kt // 2
        self.conv = nn.Conv3d(c_in, c_out, kernel_size=(kt, 3, 3), stride=stride, padding=(pad_t, 1, 1))
        # frame-batched decoding (CogVideoX's conv_cache): the previous batch's last kt - 1 input frames in front
        # instead of the replicated first frame, and this batch's kept for the next (``next_cache``)
        self.caching = False
        self.cache: torch.Tensor | None = None
        self.next_cache: torch.Tensor | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.causal and self.kt > 1:
            front = self.cache if self.caching and self.cache is not None else x[:, :, :1].expand(
                -1, -1, self.kt - 1, -1, -1)
            x = torch.cat([front, x], dim=2)
            if self.caching:
                self.next_cache = x[:, :, -(self.kt - 1):].clone()
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

    def __init__(self, resnets: Sequence[nn.Module], resample: nn.Module | None):
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



def channel_rms_norm(x: torch.Tensor, weight: torch.Tensor | None, eps: float = 1e-6) -> torch.Tensor:
    """RMSNorm over the channel axis (dim 1) of a (B, C, ...) tensor."""
    return F.rms_norm(x.transpose(1, -1), (x.shape[1],), weight, eps).transpose(1, -1)


class ChannelRMSNorm(nn.Module):
    """RMSNorm over channels: Wan's ``F.normalize(x, dim=1) * sqrt(C) * gamma`` (with a weight), LTX-Video's
    weightless RMSNorm (``affine=False``)."""

    def __init__(self, c: int, affine: bool = True, eps: float = 1e-12):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(c)) if affine else None
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return channel_rms_norm(x, self.weight, self.eps)


class FramePadConv3d(nn.Conv3d):
    """A 3D convolution that pads time itself: ``kt - 1`` copies of the first frame in front (``causal``) or
    ``(kt - 1) / 2`` copies of the edge frames on each side; H and W are zero-padded by ``(k - 1) // 2`` in the conv.
    (Mochi pads H and W by replication; the operation counts are the same.)"""

    def __init__(self, c_in: int, c_out: int, kernel: tuple[int, int, int] = (3, 3, 3),
                 stride: tuple[int, int, int] = (1, 1, 1), causal: bool = True):
        super().__init__(c_in, c_out, kernel, stride, padding=(0, (kernel[1] - 1) // 2, (kernel[2] - 1) // 2))
        self.causal = causal

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        kt = self.kernel_size[0]
        if kt > 1:
            if self.causal:
                x = torch.cat([x[:, :, :1].expand(-1, -1, kt - 1, -1, -1), x], dim=2)
            else:
                p = (kt - 1) // 2
                x = torch.cat([x[:, :, :1].expand(-1, -1, p, -1, -1), x, x[:, :, -1:].expand(-1, -1, p, -1, -1)], 2)
        return super().forward(x)


def per_frame(x: torch.Tensor) -> torch.Tensor:
    """(B, C, T, H, W) -> (B T, C, H, W) (a copy)."""
    return x.transpose(1, 2).flatten(0, 1)


def from_frames(x: torch.Tensor, T: int) -> torch.Tensor:
    """(B T, C, H, W) -> (B, C, T, H, W) (a view)."""
    return x.reshape(-1, T, *x.shape[1:]).transpose(1, 2)
