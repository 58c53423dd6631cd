"""Inference peaks of the VAEs, in bytes: the peak of live activation bytes while one forward runs without
gradients (the input itself not counted), by a liveness walk that follows the reference code (which tensors a
caller still holds while a module runs). One module per family (mirroring ledger/vae/); each registers its walks as
``@register("vae_encode_peak", family)`` / ``@register("vae_decode_peak", family)`` in the ledger's one registry
(the generic family's walk is ``generic.py``'s, called here). Activations are ``act_bytes`` each (2 bf16, 4 fp32).
"""

from __future__ import annotations

import importlib
import pkgutil

from sora_compute.ledger.registry import lookup
from sora_compute.memory.vae_peaks.common import Live
from sora_compute.memory.vae_peaks.generic import generic_decode_peak, generic_encode_peak
from sora_compute.specs import VAESpec
from sora_compute.specs.vae import GenericVAE

__all__ = ["vae_encode_peak", "vae_decode_peak"]

for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")  # registers the family walks


def vae_decode_peak(spec: VAESpec, latent_shape: tuple[int, int, int], batch: int = 1, act_bytes: int = 2) -> int:
    """Peak live activation bytes of decoding one latent (the latent input itself not counted)."""
    live = Live(act_bytes, batch)
    if isinstance(spec, GenericVAE):
        generic_decode_peak(spec, latent_shape, live)
    else:  # a family's own walk, from the one registry
        lookup("vae_decode_peak", spec.family)(spec, latent_shape, live)
    return live.peak


def vae_encode_peak(spec: VAESpec, video_shape: tuple[int, int, int], batch: int = 1, act_bytes: int = 2) -> int:
    """Peak live activation bytes of encoding one video (the video input itself not counted)."""
    live = Live(act_bytes, batch)
    if isinstance(spec, GenericVAE):
        generic_encode_peak(spec, video_shape, live)
    else:  # a family's own walk, from the one registry
        lookup("vae_encode_peak", spec.family)(spec, video_shape, live)
    return live.peak
