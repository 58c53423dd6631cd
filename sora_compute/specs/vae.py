"""The 3D VAE: its layout and its frame rule (parameters and MACs come from its ledger, sora_compute/ledger/vae/)."""

from __future__ import annotations

import math
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from sora_compute.specs.base import VideoShapeError, _is_power_of_two, _Spec

__all__ = ["VAESpec", "VAEFamily"]


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
    ``reference_model/vae/``): ``wan`` (AutoencoderKLWan 2.1: channel RMSNorm, 2D spatial resampling plus a
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


# Layout facts of the exact families (their parameters and MACs come from the ledger, sora_compute/ledger/vae/).
MOCHI_FOURIER_FREQS = 2  # Mochi's FourierFeatures(start=6, stop=8): sin and cos of 2 frequencies per pixel channel
MOCHI_HEAD_DIM = 32  # Mochi's VAE attention head width
STEPVIDEO_HEAD = 32  # Step-Video v2 head: 4 * z_channels * 2^3 channels (2048 for z = 64)
WFVAE_FLOW_LAYERS = 2  # WF-VAE decoder energy-flow ResnetBlock3Ds: the v1.3.0 Decoder's connect_res_layer_num default
WFVAE_HAAR_PARAMS = 64  # HaarWaveletTransform3D's eight fixed 2x2x2 conv weights (frozen parameters, not buffers)
