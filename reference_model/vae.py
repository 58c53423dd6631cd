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

import math
from collections.abc import Callable, Sequence
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


class VAE3D(nn.Module):
    """Encoder and decoder; ``encode`` returns the posterior mean (sampling adds no FLOPs of note)."""

    def __init__(self, cfg: VAEConfig):
        super().__init__()
        self.cfg = cfg
        encoder, decoder = FAMILIES[cfg.family]
        self.encoder = encoder(cfg)
        self.decoder = decoder(cfg)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        moments = self.encoder(x)
        return moments[:, : self.cfg.latent_channels]

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder(z)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(x))


# ================================================================================================
# Published VAE families, block for block (parameter counts equal diffusers' classes at their defaults).
# Each runs the whole clip at once; diffusers runs the same convolutions over chunks of frames with a cache of
# the previous chunk's last frames, which gives the same outputs and the same operation counts.
# ================================================================================================


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


# ------------------------------------------------------------------------------------------------
# Wan2.1 (diffusers AutoencoderKLWan; Wan-Video/Wan2.1 wan/modules/vae.py)
# ------------------------------------------------------------------------------------------------


class WanCausalConv3d(nn.Conv3d):
    """Causal conv: ``F.pad`` with ``kt - 1`` zero frames in front and k // 2 zeros around H and W, then the conv."""

    def __init__(self, c_in: int, c_out: int, kernel: tuple[int, int, int] = (3, 3, 3)):
        super().__init__(c_in, c_out, kernel)
        kt, kh, kw = kernel
        self.pad = (kw // 2, kw // 2, kh // 2, kh // 2, kt - 1, 0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(F.pad(x, self.pad) if any(self.pad) else x)


class WanResnet(nn.Module):
    """shortcut(x) + conv2(silu(norm2(conv1(silu(norm1(x)))))); the 1x1x1 shortcut is computed first."""

    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        self.norm1 = ChannelRMSNorm(c_in)
        self.conv1 = WanCausalConv3d(c_in, c_out)
        self.norm2 = ChannelRMSNorm(c_out)
        self.conv2 = WanCausalConv3d(c_out, c_out)
        self.shortcut = WanCausalConv3d(c_in, c_out, (1, 1, 1)) if c_in != c_out else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.shortcut(x) if self.shortcut is not None else x
        x = self.conv1(F.silu(self.norm1(x)))
        x = self.conv2(F.silu(self.norm2(x)))
        return x + h


class WanAttention(nn.Module):
    """Single-head attention within each frame (H W positions): RMSNorm, 1x1 conv to q, k, v, SDPA, 1x1 conv."""

    def __init__(self, c: int):
        super().__init__()
        self.norm = ChannelRMSNorm(c)
        self.to_qkv = nn.Conv2d(c, 3 * c, 1)
        self.proj = nn.Conv2d(c, c, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, C, T, H, W = x.shape
        qkv = self.to_qkv(self.norm(per_frame(x)))  # (B T, 3C, H, W) -> (B T, 1, H W, 3C)
        q, k, v = qkv.reshape(B * T, 1, 3 * C, H * W).transpose(-1, -2).contiguous().chunk(3, dim=-1)
        del qkv
        out = F.scaled_dot_product_attention(q, k, v)  # (B T, 1, H W, C)
        out = self.proj(out.squeeze(1).transpose(1, 2).reshape(B * T, C, H, W))
        return x + from_frames(out, T)


class WanMid(nn.Module):
    def __init__(self, c: int):
        super().__init__()
        self.resnet1 = WanResnet(c, c)
        self.attn = WanAttention(c)
        self.resnet2 = WanResnet(c, c)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.resnet2(self.attn(self.resnet1(x)))


class WanDownsample(nn.Module):
    """Per frame: zero-pad right/bottom, stride-2 3x3 conv. Temporal levels then keep the first frame and run a
    stride-2 (3, 1, 1) conv over the frames (unpadded): T = 1 + 2k -> 1 + k."""

    def __init__(self, c: int, temporal: bool):
        super().__init__()
        self.conv = nn.Conv2d(c, c, 3, stride=2)
        self.time_conv = nn.Conv3d(c, c, (3, 1, 1), stride=(2, 1, 1)) if temporal else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        T = x.shape[2]
        x = from_frames(self.conv(F.pad(per_frame(x), (0, 1, 0, 1))), T)
        if self.time_conv is not None and T > 1:
            x = torch.cat([x[:, :, :1], self.time_conv(x)], dim=2)
        return x


class WanUpsample(nn.Module):
    """Temporal levels first double every frame after the first: a causal (3, 1, 1) conv c -> 2c whose two halves
    become two frames (T -> 1 + 2 (T - 1)). Then per frame: nearest x2 and a 3x3 conv to c / 2 channels."""

    def __init__(self, c: int, temporal: bool):
        super().__init__()
        self.time_conv = WanCausalConv3d(c, 2 * c, (3, 1, 1)) if temporal else None
        self.conv = nn.Conv2d(c, c // 2, 3, padding=1)

    def double_frames(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, T, H, W) -> (B, C, 2T - 1, H, W): frame 0, then two frames from each later one."""
        assert self.time_conv is not None
        B, C, T, H, W = x.shape
        rest = self.time_conv(x[:, :, 1:]).reshape(B, 2, C, T - 1, H, W)  # channel halves -> frame pairs
        return torch.cat([x[:, :, :1], rest.permute(0, 2, 3, 1, 4, 5).reshape(B, C, 2 * (T - 1), H, W)], dim=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.time_conv is not None and x.shape[2] > 1:
            x = self.double_frames(x)
        return from_frames(self.conv(F.interpolate(per_frame(x), scale_factor=2.0, mode="nearest")), x.shape[2])


class WanEncoder(nn.Module):
    """conv_in -> levels (ResNets; every level but the last down-samples space, the last log2(t) of those time)
    -> mid -> RMSNorm, SiLU, conv_out to 2 z -> quant_conv (1x1x1)."""

    def __init__(self, cfg: VAEConfig):
        super().__init__()
        chans, factors, z = cfg.block_out_channels, cfg.level_temporal_factors, cfg.latent_channels
        self.conv_in = WanCausalConv3d(cfg.in_channels, chans[0])
        levels, c_prev = [], chans[0]
        for i, c in enumerate(chans):
            resnets = []
            for _ in range(cfg.layers_per_block):
                resnets.append(WanResnet(c_prev, c))
                c_prev = c
            levels.append(Level(resnets, WanDownsample(c, factors[i] > 1) if i < len(chans) - 1 else None))
        self.down = nn.ModuleList(levels)
        self.mid = WanMid(c_prev)
        self.norm_out = ChannelRMSNorm(c_prev)
        self.conv_out = WanCausalConv3d(c_prev, 2 * z)
        self.quant_conv = WanCausalConv3d(2 * z, 2 * z, (1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv_in(x)
        for level in self.down:
            x = level(x)
        x = self.mid(x)
        return self.quant_conv(self.conv_out(F.silu(self.norm_out(x))))


class WanDecoder(nn.Module):
    """post_quant_conv (1x1x1) -> conv_in -> mid -> levels (one ResNet more than the encoder; up-sampling halves the
    channels, so the next level starts at c / 2) -> RMSNorm, SiLU, conv_out."""

    def __init__(self, cfg: VAEConfig):
        super().__init__()
        chans, factors, z = cfg.decoder_channels, cfg.level_temporal_factors, cfg.latent_channels
        self.post_quant_conv = WanCausalConv3d(z, z, (1, 1, 1))
        self.conv_in = WanCausalConv3d(z, chans[0])
        self.mid = WanMid(chans[0])
        levels, c_prev = [], chans[0]
        for j, c in enumerate(chans):
            resnets = []
            for _ in range(cfg.layers_per_block + 1):
                resnets.append(WanResnet(c_prev, c))
                c_prev = c
            up = WanUpsample(c, factors[-1 - j] > 1) if j < len(chans) - 1 else None
            c_prev = c // 2 if up is not None else c
            levels.append(Level(resnets, up))
        self.up = nn.ModuleList(levels)
        self.norm_out = ChannelRMSNorm(c_prev)
        self.conv_out = WanCausalConv3d(c_prev, cfg.in_channels)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        x = self.mid(self.conv_in(self.post_quant_conv(z)))
        for level in self.up:
            x = level(x)
        return self.conv_out(F.silu(self.norm_out(x)))


# ------------------------------------------------------------------------------------------------
# CogVideoX (diffusers AutoencoderKLCogVideoX)
# ------------------------------------------------------------------------------------------------


class SpatialNorm3D(nn.Module):
    """GroupNorm(f) * conv_y(zq) + conv_b(zq): the latent z, resized (nearest) to f's grid, scales and shifts the
    normalised features through two 1x1x1 convs. With an odd frame count above 1 the first frame is resized alone."""

    def __init__(self, c: int, z_channels: int, groups: int):
        super().__init__()
        self.norm = nn.GroupNorm(groups, c, eps=1e-6)
        self.conv_y = nn.Conv3d(z_channels, c, 1)
        self.conv_b = nn.Conv3d(z_channels, c, 1)

    def forward(self, f: torch.Tensor, zq: torch.Tensor) -> torch.Tensor:
        T, H, W = f.shape[2:]
        if T > 1 and T % 2:
            first, rest = zq[:, :, :1], zq[:, :, 1:]
            zq = torch.cat([F.interpolate(first, size=(1, H, W)), F.interpolate(rest, size=(T - 1, H, W))], dim=2)
        else:
            zq = F.interpolate(zq, size=(T, H, W))
        return self.norm(f) * self.conv_y(zq) + self.conv_b(zq)


class CogResnet(nn.Module):
    """norm, SiLU, causal 3x3x3 conv, norm, SiLU, causal conv, plus a 1x1x1 shortcut when widths differ. The norms
    are GroupNorms in the encoder and spatial norms conditioned on the latent in the decoder."""

    def __init__(self, c_in: int, c_out: int, groups: int, z_channels: int | None = None):
        super().__init__()
        self.spatial = z_channels is not None
        self.norm1 = SpatialNorm3D(c_in, z_channels, groups) if z_channels else nn.GroupNorm(groups, c_in, eps=1e-6)
        self.conv1 = Conv3d(c_in, c_out, 3, causal=True)
        self.norm2 = SpatialNorm3D(c_out, z_channels, groups) if z_channels else nn.GroupNorm(groups, c_out, eps=1e-6)
        self.conv2 = Conv3d(c_out, c_out, 3, causal=True)
        self.shortcut = nn.Conv3d(c_in, c_out, kernel_size=1) if c_in != c_out else None

    def forward(self, x: torch.Tensor, zq: torch.Tensor | None = None) -> torch.Tensor:
        cond = (zq,) if self.spatial else ()
        h = self.conv1(F.silu(self.norm1(x, *cond)))
        h = self.conv2(F.silu(self.norm2(h, *cond)))
        return h + (self.shortcut(x) if self.shortcut is not None else x)


class CogDownsample(nn.Module):
    """Temporal levels first average frame pairs (after the first frame when T is odd); then per frame: zero-pad
    right/bottom and a stride-2 3x3 conv."""

    def __init__(self, c: int, temporal: bool):
        super().__init__()
        self.temporal = temporal
        self.conv = nn.Conv2d(c, c, 3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, C, T, H, W = x.shape
        if self.temporal and T > 1:
            first = T % 2
            pairs = x[:, :, first:].reshape(B, C, T // 2, 2, H, W).mean(dim=3)
            x = torch.cat([x[:, :, :1], pairs], dim=2) if first else pairs
        T = x.shape[2]
        return from_frames(self.conv(F.pad(per_frame(x), (0, 1, 0, 1))), T)


class CogUpsample(nn.Module):
    """Nearest x2 in H and W (temporal levels: in T too, the first frame of an odd count kept single), then a 3x3
    conv per frame."""

    def __init__(self, c: int, temporal: bool):
        super().__init__()
        self.temporal = temporal
        self.conv = nn.Conv2d(c, c, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        T = x.shape[2]
        if self.temporal and T > 1:
            if T % 2:
                x = torch.cat([F.interpolate(x[:, :, :1], scale_factor=(1.0, 2.0, 2.0)),
                               F.interpolate(x[:, :, 1:], scale_factor=2.0)], dim=2)
            else:
                x = F.interpolate(x, scale_factor=2.0)
            T = x.shape[2]
            x = per_frame(x)
        else:
            x = F.interpolate(per_frame(x), scale_factor=2.0)
        return from_frames(self.conv(x), T)


class CogLevel(nn.Module):
    def __init__(self, resnets: list[CogResnet], resample: nn.Module | None):
        super().__init__()
        self.resnets = nn.ModuleList(resnets)
        self.resample = resample

    def forward(self, x: torch.Tensor, zq: torch.Tensor | None = None) -> torch.Tensor:
        for r in self.resnets:
            x = r(x, zq)
        return self.resample(x) if self.resample is not None else x


class CogEncoder(nn.Module):
    """conv_in -> levels (ResNets; all but the last down-sample, the first log2(t) also in time) -> two mid
    ResNets -> GroupNorm, SiLU, conv_out to 2 z."""

    def __init__(self, cfg: VAEConfig):
        super().__init__()
        chans, factors, g = cfg.block_out_channels, cfg.level_temporal_factors, cfg.norm_groups
        self.conv_in = Conv3d(cfg.in_channels, chans[0], 3, causal=True)
        levels, c_prev = [], chans[0]
        for i, c in enumerate(chans):
            resnets = []
            for _ in range(cfg.layers_per_block):
                resnets.append(CogResnet(c_prev, c, g))
                c_prev = c
            levels.append(CogLevel(resnets, CogDownsample(c, factors[i] > 1) if i < len(chans) - 1 else None))
        self.down = nn.ModuleList(levels)
        self.mid = CogLevel([CogResnet(c_prev, c_prev, g), CogResnet(c_prev, c_prev, g)], None)
        self.norm_out = nn.GroupNorm(g, c_prev, eps=1e-6)
        self.conv_out = Conv3d(c_prev, 2 * cfg.latent_channels, 3, causal=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv_in(x)
        for level in self.down:
            x = level(x)
        x = self.mid(x)
        return self.conv_out(F.silu(self.norm_out(x)))


class CogDecoder(nn.Module):
    """conv_in -> two mid ResNets -> levels (one ResNet more; the first log2(t) up-sample time too) -> spatial
    norm, SiLU, conv_out. Every norm is a spatial norm conditioned on the latent input."""

    def __init__(self, cfg: VAEConfig):
        super().__init__()
        chans, g, z = cfg.decoder_channels, cfg.norm_groups, cfg.latent_channels
        factors = cfg.level_temporal_factors
        self.conv_in = Conv3d(z, chans[0], 3, causal=True)
        self.mid = CogLevel([CogResnet(chans[0], chans[0], g, z), CogResnet(chans[0], chans[0], g, z)], None)
        levels, c_prev = [], chans[0]
        for j, c in enumerate(chans):
            resnets = []
            for _ in range(cfg.layers_per_block + 1):
                resnets.append(CogResnet(c_prev, c, g, z))
                c_prev = c
            levels.append(CogLevel(resnets, CogUpsample(c, factors[j] > 1) if j < len(chans) - 1 else None))
        self.up = nn.ModuleList(levels)
        self.norm_out = SpatialNorm3D(c_prev, z, g)
        self.conv_out = Conv3d(c_prev, cfg.in_channels, 3, causal=True)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        x = self.mid(self.conv_in(z), z)
        for level in self.up:
            x = level(x, z)
        return self.conv_out(F.silu(self.norm_out(x, z)))


# ------------------------------------------------------------------------------------------------
# Mochi-1 (diffusers AutoencoderKLMochi; genmoai/mochi)
# ------------------------------------------------------------------------------------------------

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


# ------------------------------------------------------------------------------------------------
# LTX-Video 0.9.0 (diffusers AutoencoderKLLTXVideo)
# ------------------------------------------------------------------------------------------------


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


# ------------------------------------------------------------------------------------------------
# Open-Sora 1.2 (hpcaitech/Open-Sora opensora/models/vae/vae.py OpenSoraVAE_V1_2, vae_temporal.py VAE_Temporal_SD)
# ------------------------------------------------------------------------------------------------

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


# ------------------------------------------------------------------------------------------------
# Step-Video-T2V Video-VAE v2 (StepFun's StepVideoVAE(z_channels=64, version=2); the code is vendored as
# modelscope/DiffSynth-Studio diffsynth/models/stepvideo_vae.py). Same parameter names as the official modules (its
# checkpoint loads strictly) and the same operation sequence, including the channel-last copies (their memory is
# what the liveness walk models). Only the >= 2^30-element time-split of base_conv3d_channel_last is left out (the
# same convolutions over four time slices written into a preallocated output).
# ------------------------------------------------------------------------------------------------

STEPVIDEO_HEAD = 32  # v2 head width = 4 * z_channels * 2^3 channels (2048 for z = 64)


def sv_frame_norm(norm: nn.GroupNorm, x: torch.Tensor, silu: bool) -> torch.Tensor:
    """base_group_norm with ``spatial`` (version 2): a channel-last (B, T, H, W, C) tensor normalised per frame
    (a contiguous NCHW copy of the B T frames, GroupNorm, optional SiLU), returned as a channel-last view."""
    shape = x.shape
    x = x.flatten(0, 1).permute(0, 3, 1, 2)
    out = norm(x.contiguous())
    if silu:
        out = F.silu(out)
    return out.permute(0, 2, 3, 1).view(shape)


def sv_norm_zero_pad(norm: nn.GroupNorm, x: torch.Tensor, pad: int = 2) -> torch.Tensor:
    """base_group_norm_with_zero_pad: SiLU(per-frame GroupNorm) written after ``pad`` zero frames (the causal
    padding of the 3x3x3 conv that follows), channel-last (B, T + pad, H, W, C)."""
    shape = list(x.shape)
    shape[1] += pad
    out = torch.empty(shape, dtype=x.dtype, device=x.device)
    out[:, pad:] = sv_frame_norm(norm, x, True)
    out[:, :pad] = 0
    return out


def sv_conv_channel_last(conv: nn.Conv3d, x: torch.Tensor, residual: torch.Tensor | None = None) -> torch.Tensor:
    """base_conv3d(channel_last=True): conv of a (B, T, H, W, C) tensor's NCDHW view, the residual added in place.
    A 1x1x1 conv runs as the matmul it is (in the caller's scope), so its output stays channel-last as cuDNN keeps it
    on GPU (a CPU conv3d returns NCDHW: q, k, v would then have a strided last dim and SDPA would leave its fused
    kernel for the math path)."""
    if conv.kernel_size == (1, 1, 1):
        out = F.linear(x.reshape(-1, x.shape[-1]), conv.weight.flatten(1), conv.bias).view(*x.shape[:-1], -1)
        if residual is not None:
            out += residual
        return out
    out = conv(x.permute(0, 4, 1, 2, 3))
    if residual is not None:
        out += residual.permute(0, 4, 1, 2, 3)
    return out.permute(0, 2, 3, 4, 1)


class SVCausalConv(nn.Module):
    """CausalConv: F.pad with zeros (kt - 1 + max(1 - stride_t, 0) frames in front, k // 2 around H and W), conv."""

    def __init__(self, c_in: int, c_out: int, k: int, stride: tuple[int, int, int] = (1, 1, 1)):
        super().__init__()
        self.pad = (k // 2, k // 2, k // 2, k // 2, k - 1 + max(1 - stride[0], 0), 0)
        self.conv = nn.Conv3d(c_in, c_out, k, stride=stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.pad(x, self.pad))


class SVChannelLastConv(SVCausalConv):
    """CausalConvChannelLast: the same padding on a channel-last (B, T, H, W, C) tensor, then base_conv3d."""

    def forward(self, x: torch.Tensor, residual: torch.Tensor | None = None) -> torch.Tensor:
        return sv_conv_channel_last(self.conv, F.pad(x, (0, 0) + self.pad), residual)


class SVAfterNormConv(nn.Module):
    """CausalConvAfterNorm on a channel-last tensor: k = 3 takes the zero frames from sv_norm_zero_pad and pads H and W
    in the conv; k = 1 pads nothing (a contiguous copy of F.pad's result)."""

    def __init__(self, c_in: int, c_out: int, k: int):
        super().__init__()
        self.k = k
        self.conv = nn.Conv3d(c_in, c_out, k, padding=(0, 1, 1) if k == 3 else 0)

    def forward(self, x: torch.Tensor, residual: torch.Tensor | None = None) -> torch.Tensor:
        if self.k != 3:
            x = F.pad(x, (0,) * 6).contiguous()
        return sv_conv_channel_last(self.conv, x, residual)


class SVResnet(nn.Module):
    """Resnet3DBlock: channel-last copy; [per-frame GroupNorm, SiLU, zero frames, causal 3x3x3 conv] twice; a 1x1x1
    nin_shortcut when widths differ, added in place to conv2's output."""

    def __init__(self, c_in: int, c_out: int, groups: int):
        super().__init__()
        self.norm1 = nn.GroupNorm(groups, c_in)
        self.conv1 = SVAfterNormConv(c_in, c_out, 3)
        self.norm2 = nn.GroupNorm(groups, c_out)
        self.conv2 = SVAfterNormConv(c_out, c_out, 3)
        self.nin_shortcut = SVAfterNormConv(c_in, c_out, 1) if c_in != c_out else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.permute(0, 2, 3, 4, 1).contiguous()
        h = self.conv1(sv_norm_zero_pad(self.norm1, x))
        if self.nin_shortcut is not None:
            x = self.nin_shortcut(x)
        h = sv_norm_zero_pad(self.norm2, h)
        return self.conv2(h, residual=x).permute(0, 4, 1, 2, 3)


class SVAttention(nn.Module):
    """AttnBlock: per-frame GroupNorm, 1x1x1 q, k, v convs, single-head SDPA with ``is_causal=True`` over the T H W
    positions of the chunk (in t, h, w order), 1x1x1 proj_out plus the input."""

    def __init__(self, c: int, groups: int):
        super().__init__()
        self.norm = nn.GroupNorm(groups, c)
        self.q, self.k, self.v, self.proj_out = (SVChannelLastConv(c, c, 1) for _ in range(4))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.permute(0, 2, 3, 4, 1).contiguous()
        h = sv_frame_norm(self.norm, x, False)
        q, k, v = self.q(h), self.k(h), self.v(h)
        B, T, H, W, C = q.shape
        q, k, v = (t.reshape(B, 1, T * H * W, C) for t in (q, k, v))
        h = F.scaled_dot_product_attention(q, k, v, is_causal=True).reshape(B, T, H, W, C)
        return self.proj_out(h, residual=x).permute(0, 4, 1, 2, 3)


class SVMid(nn.Module):
    """Resnet, causal attention, Resnet; the decoder makes a channel-last copy of the attention's output."""

    def __init__(self, c: int, groups: int, copy: bool = False):
        super().__init__()
        self.block_1 = SVResnet(c, c, groups)
        self.attn_1 = SVAttention(c, groups)
        self.block_2 = SVResnet(c, c, groups)
        self.copy = copy

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.attn_1(self.block_1(x))
        return self.block_2(_sv_channel_last_copy(x) if self.copy else x)


class SVDownsample2D(nn.Module):
    """Per frame: zero row and column after the last (F.pad), stride-2 3x3 conv (channel-last in and out)."""

    def __init__(self, c: int):
        super().__init__()
        self.conv = nn.Conv2d(c, c, 3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, C, T, H, W = x.shape
        x = x.permute(0, 2, 3, 4, 1).reshape(B * T, H, W, C)  # rearrange "b c t h w -> (b t) h w c"
        x = self.conv(F.pad(x, (0, 0, 0, 1, 0, 1)).permute(0, 3, 1, 2)).permute(0, 2, 3, 1)
        return x.reshape(B, T, *x.shape[1:]).permute(0, 4, 1, 2, 3)


class SVDownsample3D(nn.Module):
    def __init__(self, c: int):
        super().__init__()
        self.conv = SVCausalConv(c, c, 3, stride=(2, 2, 2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


class SVLevel(nn.Module):
    """One resolution: ``block`` (Resnet3DBlocks; the decoder's each after a channel-last copy), then the optional
    ``downsample`` / ``upsample`` (official names)."""

    def __init__(self, blocks: Sequence[nn.Module], name: str, resample: nn.Module | None, copy: bool = False):
        super().__init__()
        self.block = nn.ModuleList(blocks)
        self.resample_name = name
        if resample is not None:
            self.add_module(name, resample)
        self.copy = copy

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for block in self.block:
            x = block(_sv_channel_last_copy(x) if self.copy else x)
        resample = getattr(self, self.resample_name, None)
        return resample(x) if resample is not None else x


def sv_unshuffle(x: torch.Tensor, factor: int) -> torch.Tensor:
    """pixel_unshuffle_3d: ``factor - 1`` zero frames in front, each factor^3 block of (t, h, w) to channels."""
    x = F.pad(x, (0, 0, 0, 0, factor - 1, 0))
    B, C, D, H, W = x.shape
    f = factor
    x = x.view(B, C, D // f, f, H // f, f, W // f, f).permute(0, 1, 3, 5, 7, 2, 4, 6).contiguous()
    return x.view(B, C * f**3, D // f, H // f, W // f)


def sv_channel_average(x: torch.Tensor, c_out: int, factor: int) -> torch.Tensor:
    """PixelUnshuffleChannelAveragingDownSampleLayer3D: unshuffle, then the mean of each group of channels."""
    x = sv_unshuffle(x, factor)
    B, C, D, H, W = x.shape
    return x.view(B, c_out, C // c_out, D, H, W).mean(dim=2)


def sv_shuffle(x: torch.Tensor, factor: int) -> torch.Tensor:
    """pixel_shuffle_3d: channels to factor^3 blocks of (t, h, w), the first ``factor - 1`` frames dropped (a view)."""
    B, C, D, H, W = x.shape
    f, c = factor, C // factor**3
    x = x.view(B, c, f, f, f, D, H, W).permute(0, 1, 5, 2, 6, 3, 7, 4).contiguous()
    return x.view(B, c, D * f, H * f, W * f)[:, :, f - 1:]


def sv_channel_duplicate(x: torch.Tensor, c_out: int, factor: int) -> torch.Tensor:
    """ChannelDuplicatingPixelUnshuffleUpSampleLayer3D: repeat_interleave channels, then pixel_shuffle_3d."""
    return sv_shuffle(x.repeat_interleave(c_out * factor**3 // x.shape[1], dim=1), factor)


class SVUnshuffleConv(nn.Module):
    """ConvPixelUnshuffleDownSampleLayer3D: causal 3x3x3 conv to c_out / 8, then pixel_unshuffle_3d (x2)."""

    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        self.conv = SVCausalConv(c_in, c_out // 8, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return sv_unshuffle(self.conv(x), 2)


class SVShuffleConv(nn.Module):
    """ConvPixelShuffleUpSampleLayer3D: causal 3x3x3 conv to 8 c_out, then pixel_shuffle_3d (T -> 2T - 1)."""

    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        self.conv = SVCausalConv(c_in, 8 * c_out, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return sv_shuffle(self.conv(x), 2)


class SVResUpsample(nn.Module):
    """Res3DBlockUpsample (same widths): x + SiLU(x + norm2(conv2(SiLU(norm1(conv1(x)))))), channel-last, with the
    channel-last causal convs; the adds and the SiLU in place."""

    def __init__(self, c: int, groups: int):
        super().__init__()
        self.conv1 = SVChannelLastConv(c, c, 3)
        self.norm1 = nn.GroupNorm(groups, c)
        self.conv2 = SVChannelLastConv(c, c, 3)
        self.norm2 = nn.GroupNorm(groups, c)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.permute(0, 2, 3, 4, 1).contiguous()
        h = sv_frame_norm(self.norm1, self.conv1(x), True)
        h = sv_frame_norm(self.norm2, self.conv2(h), False)
        h.add_(x)
        h = F.silu(h, inplace=True)
        h.add_(x)
        return h.permute(0, 4, 1, 2, 3)


class SVUpsample3D(nn.Module):
    """Upsample3D: nearest x2 in T, H and W on 8 channel slices (concatenated), then Res3DBlockUpsample."""

    def __init__(self, c: int, groups: int):
        super().__init__()
        self.conv3d = SVResUpsample(c, groups)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.cat([F.interpolate(s, scale_factor=2.0) for s in torch.split(x, x.shape[1] // 8, dim=1)], dim=1)
        return self.conv3d(x)


class SVUpsample2D(nn.Module):
    """Upsample2D on (B T, H, W, C) frames: nearest x2 (channels-last), a contiguous copy, 3x3 conv."""

    def __init__(self, c: int):
        super().__init__()
        self.conv = nn.Conv2d(c, c, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B = x.size(0)
        x = x.permute(0, 2, 3, 4, 1).flatten(0, 1)
        x = F.interpolate(x.permute(0, 3, 1, 2).to(memory_format=torch.channels_last), scale_factor=2.0,
                          mode="nearest").permute(0, 2, 3, 1).contiguous()
        x = self.conv(x.permute(0, 3, 1, 2)).permute(0, 2, 3, 1)
        return x.unflatten(0, (B, -1)).permute(0, 4, 1, 2, 3)


def _sv_channel_last_copy(x: torch.Tensor) -> torch.Tensor:
    """``h.permute(0, 2, 3, 4, 1).contiguous().permute(0, 4, 1, 2, 3)``: a channel-last copy in NCDHW order."""
    return x.permute(0, 2, 3, 4, 1).contiguous().permute(0, 4, 1, 2, 3)


class StepVideoEncoder(nn.Module):
    """VideoEncoder(version=2) on each chunk of ``chunk_frames`` frames (a contiguous copy each, as the official
    naive_encode): causal conv_in to the stem width; per level Resnet3DBlocks, then a per-frame stride-2 2D conv
    (temporal factor 1) or a causal stride-(2, 2, 2) conv; mid Resnet, causal attention, Resnet; per-frame GroupNorm,
    SiLU; conv_patchify (causal conv to 4z, 3D pixel-unshuffle x2: (T + 1) / 2 frames) plus the channel-averaged
    unshuffle of its input; conv_out to 2z plus the channel average of its input. Returns the moments (B, 2z, L, h, w)
    of all chunks."""

    def __init__(self, cfg: VAEConfig):
        super().__init__()
        chans, g, z = cfg.block_out_channels, cfg.norm_groups, cfg.latent_channels
        stem = cfg.stem_channels or chans[0]
        factors = cfg.level_temporal_factors
        self.conv_in = SVCausalConv(cfg.in_channels, stem, 3)
        levels, c_prev = [], stem
        for i, c in enumerate(chans):
            blocks = []
            for _ in range(cfg.layers_per_block):
                blocks.append(SVResnet(c_prev, c, g))
                c_prev = c
            down: nn.Module | None = None
            if i < len(chans) - 1:
                down = SVDownsample3D(c) if factors[i] > 1 else SVDownsample2D(c)
            levels.append(SVLevel(blocks, "downsample", down))
        self.down = nn.ModuleList(levels)
        self.mid = SVMid(c_prev, g)
        self.norm_out = nn.GroupNorm(g, c_prev)
        head = STEPVIDEO_HEAD * z
        self.conv_patchify = SVUnshuffleConv(c_prev, head)
        self.conv_out = SVChannelLastConv(head, 2 * z, 3)
        self.head, self.z2, self.chunk = head, 2 * z, cfg.chunk_frames

    def encode_chunk(self, x: torch.Tensor) -> torch.Tensor:
        h = _sv_channel_last_copy(self.conv_in(x))
        for level in self.down:
            h = level(h)
        h = self.mid(h)
        h = h.permute(0, 2, 3, 4, 1).contiguous()
        h = sv_frame_norm(self.norm_out, h, True).permute(0, 4, 1, 2, 3).contiguous()
        shortcut = sv_channel_average(h, self.head, 2)
        h = self.conv_patchify(h)
        h = h.add_(shortcut)
        shortcut = sv_channel_average(h, self.z2, 1).permute(0, 2, 3, 4, 1)
        h = self.conv_out(h.permute(0, 2, 3, 4, 1).contiguous())
        return h.add_(shortcut).permute(0, 1, 4, 2, 3)  # (B, t, c, h, w), as the official encoder returns

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        T = int(x.shape[2])
        c = self.chunk or T
        out = torch.cat([self.encode_chunk(x[:, :, i:i + c].contiguous()) for i in range(0, T, c)], dim=1)
        return out.permute(0, 2, 1, 3, 4)


class StepVideoDecoder(nn.Module):
    """VideoDecoder(version=2) on each chunk of ``chunk_latent_frames`` latent frames: causal conv_in z -> head plus the
    channel-duplicated latent; conv_unpatchify (causal conv to 8 c, 3D pixel-shuffle x2: 2L - 1 frames) plus the
    channel-duplicated shuffle of its input; mid; per level (deepest first) Resnet3DBlocks and an up-sampler (nearest
    x2 in T, H, W and Res3DBlockUpsample where the encoder halved time, else nearest x2 per frame and a 3x3 conv);
    per-frame GroupNorm, SiLU, causal conv_out; the first 2^k - 1 frames cut (k temporal up-samplers): 1 + t (L - 1)
    frames. The chunks' frames are concatenated (frame-major, as StepVideoVAE.decode) and each chunk boundary blended
    in place (``mix``: elementwise, no MACs)."""

    def __init__(self, cfg: VAEConfig):
        super().__init__()
        g, z = cfg.norm_groups, cfg.latent_channels
        rev = cfg.decoder_channels
        factors = cfg.level_temporal_factors
        n = len(rev)
        head = STEPVIDEO_HEAD * z
        self.conv_in = SVCausalConv(z, head, 3)
        self.conv_unpatchify = SVShuffleConv(head, rev[0])
        self.mid = SVMid(rev[0], g, copy=True)
        levels: list[nn.Module] = []
        c_prev = rev[0]
        for j, c in enumerate(rev):  # official i_level = n - 1 - j; up[i_level]
            i_level = n - 1 - j
            blocks = []
            for _ in range(cfg.layers_per_block + 1):
                blocks.append(SVResnet(c_prev, c, g))
                c_prev = c
            up: nn.Module | None = None
            if i_level > 0:
                up = SVUpsample3D(c, g) if factors[i_level - 1] > 1 else SVUpsample2D(c)
            levels.insert(0, SVLevel(blocks, "upsample", up, copy=True))
        self.up = nn.ModuleList(levels)
        self.norm_out = nn.GroupNorm(g, c_prev)
        self.conv_out = SVAfterNormConv(c_prev, cfg.in_channels, 3)
        self.cut = 2 ** sum(f > 1 for f in factors) - 1
        self.head, self.mid_c, self.z = head, rev[0], z
        self.chunk, self.chunk_latent = cfg.chunk_frames, cfg.chunk_latent_frames

    def decode_chunk(self, z: torch.Tensor) -> torch.Tensor:
        h = self.conv_in(z)
        h = h.add_(sv_channel_duplicate(z, self.head, 1))
        shortcut = sv_channel_duplicate(h, self.mid_c, 2)
        h = self.conv_unpatchify(h)
        h = h.add_(shortcut)
        h = self.mid(_sv_channel_last_copy(h))
        for level in reversed(self.up):
            h = level(h)
        h = sv_norm_zero_pad(self.norm_out, h.permute(0, 2, 3, 4, 1))
        return self.conv_out(h).permute(0, 4, 1, 2, 3)[:, :, self.cut:]

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        L = int(z.shape[2])
        k = self.chunk_latent or L
        x = torch.cat([self.decode_chunk(z[:, :, i:i + k]).permute(0, 2, 1, 3, 4) for i in range(0, L, k)], dim=1)
        if self.chunk is not None:  # StepVideoVAE.mix: blend the last frame of each chunk and the next one's first
            front = slice(self.chunk - 1, x.size(1) - 1, self.chunk)
            back = slice(self.chunk, x.size(1), self.chunk)
            x[:, back] = x[:, back] * 0.6 + x[:, front] * 0.4
            x[:, front] = x[:, front] * 0.6 + x[:, back] * 0.4
        return x.permute(0, 2, 1, 3, 4)


# ------------------------------------------------------------------------------------------------
# Open-Sora-Plan v1.3 WF-VAE (PKU-YuanGroup/Open-Sora-Plan opensora/models/causalvideovae/model/vae/modeling_wfvae.py
# at 1868311260ad664172c7c77ec49e25dd109d0032, the v1.3.0 code: modules/{conv,updownsample,resnet_block,attention,
# normalize,ops}.py, utils/wavelet_utils.py). Same parameter names and operation sequence as the official modules,
# norm_type "groupnorm": video_to_image runs 2D modules frame by frame (each frame's output kept, then concatenated),
# CausalConv3d concatenates k_t - 1 copies of the first frame in front (an empty tensor for k_t = 1: still a copy).
# WFVAEModel.encode applies a fresh HaarWaveletTransform3D to the video (the same fixed weights as the encoder's
# wavelet_tranform_3d, used here) and decode an InverseHaarWaveletTransform3D to the decoder's 24 channels (the
# decoder's own inverse_wavelet_tranform_3d here): the encoder takes pixels and the decoder returns them.
# ------------------------------------------------------------------------------------------------

WFVAE_FLOW_LAYERS = 2  # the v1.3.0 Decoder's connect_res_layer_num default (WFVAEModel does not pass it)
HAAR_3D = ([[[1, 1], [1, 1]], [[1, 1], [1, 1]]], [[[1, -1], [1, -1]], [[1, -1], [1, -1]]],
           [[[1, 1], [-1, -1]], [[1, 1], [-1, -1]]], [[[1, -1], [-1, 1]], [[1, -1], [-1, 1]]],
           [[[1, 1], [1, 1]], [[-1, -1], [-1, -1]]], [[[1, -1], [1, -1]], [[-1, 1], [-1, 1]]],
           [[[1, 1], [-1, -1]], [[-1, -1], [1, 1]]], [[[1, -1], [-1, 1]], [[-1, 1], [1, -1]]])
HAAR_3D_NAMES = ("h", "g", "hh", "gh", "h_v", "g_v", "hh_v", "gh_v")
HAAR_2D = ([[1, 1], [1, 1]], [[1, 1], [-1, -1]], [[1, -1], [1, -1]], [[1, -1], [-1, 1]])
HAAR_2D_NAMES = ("aa", "ad", "da", "dd")


def wf_per_frame(fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """ops.video_to_image: a 5D input runs frame by frame (x[:, :, i], a view), outputs concatenated on dim 2."""
    if x.dim() != 5:
        return fn(x)
    return torch.concatenate([fn(x[:, :, i]).unsqueeze(2) for i in range(x.shape[2])], dim=2)


class WFConv2d(nn.Conv2d):
    """modules.conv.Conv2d: nn.Conv2d per frame."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return wf_per_frame(super().forward, x)


class WFCausalConv3d(nn.Module):
    """modules.conv.CausalConv3d: k_t - 1 copies of the first frame concatenated in front, then the conv (padding
    only in H and W)."""

    def __init__(self, c_in: int, c_out: int, k: int, stride: int = 1, padding: int = 0, bias: bool = True):
        super().__init__()
        self.kt = k
        self.conv = nn.Conv3d(c_in, c_out, k, stride=stride, padding=(0, padding, padding), bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.concatenate((x[:, :, :1, :, :].repeat((1, 1, self.kt - 1, 1, 1)), x), dim=2)
        return self.conv(x)


def wf_silu(x: torch.Tensor) -> torch.Tensor:
    """ops.nonlinearity: x * sigmoid(x) (two tensors)."""
    return x * torch.sigmoid(x)


class WFResnetBlock2D(nn.Module):
    """ResnetBlock2D (per frame): GroupNorm, x sigmoid(x), 3x3 conv, twice; 1x1 nin_shortcut when widths differ."""

    def __init__(self, c_in: int, c_out: int, groups: int):
        super().__init__()
        self.norm1 = nn.GroupNorm(groups, c_in, eps=1e-6)
        self.conv1 = nn.Conv2d(c_in, c_out, 3, padding=1)
        self.norm2 = nn.GroupNorm(groups, c_out, eps=1e-6)
        self.dropout = nn.Dropout(0.0)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1)
        self.nin_shortcut = nn.Conv2d(c_in, c_out, 1) if c_in != c_out else None

    def _frame(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv1(wf_silu(self.norm1(x)))
        h = self.conv2(self.dropout(wf_silu(self.norm2(h))))
        if self.nin_shortcut is not None:
            x = self.nin_shortcut(x)
        return x + h

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return wf_per_frame(self._frame, x)


class WFResnetBlock3D(nn.Module):
    """ResnetBlock3D: GroupNorm, x sigmoid(x), causal 3x3x3 conv, twice; causal 1x1x1 nin_shortcut (computed last)."""

    def __init__(self, c_in: int, c_out: int, groups: int):
        super().__init__()
        self.norm1 = nn.GroupNorm(groups, c_in, eps=1e-6)
        self.conv1 = WFCausalConv3d(c_in, c_out, 3, padding=1)
        self.norm2 = nn.GroupNorm(groups, c_out, eps=1e-6)
        self.dropout = nn.Dropout(0.0)
        self.conv2 = WFCausalConv3d(c_out, c_out, 3, padding=1)
        self.nin_shortcut = WFCausalConv3d(c_in, c_out, 1) if c_in != c_out else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv1(wf_silu(self.norm1(x)))
        h = self.conv2(self.dropout(wf_silu(self.norm2(h))))
        if self.nin_shortcut is not None:
            x = self.nin_shortcut(x)
        return x + h


class WFAttnBlock3DFix(nn.Module):
    """AttnBlock3DFix: GroupNorm, causal 1x1x1 q, k, v; per frame single-head attention over H W positions (bmm,
    scale, softmax, bmm), causal 1x1x1 proj_out plus the input."""

    def __init__(self, c: int, groups: int):
        super().__init__()
        self.norm = nn.GroupNorm(groups, c, eps=1e-6)
        self.q, self.k, self.v, self.proj_out = (WFCausalConv3d(c, c, 1) for _ in range(4))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h_ = self.norm(x)
        q, k, v = self.q(h_), self.k(h_), self.v(h_)
        b, c, t, h, w = q.shape
        q = q.permute(0, 2, 1, 3, 4).reshape(b * t, c, h * w).permute(0, 2, 1)
        k = k.permute(0, 2, 1, 3, 4).reshape(b * t, c, h * w)
        w_ = torch.bmm(q, k)
        w_ = w_ * (int(c) ** (-0.5))
        w_ = F.softmax(w_, dim=2)
        v = v.permute(0, 2, 1, 3, 4).reshape(b * t, c, h * w)
        h_ = torch.bmm(v, w_.permute(0, 2, 1))
        h_ = h_.reshape(b, t, c, h, w).permute(0, 2, 1, 3, 4)
        return x + self.proj_out(h_)


class WFDownsample(nn.Module):
    """updownsample.Downsample (per frame): a zero row and column after the last (F.pad), stride-2 3x3 conv."""

    def __init__(self, c: int):
        super().__init__()
        self.conv = nn.Conv2d(c, c, 3, stride=2)

    def _frame(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.pad(x, (0, 1, 0, 1)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return wf_per_frame(self._frame, x)


class WFUpsample(nn.Module):
    """updownsample.Upsample (per frame): nearest x2, 3x3 conv."""

    def __init__(self, c: int):
        super().__init__()
        self.conv = nn.Conv2d(c, c, 3, padding=1)

    def _frame(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return wf_per_frame(self._frame, x)


class WFSpatial2xTime2x3DDownsample(nn.Module):
    """A zero row and column after the last (F.pad), causal stride-2 3x3x3 conv: (T, H, W) -> ((T - 1) // 2 + 1,
    H // 2, W // 2)."""

    def __init__(self, c: int):
        super().__init__()
        self.conv = WFCausalConv3d(c, c, 3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.pad(x, (0, 1, 0, 1, 0, 0)))


class WFSpatial2xTime2x3DUpsample(nn.Module):
    """T > 1: the frames after the first nearest x2 in time, then (both parts) trilinear x2 in H and W, concatenated
    (T -> 2T - 1); T = 1: trilinear x2 in H and W. Then a causal 3x3x3 conv."""

    def __init__(self, c: int, t_interpolation: str = "nearest"):
        super().__init__()
        self.t_interpolation = t_interpolation
        self.conv = WFCausalConv3d(c, c, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.size(2) > 1:
            x, x_ = x[:, :, :1], x[:, :, 1:]
            x_ = F.interpolate(x_, scale_factor=(2, 1, 1), mode=self.t_interpolation)
            x_ = F.interpolate(x_, scale_factor=(1, 2, 2), mode="trilinear")
            x = F.interpolate(x, scale_factor=(1, 2, 2), mode="trilinear")
            x = torch.concat([x, x_], dim=2)
        else:
            x = F.interpolate(x, scale_factor=(1, 2, 2), mode="trilinear")
        return self.conv(x)


class WFHaar3D(nn.Module):
    """HaarWaveletTransform3D: the channels as a batch of 1-channel videos, eight frozen causal stride-2 2x2x2 convs
    (one copy of the first frame in front; (T - 1) // 2 + 1 frames), each output reshaped back, concatenated (8 C
    channels)."""

    def __init__(self) -> None:
        super().__init__()
        for name, filt in zip(HAAR_3D_NAMES, HAAR_3D, strict=True):
            conv = WFCausalConv3d(1, 1, 2, stride=2, bias=False)
            if conv.conv.weight.device.type != "meta":
                conv.conv.weight.data = (torch.tensor(filt) * 0.3536).view(1, 1, 2, 2, 2).float()
            conv.requires_grad_(False)
            self.add_module(f"{name}_conv", conv)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b = x.shape[0]
        x = x.reshape(b * x.shape[1], 1, *x.shape[2:])
        outs = [getattr(self, f"{n}_conv")(x) for n in HAAR_3D_NAMES]
        return torch.cat([o.reshape(b, -1, *o.shape[2:]) for o in outs], dim=1)


class WFInverseHaar3D(nn.Module):
    """InverseHaarWaveletTransform3D: 8 channel chunks, each a stride-2 2x2x2 conv_transpose3d of its channels as
    1-channel videos (T -> 2T), the first frame of each dropped and the eight summed (2T - 1 frames)."""

    def __init__(self) -> None:
        super().__init__()
        for name, filt in zip(HAAR_3D_NAMES, HAAR_3D, strict=True):
            self.register_buffer(name, torch.tensor(filt).view(1, 1, 2, 2, 2) * 0.3536)

    def forward(self, coeffs: torch.Tensor) -> torch.Tensor:
        b = coeffs.shape[0]
        parts = [F.conv_transpose3d(p.reshape(-1, 1, *p.shape[2:]), getattr(self, n), stride=2)
                 for p, n in zip(coeffs.chunk(8, dim=1), HAAR_3D_NAMES, strict=True)]
        out = parts[0][:, :, 1:]
        for p in parts[1:]:
            out = out + p[:, :, 1:]
        return out.reshape(b, -1, *out.shape[2:])


class WFHaar2D(nn.Module):
    """HaarWaveletTransform2D on (N, C, H, W): four stride-2 2x2 conv2d of the channels as 1-channel images,
    concatenated (4 C channels)."""

    def __init__(self) -> None:
        super().__init__()
        for name, filt in zip(HAAR_2D_NAMES, HAAR_2D, strict=True):
            self.register_buffer(name, torch.tensor(filt).view(1, 1, 2, 2) / 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        x = x.reshape(b * c, 1, h, w)
        return torch.cat([F.conv2d(x, getattr(self, n), stride=2).reshape(b, c, h // 2, w // 2)
                          for n in HAAR_2D_NAMES], dim=1)


class WFInverseHaar2D(nn.Module):
    """InverseHaarWaveletTransform2D: 4 channel chunks, each a stride-2 2x2 conv_transpose2d, summed."""

    def __init__(self) -> None:
        super().__init__()
        for name, filt in zip(HAAR_2D_NAMES, HAAR_2D, strict=True):
            self.register_buffer(name, torch.tensor(filt).view(1, 1, 2, 2) / 2)

    def forward(self, coeffs: torch.Tensor) -> torch.Tensor:
        parts = coeffs.chunk(4, dim=1)
        b, c, hh, wh = parts[0].shape
        outs = [F.conv_transpose2d(p.reshape(b * c, 1, hh, wh), getattr(self, n), stride=2)
                for p, n in zip(parts, HAAR_2D_NAMES, strict=True)]
        return (outs[0] + outs[1] + outs[2] + outs[3]).reshape(b, c, 2 * hh, 2 * wh)


def _frames_to_batch(x: torch.Tensor) -> torch.Tensor:
    """rearrange "b c t h w -> (b t) c h w" (a copy)."""
    b, c, t, h, w = x.shape
    return x.permute(0, 2, 1, 3, 4).reshape(b * t, c, h, w)


def _batch_to_frames(x: torch.Tensor, t: int) -> torch.Tensor:
    """rearrange "(b t) c h w -> b c t h w" (a view)."""
    bt, c, h, w = x.shape
    return x.reshape(bt // t, t, c, h, w).permute(0, 2, 1, 3, 4)


class WFVAEEncoder(nn.Module):
    """WF-VAE Encoder with WFVAEModel.encode's input wavelet: pixels (B, 3, T, H, W) -> moments (B, 2z, 1 + (T - 1)
    / 4, H / 8, W / 8)."""

    def __init__(self, cfg: VAEConfig):
        super().__init__()
        c, L, g, z = cfg.block_out_channels[0], cfg.layers_per_block, cfg.norm_groups, cfg.latent_channels
        assert cfg.energy_flow_channels is not None
        ef = cfg.energy_flow_channels[0]
        self.down1 = nn.Sequential(WFConv2d(24, c, 3, padding=1), *[WFResnetBlock2D(c, c, g) for _ in range(L)],
                                   WFDownsample(c))
        self.down2 = nn.Sequential(WFConv2d(c + ef, 2 * c, 3, padding=1),
                                   *[WFResnetBlock3D(2 * c, 2 * c, g) for _ in range(L)],
                                   WFSpatial2xTime2x3DDownsample(2 * c))
        self.connect_l2 = WFConv2d(12, ef, 3, padding=1)
        self.connect_l3 = WFConv2d(24, ef, 3, padding=1)
        mid: list[nn.Module] = [WFResnetBlock3D(2 * c + ef, 4 * c, g), WFResnetBlock3D(4 * c, 4 * c, g)]
        if cfg.mid_attention:
            mid.insert(1, WFAttnBlock3DFix(4 * c, g))
        self.mid = nn.Sequential(*mid)
        self.norm_out = nn.GroupNorm(g, 4 * c, eps=1e-6)
        self.conv_out = WFCausalConv3d(4 * c, 2 * z, 3, padding=1)
        self.wavelet_tranform_3d = WFHaar3D()
        self.wavelet_tranform_2d = WFHaar2D()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        coeffs = self.wavelet_tranform_3d(x)  # WFVAEModel.encode
        l2_coeffs = coeffs[:, :3]
        t = l2_coeffs.shape[2]
        l2_coeffs = _batch_to_frames(self.wavelet_tranform_2d(_frames_to_batch(l2_coeffs)), t)
        l2 = self.connect_l2(l2_coeffs)
        l3 = self.connect_l3(self.wavelet_tranform_3d(l2_coeffs[:, :3]))
        h = self.down1(coeffs)
        h = torch.concat([h, l2], dim=1)
        h = self.down2(h)
        h = torch.concat([h, l3], dim=1)
        h = self.mid(h)
        return self.conv_out(wf_silu(self.norm_out(h)))


class WFVAEDecoder(nn.Module):
    """WF-VAE Decoder with WFVAEModel.decode's output inverse wavelet: latents (B, z, L, h, w) -> pixels (B, 3,
    1 + 4 (L - 1), 8h, 8w). The energy-flow coefficients are added in place into slices of their branches' outputs."""

    def __init__(self, cfg: VAEConfig):
        super().__init__()
        c, L, g, z = cfg.block_out_channels[0], cfg.layers_per_block, cfg.norm_groups, cfg.latent_channels
        assert cfg.energy_flow_channels is not None
        ef = cfg.energy_flow_channels[1]
        n = cfg.energy_flow_layers or WFVAE_FLOW_LAYERS
        self.energy_flow_hidden_size = ef
        self.conv_in = WFCausalConv3d(z, 4 * c, 3, padding=1)
        mid: list[nn.Module] = [WFResnetBlock3D(4 * c, 4 * c, g), WFResnetBlock3D(4 * c, 4 * c + ef, g)]
        if cfg.mid_attention:
            mid.insert(1, WFAttnBlock3DFix(4 * c, g))
        self.mid = nn.Sequential(*mid)
        self.up2 = nn.Sequential(*[WFResnetBlock3D(4 * c, 4 * c, g) for _ in range(L)],
                                 WFSpatial2xTime2x3DUpsample(4 * c), WFResnetBlock3D(4 * c, 4 * c + ef, g))
        self.up1 = nn.Sequential(*[WFResnetBlock3D(4 * c if i == 0 else 2 * c, 2 * c, g) for i in range(L)],
                                 WFUpsample(2 * c), WFResnetBlock3D(2 * c, 2 * c, g))
        self.layer = nn.Sequential(WFResnetBlock3D(2 * c, c, g), WFResnetBlock3D(c, c, g))
        self.connect_l2 = nn.Sequential(*[WFResnetBlock3D(c, c, g) for _ in range(n)], WFConv2d(c, 12, 3, padding=1))
        self.connect_l3 = nn.Sequential(*[WFResnetBlock3D(c, c, g) for _ in range(n)], WFConv2d(c, 24, 3, padding=1))
        self.norm_out = nn.GroupNorm(g, c, eps=1e-6)
        self.conv_out = WFConv2d(c, 24, 3, padding=1)
        self.inverse_wavelet_tranform_3d = WFInverseHaar3D()
        self.inverse_wavelet_tranform_2d = WFInverseHaar2D()

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        ef = self.energy_flow_hidden_size
        h = self.mid(self.conv_in(z))
        l3 = self.inverse_wavelet_tranform_3d(self.connect_l3(h[:, -ef:]))
        h = self.up2(h[:, :-ef])
        l2_coeffs = self.connect_l2(h[:, -ef:])
        l2_coeffs[:, :3] = l2_coeffs[:, :3] + l3
        t = l2_coeffs.shape[2]
        l2 = _batch_to_frames(self.inverse_wavelet_tranform_2d(_frames_to_batch(l2_coeffs)), t)
        h = self.layer(self.up1(h[:, :-ef]))
        h = self.conv_out(wf_silu(self.norm_out(h)))
        h[:, :3] = h[:, :3] + l2
        return self.inverse_wavelet_tranform_3d(h)  # WFVAEModel.decode


FAMILIES: dict[str, tuple[type[nn.Module], type[nn.Module]]] = {
    "generic": (Encoder3D, Decoder3D),
    "wan": (WanEncoder, WanDecoder),
    "cogvideox": (CogEncoder, CogDecoder),
    "mochi": (MochiEncoder, MochiDecoder),
    "ltx": (LTXEncoder, LTXDecoder),
    "opensora": (OpenSoraEncoder, OpenSoraDecoder),
    "stepvideo": (StepVideoEncoder, StepVideoDecoder),
    "wfvae": (WFVAEEncoder, WFVAEDecoder),
}
