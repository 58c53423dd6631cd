"""Specifications of video diffusion models and of the videos they process.

Every spec is an immutable pydantic (v2) model. Units are in field descriptions: pixels for
video sizes, seconds for durations, frames per second for rates, channels for widths.
Parameter counts are closed-form Python ints (exact; never int64-bounded).

The closed-form parameter counts here describe exactly the modules built by
``reference_model/`` from the same numbers; ``tests/test_params.py`` checks them against
``sum(p.numel() for p in model.parameters())``.
"""

from __future__ import annotations

import math
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

__all__ = [
    "VideoSpec",
    "DiTSpec",
    "VAESpec",
    "TextEncoderSpec",
    "ModelSpec",
    "Workload",
    "LatentShape",
    "VideoShapeError",
    "linear_params",
    "conv_params",
]


class _Spec(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class VideoShapeError(ValueError):
    """A video shape that a model cannot process (e.g. not divisible by compression x patch)."""


def linear_params(fan_in: int, fan_out: int, bias: bool = True) -> int:
    """Parameters of nn.Linear: fan_in * fan_out (+ fan_out bias)."""
    return fan_in * fan_out + (fan_out if bias else 0)


def conv_params(c_in: int, c_out: int, kernel: tuple[int, ...], bias: bool = True) -> int:
    """Parameters of an N-d convolution: c_in * c_out * prod(kernel) (+ c_out bias)."""
    return c_in * c_out * math.prod(kernel) + (c_out if bias else 0)


def _is_power_of_two(n: int) -> bool:
    return n >= 1 and (n & (n - 1)) == 0


# --------------------------------------------------------------------------------------------
# Video
# --------------------------------------------------------------------------------------------


class VideoSpec(_Spec):
    """A video clip: width x height pixels, ``num_frames`` frames at ``fps``.

    Give either ``num_frames`` or ``duration_s`` (then ``num_frames = round(duration_s * fps)``).
    An image is a video of one frame.
    """

    width: int = Field(gt=0, description="frame width in pixels")
    height: int = Field(gt=0, description="frame height in pixels")
    num_frames: int = Field(gt=0, description="number of frames (1 for an image)")
    fps: float = Field(default=24.0, gt=0, description="frames per second")

    @model_validator(mode="before")
    @classmethod
    def _frames_from_duration(cls, data: object) -> object:
        if isinstance(data, dict) and "duration_s" in data:
            data = dict(data)
            duration = data.pop("duration_s")
            if data.get("num_frames") is not None:
                raise ValueError("give num_frames or duration_s, not both")
            if not isinstance(duration, (int, float)) or duration <= 0:
                raise ValueError(f"duration_s must be a positive number of seconds, got {duration!r}")
            fps = data.get("fps", 24.0)
            if not isinstance(fps, (int, float)) or fps <= 0:
                raise ValueError(f"fps must be a positive number, got {fps!r}")
            data["num_frames"] = max(1, round(duration * fps))
        return data

    @classmethod
    def image(cls, width: int, height: int) -> VideoSpec:
        """A single image (a video of one frame)."""
        return cls(width=width, height=height, num_frames=1)

    @classmethod
    def from_duration(cls, width: int, height: int, duration_s: float, fps: float = 24.0) -> VideoSpec:
        """A clip of ``duration_s`` seconds at ``fps`` (num_frames = round(duration_s x fps))."""
        return cls.model_validate({"width": width, "height": height, "duration_s": duration_s, "fps": fps})

    @property
    def duration_s(self) -> float:
        """Duration in seconds (num_frames / fps)."""
        return self.num_frames / self.fps

    @property
    def pixels(self) -> int:
        """Pixels per video: width x height x frames."""
        return self.width * self.height * self.num_frames


# --------------------------------------------------------------------------------------------
# VAE
# --------------------------------------------------------------------------------------------

VAEFamily = Literal["generic", "wan", "cogvideox", "mochi", "ltx", "opensora", "stepvideo", "wfvae"]


class VAESpec(_Spec):
    """A 3D convolutional VAE (encoder + decoder) of the CogVideoX / HunyuanVideo family.

    Levels of ResNet blocks with GroupNorm; the first ``log2(spatial_compression)`` levels
    down-sample height and width by 2, and the first ``log2(temporal_compression)`` of those
    also halve time. A mid-block (ResNet, optional attention over all latent positions,
    ResNet) sits between encoder and decoder levels. With ``causal`` temporal convolutions the
    first frame is encoded on its own: ``1 + (F - 1) / t`` latent frames (CogVideoX/Hunyuan);
    otherwise ``F / t``. ``temporal_kernel=1`` gives a per-frame 2D VAE (e.g. SD's VAE).

    ``family`` other than ``generic`` builds a published VAE's own blocks exactly (diffusers' classes, see
    ``reference_model/vae.py``): ``wan`` (AutoencoderKLWan 2.1: channel RMSNorm, 2D spatial resampling plus a
    separate temporal conv, per-frame mid attention, quant convs counted), ``cogvideox`` (AutoencoderKLCogVideoX:
    GroupNorm encoder, decoder norms conditioned on the latent), ``mochi`` (AutoencoderKLMochi: Fourier features,
    asymmetric widths ``decoder_block_out_channels``, per-level ``layers_per_level`` and ``temporal_factors``, causal
    temporal attention in the encoder), ``ltx`` (AutoencoderKLLTXVideo 0.9.0: pixel-unshuffle ``patch_size``, weightless
    RMSNorm, ``layers_per_level``, non-causal decoder). For these families the layout comes from the family: every level
    but the last down-samples space (``spatial_compression = patch_size x 2^(levels - 1)``), convolutions are 3x3x3 and
    causal, and ``temporal_kernel``, ``mid_attention`` and ``double_z`` are not used (``norm_groups`` only by the
    GroupNorm families, generic, cogvideox and mochi).

    ``opensora`` (Open-Sora 1.2's OpenSoraVAE_V1_2) stacks two VAEs: a per-frame SD/SDXL VAE (``block_out_channels``,
    ``layers_per_block``, ``spatial_compression``; diffusers AutoencoderKL with its quant convs, run over the frames in
    micro-batches of 4, reference_model.vae.OPENSORA_MICRO_BATCH) that maps pixels to ``latent_channels`` channels, then
    a causal MAGVIT-v2 style temporal VAE (VAE_Temporal_SD: ``temporal_block_out_channels`` widths, ``layers_per_level``
    ResBlocks per level and after the last, ``temporal_factors`` of 1 or 2 per level boundary) over the same channels.
    The temporal VAE runs on chunks of ``chunk_frames`` frames (``micro_frame_size``), each padded in front to a
    multiple of ``temporal_compression``: a chunk of r frames gives ceil(r / t) latent frames (17 -> 5), so any frame
    count fits.

    ``stepvideo`` (Step-Video-T2V's Video-VAE v2, StepFun's StepVideoVAE(z_channels=64, version=2)): causal conv_in to
    ``stem_channels``, encoder levels of ``layers_per_block`` GroupNorm Resnet3DBlocks (``block_out_channels``), each
    boundary a per-frame stride-2 2D conv or, where ``temporal_factors`` (default: the last log2(t) - 1 boundaries) is
    2, a causal stride-(2, 2, 2) conv; mid Resnet, causal attention over the chunk's positions, Resnet; then the v2 head
    (a causal conv and a 3D pixel-unshuffle x2 to 32 z channels, a causal conv to 2z, each with a parameter-free
    channel-averaging shortcut): ``spatial_compression = 2^levels``. The decoder mirrors it
    (``decoder_block_out_channels``, ``layers_per_block`` + 1 blocks per level, time doubled by nearest x2 plus a
    Res3DBlockUpsample). Frames are encoded in chunks of ``chunk_frames`` (17), each causal on its own: a chunk of
    r = 1 + t j frames gives 1 + j latent frames (17 -> 3 at t = 8); decoding maps chunks of ``chunk_latent_frames``
    back (3 -> 17).

    ``wfvae`` (Open-Sora-Plan v1.3's WF-VAE, WFVAEModel(latent_dim=8, base_channels=128, ...)): a 3D Haar wavelet
    (fixed causal stride-2 2x2x2 convs) maps the 3 pixel channels to 24 at (1 + (T - 1) / 2, H / 2, W / 2); level 1
    (per frame: Conv2d, ``layers_per_block`` ResnetBlock2D, stride-2 Downsample) and level 2 (Conv2d, ResnetBlock3Ds,
    causal stride-2 3x3x3 conv) at ``block_out_channels`` (c, 2c, 4c), each followed by the concatenation of an
    energy-flow branch (a 2D and a 3D wavelet of the low band, each a Conv2d to ``energy_flow_channels[0]``); mid
    ResnetBlock3D, per-frame attention, ResnetBlock3D; causal conv_out to 2z. The decoder mirrors it; its energy-flow
    branches (``energy_flow_layers`` ResnetBlock3Ds of width ``energy_flow_channels[1]`` = c and a Conv2d to 24 / 12
    wavelet coefficients) are added back through inverse wavelets. Fixed layout: s = 8, t = 4, causal (1 + 4k frames).
    """

    in_channels: int = Field(default=3, gt=0, description="pixel channels (RGB = 3)")
    latent_channels: int = Field(default=16, gt=0, description="latent channels")
    spatial_compression: int = Field(default=8, gt=0, description="pixels per latent, each of H and W")
    temporal_compression: int = Field(default=4, gt=0, description="frames per latent frame")
    causal: bool = Field(default=True, description="causal temporal convolution (first frame alone)")
    block_out_channels: tuple[int, ...] = Field(
        default=(128, 256, 512, 512), min_length=1, description="channels of each encoder level"
    )
    layers_per_block: int = Field(default=2, gt=0, description="ResNet blocks per encoder level")
    norm_groups: int = Field(default=32, gt=0, description="GroupNorm groups")
    mid_attention: bool = Field(default=True, description="self-attention in the mid-block")
    double_z: bool = Field(default=True, description="encoder outputs mean and log-variance")
    temporal_kernel: int = Field(default=3, gt=0, description="temporal size of 3x3 conv kernels (1 = 2D VAE)")
    patch_size: int = Field(default=1, gt=0, description="pixel-unshuffle p x p before the encoder (LTX-Video: 4)")
    family: VAEFamily = Field(default="generic", description="generic | wan | cogvideox | mochi | ltx (exact blocks)")
    quant_convs: bool = Field(default=False, description="generic: 1x1x1 quant_conv after the encoder and "
                              "post_quant_conv before the decoder (diffusers' AutoencoderKL family)")
    layers_per_level: tuple[int, ...] | None = Field(
        default=None, description="ResNets per encoder level, then in the mid-block (mochi, ltx: levels + 1 entries)"
    )
    decoder_block_out_channels: tuple[int, ...] | None = Field(
        default=None, description="decoder channels per level if not the encoder's (mochi)"
    )
    temporal_factors: tuple[int, ...] | None = Field(
        default=None, description="temporal stride of each down-sampling level (mochi: 1, 2, 3)"
    )
    temporal_block_out_channels: tuple[int, ...] | None = Field(
        default=None, description="widths of the temporal VAE's levels (opensora: 128, 256, 256, 512)"
    )
    chunk_frames: int | None = Field(
        default=None, gt=0, description="frames per independently encoded chunk (opensora: 17; None = whole clip)"
    )
    chunk_latent_frames: int | None = Field(
        default=None, gt=0, description="latent frames of a whole chunk (opensora: ceil(chunk_frames / t) = 5)"
    )
    stem_channels: int | None = Field(
        default=None, gt=0, description="encoder conv_in width if not block_out_channels[0] (stepvideo: 32)"
    )
    energy_flow_channels: tuple[int, int] | None = Field(
        default=None, description="wfvae: encoder and decoder energy-flow widths (64, 128)"
    )
    energy_flow_layers: int | None = Field(
        default=None, gt=0, description="wfvae: ResnetBlock3Ds per decoder energy-flow branch (v1.3.0 code: 2)"
    )

    @field_validator("block_out_channels", "decoder_block_out_channels", "layers_per_level", "temporal_factors",
                     "temporal_block_out_channels", "energy_flow_channels")
    @classmethod
    def _positive_channels(cls, v: tuple[int, ...] | None) -> tuple[int, ...] | None:
        if v is not None and any(c <= 0 for c in v):
            raise ValueError(f"all entries must be positive, got {v}")
        return v

    @model_validator(mode="after")
    def _check_layout(self) -> VAESpec:
        s, t = self.spatial_compression, self.temporal_compression
        if self.quant_convs and self.family != "generic":
            raise ValueError(f"quant_convs applies to family='generic'; family={self.family!r} fixes its own layout")
        if not _is_power_of_two(s):
            raise ValueError(f"spatial_compression must be a power of two, got {s}")
        if not _is_power_of_two(self.patch_size) or self.patch_size > s:
            raise ValueError(f"patch_size must be a power of two no larger than spatial_compression, got "
                             f"{self.patch_size}")
        if (self.chunk_frames is None) != (self.chunk_latent_frames is None):
            raise ValueError("give chunk_frames and chunk_latent_frames together")
        if self.family != "wfvae" and (self.energy_flow_channels is not None or self.energy_flow_layers is not None):
            raise ValueError("energy_flow_channels and energy_flow_layers are for family='wfvae'")
        if self.family == "opensora":
            self._check_opensora()
            return self
        if self.family == "stepvideo":
            self._check_stepvideo()
            return self
        if self.family == "wfvae":
            self._check_wfvae()
            return self
        if self.stem_channels is not None:
            raise ValueError("stem_channels is for family='stepvideo'")
        if self.temporal_block_out_channels is not None or self.chunk_frames is not None:
            raise ValueError("temporal_block_out_channels and chunk_frames are for family='opensora' (chunk_frames "
                             "also for 'stepvideo')")
        if self.family != "generic":
            self._check_family()
            return self
        if self.layers_per_level or self.decoder_block_out_channels or self.temporal_factors:
            raise ValueError("layers_per_level, decoder_block_out_channels and temporal_factors need a family "
                             "(mochi, ltx)")
        if not _is_power_of_two(t):
            raise ValueError(f"temporal_compression must be a power of two, got {t}")
        if self.num_spatial_down > len(self.block_out_channels) - 1:
            raise ValueError(
                f"spatial_compression={s} needs {self.num_spatial_down + 1} levels in "
                f"block_out_channels, got {len(self.block_out_channels)}"
            )
        if self.num_temporal_down > self.num_spatial_down:
            raise ValueError(
                f"temporal_compression={t} must not exceed spatial_compression={s}"
            )
        if self.temporal_kernel % 2 == 0:
            raise ValueError(f"temporal_kernel must be odd (it keeps the frame count), got {self.temporal_kernel}")
        if t > 1 and self.temporal_kernel == 1:
            raise ValueError("temporal_compression > 1 needs temporal_kernel > 1")
        for c in self.block_out_channels:
            if c % self.norm_groups:
                raise ValueError(
                    f"norm_groups={self.norm_groups} must divide every block_out_channels entry, not {c}"
                )
        return self

    def _check_opensora(self) -> None:
        """Open-Sora 1.2: a per-frame SD VAE (every level but the last halves H and W) and a temporal VAE."""
        n, tc = len(self.block_out_channels), self.temporal_block_out_channels
        if self.num_spatial_down != n - 1 or self.patch_size != 1:
            raise ValueError(f"family='opensora' down-samples at every 2D level but the last: spatial_compression must "
                             f"be 2^{n - 1} = {2 ** (n - 1)} (patch_size 1), got {self.spatial_compression}")
        if tc is None:
            raise ValueError("family='opensora' needs temporal_block_out_channels (the temporal VAE's widths)")
        if self.stem_channels is not None:
            raise ValueError("stem_channels is for family='stepvideo'")
        if self.layers_per_level is None or len(self.layers_per_level) != len(tc) + 1:
            raise ValueError(f"family='opensora' needs layers_per_level with {len(tc) + 1} entries (ResBlocks per "
                             f"temporal level, then after the last)")
        if self.decoder_block_out_channels is not None:
            raise ValueError("decoder_block_out_channels is for family='mochi'")
        t, factors = self.temporal_compression, self.level_temporal_factors
        if len(factors) != len(tc) - 1 or any(f not in (1, 2) for f in factors) or math.prod(factors) != t:
            raise ValueError(f"family='opensora' halves time or not between temporal levels: temporal_factors needs "
                             f"{len(tc) - 1} entries of 1 or 2 whose product is temporal_compression={t}, "
                             f"got {factors}")
        for c in self.block_out_channels + tc:
            if c % self.norm_groups:
                raise ValueError(f"norm_groups={self.norm_groups} must divide every channel count, not {c}")
        if self.chunk_frames is not None and self.chunk_latent_frames != -(-self.chunk_frames // t):
            raise ValueError(f"family='opensora' pads each chunk to a multiple of {t} frames: chunk_latent_frames must "
                             f"be ceil({self.chunk_frames} / {t}) = {-(-self.chunk_frames // t)}")

    @property
    def spatial_vae(self) -> VAESpec:
        """The per-frame 2D VAE of family='opensora' as a generic spec (quant convs not included)."""
        return VAESpec(in_channels=self.in_channels, latent_channels=self.latent_channels,
                       spatial_compression=self.spatial_compression, temporal_compression=1, causal=False,
                       block_out_channels=self.block_out_channels, layers_per_block=self.layers_per_block,
                       norm_groups=self.norm_groups, temporal_kernel=1)

    def _check_stepvideo(self) -> None:
        """Step-Video Video-VAE v2: levels halve H and W at each boundary (time too where the temporal factor is 2),
        the head halves T, H and W once more; its 32 z channels feed channel-averaging / duplicating shortcuts."""
        chans, n, t, z = self.block_out_channels, len(self.block_out_channels), self.temporal_compression, \
            self.latent_channels
        dec = self.decoder_block_out_channels
        if self.spatial_compression != 2 ** n or self.patch_size != 1:
            raise ValueError(f"family='stepvideo' halves H and W at each of the {n - 1} level boundaries and in the "
                             f"head: spatial_compression must be 2^{n} = {2 ** n} (patch_size 1), got "
                             f"{self.spatial_compression}")
        if not self.causal:
            raise ValueError("family='stepvideo' is causal (each chunk's first frame is encoded alone)")
        if self.layers_per_level is not None or self.temporal_block_out_channels is not None:
            raise ValueError("family='stepvideo' uses layers_per_block (not layers_per_level or "
                             "temporal_block_out_channels)")
        if dec is not None and len(dec) != n:
            raise ValueError(f"decoder_block_out_channels needs {n} entries, got {dec}")
        factors = self.temporal_factors
        if factors is not None:
            if len(factors) != n - 1 or any(f not in (1, 2) for f in factors) or 2 * math.prod(factors) != t:
                raise ValueError(f"family='stepvideo': temporal_factors needs {n - 1} entries of 1 or 2 whose product "
                                 f"x 2 (the head) is temporal_compression={t}, got {factors}")
        elif not _is_power_of_two(t) or not 2 <= t <= 2 ** n:
            raise ValueError(f"family='stepvideo' halves time in the head and at up to {n - 1} level boundaries: "
                             f"temporal_compression must be a power of two from 2 to {2 ** n}, got {t}")
        for c in chans + (dec or ()) + ((self.stem_channels,) if self.stem_channels else ()):
            if c % self.norm_groups:
                raise ValueError(f"norm_groups={self.norm_groups} must divide every channel count, not {c}")
        for c in (chans[-1], (dec or chans)[-1]):
            if c % (4 * z):
                raise ValueError(f"family='stepvideo' averages / duplicates 8 x {c} channels against the head's 32 x "
                                 f"{z}: the deepest widths must be multiples of 4 x latent_channels = {4 * z}")
        if any(c < 8 for c in (dec or chans)):
            raise ValueError("family='stepvideo' up-samples time on 8 channel slices: decoder widths must be >= 8")
        cf, k = self.chunk_frames, self.chunk_latent_frames
        if cf is not None and ((cf - 1) % t or k != 1 + (cf - 1) // t):
            raise ValueError(f"family='stepvideo' encodes each chunk causally: chunk_frames must be 1 + {t}j and "
                             f"chunk_latent_frames 1 + (chunk_frames - 1) / {t}, got {cf} and {k}")

    def _check_wfvae(self) -> None:
        """WF-VAE: the wavelet levels fix s = 8, t = 4 (causal), 3 RGB channels and widths (c, 2c, 4c); the decoder's
        energy-flow branches run ResnetBlock3D(c) on the energy_flow_channels[1] channels split off (v1.3.0 code)."""
        chans, ef = self.block_out_channels, self.energy_flow_channels
        if (self.spatial_compression, self.temporal_compression, self.patch_size, self.in_channels) != (8, 4, 1, 3) \
                or not self.causal:
            raise ValueError("family='wfvae' has a fixed layout: spatial_compression 8, temporal_compression 4, "
                             "patch_size 1, in_channels 3, causal")
        if len(chans) != 3 or chans[1] != 2 * chans[0] or chans[2] != 4 * chans[0]:
            raise ValueError(f"family='wfvae' widths are base_channels x (1, 2, 4): block_out_channels (c, 2c, 4c), "
                             f"got {chans}")
        if ef is None or len(ef) != 2 or min(ef) <= 0:
            raise ValueError("family='wfvae' needs energy_flow_channels (encoder, decoder), e.g. (64, 128)")
        if ef[1] != chans[0]:
            raise ValueError(f"family='wfvae' (v1.3.0 code) runs the decoder's energy-flow ResnetBlock3Ds at "
                             f"base_channels: energy_flow_channels[1] must be {chans[0]}, got {ef[1]}")
        if (self.layers_per_level is not None or self.decoder_block_out_channels is not None
                or self.temporal_factors is not None or self.temporal_block_out_channels is not None
                or self.stem_channels is not None or self.chunk_frames is not None):
            raise ValueError("family='wfvae' uses block_out_channels, layers_per_block, energy_flow_channels and "
                             "energy_flow_layers only")
        for c in (*chans, chans[1] + ef[0], chans[2] + ef[1]):
            if c % self.norm_groups:
                raise ValueError(f"norm_groups={self.norm_groups} must divide every normalised width, not {c}")

    def _check_family(self) -> None:
        """Layout rules of the exact families (their diffusers classes)."""
        chans, n, t = self.block_out_channels, len(self.block_out_channels), self.temporal_compression
        if self.num_spatial_down != n - 1:
            raise ValueError(f"family={self.family!r} down-samples at every level but the last: spatial_compression "
                             f"must be patch_size x 2^{n - 1} = {self.patch_size * 2 ** (n - 1)}, got "
                             f"{self.spatial_compression}")
        if not self.causal:
            raise ValueError(f"family={self.family!r} is causal (the first frame is encoded alone)")
        if self.patch_size != 1 and self.family != "ltx":
            raise ValueError(f"family={self.family!r} has no pixel-unshuffle: patch_size must be 1")
        if self.family in ("mochi", "ltx"):
            if self.layers_per_level is None or len(self.layers_per_level) != n + 1:
                raise ValueError(f"family={self.family!r} needs layers_per_level with {n + 1} entries (levels, mid)")
        elif self.layers_per_level is not None:
            raise ValueError(f"family={self.family!r} uses layers_per_block, not layers_per_level")
        if self.family == "mochi":
            dec = self.decoder_block_out_channels
            if dec is not None and len(dec) != n:
                raise ValueError(f"decoder_block_out_channels needs {n} entries, got {dec}")
            for c in chans[1:] + (dec or chans):
                if c % 32:
                    raise ValueError(f"family='mochi' attends with 32-channel heads and normalises with GroupNorm: "
                                     f"channels must be multiples of 32, got {c}")
        elif self.decoder_block_out_channels is not None:
            raise ValueError("decoder_block_out_channels is for family='mochi'")
        if self.temporal_factors is not None:
            if self.family != "mochi":
                raise ValueError("temporal_factors is for family='mochi' (others halve time at stride-2 levels)")
            if len(self.temporal_factors) != n - 1 or math.prod(self.temporal_factors) != t:
                raise ValueError(f"temporal_factors must have {n - 1} entries whose product is temporal_compression="
                                 f"{t}, got {self.temporal_factors}")
        elif not _is_power_of_two(t) or self.num_temporal_down > n - 1:
            raise ValueError(f"temporal_compression must be a power of two up to 2^{n - 1} (or give temporal_factors "
                             f"for family='mochi'), got {t}")
        if self.family == "ltx" and t != 2 ** (n - 1):
            raise ValueError(f"family='ltx' halves time at every down-sampling level: temporal_compression must be "
                             f"{2 ** (n - 1)}, got {t}")
        if self.family == "wan" and any(c % 2 for c in chans[1:]):
            raise ValueError(f"family='wan' halves channels when up-sampling: channels must be even, got {chans}")
        if self.family in ("cogvideox", "mochi"):
            for c in chans + (self.decoder_block_out_channels or ()):
                if c % self.norm_groups:
                    raise ValueError(
                        f"norm_groups={self.norm_groups} must divide every block_out_channels entry, not {c}"
                    )

    # --- derived layout -------------------------------------------------------------------
    @property
    def level_temporal_factors(self) -> tuple[int, ...]:
        """Temporal stride of each encoder down-sampling level: ``temporal_factors`` (mochi), else 2 at the last
        log2(t) down-sampling levels (wan, mochi) or the first (generic, cogvideox, ltx), 1 elsewhere."""
        if self.temporal_factors is not None:
            return self.temporal_factors
        n, k = self.num_spatial_down, self.num_temporal_down
        if self.family == "opensora" and self.temporal_block_out_channels is not None:  # the temporal VAE's levels
            n = len(self.temporal_block_out_channels) - 1
        if self.family == "stepvideo":  # the last halving of time is the head's pixel-unshuffle, after the levels
            n, k = len(self.block_out_channels) - 1, k - 1
        if self.family in ("wan", "mochi", "opensora", "stepvideo"):
            return (1,) * (n - k) + (2,) * k
        return (2,) * k + (1,) * (n - k)

    @property
    def decoder_channels(self) -> tuple[int, ...]:
        """Decoder channels per level, deepest first."""
        return tuple(reversed(self.decoder_block_out_channels or self.block_out_channels))

    @property
    def num_spatial_down(self) -> int:
        """Levels that halve height and width: log2(spatial_compression / patch_size)."""
        return (self.spatial_compression // self.patch_size).bit_length() - 1

    @property
    def pixel_channels(self) -> int:
        """Channels at the encoder input / decoder output after pixel-unshuffle: in_channels x patch^2."""
        return self.in_channels * self.patch_size**2

    @property
    def num_temporal_down(self) -> int:
        """Levels that also halve time: log2(temporal_compression)."""
        return self.temporal_compression.bit_length() - 1

    @property
    def conv_kernel(self) -> tuple[int, int, int]:
        """Kernel of the 3x3 convolutions: (temporal_kernel, 3, 3)."""
        return (self.temporal_kernel, 3, 3)

    def padded_latent_frames(self, num_frames: Any) -> Any:
        """family='opensora': latent frames of ``num_frames`` (an int or a numpy array) in chunks of ``chunk_frames``,
        each padded in front to a multiple of t: ``F // c x chunk_latent_frames + ceil((F % c) / t)``."""
        t, c = self.temporal_compression, self.chunk_frames
        if c is None or self.chunk_latent_frames is None:
            return -(-num_frames // t)
        return num_frames // c * self.chunk_latent_frames + -(-(num_frames % c) // t)

    def chunked_causal_frames(self, num_frames: Any) -> tuple[Any, Any]:
        """family='stepvideo': (latent frames, fits) of ``num_frames`` (an int or a numpy array) in chunks of
        ``chunk_frames`` c, each encoded causally on its own: ``F // c x chunk_latent_frames + (1 + (r - 1) / t if r
        else 0)`` with r = F % c; it fits when r is 0 or 1 + t j (the pipeline uses 17k frames, or 1)."""
        t, c = self.temporal_compression, self.chunk_frames
        whole, rest = (0 * num_frames, num_frames) if c is None else (num_frames // c, num_frames % c)
        latent = whole * (self.chunk_latent_frames or 0) + (rest > 0) * (1 + (rest - 1) // t)
        return latent, (num_frames >= 1) & ((rest == 0) | ((rest - 1) % t == 0))

    def latent_frames(self, num_frames: int) -> int:
        """Latent frames for ``num_frames`` video frames (raises if they do not fit)."""
        t = self.temporal_compression
        if self.family == "opensora":  # pads: any frame count fits
            if num_frames < 1:
                raise VideoShapeError(f"num_frames={num_frames}: use at least 1 frame")
            return int(self.padded_latent_frames(num_frames))
        if self.family == "stepvideo":
            latent, fits = self.chunked_causal_frames(num_frames)
            if not fits:
                c = self.chunk_frames
                rule = f"{c}k frames, or {c}k + 1 + {t}j (j < {(c - 1) // t})" if c else f"1 + {t}k frames"
                raise VideoShapeError(f"num_frames={num_frames} does not fit the chunked causal VAE: use {rule}")
            return int(latent)
        if self.causal:
            if (num_frames - 1) % t:
                lo = 1 + (num_frames - 1) // t * t
                raise VideoShapeError(
                    f"num_frames={num_frames} does not fit a causal VAE with temporal compression {t}: "
                    f"use 1 + {t}k frames, e.g. {lo} or {lo + t}"
                )
            return 1 + (num_frames - 1) // t
        if num_frames % t:
            lo = num_frames // t * t
            hint = f"{lo} or {lo + t}" if lo else f"{t}"
            raise VideoShapeError(
                f"num_frames={num_frames} is not divisible by temporal compression {t}: use e.g. {hint}"
            )
        return num_frames // t

    def decoded_frames(self, latent_frames: int) -> int:
        """Video frames produced by decoding ``latent_frames`` (family='opensora': the most frames that give them,
        ``L // k x chunk_frames + (L % k) x t`` with k = chunk_latent_frames; fewer are cut from the front)."""
        t = self.temporal_compression
        if self.family == "stepvideo" and self.chunk_frames is not None and self.chunk_latent_frames is not None:
            rest = latent_frames % self.chunk_latent_frames  # an int or a numpy array
            return latent_frames // self.chunk_latent_frames * self.chunk_frames + (rest > 0) * (1 + (rest - 1) * t)
        if self.family == "opensora":
            k, c = self.chunk_latent_frames, self.chunk_frames
            if k is None or c is None:
                return latent_frames * t
            return latent_frames // k * c + latent_frames % k * t
        return 1 + (latent_frames - 1) * t if self.causal else latent_frames * t

    # --- parameters -----------------------------------------------------------------------
    def _resnet_params(self, c_in: int, c_out: int) -> int:
        k = self.conv_kernel
        p = 2 * c_in + conv_params(c_in, c_out, k) + 2 * c_out + conv_params(c_out, c_out, k)
        if c_in != c_out:
            p += conv_params(c_in, c_out, (1, 1, 1))
        return p

    def _mid_params(self, c: int) -> int:
        p = 2 * self._resnet_params(c, c)
        if self.mid_attention:
            p += 2 * c + 4 * linear_params(c, c)  # GroupNorm + q, k, v, proj
        return p

    @property
    def encoder_params(self) -> int:
        """Encoder parameters (exact)."""
        if self.family != "generic":
            return _FAMILY_PARAMS[self.family](self)[0]
        chans, k = self.block_out_channels, self.conv_kernel
        p = conv_params(self.pixel_channels, chans[0], k)
        c_prev = chans[0]
        for i, c in enumerate(chans):
            for _ in range(self.layers_per_block):
                p += self._resnet_params(c_prev, c)
                c_prev = c
            if i < self.num_spatial_down:
                p += conv_params(c, c, k)
        c_out = self.latent_channels * (2 if self.double_z else 1)
        quant = conv_params(c_out, c_out, (1, 1, 1)) if self.quant_convs else 0
        return p + self._mid_params(c_prev) + 2 * c_prev + conv_params(c_prev, c_out, k) + quant

    @property
    def decoder_params(self) -> int:
        """Decoder parameters (exact)."""
        if self.family != "generic":
            return _FAMILY_PARAMS[self.family](self)[1]
        chans, k, z = tuple(reversed(self.block_out_channels)), self.conv_kernel, self.latent_channels
        p = conv_params(z, chans[0], k) + self._mid_params(chans[0])
        p += conv_params(z, z, (1, 1, 1)) if self.quant_convs else 0
        c_prev = chans[0]
        for j, c in enumerate(chans):
            for _ in range(self.layers_per_block + 1):
                p += self._resnet_params(c_prev, c)
                c_prev = c
            if j < self.num_spatial_down:
                p += conv_params(c, c, k)
        return p + 2 * c_prev + conv_params(c_prev, self.pixel_channels, k)

    @property
    def params(self) -> int:
        """Encoder + decoder parameters (exact)."""
        return self.encoder_params + self.decoder_params


# Closed-form (encoder, decoder) parameters of the exact VAE families, block by block as in reference_model/vae.py.
_K3 = (3, 3, 3)
_1x1x1 = (1, 1, 1)


def _wan_vae_params(v: VAESpec) -> tuple[int, int]:
    """Wan2.1: ResNets with weight-only channel RMSNorm (c) and causal 3x3x3 convs, 1x1x1 shortcut; down-sampling a
    stride-2 3x3 conv (+ a (3,1,1) stride-2 time conv); up-sampling a 3x3 conv to c/2 (+ a (3,1,1) time conv c -> 2c);
    mid: ResNet, per-frame attention (RMSNorm, 1x1 qkv and projection), ResNet; quant convs 1x1x1 (2z, z)."""
    L, z, factors = v.layers_per_block, v.latent_channels, v.level_temporal_factors

    def res(ci: int, co: int) -> int:
        return ci + conv_params(ci, co, _K3) + co + conv_params(co, co, _K3) + (
            conv_params(ci, co, _1x1x1) if ci != co else 0)

    def mid(c: int) -> int:
        return 2 * res(c, c) + c + conv_params(c, 3 * c, (1, 1)) + conv_params(c, c, (1, 1))

    enc, c_prev = conv_params(v.in_channels, v.block_out_channels[0], _K3), v.block_out_channels[0]
    for i, c in enumerate(v.block_out_channels):
        for _ in range(L):
            enc, c_prev = enc + res(c_prev, c), c
        if i < v.num_spatial_down:
            enc += conv_params(c, c, (3, 3)) + (conv_params(c, c, (3, 1, 1)) if factors[i] > 1 else 0)
    enc += mid(c_prev) + c_prev + conv_params(c_prev, 2 * z, _K3) + conv_params(2 * z, 2 * z, _1x1x1)
    chans = v.decoder_channels
    dec = conv_params(z, z, _1x1x1) + conv_params(z, chans[0], _K3) + mid(chans[0])
    c_prev = chans[0]
    for j, c in enumerate(chans):
        for _ in range(L + 1):
            dec, c_prev = dec + res(c_prev, c), c
        if j < v.num_spatial_down:
            dec += conv_params(c, c // 2, (3, 3)) + (conv_params(c, 2 * c, (3, 1, 1)) if factors[-1 - j] > 1 else 0)
            c_prev = c // 2
    return enc, dec + c_prev + conv_params(c_prev, v.in_channels, _K3)


def _cogvideox_vae_params(v: VAESpec) -> tuple[int, int]:
    """CogVideoX: GroupNorm ResNets (1x1x1 shortcut), stride-2 3x3 2D down-sampling convs, two mid ResNets; the
    decoder's norms are spatial norms: GroupNorm (2c) plus two 1x1x1 convs z -> c (scale and shift from the latent)."""
    L, z, k = v.layers_per_block, v.latent_channels, _K3

    def res(ci: int, co: int, norm: Any) -> int:
        return norm(ci) + conv_params(ci, co, k) + norm(co) + conv_params(co, co, k) + (
            conv_params(ci, co, _1x1x1) if ci != co else 0)

    def gn(c: int) -> int:
        return 2 * c

    def spatial(c: int) -> int:
        return 2 * c + 2 * conv_params(z, c, _1x1x1)

    chans = v.block_out_channels
    enc, c_prev = conv_params(v.in_channels, chans[0], k), chans[0]
    for i, c in enumerate(chans):
        for _ in range(L):
            enc, c_prev = enc + res(c_prev, c, gn), c
        if i < v.num_spatial_down:
            enc += conv_params(c, c, (3, 3))
    enc += 2 * res(c_prev, c_prev, gn) + gn(c_prev) + conv_params(c_prev, 2 * z, k)
    rev = v.decoder_channels
    dec, c_prev = conv_params(z, rev[0], k) + 2 * res(rev[0], rev[0], spatial), rev[0]
    for j, c in enumerate(rev):
        for _ in range(L + 1):
            dec, c_prev = dec + res(c_prev, c, spatial), c
        if j < v.num_spatial_down:
            dec += conv_params(c, c, (3, 3))
    return enc, dec + spatial(c_prev) + conv_params(c_prev, v.in_channels, k)


MOCHI_FOURIER_FREQS = 2  # Mochi's FourierFeatures(start=6, stop=8): sin and cos of 2 frequencies per pixel channel
MOCHI_HEAD_DIM = 32


def _mochi_vae_params(v: VAESpec) -> tuple[int, int]:
    """Mochi: Fourier features (3 -> 15 channels) and Linear in; ResNets of per-frame GroupNorm (2c) and causal
    3x3x3 convs (same width); down-sampling a (t_i, 2, 2) conv with that stride; encoder levels after the first
    add per-frame GroupNorm + causal temporal attention (q, k, v without bias, output with bias); Linear out (no
    bias). Decoder: 1x1x1 conv in, ResNets, up-sampling a Linear c -> c' t_i 4 (depth-to-space), Linear out."""
    layers, z, k = v.layers_per_level, v.latent_channels, _K3
    assert layers is not None

    def res(c: int) -> int:
        return 2 * (2 * c + conv_params(c, c, k))

    def attn(c: int) -> int:
        return 2 * c + 3 * linear_params(c, c, bias=False) + linear_params(c, c)

    enc_c, factors = v.block_out_channels, v.level_temporal_factors
    enc = linear_params(v.in_channels * (1 + 2 * MOCHI_FOURIER_FREQS), enc_c[0]) + layers[0] * res(enc_c[0])
    for i in range(len(enc_c) - 1):
        enc += conv_params(enc_c[i], enc_c[i + 1], (factors[i], 2, 2))
        enc += layers[i + 1] * (res(enc_c[i + 1]) + attn(enc_c[i + 1]))
    enc += layers[-1] * (res(enc_c[-1]) + attn(enc_c[-1])) + 2 * enc_c[-1] + linear_params(enc_c[-1], 2 * z, False)
    rev, n = v.decoder_channels, len(enc_c)
    dec = conv_params(z, rev[0], _1x1x1) + layers[-1] * res(rev[0])
    for j in range(n - 1):  # up-sampling level j mirrors encoder level n - 2 - j
        dec += layers[n - 1 - j] * res(rev[j]) + linear_params(rev[j], rev[j + 1] * factors[n - 2 - j] * 4)
    return enc, dec + layers[0] * res(rev[-1]) + linear_params(rev[-1], v.in_channels)


def _ltx_vae_params(v: VAESpec) -> tuple[int, int]:
    """LTX-Video 0.9.0: ResNets of weightless RMSNorm and 3x3x3 convs; a widening ResNet adds an affine LayerNorm
    (2 c_in) and a 1x1x1 conv on the shortcut. Encoder level: ResNets, a stride-2 3x3x3 conv, a widening ResNet;
    decoder level: a narrowing ResNet, a 3x3x3 conv c -> 8c (depth-to-space), ResNets. conv_out: latent + 1."""
    layers, z, k = v.layers_per_level, v.latent_channels, _K3
    assert layers is not None

    def res(ci: int, co: int) -> int:
        return conv_params(ci, co, k) + conv_params(co, co, k) + (
            2 * ci + conv_params(ci, co, _1x1x1) if ci != co else 0)

    chans, n = v.block_out_channels, len(v.block_out_channels)
    enc = conv_params(v.pixel_channels, chans[0], k)
    for i, c in enumerate(chans):
        c_next = chans[min(i + 1, n - 1)]
        enc += layers[i] * res(c, c) + (conv_params(c, c, k) if i < n - 1 else 0) + (
            res(c, c_next) if c != c_next else 0)
    enc += layers[-1] * res(chans[-1], chans[-1]) + conv_params(chans[-1], z + 1, k)
    rev = v.decoder_channels
    dec, c_prev = conv_params(z, rev[0], k) + layers[-1] * res(rev[0], rev[0]), rev[0]
    for j, c in enumerate(rev):
        dec += (res(c_prev, c) if c_prev != c else 0) + (conv_params(c, 8 * c, k) if j > 0 else 0)
        dec += layers[n - 1 - j] * res(c, c)
        c_prev = c
    return enc, dec + conv_params(c_prev, v.pixel_channels, k)


def _opensora_vae_params(v: VAESpec) -> tuple[int, int]:
    """Open-Sora 1.2: the 2D VAE (generic per-frame layout) with its 1x1 quant convs (2z -> 2z, z -> z), and the
    temporal VAE: ResBlocks of GroupNorm and bias-free causal 3x3x3 convs (bias-free 1x1x1 shortcut when widths
    differ); a stride-(2, 1, 1) 3x3x3 conv (with bias) at each halving level boundary; conv_in bias-free; encoder
    conv_out 1x1x1 to 2z and a 1x1x1 quant conv; decoder post-quant 1x1x1, conv_in 3x3x3, a 3x3x3 conv c -> 2c
    (depth-to-space in time) at each doubling boundary, conv_out 3x3x3."""
    tc, layers, factors, z = v.temporal_block_out_channels, v.layers_per_level, v.level_temporal_factors, \
        v.latent_channels
    assert tc is not None and layers is not None
    sp = v.spatial_vae

    def res(ci: int, co: int) -> int:
        return 2 * ci + conv_params(ci, co, _K3, False) + 2 * co + conv_params(co, co, _K3, False) + (
            conv_params(ci, co, _1x1x1, False) if ci != co else 0)

    enc, c_prev = sp.encoder_params + conv_params(2 * z, 2 * z, (1, 1)) + conv_params(z, tc[0], _K3, False), tc[0]
    for i, c in enumerate(tc):
        for _ in range(layers[i]):
            enc, c_prev = enc + res(c_prev, c), c
        if i < len(tc) - 1 and factors[i] > 1:
            enc += conv_params(c, c, _K3)
    enc += layers[-1] * res(c_prev, c_prev) + 2 * c_prev + conv_params(c_prev, 2 * z, _1x1x1) + conv_params(
        2 * z, 2 * z, _1x1x1)
    dec, c_prev = conv_params(z, z, _1x1x1) + conv_params(z, tc[-1], _K3) + layers[-1] * res(tc[-1], tc[-1]), tc[-1]
    for i in reversed(range(len(tc))):
        for _ in range(layers[i]):
            dec, c_prev = dec + res(c_prev, tc[i]), tc[i]
        if i > 0 and factors[i - 1] > 1:
            dec += conv_params(c_prev, 2 * c_prev, _K3)
    dec += 2 * c_prev + conv_params(c_prev, z, _K3) + conv_params(z, z, (1, 1)) + sp.decoder_params
    return enc, dec


STEPVIDEO_HEAD = 32  # Step-Video v2 head: 4 * z_channels * 2^3 channels (2048 for z = 64)


def _stepvideo_vae_params(v: VAESpec) -> tuple[int, int]:
    """Step-Video Video-VAE v2: Resnet3DBlocks of GroupNorm (2c) and 3x3x3 convs with bias, a 1x1x1 nin_shortcut when
    widths differ; mid attention: GroupNorm and four 1x1x1 convs (q, k, v, proj_out). Encoder: conv_in to the stem, a
    3x3 2D conv or a stride-2 3x3x3 conv at each level boundary, norm_out, conv_patchify c -> 4z, conv_out 32z -> 2z.
    Decoder: conv_in z -> 32z, conv_unpatchify 32z -> 8c, a Res3DBlockUpsample (two 3x3x3 convs, two GroupNorms) or a
    3x3 2D conv at each boundary, norm_out, conv_out. The head's shortcuts (channel averaging / duplication) and the
    chunk blending have no parameters."""
    z, g_in, head = v.latent_channels, v.in_channels, STEPVIDEO_HEAD * v.latent_channels
    factors, L = v.level_temporal_factors, v.layers_per_block

    def res(ci: int, co: int) -> int:
        return 2 * ci + conv_params(ci, co, _K3) + 2 * co + conv_params(co, co, _K3) + (
            conv_params(ci, co, _1x1x1) if ci != co else 0)

    def mid(c: int) -> int:
        return 2 * res(c, c) + 2 * c + 4 * conv_params(c, c, _1x1x1)

    chans = v.block_out_channels
    stem = v.stem_channels or chans[0]
    enc, c_prev = conv_params(g_in, stem, _K3), stem
    for i, c in enumerate(chans):
        for _ in range(L):
            enc, c_prev = enc + res(c_prev, c), c
        if i < len(chans) - 1:
            enc += conv_params(c, c, _K3) if factors[i] > 1 else conv_params(c, c, (3, 3))
    enc += mid(c_prev) + 2 * c_prev + conv_params(c_prev, head // 8, _K3) + conv_params(head, 2 * z, _K3)
    rev, n = v.decoder_channels, len(chans)
    dec, c_prev = conv_params(z, head, _K3) + conv_params(head, 8 * rev[0], _K3) + mid(rev[0]), rev[0]
    for j, c in enumerate(rev):
        for _ in range(L + 1):
            dec, c_prev = dec + res(c_prev, c), c
        if j < n - 1:
            dec += 2 * (conv_params(c, c, _K3) + 2 * c) if factors[n - 2 - j] > 1 else conv_params(c, c, (3, 3))
    return enc, dec + 2 * c_prev + conv_params(c_prev, g_in, _K3)


WFVAE_FLOW_LAYERS = 2  # WF-VAE decoder energy-flow ResnetBlock3Ds: the v1.3.0 Decoder's connect_res_layer_num default
WFVAE_HAAR_PARAMS = 64  # HaarWaveletTransform3D's eight fixed 2x2x2 conv weights (frozen parameters, not buffers)


def _wfvae_vae_params(v: VAESpec) -> tuple[int, int]:
    """WF-VAE (Open-Sora-Plan v1.3.0 modeling_wfvae.py): ResnetBlock2D / ResnetBlock3D of GroupNorm (2c) and 3x3(x3)
    convs with bias, a 1x1(x1) nin_shortcut when widths differ; AttnBlock3DFix: GroupNorm and four 1x1x1 convs. The
    encoder's HaarWaveletTransform3D holds eight frozen 2x2x2 conv weights (64 parameters); the 2D and inverse
    wavelets are buffers."""
    c, L, z, ef = v.block_out_channels[0], v.layers_per_block, v.latent_channels, v.energy_flow_channels
    assert ef is not None
    n = v.energy_flow_layers or WFVAE_FLOW_LAYERS
    k2 = (3, 3)

    def res(ci: int, co: int, k: tuple[int, ...] = _K3) -> int:
        return 2 * ci + conv_params(ci, co, k) + 2 * co + conv_params(co, co, k) + (
            conv_params(ci, co, (1,) * len(k)) if ci != co else 0)

    attn = 2 * 4 * c + 4 * conv_params(4 * c, 4 * c, _1x1x1) if v.mid_attention else 0
    enc = (WFVAE_HAAR_PARAMS + conv_params(24, c, k2) + L * res(c, c, k2) + conv_params(c, c, k2)
           + conv_params(c + ef[0], 2 * c, k2) + L * res(2 * c, 2 * c) + conv_params(2 * c, 2 * c, _K3)
           + conv_params(12, ef[0], k2) + conv_params(24, ef[0], k2)
           + res(2 * c + ef[0], 4 * c) + attn + res(4 * c, 4 * c) + 2 * 4 * c + conv_params(4 * c, 2 * z, _K3))
    dec = (conv_params(z, 4 * c, _K3) + res(4 * c, 4 * c) + attn + res(4 * c, 4 * c + ef[1])
           + L * res(4 * c, 4 * c) + conv_params(4 * c, 4 * c, _K3) + res(4 * c, 4 * c + ef[1])
           + res(4 * c, 2 * c) + (L - 1) * res(2 * c, 2 * c) + conv_params(2 * c, 2 * c, k2) + res(2 * c, 2 * c)
           + res(2 * c, c) + res(c, c)
           + 2 * n * res(c, c) + conv_params(c, 12, k2) + conv_params(c, 24, k2)
           + 2 * c + conv_params(c, 24, k2))
    return enc, dec


_FAMILY_PARAMS = {"wan": _wan_vae_params, "cogvideox": _cogvideox_vae_params, "mochi": _mochi_vae_params,
                  "ltx": _ltx_vae_params, "opensora": _opensora_vae_params, "stepvideo": _stepvideo_vae_params,
                  "wfvae": _wfvae_vae_params}


# --------------------------------------------------------------------------------------------
# DiT
# --------------------------------------------------------------------------------------------

Conditioning = Literal["class", "cross_attention", "joint", "dual_stream", "asymmetric"]
AttentionLayout = Literal["full", "factorized"]
Modulation = Literal["per_block", "shared"]
QKNorm = Literal["none", "across_heads", "per_head", "per_head_layernorm"]
MlpAct = Literal["gelu_tanh", "swiglu"]
TextProj = Literal["mlp", "linear", "refiner"]


class DiTSpec(_Spec):
    """A video Diffusion Transformer over VAE latents (Peebles & Xie 2022, extended to video).

    Blocks are adaLN-Zero transformer blocks conditioned on the timestep embedding. ``conditioning``:

    - ``class``: class label embedding added to the timestep embedding (the DiT paper's model);
    - ``cross_attention``: text tokens projected to the hidden size and attended by a
      cross-attention after self-attention (PixArt-alpha / Open-Sora / Wan);
    - ``joint``: text tokens concatenated with video tokens into one self-attention and MLP
      with shared weights and separate ("expert") adaLN modulation for text (CogVideoX).
    - ``dual_stream``: MMDiT (SD3, FLUX, HunyuanVideo): ``depth`` dual-stream blocks with separate weights
      for text and video and one attention over both, then ``single_blocks`` single-stream blocks on the
      concatenated tokens (fused qkv + MLP input projection, parallel attention and MLP).
    - ``asymmetric``: Mochi 1's AsymmDiT: joint attention in every block like ``dual_stream``, with a narrower text
      stream (``text_hidden_size``, MLP ``text_mlp_hidden_size``) whose q/k/v are projected up to the video width,
      scale + tanh-gate modulation around parameter-free RMSNorms, the text pooled by attention
      (``text_pool_heads``) into the conditioning vector, learned RoPE frequencies, and a last block that does not
      update the text.

    ``attention_layout``: ``full`` attention over all spacetime tokens, or ``factorized``:
    even blocks attend within a frame (spatial), odd blocks across frames at one position
    (temporal), as in Latte / Open-Sora STDiT3.

    ``modulation``: ``per_block`` adaLN-Zero (a Linear(d, 6d) in every block, DiT) or ``shared``
    (adaLN-single: one Linear(d, 6d) on the timestep embedding for all blocks plus a learned 6 x d
    table per block; PixArt-alpha, Open-Sora, Wan2.1). ``qk_norm``: RMSNorm on queries and keys,
    over the whole width (Wan2.1) or per head (STDiT3, HunyuanVideo). ``cross_attn_norm``: an affine
    LayerNorm before cross-attention (Wan2.1). ``mlp_hidden_size`` overrides ``mlp_ratio``.
    CogVideoX-style options: ``cond_dim`` (width of the timestep embedding that drives adaLN, default
    ``hidden_size``), ``norm_affine`` (block and final LayerNorms with weight and bias),
    ``qk_norm="per_head_layernorm"`` (affine LayerNorm per head), ``text_proj="linear"`` (one Linear from
    the text encoder), ``final_prenorm`` (an affine LayerNorm over text and video tokens before the final adaLN).
    HunyuanVideo / FLUX-style options: ``text_proj="refiner"`` (a token refiner of ``refiner_depth`` bidirectional
    transformer blocks on the text tokens, gated by timestep + mean-pooled text), ``pooled_text_dim`` (a pooled
    text vector, e.g. CLIP's, through an MLP added to the timestep embedding), ``guidance_embed`` (the guidance
    scale embedded like the timestep, for guidance-distilled models). ``mlp_act="swiglu"``: a gated SiLU MLP
    (w1, w3: d -> m; w2: m -> d; Mochi, Llama-style blocks); ``mlp_bias``, ``qkv_bias``, ``out_bias``: biases of
    the MLP, of the q/k/v projections and of the attention output projections.
    Further options: ``cross_qk_norm`` (q/k norms in cross-attention too; STDiT3 has them in self-attention only),
    ``fps_embed`` (the frame rate embedded like the timestep; STDiT3), ``cond_channels`` (per-token conditioning
    latents through a Linear added to the video tokens; Open-Sora 2.0's image/video condition), ``extra_text_dim``
    and ``extra_text_tokens`` (a second encoder's tokens through a Linear, prepended to the cross-attention keys;
    Step-Video's CLIP), ``text_norm`` (a parameter-free LayerNorm on the text features before their projection) and
    ``final_norm_affine`` (default: ``norm_affine``). ``sparse_ratio`` k > 1: Skiparse sparse self-attention
    (Open-Sora-Plan v1.3) in blocks ``sparse_blocks`` = [start, stop): the tokens (padded to a multiple of k) are
    split into k interleaved sequences that attend within themselves, dividing the attention core's work by k.
    """

    depth: int = Field(gt=0, description="number of transformer blocks")
    hidden_size: int = Field(gt=0, description="token width d (channels)")
    num_heads: int = Field(gt=0, description="attention heads")
    mlp_ratio: float = Field(default=4.0, gt=0, description="MLP hidden width / hidden_size")
    patch_size: tuple[int, int, int] = Field(
        default=(1, 2, 2), description="latent patch (pt, ph, pw) per token"
    )
    in_channels: int = Field(default=4, gt=0, description="latent channels in")
    learn_sigma: bool = Field(default=True, description="also predict the variance (out = 2 x in)")
    conditioning: Conditioning = Field(default="class", description="class | cross_attention | joint")
    attention_layout: AttentionLayout = Field(default="full", description="full | factorized")
    num_classes: int = Field(default=1000, gt=0, description="class labels (class conditioning)")
    class_dropout_prob: float = Field(
        default=0.1, ge=0, lt=1, description="label dropout for CFG (> 0 adds a null-class row)"
    )
    text_dim: int = Field(default=4096, gt=0, description="text-encoder output width (text conditioning)")
    frequency_embedding_size: int = Field(
        default=256, gt=0, description="sinusoidal timestep features"
    )
    modulation: Modulation = Field(default="per_block", description="per_block (adaLN-Zero) | shared (adaLN-single)")
    qk_norm: QKNorm = Field(default="none", description="RMSNorm on q and k: none | across_heads | per_head")
    cross_attn_norm: bool = Field(default=False, description="affine LayerNorm before cross-attention")
    mlp_hidden_size: int | None = Field(default=None, gt=0, description="MLP width (default: hidden x mlp_ratio)")
    cond_dim: int | None = Field(default=None, gt=0, description="timestep-embedding width (default: hidden_size)")
    norm_affine: bool = Field(default=False, description="block and final LayerNorms with weight and bias")
    text_proj: TextProj = Field(default="mlp", description="text projection: mlp (PixArt) | linear | refiner (Hunyuan)")
    refiner_depth: int = Field(default=0, ge=0, description="token-refiner blocks (text_proj='refiner')")
    pooled_text_dim: int | None = Field(default=None, gt=0, description="pooled text vector width (vector_in MLP)")
    guidance_embed: bool = Field(default=False, description="embed the guidance scale like the timestep")
    mlp_act: MlpAct = Field(default="gelu_tanh", description="MLP: gelu_tanh (2 matrices) | swiglu (3 matrices)")
    mlp_bias: bool = Field(default=True, description="biases in the MLP linears")
    qkv_bias: bool = Field(default=True, description="biases in the attention q/k/v projections")
    out_bias: bool = Field(default=True, description="biases in the attention output projections")
    text_hidden_size: int | None = Field(default=None, gt=0, description="text-stream width (asymmetric)")
    text_mlp_hidden_size: int | None = Field(default=None, gt=0, description="text-stream MLP width (asymmetric)")
    text_pool_heads: int = Field(default=8, gt=0, description="heads of the text attention pooling (asymmetric)")
    cross_qk_norm: bool = Field(default=True, description="q/k norms in cross-attention too (when qk_norm is set)")
    fps_embed: bool = Field(default=False, description="embed the frame rate like the timestep (STDiT3)")
    cond_channels: int | None = Field(default=None, gt=0, description="per-token conditioning latent channels")
    extra_text_dim: int | None = Field(default=None, gt=0, description="second text encoder's width (cross-attn)")
    extra_text_tokens: int = Field(default=0, ge=0, description="second text encoder's tokens (cross-attn)")
    text_norm: bool = Field(default=False, description="parameter-free LayerNorm on the text before its projection")
    final_norm_affine: bool | None = Field(default=None, description="final LayerNorm affine (default norm_affine)")
    sparse_ratio: int = Field(default=1, gt=0, description="Skiparse sparse self-attention ratio k (1 = dense)")
    sparse_blocks: tuple[int, int] | None = Field(default=None, description="[start, stop) blocks with sparse "
                                                  "attention (default: all, when sparse_ratio > 1)")
    final_prenorm: bool = Field(default=False, description="affine LayerNorm over all tokens before the final adaLN")
    single_blocks: int = Field(default=0, ge=0, description="single-stream blocks after the dual-stream ones")

    @field_validator("patch_size")
    @classmethod
    def _positive_patch(cls, v: tuple[int, int, int]) -> tuple[int, int, int]:
        if any(p <= 0 for p in v):
            raise ValueError(f"patch sizes must be positive, got {v}")
        return v

    @field_validator("frequency_embedding_size")
    @classmethod
    def _even_freq(cls, v: int) -> int:
        if v % 2:
            raise ValueError(f"must be even, got {v}")
        return v

    @model_validator(mode="after")
    def _check(self) -> DiTSpec:
        if self.hidden_size % self.num_heads:
            raise ValueError(
                f"num_heads={self.num_heads} must divide hidden_size={self.hidden_size}"
            )
        if self.modulation == "shared" and self.cond != self.hidden_size:
            raise ValueError("modulation='shared' adds its projection to d-wide tables: cond_dim must equal "
                             "hidden_size")
        if self.cross_attn_norm and self.conditioning != "cross_attention":
            raise ValueError("cross_attn_norm needs conditioning='cross_attention'")
        if self.single_blocks and self.conditioning != "dual_stream":
            raise ValueError("single_blocks needs conditioning='dual_stream'")
        if self.conditioning in ("dual_stream", "asymmetric") and self.modulation == "shared":
            raise ValueError(f"conditioning={self.conditioning!r} uses per-block modulation (modulation='per_block')")
        if self.conditioning == "asymmetric":
            if self.text_proj != "linear" or self.final_prenorm or self.head_dim % 2:
                raise ValueError("conditioning='asymmetric' (Mochi) projects text with text_proj='linear', has no "
                                 "final_prenorm, and needs an even head width")
            if self.text_dim % self.text_pool_heads:
                raise ValueError(f"text_pool_heads={self.text_pool_heads} must divide text_dim={self.text_dim}")
        elif self.text_hidden_size is not None or self.text_mlp_hidden_size is not None:
            raise ValueError("text_hidden_size and text_mlp_hidden_size need conditioning='asymmetric'")
        if self.sparse_ratio > 1 and (self.attention_layout != "full"
                                      or self.conditioning not in ("class", "cross_attention")):
            raise ValueError("sparse_ratio > 1 (Skiparse) needs attention_layout='full' and class or cross_attention "
                             "conditioning (text tokens are not in the self-attention)")
        if self.sparse_blocks is not None:
            lo, hi = self.sparse_blocks
            if self.sparse_ratio == 1 or not 0 <= lo < hi <= self.depth:
                raise ValueError(f"sparse_blocks={self.sparse_blocks} needs sparse_ratio > 1 and 0 <= start < stop <= "
                                 f"depth={self.depth}")
        if (self.extra_text_dim is None) != (self.extra_text_tokens == 0):
            raise ValueError("extra_text_dim and extra_text_tokens > 0 go together")
        if self.extra_text_dim is not None and self.conditioning != "cross_attention":
            raise ValueError("extra_text_dim needs conditioning='cross_attention'")
        if (self.text_proj == "refiner") != (self.refiner_depth > 0):
            raise ValueError("text_proj='refiner' and refiner_depth > 0 go together")
        if not self.text_conditioned and (self.text_proj == "refiner" or self.pooled_text_dim is not None):
            raise ValueError("text_proj='refiner' and pooled_text_dim need text conditioning")
        if self.single_blocks and self.mlp_act != "gelu_tanh":
            raise ValueError("single-stream blocks fuse a GELU MLP: mlp_act must be 'gelu_tanh'")
        if self.conditioning in ("joint", "dual_stream", "asymmetric") and self.attention_layout == "factorized":
            raise ValueError(
                f"conditioning={self.conditioning!r} attends text and video tokens together and needs "
                "attention_layout='full'"
            )
        return self

    # --- derived ----------------------------------------------------------------------------
    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_heads

    @property
    def mlp_hidden(self) -> int:
        """MLP hidden width: ``mlp_hidden_size`` if given, else int(hidden_size x mlp_ratio) as in DiT."""
        return self.mlp_hidden_size if self.mlp_hidden_size is not None else int(self.hidden_size * self.mlp_ratio)

    @property
    def cond(self) -> int:
        """Width of the conditioning (timestep) embedding."""
        return self.cond_dim if self.cond_dim is not None else self.hidden_size

    @property
    def sparse_range(self) -> range:
        """Blocks with Skiparse sparse attention (empty when dense)."""
        if self.sparse_ratio == 1:
            return range(0)
        return range(*self.sparse_blocks) if self.sparse_blocks is not None else range(self.depth)

    def block_schedule(self) -> tuple[tuple[str, range], ...]:
        """Which block type runs at which depth: runs of (mode, block indices), in order of their first block,
        covering 0 .. num_blocks - 1 once. Modes: ``full``, ``spatial`` and ``temporal`` (factorised: even blocks
        within a frame, odd ones across frames), ``sparse`` (Skiparse), ``dual`` and ``single`` (MMDiT),
        ``asymmetric`` and ``asymmetric_last`` (Mochi: the last block does not update the text). The one place
        the schedule is worked out: the reference model, the ledger and the memory model all read it."""
        d = self.depth
        if self.conditioning == "dual_stream":
            runs = [("dual", range(d)), ("single", range(d, d + self.single_blocks))]
        elif self.conditioning == "asymmetric":
            runs = [("asymmetric", range(d - 1)), ("asymmetric_last", range(d - 1, d))]
        elif self.attention_layout == "factorized":
            runs = [("spatial", range(0, d, 2)), ("temporal", range(1, d, 2))]
        else:
            s = self.sparse_range
            runs = [("full", range(0, s.start)), ("sparse", s), ("full", range(s.stop, d))] if len(s) else [
                ("full", range(d))]
        return tuple((mode, r) for mode, r in runs if len(r))

    def block_modes(self) -> tuple[str, ...]:
        """The mode of each block, by index (``block_schedule`` unrolled): what the reference model builds."""
        modes = [""] * self.num_blocks
        for mode, blocks in self.block_schedule():
            for i in blocks:
                modes[i] = mode
        return tuple(modes)

    @property
    def final_affine(self) -> bool:
        """Whether the final LayerNorm has weight and bias."""
        return self.norm_affine if self.final_norm_affine is None else self.final_norm_affine

    @property
    def cross_tokens_extra(self) -> int:
        """Tokens the cross-attention sees beyond the main text tokens (a second encoder's, prepended)."""
        return self.extra_text_tokens if self.extra_text_dim is not None else 0

    @property
    def out_channels(self) -> int:
        return self.in_channels * (2 if self.learn_sigma else 1)

    @property
    def patch_volume(self) -> int:
        return math.prod(self.patch_size)

    @property
    def text_conditioned(self) -> bool:
        return self.conditioning != "class"

    @property
    def num_blocks(self) -> int:
        """Transformer blocks of all kinds (dual- plus single-stream for MMDiT)."""
        return self.depth + self.single_blocks

    @property
    def modulation_chunks(self) -> int:
        """adaLN outputs per block: 6 (shift, scale, gate x attn, MLP), 12 with joint text, 4 asymmetric (no shift)."""
        return {"joint": 12, "asymmetric": 4}.get(self.conditioning, 6)

    @property
    def text_width(self) -> int:
        """Width of the text tokens in the blocks: ``text_hidden_size`` (asymmetric) or ``hidden_size``."""
        return self.text_hidden_size or self.hidden_size

    @property
    def text_mlp_hidden(self) -> int:
        """MLP width of the asymmetric text stream."""
        return self.text_mlp_hidden_size or int(self.text_width * self.mlp_ratio)


# --------------------------------------------------------------------------------------------
# Text encoder
# --------------------------------------------------------------------------------------------


TextEncoderKind = Literal["t5", "llama", "clip", "bert"]

#: Fields that only one kind uses: another kind must leave them at their defaults (which it ignores).
_TEXT_KIND_FIELDS: dict[str, tuple[str, ...]] = {
    "t5": ("gated_ffn", "relative_attention_num_buckets", "relative_attention_max_distance", "shared_relative_bias"),
    "llama": ("num_kv_heads", "hidden_state_skip", "final_norm", "rotary", "fused_projections"),
    "clip": ("projection_dim",),
    "bert": ("max_position_embeddings", "type_vocab_size", "pooler"),
}
#: Sizes a llama, clip or bert encoder must give explicitly (the defaults describe T5-XXL).
_TEXT_SIZE_FIELDS = ("vocab_size", "num_layers", "d_model", "num_heads", "d_ff", "max_tokens")


class TextEncoderSpec(_Spec):
    """A text encoder; ``kind`` picks the architecture (the reference modules in reference_model/text_encoder.py).

    - ``t5`` (default): a T5 encoder (Raffel et al. 2020; v1.1 gated-GELU FFN): RMSNorm, bias-free projections,
      relative position buckets in the first layer's attention (in every layer for umT5).
    - ``llama``: a decoder-only LLM used as encoder (HunyuanVideo's llava-llama-3-8b): RMSNorm, bias-free
      projections, grouped-query attention with ``num_kv_heads`` key/value heads (default ``num_heads``), rotary
      positions (no parameters), causal attention, SwiGLU MLP (``d_ff`` wide), no LM head.
      ``hidden_state_skip`` = k takes the hidden state k layers before the last, without the final norm
      (HunyuanVideo: 2). Parameters count all ``num_layers`` (the checkpoint is loaded whole); MACs and
      activations count the ``layers_run`` = num_layers - k layers actually needed (the reference stops there;
      HunyuanVideo's own code runs the k extra layers through transformers and discards them: k / num_layers
      more text-encoder MACs). Step-Video's Step-LLM is a llama with ``final_norm: false`` (no final RMSNorm),
      ``fused_projections: true`` (one qkv and one gate/up matmul: the same parameters and MACs, a larger
      activation peak) and ``rotary: false`` (its ALiBi attention biases are computed inside StepFun's fused
      attention kernel: no parameters, no MACs counted, nothing materialized).
    - ``clip``: CLIP's text tower (openai/clip-vit-large-patch14): ``max_tokens`` learned positions, biased
      LayerNorms and projections, causal attention, quick-GELU MLP, final LayerNorm. ``projection_dim``: the
      bias-free ``text_projection`` of the pooled vector (CLIPTextModelWithProjection); None (default) leaves it
      out, as HunyuanVideo and Open-Sora 2.0, which take CLIPTextModel's pooled output (width ``d_model``).
    - ``bert``: a BertModel (Step-Video's "Hunyuan-CLIP" text tower, from HunyuanDiT): word, learned position
      (``max_position_embeddings`` rows, default ``max_tokens``) and token-type (``type_vocab_size``) embeddings
      with an embedding LayerNorm; post-norm layers with biased q, k, v, output projections and an erf-GELU MLP,
      bidirectional attention, no final norm. ``pooler`` (default true, as BertModel's add_pooling_layer and
      Step-Video's checkpoint): tanh(Linear(d, d)) of the first token, counted in parameters (its weights are
      loaded) and in MACs (BertModel's forward runs it, one row per prompt) even where, as in Step-Video, only
      the token states are used. ``max_tokens``: the tokens a prompt is encoded to (Step-Video: 77).

    ``d_model`` is the width of the token states the DiT receives (``dit.text_dim`` must equal it). ``d_kv`` is
    the width per head (for llama, clip and bert it defaults to d_model / num_heads). A field of another kind must keep
    its default (it is ignored); llama, clip and bert must give their sizes explicitly.
    """

    kind: TextEncoderKind = Field(default="t5", description="architecture: t5 | llama | clip | bert")
    vocab_size: int = Field(default=32128, gt=0, description="token vocabulary")
    num_layers: int = Field(default=24, gt=0, description="encoder layers")
    d_model: int = Field(default=4096, gt=0, description="model width (channels); the token states' width")
    num_heads: int = Field(default=64, gt=0, description="attention (query) heads")
    d_kv: int = Field(default=64, gt=0, description="width per head")
    d_ff: int = Field(default=10240, gt=0, description="feed-forward width")
    gated_ffn: bool = Field(default=True, description="t5: gated-GELU FFN (T5 v1.1, umT5)")
    max_tokens: int = Field(default=512, gt=0, description="maximum text length in tokens (clip: learned positions)")
    relative_attention_num_buckets: int = Field(default=32, gt=0, description="t5: relative-position buckets")
    relative_attention_max_distance: int = Field(default=128, gt=0, description="t5: relative-position range")
    shared_relative_bias: bool = Field(default=True,
                                       description="t5: one position-bias table (T5) or one per layer (umT5)")
    num_kv_heads: int | None = Field(default=None, gt=0, description="llama: key/value heads (GQA; default num_heads)")
    hidden_state_skip: int = Field(default=0, ge=0,
                                   description="llama: output the hidden state this many layers before the last")
    final_norm: bool = Field(default=True, description="llama: final RMSNorm (Step-LLM has none)")
    rotary: bool = Field(default=True, description="llama: rotary position embedding (Step-LLM: ALiBi in-kernel)")
    fused_projections: bool = Field(default=False,
                                    description="llama: one qkv and one gate/up matmul (Step-LLM's wqkv, w1)")
    projection_dim: int | None = Field(default=None, gt=0, description="clip: pooled-vector projection width")
    max_position_embeddings: int | None = Field(default=None, gt=0,
                                                description="bert: learned positions (default max_tokens)")
    type_vocab_size: int = Field(default=2, gt=0, description="bert: token-type (segment) embeddings")
    pooler: bool = Field(default=True, description="bert: tanh(Linear(d, d)) pooler of the first token")

    @model_validator(mode="before")
    @classmethod
    def _kind_sizes(cls, data: object) -> object:
        if not isinstance(data, dict) or data.get("kind") not in ("llama", "clip", "bert"):
            return data
        missing = [f for f in _TEXT_SIZE_FIELDS if f not in data]
        if missing:
            raise ValueError(f"kind={data['kind']!r} needs explicit {', '.join(missing)} "
                             "(the defaults describe T5-XXL)")
        if "d_kv" not in data:
            d, h = data["d_model"], data["num_heads"]
            if isinstance(d, int) and isinstance(h, int) and h > 0 and d % h:
                raise ValueError(f"d_model={d} is not divisible by num_heads={h}: give d_kv")
            if isinstance(d, int) and isinstance(h, int) and h > 0:
                data = {**data, "d_kv": d // h}
        return data

    @model_validator(mode="after")
    def _check_kind(self) -> TextEncoderSpec:
        foreign = [f for kind, fields in _TEXT_KIND_FIELDS.items() if kind != self.kind for f in fields
                   if getattr(self, f) != type(self).model_fields[f].default]
        if foreign:
            owners = {f: k for k, fields in _TEXT_KIND_FIELDS.items() for f in fields}
            detail = ", ".join(f"{f} (kind={owners[f]!r})" for f in foreign)
            raise ValueError(f"kind={self.kind!r} does not use {detail}: remove it or change kind")
        if self.num_heads % self.kv_heads:
            raise ValueError(f"num_heads={self.num_heads} must be a multiple of num_kv_heads={self.kv_heads}")
        if self.hidden_state_skip >= self.num_layers:
            raise ValueError(f"hidden_state_skip={self.hidden_state_skip} must be less than num_layers="
                             f"{self.num_layers}")
        if self.kind == "llama" and self.rotary and self.d_kv % 2:
            raise ValueError(f"rotary embedding needs an even d_kv, got {self.d_kv}")
        if self.kind == "bert" and self.max_tokens > self.positions:
            raise ValueError(f"max_tokens={self.max_tokens} exceeds max_position_embeddings={self.positions}")
        return self

    @property
    def positions(self) -> int:
        """Learned position rows of bert: max_position_embeddings, default max_tokens."""
        return self.max_position_embeddings if self.max_position_embeddings is not None else self.max_tokens

    @property
    def inner_dim(self) -> int:
        """Query (and output-projection) width: num_heads x d_kv."""
        return self.num_heads * self.d_kv

    @property
    def kv_heads(self) -> int:
        """Key/value heads: num_kv_heads (llama GQA), else num_heads."""
        return self.num_kv_heads if self.num_kv_heads is not None else self.num_heads

    @property
    def kv_dim(self) -> int:
        """Width of the key and of the value projection: kv_heads x d_kv."""
        return self.kv_heads * self.d_kv

    @property
    def layers_run(self) -> int:
        """Layers one forward runs: num_layers less llama's hidden_state_skip."""
        return self.num_layers - self.hidden_state_skip

    @property
    def pooled_dim(self) -> int | None:
        """Width of the pooled vector (clip: projection_dim or d_model; bert with pooler: d_model); None for kinds
        without one."""
        if self.kind == "bert":
            return self.d_model if self.pooler else None
        if self.kind != "clip":
            return None
        return self.projection_dim if self.projection_dim is not None else self.d_model

    @property
    def bias_tables(self) -> int:
        """Relative position-bias tables: one (T5) or one per layer (umT5); none for the other kinds."""
        if self.kind != "t5":
            return 0
        return 1 if self.shared_relative_bias else self.num_layers

    @property
    def params(self) -> int:
        """All parameters (exact): t5 embedding + layers + relative position bias + final RMSNorm; llama
        embedding + layers (GQA attention, SwiGLU) + optional final RMSNorm; clip token and position embeddings +
        layers (biased) + final LayerNorm + optional text projection; bert word, position and token-type
        embeddings + embedding LayerNorm + layers (biased, two LayerNorms each) + optional pooler."""
        d, inner, ff, kv = self.d_model, self.inner_dim, self.d_ff, self.kv_dim
        if self.kind == "llama":  # fused projections: the same weights in one matrix
            attn = d + d * inner + 2 * d * kv + inner * d  # RMSNorm + q, k, v (narrower with GQA), o
            mlp = d + 3 * d * ff  # RMSNorm + gate, up, down
            return self.vocab_size * d + self.num_layers * (attn + mlp) + (d if self.final_norm else 0)
        if self.kind == "bert":
            attn = 3 * linear_params(d, inner) + linear_params(inner, d) + 2 * d  # q, k, v, output + LayerNorm
            mlp = linear_params(d, ff) + linear_params(ff, d) + 2 * d  # intermediate, output + LayerNorm
            embed = (self.vocab_size + self.positions + self.type_vocab_size) * d + 2 * d
            return embed + self.num_layers * (attn + mlp) + (linear_params(d, d) if self.pooler else 0)
        if self.kind == "clip":
            attn = 2 * d + 3 * linear_params(d, inner) + linear_params(inner, d)  # LayerNorm + q, k, v, out
            mlp = 2 * d + linear_params(d, ff) + linear_params(ff, d)  # LayerNorm + fc1, fc2
            proj = d * self.projection_dim if self.projection_dim is not None else 0
            return (self.vocab_size + self.max_tokens) * d + self.num_layers * (attn + mlp) + 2 * d + proj
        attn = d + 4 * d * inner  # RMSNorm + q, k, v, o (no bias)
        ffn = d + (2 if self.gated_ffn else 1) * d * ff + ff * d
        return (
            self.vocab_size * d
            + self.num_layers * (attn + ffn)
            + self.relative_attention_num_buckets * self.num_heads * self.bias_tables
            + d
        )


# --------------------------------------------------------------------------------------------
# A whole model and what it processes
# --------------------------------------------------------------------------------------------


class LatentShape(_Spec):
    """Latent grid of one video and the DiT tokens it becomes."""

    frames: int
    height: int
    width: int
    tokens_t: int
    tokens_h: int
    tokens_w: int

    @property
    def tokens(self) -> int:
        """Spacetime patches (video tokens) per video."""
        return self.tokens_t * self.tokens_h * self.tokens_w

    @property
    def tokens_per_frame(self) -> int:
        return self.tokens_h * self.tokens_w


def _nearest_multiples(value: int, step: int) -> str:
    lo = value // step * step
    return f"{lo} or {lo + step}" if lo else f"{step}"


class ModelSpec(_Spec):
    """A text/class-to-video model: DiT over the latents of a VAE, optionally text encoders.

    ``text_encoder`` gives the token features the DiT attends to (``text_tokens`` of them); ``extra_text_encoders``
    run beside it over their own ``max_tokens`` (e.g. CLIP-L for HunyuanVideo's pooled vector, whose width is the
    DiT's ``pooled_text_dim``). Text encoding costs and weighs the sum of all of them."""

    name: str = Field(default="custom", min_length=1)
    dit: DiTSpec
    vae: VAESpec
    text_encoder: TextEncoderSpec | None = None
    extra_text_encoders: tuple[TextEncoderSpec, ...] = Field(
        default=(), description="further text encoders run per prompt (e.g. CLIP for a pooled vector)"
    )
    text_tokens: int | None = Field(
        default=None, gt=0, description="text tokens fed to the DiT (default: encoder max_tokens)"
    )
    prompt_template_tokens: int = Field(
        default=0, ge=0, description="template tokens the token encoder also runs over and drops (HunyuanVideo: 95)"
    )

    @model_validator(mode="after")
    def _check(self) -> ModelSpec:
        if self.dit.in_channels != self.vae.latent_channels:
            raise ValueError(
                f"dit.in_channels={self.dit.in_channels} must equal "
                f"vae.latent_channels={self.vae.latent_channels}"
            )
        if self.dit.text_conditioned and self.text_encoder is None:
            raise ValueError(f"dit.conditioning={self.dit.conditioning!r} needs a text_encoder")
        te = self.text_encoder
        if te is not None and self.dit.text_conditioned and self.dit.text_dim != te.d_model:
            raise ValueError(f"dit.text_dim={self.dit.text_dim} must equal text_encoder.d_model={te.d_model}")
        if self.extra_text_encoders and te is None:
            raise ValueError("extra_text_encoders need a text_encoder")
        pooled = self.dit.pooled_text_dim
        if pooled is not None and all((e.pooled_dim or e.d_model) != pooled for e in self.extra_text_encoders):
            raise ValueError(f"dit.pooled_text_dim={pooled} needs an extra_text_encoders entry whose pooled width is "
                             f"{pooled} (the encoder of the pooled vector)")
        ed, et = self.dit.extra_text_dim, self.dit.extra_text_tokens
        if ed is not None and all((e.d_model, e.max_tokens) != (ed, et) for e in self.extra_text_encoders):
            raise ValueError(f"dit.extra_text_dim={ed} with {et} tokens needs an extra_text_encoders entry with "
                             f"d_model={ed} and max_tokens={et}")
        return self

    @property
    def text_encoders(self) -> tuple[TextEncoderSpec, ...]:
        """All text encoders run per prompt: the token encoder first, then the extra ones."""
        if self.text_encoder is None or not self.dit.text_conditioned:
            return ()
        return (self.text_encoder, *self.extra_text_encoders)

    def text_encoder_tokens(self, text_tokens: int | None = None) -> tuple[int, ...]:
        """Tokens each text encoder runs over: the first ``text_tokens`` (default ``num_text_tokens``) plus the
        prompt template; the extras their ``max_tokens``."""
        first = (self.num_text_tokens if text_tokens is None else text_tokens) + self.prompt_template_tokens
        return tuple(first if i == 0 else e.max_tokens for i, e in enumerate(self.text_encoders))

    @property
    def num_text_tokens(self) -> int:
        """Text tokens per prompt (0 for class-conditioned models)."""
        if not self.dit.text_conditioned or self.text_encoder is None:
            return 0
        return self.text_tokens if self.text_tokens is not None else self.text_encoder.max_tokens

    def latent_shape(self, video: VideoSpec) -> LatentShape:
        """Latent grid and tokens for ``video``; raises VideoShapeError naming the dimension."""
        s = self.vae.spatial_compression
        pt, ph, pw = self.dit.patch_size
        for dim, size, p in (("width", video.width, pw), ("height", video.height, ph)):
            if size % (s * p):
                raise VideoShapeError(
                    f"{dim}={size} is not divisible by spatial compression x patch = {s} x {p} = {s * p}: "
                    f"use e.g. {_nearest_multiples(size, s * p)}"
                )
        frames = self.vae.latent_frames(video.num_frames)
        if frames % pt:
            raise VideoShapeError(
                f"num_frames={video.num_frames} gives {frames} latent frames, not divisible by "
                f"temporal patch {pt}"
            )
        h, w = video.height // s, video.width // s
        return LatentShape(
            frames=frames, height=h, width=w, tokens_t=frames // pt, tokens_h=h // ph, tokens_w=w // pw
        )

    def snap_frames(self, num_frames: Any) -> Any:
        """The frame count nearest ``num_frames`` that this model accepts (ties go up): 1 + t*k for a causal
        VAE, t*k otherwise, with latent frames a multiple of the temporal patch pt (at least pt).
        For duration-based queries; takes an int (returns an int) or a numpy array (returns float64).
        A VAE that pads (family='opensora') takes any count: the nearest whole number (pt = 1), or else the nearest
        count that decodes to a multiple of pt latent frames with no padding (``vae.decoded_frames``)."""
        t, pt, causal = self.vae.temporal_compression, self.dit.patch_size[0], self.vae.causal
        f = np.asarray(num_frames, dtype=np.float64)
        if self.vae.family in ("opensora", "stepvideo"):  # stepvideo: the nearest count that decodes exactly
            if pt == 1 and self.vae.family == "opensora":
                frames = np.maximum(1.0, np.floor(f + 0.5))
            else:
                latent = (self.vae.padded_latent_frames(np.maximum(f, 1.0)) if self.vae.family == "opensora"
                          else self.vae.chunked_causal_frames(np.floor(np.maximum(f, 1.0)))[0])
                base = np.floor(latent / pt) * pt
                cands = np.stack([np.maximum(pt, base + d * pt) for d in (-1, 0, 1, 2)])
                made = np.stack([np.asarray(self.vae.decoded_frames(c), dtype=np.float64) for c in cands.astype(int)])
                dist = np.abs(made - f) - (made > f) * 0.25  # ties go up
                frames = np.take_along_axis(made, np.argmin(dist, axis=0)[None], axis=0)[0]
            return int(frames) if np.ndim(num_frames) == 0 else frames
        latent = (f - 1) / t + 1 if causal else f / t
        latent = np.maximum(pt, np.floor(latent / pt + 0.5) * pt)
        frames = 1 + t * (latent - 1) if causal else t * latent
        return int(frames) if np.ndim(num_frames) == 0 else frames


class Workload(_Spec):
    """A model applied to one video shape; validation checks that the shape fits the model."""

    model: ModelSpec
    video: VideoSpec

    @model_validator(mode="after")
    def _check(self) -> Workload:
        try:
            self.model.latent_shape(self.video)
        except VideoShapeError as e:
            raise ValueError(f"video: {e}") from None
        return self

    @property
    def latent(self) -> LatentShape:
        return self.model.latent_shape(self.video)
