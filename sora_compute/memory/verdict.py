"""The memory verdict of one generation: "fits", "fits with <the cheapest change>" or "does not fit", on one GPU or N.

Changes are tried cheapest first, each alone on top of the configuration asked for: a VAE decode schedule that holds
less (tiles; chunks with a causal cache where the family has one), the text encoder moved to the CPU after encoding,
the text encoder run on the CPU, model-level CPU offload (one component on the GPU; host-link time), then with N > 1
GPUs FSDP of the DiT weights and sequence parallelism of its activations over 2, 4 .. N GPUs (both together last),
then sequential offload (weights streamed: slow), then fewer frames. When no single change fits, the decode schedule
that holds least is combined with each offload mode.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from sora_compute.memory.pipeline import GiB, OffloadMode, PipelineMemory, pipeline_memory
from sora_compute.specs import ModelSpec, VideoShapeError, VideoSpec, Workload, as_workload
from sora_compute.specs.vae.schedule import decode_schedule

__all__ = ["Verdict", "memory_verdict"]

_OFFLOADS: tuple[tuple[OffloadMode, str], ...] = (
    ("free_text", "the text encoder moved to the CPU after encoding"),
    ("text_on_cpu", "the text encoder run on the CPU"),
    ("model", "model CPU offload (one component on the GPU)"),
)


@dataclass(frozen=True)
class Verdict:
    """``line``: the verdict sentence; ``memory``: the pipeline it describes (the change applied); ``asked``: the
    pipeline as asked; ``tried``: (change, reserved GiB, fits) for each change tried."""

    line: str
    memory: PipelineMemory
    asked: PipelineMemory
    tried: tuple[tuple[str, float, bool], ...]


def _gib(n: float) -> str:
    return f"{n / GiB:,.1f} GiB"


def memory_verdict(model: ModelSpec | Workload, video: VideoSpec | None = None, gpu: str = "h100-sxm", gpus: int = 1,
                   **kw: Any) -> Verdict:
    """The verdict for generating one video with ``pipeline_memory(..., **kw)`` on one of ``gpus`` GPUs."""
    if not isinstance(gpus, int) or gpus < 1:
        raise ValueError(f"gpus: expected a positive integer, got {gpus!r}")
    wl = as_workload(model, video)
    asked = pipeline_memory(wl, None, gpu, **kw)
    tried: list[tuple[str, float, bool]] = []

    def attempt(label: str, **change: Any) -> PipelineMemory:
        pm = pipeline_memory(wl, None, asked.gpu, **{**kw, **change})
        tried.append((label, pm.reserved_peak / GiB, pm.fits))
        return pm

    def say(change: str, pm: PipelineMemory) -> Verdict:
        cost = f", +{pm.transfer_s - asked.transfer_s:,.1f} s host link per video" if (
            pm.transfer_s > asked.transfer_s) else ""
        where = f" ({gpus} GPUs)" if gpus > 1 else ""
        return Verdict(f"fits with {change}{where}: {_gib(pm.reserved_peak)} reserved of {_gib(pm.capacity_bytes)} on "
                       f"{pm.gpu.key}{cost}", pm, asked, tuple(tried))

    if asked.fits:
        return Verdict(f"fits: {_gib(asked.reserved_peak)} reserved (peak at {asked.peak_phase}) of "
                       f"{_gib(asked.capacity_bytes)} on {asked.gpu.key}", asked, asked, ())
    m = wl.model
    best_decode, best_peak = asked.decode, asked.phases[-1].activation[1]
    for mode in ("tiled", "chunked"):
        try:
            sched = decode_schedule(mode, m.vae.family, m.name)
            pm = attempt(f"VAE decode {sched.label()}", decode=sched)
        except ValueError:
            continue
        if pm.phases[-1].activation[1] < best_peak:
            best_decode, best_peak = sched, pm.phases[-1].activation[1]
        if pm.fits:
            return say(f"VAE decode {sched.label()}", pm)
    offload_asked = kw.get("offload", "none")
    for mode, label in _OFFLOADS:
        if mode != offload_asked and (mode != "free_text" or m.text_encoders) and (
                mode != "text_on_cpu" or m.text_encoders):
            pm = attempt(label, offload=mode)
            if pm.fits:
                return say(label, pm)
    n = 2
    while n <= gpus:
        for label, change in ((f"FSDP of the DiT over {n} GPUs", {"fsdp": n}),
                              (f"sequence parallel over {n} GPUs", {"sequence_parallel": n}),
                              (f"FSDP and sequence parallel over {n} GPUs", {"fsdp": n, "sequence_parallel": n})):
            pm = attempt(label, **change)
            if pm.fits:
                return say(label, pm)
        n *= 2
    pm = attempt("sequential CPU offload (weights streamed)", offload="sequential")
    if pm.fits:
        return say("sequential CPU offload (weights streamed)", pm)
    for mode, label in (*_OFFLOADS, ("sequential", "sequential CPU offload")):
        pm = attempt(f"{label} + VAE decode {best_decode.label()}", offload=mode, decode=best_decode)
        if pm.fits:
            return say(f"{label} and VAE decode {best_decode.label()}", pm)
    frames = _fewest_frames_change(wl, asked, kw)
    if frames is not None:
        pm, v = frames
        tried.append((f"{v.num_frames} frames", pm.reserved_peak / GiB, True))
        return say(f"fewer frames ({v.num_frames} instead of {wl.video.num_frames})", pm)
    return Verdict(f"does not fit: {_gib(asked.reserved_peak)} reserved (peak at {asked.peak_phase}) of "
                   f"{_gib(asked.capacity_bytes)} on {asked.gpu.key}, and no change tried fits", asked, asked,
                   tuple(tried))


def _fewest_frames_change(wl: Workload, asked: PipelineMemory, kw: dict[str, Any]
                          ) -> tuple[PipelineMemory, VideoSpec] | None:
    """The most frames (same resolution) that fit as asked, by bisection over frame counts the model accepts."""
    m, v = wl.model, wl.video

    def at(frames: int) -> PipelineMemory | None:
        try:
            vid = v.model_copy(update={"num_frames": m.snap_frames(frames)})
            return pipeline_memory(m, vid, asked.gpu, **kw)
        except (VideoShapeError, ValueError):
            return None

    lo, hi = 1, v.num_frames
    first = at(lo)
    if first is None or not first.fits:
        return None
    while hi - lo > 1:
        mid = (lo + hi) // 2
        pm = at(mid)
        lo, hi = (mid, hi) if pm is not None and pm.fits else (lo, mid)
    best = at(lo)
    assert best is not None
    return replace(best), v.model_copy(update={"num_frames": m.snap_frames(lo)})

