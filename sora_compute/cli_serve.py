"""The `serve` command's document (sora_compute/cli.py declares its options): multi-GPU inference layouts of one
video on N GPUs, searched or pinned (planning/inference_layouts.py, planning/parallel_inference.py)."""

from __future__ import annotations

import pandas as pd
from pydantic import ValidationError

from sora_compute.cli_support import Document, UsageError, shape_query, video_from_options
from sora_compute.planning import estimate_inference, sampling_defaults
from sora_compute.planning.inference_layouts import (
    best_layouts,
    latency_scaling,
    search_inference_layouts,
)
from sora_compute.planning.parallel_inference import COMM_KINDS, InferenceLayout, ScheduleContext, inference_schedule
from sora_compute.presets import load_preset
from sora_compute.units import fmt_usd

__all__ = ["serve_document", "parse_layout"]

_KEYS = {"cfg": "cfg", "ulysses": "ulysses", "ring": "ring", "pipefusion": "pipefusion", "patches": "patches",
         "fsdp": "fsdp"}


def parse_layout(text: str) -> InferenceLayout:
    """``cfg=2,ulysses=2,ring=1,pipefusion=1,patches=4,fsdp=2,vae-parallel`` (any subset) -> InferenceLayout."""
    fields: dict[str, object] = {}
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        if part in ("vae-parallel", "vae_parallel"):
            fields["vae_parallel"] = True
            continue
        key, sep, value = part.partition("=")
        if not sep or key.strip() not in _KEYS:
            raise UsageError(f"--layout: expected KEY=N pairs of {', '.join(_KEYS)} (and vae-parallel), got {part!r}")
        try:
            n = int(value)
        except ValueError:
            raise UsageError(f"--layout: {key.strip()} must be a whole number, got {value.strip()!r}") from None
        fields[_KEYS[key.strip()]] = n
    if not fields:
        raise UsageError("--layout: give at least one of cfg=, ulysses=, ring=, pipefusion=, fsdp=, vae-parallel")
    try:
        return InferenceLayout.model_validate(fields)
    except ValidationError as e:
        err = e.errors()[0]
        where = ".".join(str(x) for x in err["loc"])
        raise UsageError(f"--layout: {where + ': ' if where else ''}"
                         f"{err['msg'].removeprefix('Value error, ')}") from None


