"""Open-Sora-Plan v1.3 WF-VAE (PKU-YuanGroup/Open-Sora-Plan opensora/models/causalvideovae/model/vae/modeling_wfvae.py
at 1868311260ad664172c7c77ec49e25dd109d0032, the v1.3.0 code: modules/{conv,updownsample,resnet_block,attention,
normalize,ops}.py, utils/wavelet_utils.py). Same parameter names and operation sequence as the official modules,
norm_type "groupnorm": video_to_image runs 2D modules frame by frame (each frame's output kept, then concatenated),
CausalConv3d concatenates k_t - 1 copies of the first frame in front (an empty tensor for k_t = 1: still a copy).
WFVAEModel.encode applies a fresh HaarWaveletTransform3D to the video (the same fixed weights as the encoder's
wavelet_tranform_3d, used here) and decode an InverseHaarWaveletTransform3D to the decoder's 24 channels (the
decoder's own inverse_wavelet_tranform_3d here): the encoder takes pixels and the decoder returns them.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from reference_model.vae.common import VAEConfig

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
