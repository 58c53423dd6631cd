"""Wan2.1 (diffusers AutoencoderKLWan; Wan-Video/Wan2.1 wan/modules/vae.py)
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from reference_model.vae.common import ChannelRMSNorm, Level, VAEConfig, from_frames, per_frame

CACHE_T = 2  # frames of each causal conv's input kept between chunks (Wan2.1 wan/modules/vae.py CACHE_T)


class WanCausalConv3d(nn.Conv3d):
    """Causal conv: ``F.pad`` with ``kt - 1`` zero frames in front and k // 2 zeros around H and W, then the conv.

    With the feature cache on (``caching``, chunked decoding as Wan2.1's ``WanVAE_.decode``), a conv with a temporal
    kernel first clones the last ``CACHE_T`` frames of its input (with the last cached frame in front when the input
    has one frame and a cache exists), concatenates the cache before its input, pads the remaining front frames and H,
    W, and keeps the clone as the next chunk's cache. A temporal up-sampler's conv (``zero_front``) is first called in
    the second chunk, with no cache: a one-frame clone gets a zero frame in front (Wan2.1 ``Resample``'s 'Rep')."""

    def __init__(self, c_in: int, c_out: int, kernel: tuple[int, int, int] = (3, 3, 3)):
        super().__init__(c_in, c_out, kernel)
        kt, kh, kw = kernel
        self.pad = (kw // 2, kw // 2, kh // 2, kh // 2, kt - 1, 0)
        self.caching = False
        self.cache: torch.Tensor | None = None
        self.zero_front = False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.caching or self.pad[4] == 0:
            return super().forward(F.pad(x, self.pad) if any(self.pad) else x)
        new = x[:, :, -CACHE_T:].clone()
        old = self.cache
        if new.shape[2] < CACHE_T and old is not None:
            new = torch.cat([old[:, :, -1:], new], dim=2)
        elif new.shape[2] < CACHE_T and self.zero_front:
            new = torch.cat([torch.zeros_like(new), new], dim=2)
        if old is not None:
            x = torch.cat([old, x], dim=2)
        pad = (*self.pad[:4], self.pad[4] - (old.shape[2] if old is not None else 0), 0)
        out = super().forward(F.pad(x, pad))
        self.cache = new
        return out


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
        self.caching = False  # chunked encoding (Wan2.1 ``Resample`` downsample3d with its feature cache)
        self.cache: torch.Tensor | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        T = x.shape[2]
        x = from_frames(self.conv(F.pad(per_frame(x), (0, 1, 0, 1))), T)
        if self.time_conv is not None and self.caching:
            if self.cache is None:  # the first chunk keeps its frame, cloned as the cache
                self.cache = x.clone()
                return x
            new = x[:, :, -1:].clone()
            x = self.time_conv(torch.cat([self.cache[:, :, -1:], x], dim=2))
            self.cache = new
            return x
        if self.time_conv is not None and T > 1:
            x = torch.cat([x[:, :, :1], self.time_conv(x)], dim=2)
        return x


class WanUpsample(nn.Module):
    """Temporal levels first double every frame after the first: a causal (3, 1, 1) conv c -> 2c whose two halves
    become two frames (T -> 1 + 2 (T - 1)). Then per frame: nearest x2 and a 3x3 conv to c / 2 channels."""

    def __init__(self, c: int, temporal: bool):
        super().__init__()
        self.time_conv = WanCausalConv3d(c, 2 * c, (3, 1, 1)) if temporal else None
        if self.time_conv is not None:
            self.time_conv.zero_front = True
        self.conv = nn.Conv2d(c, c // 2, 3, padding=1)
        self.started = False  # chunked decoding: a chunk has run (the first keeps its frame)

    def double_frames(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, T, H, W) -> (B, C, 2T - 1, H, W): frame 0, then two frames from each later one."""
        assert self.time_conv is not None
        B, C, T, H, W = x.shape
        rest = self.time_conv(x[:, :, 1:]).reshape(B, 2, C, T - 1, H, W)  # channel halves -> frame pairs
        return torch.cat([x[:, :, :1], rest.permute(0, 2, 3, 1, 4, 5).reshape(B, C, 2 * (T - 1), H, W)], dim=2)

    def double_all_frames(self, x: torch.Tensor) -> torch.Tensor:
        """A chunk after the first, feature cache on: every frame doubled by the cached time conv (T -> 2T), its
        channel halves stacked as frame pairs (Wan2.1 ``Resample`` upsample3d)."""
        assert self.time_conv is not None
        B, C, T, H, W = x.shape
        y = self.time_conv(x).reshape(B, 2, C, T, H, W)
        return torch.stack((y[:, 0], y[:, 1]), 3).reshape(B, C, 2 * T, H, W)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.time_conv is not None and self.time_conv.caching:
            if self.started:
                x = self.double_all_frames(x)
            self.started = True  # the first chunk keeps its one frame
        elif self.time_conv is not None and x.shape[2] > 1:
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
        return self.quant_conv(self.encode_chunk(x))

    def encode_chunk(self, x: torch.Tensor) -> torch.Tensor:
        """The encoder before quant_conv (on one chunk of frames when the feature caches are on: ``chunked``)."""
        x = self.conv_in(x)
        for level in self.down:
            x = level(x)
        x = self.mid(x)
        return self.conv_out(F.silu(self.norm_out(x)))

    def chunked(self, x: torch.Tensor, chunk: int = 1) -> torch.Tensor:
        """Wan2.1's encode (wan/modules/vae.py ``WanVAE_.encode``; diffusers ``AutoencoderKLWan._encode``): the first
        frame alone, then ``chunk`` x temporal-compression frames at a time (Wan2.1: 4) through the encoder with each
        causal conv's and temporal down-sampler's feature cache, the outputs grown by concatenation (the last chunk's
        output still bound, as ``out_`` is there), then quant_conv over them with the caches still held (cleared
        after it)."""
        t = 1
        for m in self.modules():
            if isinstance(m, WanDownsample) and m.time_conv is not None:
                t *= 2
        caching = [m for m in self.modules() if isinstance(m, (WanCausalConv3d, WanDownsample))]
        for m in caching:
            m.caching, m.cache = True, None
        try:
            out = self.encode_chunk(x[:, :, :1])
            for i in range(1, x.shape[2], chunk * t):
                out_ = self.encode_chunk(x[:, :, i:i + chunk * t])
                out = torch.cat([out, out_], dim=2)
            return self.quant_conv(out)
        finally:
            for m in caching:
                m.caching, m.cache = False, None


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

    def decode_chunk(self, z: torch.Tensor) -> torch.Tensor:
        """The decoder after post_quant_conv on one chunk of latent frames (feature cache on: ``chunked``)."""
        x = self.mid(self.conv_in(z))
        for level in self.up:
            x = level(x)
        return self.conv_out(F.silu(self.norm_out(x)))

    def chunked(self, z: torch.Tensor, chunk: int = 1) -> torch.Tensor:
        """Wan2.1's decode (wan/modules/vae.py ``WanVAE_.decode``): post_quant_conv over the whole latent, then the
        first latent frame alone (Wan's first chunk: its temporal up-samplers keep the frame) and ``chunk`` latent
        frames at a time after it (Wan2.1: 1) through the decoder with each causal conv's feature cache, the video
        grown by concatenation after each chunk."""
        convs = [m for m in self.modules() if isinstance(m, WanCausalConv3d)]
        for m in convs:
            m.caching, m.cache = True, None
        for up in self.modules():
            if isinstance(up, WanUpsample):
                up.started = False
        try:
            x = self.post_quant_conv(z)
            out: torch.Tensor | None = None
            for i, j in zip([0, *range(1, z.shape[2], chunk)], [*range(1, z.shape[2], chunk), z.shape[2]],
                            strict=True):
                o = self.decode_chunk(x[:, :, i:j])
                out = o if out is None else torch.cat([out, o], dim=2)
                del o
            assert out is not None
            return out
        finally:
            for m in convs:
                m.caching, m.cache = False, None