def _human(df: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame({
        "layout": df["layout"], "GPUs/video": df["gpus_per_video"].astype(str),
        "replicas": df["replicas"].astype(str), "latency": df["latency_s"].map("{:,.1f} s".format),
        "per step": df["step_s"].map("{:.3g} s".format), "comm exposed": df["comm_exposed_s"].map("{:.3g} s".format),
        "serial": df["serial_s"].map("{:.3g} s".format), "GiB/GPU": df["peak_GiB"].map("{:,.1f}".format),
        "fits": df["fits"].map({True: "yes", False: "no"}), "videos/hour": df["videos_per_hour"].map("{:.3g}".format),
        "$/video": df["cost_per_video_usd"].map(fmt_usd)})


def serve_document(preset: str, resolution: str | None, frames: int | None, duration: float | None,
                   fps: float | None, gpu: str, count: int, steps: int | None, cfg: bool | None,
                   layout: str | None, kernel: str, precision: str, price: float | None, top: int,
                   fmt: str, text_encoder_dtype: str | None = None) -> Document:
    """The document `sora-compute serve` prints (see its --help)."""
    p = load_preset(preset)
    model = p.model.with_text_encoder_dtype(text_encoder_dtype)
    doc = Document("serve", units={"*_s": "seconds", "peak_GiB": "GiB (2^30 bytes) per GPU", "*_usd": "USD",
                                   "videos_per_hour": "videos per hour on all the GPUs"})
    video = video_from_options(model, p.video, resolution, frames, duration, fps, doc)
    default = sampling_defaults(p)
    settings = default.model_copy(update={"steps": steps if steps is not None else default.steps,
                                          "cfg": cfg if cfg is not None else default.cfg})
    est = estimate_inference(model, video, settings)
    pinned = parse_layout(layout) if layout is not None else None
    if pinned is not None and count % pinned.gpus:
        raise UsageError(f"--layout {pinned.label()} uses {pinned.gpus} GPUs per video: not a divisor of --gpus "
                         f"{count}")
    ctx = ScheduleContext(est, gpu, precision, kernel)
    if pinned is not None:
        inference_schedule(ctx, layout=pinned)  # a layout the model cannot run: one clear error here
    table = search_inference_layouts(est, ctx.profile, count, precision, kernel, price,
                                     layouts=[pinned] if pinned is not None else None)
    v = video
    doc.query = {"preset": p.name, **shape_query(v), "gpu": gpu, "gpus": count, "steps": settings.steps,
                 "cfg": settings.cfg, "layout": pinned.label() if pinned is not None else None, "kernel": kernel,
                 "precision": precision, "text_encoder_dtype": model.text_encoder_dtypes(precision) or None,
                 "price_usd_per_gpu_hour": price}
    doc.assumptions = {"time": "per-op time model on each GPU's sharded shapes; collectives from the hardware "
                              "profile's topology (evaluate/comm.py)",
                       "memory": "weights in the run's precision (the text encoders in theirs), activations bf16, "
                                 "92% of HBM usable"}
    guidance = "CFG pair" if settings.cfg else "no CFG pair"
    text = model.text_encoder_dtypes(precision)
    doc.text(f"== {p.name}: {v.width}x{v.height}, {v.num_frames} frames ({v.duration_s:.3g} s), {settings.steps} "
             f"steps, {guidance}; {count:,} x {gpu} ({precision}{f', text encoder {text}' if text else ''}, "
             f"{kernel} attention)")
    n_fit = int(table["fits"].sum())
    what = f"pinned layout {pinned.label()}" if pinned is not None else f"{len(table):,} layouts considered"
    doc.text(f"\n{what} ({n_fit:,} fit); fitting first, fastest first:")
    head = table.head(top)
    doc.table("layouts", table, _human(head))
    fastest, cheapest = best_layouts(table)
    chosen = fastest if fastest is not None else table.iloc[0]
    lay = InferenceLayout(**{k: int(chosen[k]) for k in ("cfg", "ulysses", "ring", "pipefusion", "fsdp")},
                          patches=int(chosen["patches"]) if int(chosen["pipefusion"]) > 1 else None,
                          vae_parallel=bool(chosen["vae_parallel"]))
    sched = inference_schedule(ctx, layout=lay, price_usd_per_hour=price)
    if fastest is None:
        doc.text(f"\nNo layout fits {gpu}: the least-latency one, {lay.label()}, needs "
                 f"{sched.memory.peak_bytes / 2**30:,.1f} GiB per GPU of {sched.memory.capacity_bytes / 2**30:,.1f}.")
    else:
        doc.text(f"\nLatency-optimal: {lay.label()} ({lay.gpus} GPUs per video, {int(chosen['replicas'])} "
                 f"replica(s)): {sched.latency_s:,.1f} s per video, {sched.step_s:.3g} s per step, "
                 f"{sched.videos_per_gpu_hour:.3g} videos per GPU-hour, {fmt_usd(sched.cost_per_video_usd)} per video.")
    if cheapest is not None:
        doc.text(f"Cost-optimal (most videos per GPU-hour): {cheapest['layout']} ({int(cheapest['gpus_per_video'])} "
                 f"GPUs per video x {int(cheapest['replicas'])} replica(s)): "
                 f"{float(cheapest['latency_s']):,.1f} s per video, {float(cheapest['videos_per_gpu_hour']):.3g} "
                 f"videos per GPU-hour, {fmt_usd(float(cheapest['cost_per_video_usd']))} per video.")
    b = sched.breakdown()
    doc.text(f"\nWhere the {sched.latency_s:,.1f} s of {lay.label()} go (serial: does not shrink with GPUs):")
    doc.table("breakdown", b, pd.DataFrame({"part": b["part"], "what": b["what"],
                                            "seconds": b["seconds"].map("{:,.3g}".format),
                                            "share": b["share"].map("{:.1%}".format),
                                            "serial": b["serial"].map({True: "yes", False: ""})}))
    mem = sched.memory.to_frame()
    doc.text(f"Memory per GPU: {sched.memory.peak_bytes / 2**30:,.1f} GiB of "
             f"{sched.memory.capacity_bytes / 2**30:,.1f} usable")
    doc.table("memory", mem, mem.assign(GiB=mem["GiB"].map("{:,.2f}".format))[["component", "GiB"]])
    for n in sched.notes:
        doc.text(f"  note: {n}")
    scaling = latency_scaling(table)
    if pinned is None and len(scaling) > 1:
        doc.text("\nServing latency vs GPUs per video (fastest fitting layout at each count):")
        doc.table("scaling", scaling, pd.DataFrame({
            "GPUs/video": scaling["gpus_per_video"].astype(str), "layout": scaling["layout"],
            "latency": scaling["latency_s"].map("{:,.1f} s".format),
            "speedup": scaling["speedup"].map("{:.2f}x".format),
            "efficiency": scaling["efficiency"].map("{:.0%}".format)}))
    doc.data("schedule", {**sched.summary(), "comm_per_step_s": {k: sched.comm_per_step[k] for k in COMM_KINDS},
                          "compute_per_step_s": sched.compute_per_step, "notes": list(sched.notes)})
    return doc
