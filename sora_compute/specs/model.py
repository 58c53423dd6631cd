"""A whole model (DiT, VAE, text encoders) and what it processes: latent shapes and workloads."""

from __future__ import annotations

from typing import Any

import numpy as np
from pydantic import Field, PrivateAttr, model_validator

from sora_compute.specs.base import VideoShapeError, _Spec
from sora_compute.specs.dit import DiTSpec
from sora_compute.specs.text_encoder import TextEncoderSpec, text_encoder_spec
from sora_compute.specs.vae import VAESpec
from sora_compute.specs.video import VideoSpec

__all__ = ["LatentShape", "ModelSpec", "Workload", "as_workload"]


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

    def text_encoder_dtypes(self, run: str) -> str:
        """The dtype the text encoders run in, for printing: one dtype (``run`` where an encoder has none of its own),
        or each encoder's by kind where they differ (Step-Video: ``llama bf16 + bert fp32``); "" without encoders."""
        dtypes = [e.dtype_or(run) for e in self.text_encoders]
        if len(set(dtypes)) <= 1:
            return dtypes[0] if dtypes else ""
        return " + ".join(f"{e.kind} {d}" for e, d in zip(self.text_encoders, dtypes, strict=True))

    def with_text_encoder_dtype(self, dtype: str | None) -> ModelSpec:
        """This model with every text encoder run in ``dtype`` at inference (its ``inference_dtype``; validated; None:
        unchanged)."""
        if dtype is None or self.text_encoder is None:
            return self
        return self.model_copy(update={
            "text_encoder": text_encoder_spec(self.text_encoder, inference_dtype=dtype),
            "extra_text_encoders": tuple(text_encoder_spec(e, inference_dtype=dtype)
                                         for e in self.extra_text_encoders)})

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

    @property
    def grid_px(self) -> tuple[int, int]:
        """(width step, height step) in pixels a video must be a multiple of: VAE spatial compression x DiT patch."""
        s = self.vae.spatial_compression
        return s * self.dit.patch_size[2], s * self.dit.patch_size[1]

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
        The VAE's own rule (``VAEBase.snap_frames``): a VAE that pads or chunks (Open-Sora, Step-Video) says which
        counts it takes."""
        frames = self.vae.snap_frames(np.asarray(num_frames, dtype=np.float64), self.dit.patch_size[0])
        return int(frames) if np.ndim(num_frames) == 0 else frames


class Workload(_Spec):
    """A model applied to one video shape; validation checks that the shape fits the model and computes the latent
    grid and token counts once (``latent``, ``tokens``, ``text_tokens``): layers below take a Workload and never
    recompute the latent shape. ``Workload.of`` builds one raising the model's VideoShapeError unchanged."""

    model: ModelSpec
    video: VideoSpec
    _latent: LatentShape | None = PrivateAttr(default=None)

    @model_validator(mode="after")
    def _check(self) -> Workload:
        if self._latent is None:
            try:
                self._latent = self.model.latent_shape(self.video)
            except VideoShapeError as e:
                raise ValueError(f"video: {e}") from None
        return self

    @classmethod
    def of(cls, model: ModelSpec, video: VideoSpec) -> Workload:
        """The workload of ``model`` on ``video``; raises VideoShapeError (naming the dimension) if it misfits."""
        latent = model.latent_shape(video)
        w = cls.model_construct(model=model, video=video)
        w._latent = latent
        return w

    @property
    def latent(self) -> LatentShape:
        """Latent grid and DiT token grid of the video (computed once, at validation)."""
        if self._latent is None:  # pragma: no cover - set by validation or ``of``
            self._latent = self.model.latent_shape(self.video)
        return self._latent

    @property
    def tokens(self) -> int:
        """Video tokens (spacetime patches) per video."""
        return self.latent.tokens

    @property
    def text_tokens(self) -> int:
        """Text tokens per prompt the DiT attends to (0 for class-conditioned models)."""
        return self.model.num_text_tokens


def as_workload(model: ModelSpec | Workload, video: VideoSpec | None = None) -> Workload:
    """``model`` if it is already a Workload (``video`` must then be None or its video), else ``model`` on
    ``video`` (``Workload.of``: VideoShapeError if the shape misfits)."""
    if isinstance(model, Workload):
        if video is not None and video != model.video:
            raise ValueError("give either a Workload or a model and a video, not a Workload and another video")
        return model
    if video is None:
        raise ValueError("give a video shape (or a Workload)")
    return Workload.of(model, video)
