"""CogVideoX (diffusers AutoencoderKLCogVideoX)
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from reference_model.vae.common import Conv3d, VAEConfig, from_frames, per_frame


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

    def framewise(self, x: torch.Tensor, batch: int = 8) -> torch.Tensor:
        """diffusers ``AutoencoderKLCogVideoX._encode``: max(F // ``batch``, 1) encoder calls
        (``num_sample_frames_batch_size`` = 8), the first taking the F % ``batch`` frames left over as well, each
        causal conv fed the previous call's last two input frames (``conv_cache``: the old caches held until the call
        returns), the outputs concatenated."""
        F_, r = x.shape[2], x.shape[2] % batch
        return _with_conv_cache(self, x, [(batch * i + (r if i else 0), batch * (i + 1) + r)
                                          for i in range(max(F_ // batch, 1))])


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

    def framewise(self, z: torch.Tensor, batch: int = 2) -> torch.Tensor:
        """diffusers ``AutoencoderKLCogVideoX._decode`` with ``use_framewise_decoding`` (on by default): ``batch``
        latent frames per decoder call (``num_latent_frames_batch_size`` = 2), each causal conv fed the previous
        call's last two input frames (``conv_cache``: the old caches held until the call returns), the outputs
        concatenated."""
        return _with_conv_cache(self, z, [(k, k + batch) for k in range(0, z.shape[2], batch)])


def _with_conv_cache(module: nn.Module, x: torch.Tensor, frames: list[tuple[int, int]]) -> torch.Tensor:
    """diffusers' ``conv_cache`` loop: ``module`` on each ``frames`` slice of ``x`` in turn, each causal conv fed the
    previous call's last two input frames (the old caches held until the call returns), the outputs concatenated."""
    convs = [m for m in module.modules() if isinstance(m, Conv3d) and m.causal and m.kt > 1]
    for m in convs:
        m.caching, m.cache, m.next_cache = True, None, None
    try:
        out = []
        for a, b in frames:
            out.append(module(x[:, :, a:b]))
            for m in convs:
                m.cache, m.next_cache = m.next_cache, None
        return torch.cat(out, dim=2)
    finally:
        for m in convs:
            m.caching, m.cache, m.next_cache = False, None, None
