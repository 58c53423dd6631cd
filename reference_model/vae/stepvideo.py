"""Step-Video-T2V Video-VAE v2 (StepFun's StepVideoVAE(z_channels=64, version=2); the code is vendored as
modelscope/DiffSynth-Studio diffsynth/models/stepvideo_vae.py). Same parameter names as the official modules (its
checkpoint loads strictly) and the same operation sequence, including the channel-last copies (their memory is
what the liveness walk models). Only the >= 2^30-element time-split of base_conv3d_channel_last is left out (the
same convolutions over four time slices written into a preallocated output).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from reference_model.vae.common import VAEConfig

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
