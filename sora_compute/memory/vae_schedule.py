"""Peaks and MACs of a scheduled VAE decode (``ledger/vae_schedule.py``): each decoder call's liveness walk over its
ledger (``ledger_peak``) on top of what its caller holds, and the assembly of the pieces; the input latent itself not
counted (as in ``vae_decode_peak``). Bytes: activations of ``act_bytes`` each."""

from __future__ import annotations

from sora_compute.evaluate.liveness import ledger_peak
from sora_compute.ledger.formulas import FVCORE, CountingConvention
from sora_compute.ledger.ops import counted_macs
from sora_compute.ledger.vae_schedule import ScheduledDecode, scheduled_decode
from sora_compute.memory.activations import vae_decode_peak
from sora_compute.specs.vae import VAESpec
from sora_compute.specs.vae.schedule import DecodeSchedule

__all__ = ["scheduled_decode_peak", "scheduled_decode_macs", "decode_schedule_peak"]


def scheduled_decode_peak(sd: ScheduledDecode, act_bytes: int = 2) -> int:
    """Peak live activation bytes: max over calls of (held + the call's own peak), and the assembly."""
    own = {key: int(ledger_peak(ops, act_bytes)) for key, ops in sd.ledgers.items()}
    peak = sd.assembly * act_bytes
    for c in sd.calls:
        peak = max(peak, c.held * act_bytes + own[c.key])
    return peak


def scheduled_decode_macs(sd: ScheduledDecode, convention: CountingConvention = FVCORE) -> int:
    """MACs of every call (overlapping tiles recomputed): sum over calls of the call's ledger MACs."""
    per = {key: sum(int(counted_macs(op, convention)) * op.instances for op in ops) for key, ops in sd.ledgers.items()}
    return sum(per[c.key] for c in sd.calls)


def decode_schedule_peak(spec: VAESpec, latent: tuple[int, int, int], schedule: DecodeSchedule, batch: int = 1,
                         act_bytes: int = 2) -> int:
    """Peak live activation bytes of decoding ``batch`` latents of (T, H, W) under ``schedule`` (the whole clip:
    ``vae_decode_peak``, which also covers the families that chunk inside their decoder)."""
    if schedule.mode == "whole":
        return vae_decode_peak(spec, latent, batch, act_bytes)
    return scheduled_decode_peak(scheduled_decode(spec, latent, schedule, batch), act_bytes)
