"""Inference peaks of the VAEs, in bytes: the peak of live activation bytes while one forward runs without
gradients (the input itself not counted). Activations are ``act_bytes`` each (2 bf16, 4 fp32).

A family whose ledger carries its dataflow (``Flow`` records, ledger/vae/<family>.py) is read by the liveness
evaluator (``ledger_peak``); the others still have a hand walk that follows the reference code (which tensors a
caller holds while a module runs), one module per family here, each registered as
``@register("vae_encode_peak", family)`` / ``@register("vae_decode_peak", family)`` in the ledger's one registry.
"""

from __future__ import annotations

import importlib
import pkgutil

from sora_compute.evaluate.liveness import ledger_peak
from sora_compute.ledger.registry import lookup, registered
from sora_compute.ledger.vae import vae_decoder_ledger, vae_encoder_ledger
from sora_compute.memory.vae_peaks.common import Live
from sora_compute.specs import VAESpec

__all__ = ["vae_encode_peak", "vae_decode_peak"]

for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")  # registers the family walks


def vae_decode_peak(spec: VAESpec, latent_shape: tuple[int, int, int], batch: int = 1, act_bytes: int = 2) -> int:
    """Peak live activation bytes of decoding one latent (the latent input itself not counted)."""
    if spec.family not in registered("vae_decode_peak"):  # the ledger's dataflow
        return int(ledger_peak(vae_decoder_ledger(spec, latent_shape, batch), act_bytes))
    live = Live(act_bytes, batch)
    lookup("vae_decode_peak", spec.family)(spec, latent_shape, live)  # the family's hand walk
    return live.peak


def vae_encode_peak(spec: VAESpec, video_shape: tuple[int, int, int], batch: int = 1, act_bytes: int = 2) -> int:
    """Peak live activation bytes of encoding one video (the video input itself not counted)."""
    if spec.family not in registered("vae_encode_peak"):  # the ledger's dataflow
        return int(ledger_peak(vae_encoder_ledger(spec, video_shape, batch), act_bytes))
    live = Live(act_bytes, batch)
    lookup("vae_encode_peak", spec.family)(spec, video_shape, live)  # the family's hand walk
    return live.peak
