"""The 3D VAEs' ledgers: one module per family, each registered as ``@register("vae", family)`` (a class with an
``encoder(spec, shape, batch)`` and a ``decoder(spec, latent_shape, batch, num_frames)`` builder); ``common.py`` holds
the op factories and blocks they share. Every module of this package is imported here (a new family's file registers
itself).

Paths are relative to the reference module's ``encoder`` / ``decoder`` (reference_model/vae/), so calibration
matches them one to one. Shapes are (T, H, W) per sample: Python ints (exact) or float64 arrays (sweeps).
"""

from __future__ import annotations

import importlib
import pkgutil
from typing import Protocol, cast

from sora_compute.ledger.formulas import Number
from sora_compute.ledger.ops import Op
from sora_compute.ledger.registry import lookup
from sora_compute.ledger.vae.common import Shape
from sora_compute.specs import VAESpec

__all__ = ["vae_encoder_ledger", "vae_decoder_ledger", "Shape", "VAEBuilder"]

for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")  # registers the family builders


class VAEBuilder(Protocol):
    """What a family registers: its encoder's and decoder's ledger builders."""

    def encoder(self, spec: VAESpec, shape: Shape, B: Number) -> list[Op]: ...

    def decoder(self, spec: VAESpec, shape: Shape, B: Number, num_frames: Number | None = None) -> list[Op]: ...


def _builder(spec: VAESpec) -> VAEBuilder:
    return cast(VAEBuilder, lookup("vae", spec.family))


def vae_encoder_ledger(spec: VAESpec, video_shape: tuple[Number, Number, Number], batch: Number = 1) -> list[Op]:
    """The encoder's ops on ``batch`` videos of (frames, height, width) pixels."""
    return _builder(spec).encoder(spec, Shape(video_shape), batch)


def vae_decoder_ledger(spec: VAESpec, latent_shape: tuple[Number, Number, Number], batch: Number = 1,
                       num_frames: Number | None = None) -> list[Op]:
    """The decoder's ops on ``batch`` latents of (frames, height, width); ``num_frames``: the video frames decoded
    (family='opensora' cuts each chunk's padding frames before its 2D decoder; default ``decoded_frames(T')``)."""
    return _builder(spec).decoder(spec, Shape(latent_shape), batch, num_frames)
