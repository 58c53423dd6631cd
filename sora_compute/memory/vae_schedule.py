"""Peaks and MACs of a scheduled VAE decode (``ledger/vae_schedule.py``): each decoder call's liveness walk over its
ledger (``ledger_peak``) on top of what its caller holds, and the assembly of the pieces; the input latent itself not
counted (as in ``vae_decode_peak``). Bytes: activations of ``act_bytes`` each."""

from __future__ import annotations

from collections import Counter
from functools import lru_cache

from sora_compute.evaluate.flops import Count, count_calls
from sora_compute.evaluate.liveness import Segment, ledger_peak, segment_peak
from sora_compute.ledger.formulas import FVCORE, CountingConvention
from sora_compute.ledger.vae import vae_decoder_ledger
from sora_compute.ledger.vae_schedule import ScheduledDecode, scheduled_decode, scheduled_encode
from sora_compute.memory.activations import vae_decode_peak, vae_encode_peak
from sora_compute.specs.vae import VAESpec
from sora_compute.specs.vae.schedule import DecodeSchedule

__all__ = ["scheduled_decode_peak", "scheduled_decode_count", "scheduled_decode_macs", "decode_schedule_peak",
           "encode_schedule_peak", "encode_schedule_count"]


def scheduled_decode_peak(sd: ScheduledDecode, act_bytes: int = 2, streamed: int = 0) -> int:
    """Peak live activation bytes: max over calls of (held + the call's own peak, the tensors it releases walked as
    its inputs), and the assembly; ``streamed``: bytes per weight element of each op's weights, live while it runs
    (sequential CPU offload)."""
    own = {c.key: int(ledger_peak(sd.ledgers[c.key], act_bytes, streamed=streamed)) for c in sd.calls
           if not c.released}
    peak = sd.assembly * act_bytes
    for c in sd.calls:
        if c.released:
            seg = Segment(sd.ledgers[c.key], dict(c.released), frozenset(n for n, _ in c.released), c.held * act_bytes)
            peak = max(peak, int(segment_peak(seg, act_bytes, streamed=streamed)))
        else:
            peak = max(peak, c.held * act_bytes + own[c.key])
    return peak


def scheduled_decode_count(sd: ScheduledDecode, convention: CountingConvention = FVCORE,
                           component: str = "vae_decode") -> Count:
    """The ``component`` count of every call (overlapping tiles recomputed): each distinct ledger counted once, times
    its calls (``count_calls``; the time model prices it once at its shape, times its calls), in the order of first
    call (a ``scheduled_encode``'s with ``component="vae_encode"``)."""
    calls = "encoder_calls" if component == "vae_encode" else "decoder_calls"
    n = Counter(c.key for c in sd.calls)
    return count_calls(component, [(sd.ledgers[k], n[k]) for k in n], convention, {calls: sd.n_calls})


def encode_schedule_count(spec: VAESpec, video: tuple[int, int, int], schedule: DecodeSchedule, batch: int = 1,
                          convention: CountingConvention = FVCORE) -> Count:
    """The ``vae_encode`` count of encoding ``batch`` videos of (F, H, W) under ``schedule``: every encoder call of
    ``scheduled_encode`` (Wan's chunks, CogVideoX's frame batches, overlapping tiles recomputed, the quant conv)."""
    return scheduled_decode_count(scheduled_encode(spec, video, schedule, batch), convention, "vae_encode")


def scheduled_decode_macs(sd: ScheduledDecode, convention: CountingConvention = FVCORE) -> int:
    """MACs of every call (overlapping tiles recomputed): sum over calls of the call's ledger MACs."""
    return int(scheduled_decode_count(sd, convention).macs)


def decode_schedule_peak(spec: VAESpec, latent: tuple[int, int, int], schedule: DecodeSchedule, batch: int = 1,
                         act_bytes: int = 2, streamed: int = 0) -> int:
    """Peak live activation bytes of decoding ``batch`` latents of (T, H, W) under ``schedule`` (the whole clip:
    ``vae_decode_peak``, which also covers the families that chunk inside their decoder). ``streamed``: bytes per
    weight element of each op's own weights, live while it runs (sequential CPU offload). Memoised: specs are frozen,
    and validate, serving and the report ask for the same few decodes hundreds of times."""
    return _decode_schedule_peak(spec, _ints(latent), schedule, int(batch), int(act_bytes), int(streamed))


def _ints(shape: tuple[int, int, int]) -> tuple[int, int, int]:
    t, h, w = (int(v) for v in shape)
    return t, h, w


@lru_cache(maxsize=4096)
def _decode_schedule_peak(spec: VAESpec, latent: tuple[int, int, int], schedule: DecodeSchedule, batch: int,
                          act_bytes: int, streamed: int) -> int:
    whole = schedule.mode == "whole" and schedule.frame_batch is None
    if whole and not streamed:
        return vae_decode_peak(spec, latent, batch, act_bytes)
    if whole:
        ops = vae_decoder_ledger(spec, latent, batch)
        return int(ledger_peak(ops, act_bytes, streamed=streamed))
    return scheduled_decode_peak(scheduled_decode(spec, latent, schedule, batch), act_bytes, streamed)


def encode_schedule_peak(spec: VAESpec, video: tuple[int, int, int], schedule: DecodeSchedule, batch: int = 1,
                         act_bytes: int = 2) -> int:
    """Peak live activation bytes of encoding ``batch`` videos of (F, H, W) under ``schedule`` (the video itself not
    counted): the whole clip (``vae_encode_peak``), or the chunked encode's calls (``scheduled_encode``) each on top of
    what it holds, and the concatenation of their outputs. Memoised, as ``decode_schedule_peak``."""
    return _encode_schedule_peak(spec, _ints(video), schedule, int(batch), int(act_bytes))


@lru_cache(maxsize=4096)
def _encode_schedule_peak(spec: VAESpec, video: tuple[int, int, int], schedule: DecodeSchedule, batch: int,
                          act_bytes: int) -> int:
    if schedule.mode == "whole" and schedule.frame_batch is None:
        return vae_encode_peak(spec, video, batch, act_bytes)
    return scheduled_decode_peak(scheduled_encode(spec, video, schedule, batch), act_bytes)
