"""family='stepvideo': Step-Video-T2V's Video-VAE v2 (reference_model/vae/stepvideo.py)."""

from __future__ import annotations

import math
from typing import Any, Literal

import numpy as np
from pydantic import Field, model_validator

from sora_compute.specs.base import VideoShapeError, _is_power_of_two
from sora_compute.specs.vae.base import VAEBase

__all__ = ["StepVideoVAE", "STEPVIDEO_HEAD"]

STEPVIDEO_HEAD = 32  # Step-Video v2 head: 4 * z_channels * 2^3 channels (2048 for z = 64)


class StepVideoVAE(VAEBase):
    """StepFun's StepVideoVAE(z_channels=64, version=2): causal conv_in to ``stem_channels``, encoder levels of
    ``layers_per_block`` GroupNorm Resnet3DBlocks (``block_out_channels``), each boundary a per-frame stride-2 2D conv
    or, where ``temporal_factors`` (default: the last log2(t) - 1 boundaries) is 2, a causal stride-(2, 2, 2) conv;
    mid Resnet, causal attention over the chunk's positions, Resnet; then the v2 head (a causal conv and a 3D
    pixel-unshuffle x2 to 32 z channels, a causal conv to 2z, each with a parameter-free channel-averaging shortcut):
    ``spatial_compression = 2^levels``. The decoder mirrors it (``decoder_block_out_channels``, ``layers_per_block`` +
    1 blocks per level, time doubled by nearest x2 plus a Res3DBlockUpsample). Frames are encoded in chunks of
    ``chunk_frames`` (17), each causal on its own: a chunk of r = 1 + t j frames gives 1 + j latent frames (17 -> 3 at
    t = 8); decoding maps chunks of ``chunk_latent_frames`` back (3 -> 17).
    """

    family: Literal["stepvideo"] = "stepvideo"
    causal: Literal[True] = Field(default=True, description="causal (each chunk's first frame is encoded alone)")
    patch_size: Literal[1] = Field(default=1, description="no pixel-unshuffle")
    decoder_block_out_channels: tuple[int, ...] | None = Field(
        default=None, description="decoder channels per level if not the encoder's")
    temporal_factors: tuple[int, ...] | None = Field(
        default=None, description="1 or 2 per level boundary (the head halves time once more)")
    stem_channels: int | None = Field(
        default=None, gt=0, description="encoder conv_in width if not block_out_channels[0] (32)")
    chunk_frames: int | None = Field(
        default=None, gt=0, description="frames per independently encoded chunk (17; None = whole clip)")
    chunk_latent_frames: int | None = Field(
        default=None, gt=0, description="latent frames of a whole chunk (1 + (chunk_frames - 1) / t = 3)")

    @model_validator(mode="after")
    def _check_layout(self) -> StepVideoVAE:
        """Levels halve H and W at each boundary (time too where the temporal factor is 2), the head halves T, H and
        W once more; its 32 z channels feed channel-averaging / duplicating shortcuts."""
        chans, n, t, z = self.block_out_channels, len(self.block_out_channels), self.temporal_compression, \
            self.latent_channels
        dec = self.decoder_block_out_channels
        if (self.chunk_frames is None) != (self.chunk_latent_frames is None):
            raise ValueError("give chunk_frames and chunk_latent_frames together")
        if self.spatial_compression != 2 ** n:
            raise ValueError(f"family='stepvideo' halves H and W at each of the {n - 1} level boundaries and in the "
                             f"head: spatial_compression must be 2^{n} = {2 ** n} (patch_size 1), got "
                             f"{self.spatial_compression}")
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
        self._check_groups(chans + (dec or ()) + ((self.stem_channels,) if self.stem_channels else ()),
                           "every channel count")
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
        return self

    @property
    def level_temporal_factors(self) -> tuple[int, ...]:
        """``temporal_factors``, else 2 at the last log2(t) - 1 level boundaries (the last halving of time is the
        head's pixel-unshuffle, after the levels)."""
        if self.temporal_factors is not None:
            return self.temporal_factors
        n, k = len(self.block_out_channels) - 1, self.num_temporal_down - 1
        return (1,) * (n - k) + (2,) * k

    @property
    def decoder_channels(self) -> tuple[int, ...]:
        return tuple(reversed(self.decoder_block_out_channels or self.block_out_channels))

    def chunked_causal_frames(self, num_frames: Any) -> tuple[Any, Any]:
        """(latent frames, fits) of ``num_frames`` (an int or a numpy array) in chunks of ``chunk_frames`` c, each
        encoded causally on its own: ``F // c x chunk_latent_frames + (1 + (r - 1) / t if r else 0)`` with r = F % c;
        it fits when r is 0 or 1 + t j (the pipeline uses 17k frames, or 1)."""
        t, c = self.temporal_compression, self.chunk_frames
        whole, rest = (0 * num_frames, num_frames) if c is None else (num_frames // c, num_frames % c)
        latent = whole * (self.chunk_latent_frames or 0) + (rest > 0) * (1 + (rest - 1) // t)
        return latent, (num_frames >= 1) & ((rest == 0) | ((rest - 1) % t == 0))

    def latent_frames(self, num_frames: int) -> int:
        latent, fits = self.chunked_causal_frames(num_frames)
        if not fits:
            t, c = self.temporal_compression, self.chunk_frames
            rule = f"{c}k frames, or {c}k + 1 + {t}j (j < {(c - 1) // t})" if c else f"1 + {t}k frames"
            raise VideoShapeError(f"num_frames={num_frames} does not fit the chunked causal VAE: use {rule}")
        return int(latent)

    def decoded_frames(self, latent_frames: Any) -> Any:
        t, k, c = self.temporal_compression, self.chunk_latent_frames, self.chunk_frames
        if c is None or k is None:
            return 1 + (latent_frames - 1) * t
        rest = latent_frames % k  # an int or a numpy array
        return latent_frames // k * c + (rest > 0) * (1 + (rest - 1) * t)

    def frame_grid(self, num_frames: np.ndarray) -> tuple[np.ndarray, np.ndarray, str]:
        """Chunks of ``chunk_frames``, each causal on its own."""
        latent, fits = self.chunked_causal_frames(num_frames)
        t, c = self.temporal_compression, self.chunk_frames
        return latent, ~fits | (num_frames % 1 != 0), (f"{c}k or {c}k + 1 + {t}j" if c else f"1 + {t}k") + " frames"

    def snap_frames(self, num_frames: np.ndarray, pt: int) -> np.ndarray:
        """The nearest count that decodes exactly (chunks of ``chunk_frames``, each causal on its own)."""
        latent = self.chunked_causal_frames(np.floor(np.maximum(num_frames, 1.0)))[0]
        return self._snap_decodable(num_frames, pt, latent)
