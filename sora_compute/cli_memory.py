"""The `memory` command's document (sora_compute/cli.py declares its options)."""

from __future__ import annotations

import math

import pandas as pd

from sora_compute.cli_support import Document, UsageError, shape_query, video_from_options, with_text_tokens
from sora_compute.hardware import resolve_gpu
from sora_compute.memory.pipeline import overheads
from sora_compute.memory.verdict import memory_verdict
from sora_compute.planning import sampling_defaults
from sora_compute.presets import load_preset
from sora_compute.specs import VideoSpec, Workload
from sora_compute.specs.vae.schedule import decode_schedule, encode_schedule

__all__ = ["memory_document"]


def _gib(n: float) -> str:
    return f"{n / 2**30:,.1f} GiB"


def memory_document(preset: str, resolution: str | None, frames: int | None, duration: float | None,
                    fps: float | None, gpu: str, count: int, tp: int | None, cp: int | None, pp: int | None, zero: int,
                    micro_batch: int, checkpointing: str, attention: str, ema: bool, cfg: bool | None,
                    text_tokens: int | None, fmt: str, vae_decode: str = "official", offload: str = "none",
                    inference_gpus: int = 1, encode_on_the_fly: bool = False, vae_encode: str = "official",
                    text_encoder_dtype: str | None = None) -> Document:
    """The document `sora-compute memory` prints (see its --help)."""
    from sora_compute.memory import planner as mp

    p = load_preset(preset)
    model = with_text_tokens(p.model, text_tokens).with_text_encoder_dtype(text_encoder_dtype)
    doc = Document("memory", units={"*_bytes": "bytes", "GiB": "GiB (2^30 bytes)"})
    video = video_from_options(model, p.video, resolution, frames, duration, fps, doc)
    w = Workload.of(model, video)  # validate the shape first (one clear error); its latent grid, computed once
    spec = resolve_gpu(gpu)  # the GPU, resolved once for every planner call below
    use_cfg = cfg if cfg is not None else sampling_defaults(p).cfg
    precision = mp.PrecisionPolicy(ema=ema)
    ck, ker = checkpointing, attention
    searched = None
    if tp is None and cp is None and pp is None:
        searched = mp.search_layouts(w, None, spec, count, precision, ck, ker,  # type: ignore[arg-type]
                                     zero_stages=(zero,), micro_batch=micro_batch)
        fitting = searched[searched["fits"]]
        row = (fitting if len(fitting) else searched).iloc[0]
        tp_, cp_, pp_ = int(row["tp"]), int(row["cp"]), int(row["pp"])
    else:
        tp_, cp_, pp_ = tp or 1, cp or 1, pp or 1
    mpar = tp_ * cp_ * pp_
    if count % mpar:
        raise UsageError(f"--gpus {count} is not divisible by TP x CP x PP = {mpar}")
    layout = mp.ParallelLayout.model_validate({"dp": count // mpar, "tp": tp_, "cp": cp_, "pp": pp_, "zero": zero,
                                               "micro_batch": micro_batch})
    try:
        encode = encode_schedule(vae_encode, model.vae.family, p.name)
        train = mp.training_memory(w, None, layout, spec, precision, ck, ker,  # type: ignore[arg-type]
                                   vae_on_the_fly=encode_on_the_fly, text_on_the_fly=encode_on_the_fly, encode=encode)
    except ValueError as e:
        raise UsageError(f"--vae-encode {vae_encode}: {e}") from None
    cfg_batch = 2 if use_cfg else 1
    try:
        decode = decode_schedule(vae_decode, model.vae.family, p.name)
        stages = {s: mp.inference_memory(w, None, spec, s, cfg_batch=cfg_batch, kernel=ker,  # type: ignore[arg-type]
                                         decode=decode)
                  for s in ("text", "dit", "vae_decode")}
    except ValueError as e:
        raise UsageError(f"--vae-decode {vae_decode}: {e}") from None
    steps = sampling_defaults(p).steps
    pipe_kw = {"offload": offload, "decode": decode, "cfg_batch": cfg_batch, "steps": steps, "kernel": ker}
    verdict_ = memory_verdict(w, None, spec, inference_gpus, **pipe_kw)  # type: ignore[arg-type]
    doc.text(f"Inference on {inference_gpus} x {gpu}: {verdict_.line}")
    tile, tiled = (None, None)
    if not stages["vae_decode"].fits:
        try:
            tile, tiled = mp.recommend_vae_tiling(w, None, spec)
        except ValueError as e:
            tiled = None
            doc.note(str(e))
    v = video
    doc.query = {"preset": p.name, **shape_query(v), "video_tokens": w.tokens, "gpu": gpu,
                 "gpus": count, "zero": zero, "micro_batch": micro_batch, "checkpointing": ck, "attention": ker,
                 "ema": ema, "cfg": use_cfg, "vae_decode": vae_decode,
                 "text_encoder_dtype": model.text_encoder_dtypes("bf16") or None,
                 **({"vae_encode": vae_encode} if encode_on_the_fly else {})}
    ov, link = verdict_.asked.overheads, verdict_.asked.link
    doc.assumptions = {"weights": "bf16 weights and activations, fp32 master weights and AdamW moments",
                       "reserved (inference timeline)": (
                           f"allocated x {1 + ov.margin:g} + CUDA context {ov.context_bytes / 2**20:,.0f} MiB + "
                           f"workspaces {ov.workspace_bytes / 2**20:,.3g} MiB ({ov.sources['cuda_context']}; "
                           f"{ov.sources['cublas_workspace']}; {ov.sources['allocator_margin']})"),
                       "host link": f"{link.name}, {link.h2d_gbps:g} GB/s host-to-device ({link.source})",
                       "usable memory": "92% of the catalog's HBM (CUDA context, buffers, fragmentation)"}
    doc.text(f"== {p.name}: {v.width}x{v.height}, {v.num_frames} frames ({v.duration_s:.1f} s), "
             f"{w.tokens:,} video tokens; {gpu}, {count:,} GPUs; bf16 weights/activations, "
             f"fp32 master + AdamW moments, {ck} checkpointing, {ker} attention")
    if searched is not None:
        n_fit = int(searched["fits"].sum())
        doc.text(f"\nLayouts considered: {len(searched)} ({n_fit} fit); smallest model-parallel first:")
        head = searched.head(8)[["layout", "peak_GiB", "fits"]]
        doc.table("layouts_considered", searched, head.assign(peak_GiB=head["peak_GiB"].map("{:,.1f}".format),
                                                              fits=head["fits"].map({True: "yes", False: "no"})))
    verdict = "FITS" if train.fits else "DOES NOT FIT"
    over = overheads(train.gpu)
    doc.text(f"\nTraining memory per GPU, {layout.label()}: {_gib(train.peak_bytes)} allocated at the peak, checked "
             f"against {_gib(train.capacity_bytes)} usable -> {verdict}; reserved {_gib(train.reserved_bytes)} "
             f"(allocated x {1 + over.margin:.2f} allocator margin + {over.context_bytes / 2**20:,.0f} MiB CUDA "
             f"context + {over.workspace_bytes / 2**20:,.3g} MiB workspaces) of {_gib(train.gpu.hbm_bytes)}")
    df = train.to_frame()
    doc.table("training_components", df, df.assign(GiB=df["GiB"].map("{:,.2f}".format))[["component", "GiB"]])
    doc.data("layout", layout.model_dump())
    doc.data("training", {**train.summary(), "peak_bytes": train.peak_bytes, "components_bytes": train.components,
                          "transient_bytes": train.transient})
    for n in train.notes:
        doc.text(f"  note: {n}")
    if encode_on_the_fly:
        doc.data("vae_encode_schedule", encode.model_dump())
        doc.text(f"  VAE encode schedule: {encode.label(encode=True)} ({encode.source})")
    if train.fits:
        longest = mp.max_feasible(model, video, "num_frames", layout, spec, precision, ck, ker)  # type: ignore[arg-type]
        batch = mp.max_feasible(model, video, "micro_batch", layout, spec, precision, ck, ker)  # type: ignore[arg-type]
        if isinstance(longest, VideoSpec):
            doc.text(f"  largest that fits this layout: {longest.num_frames} frames "
                     f"({longest.duration_s:.1f} s) at this resolution; micro-batch {batch}")
    doc.text(f"\nInference memory on one {gpu} (each stage alone; weights bf16, text encoder "
             f"{model.text_encoder_dtypes('bf16') or 'none'}; "
             f"{'CFG pair batched' if use_cfg else 'no CFG pair'}):")
    inf_rows = pd.DataFrame([{"stage": s, **m.summary(), "peak_bytes": m.peak_bytes} for s, m in stages.items()])
    doc.table("inference_stages", inf_rows, pd.DataFrame({"stage": list(stages),
                                                   "peak": [_gib(m.peak_bytes) for m in stages.values()],
                                                   "fits": ["fits" if m.fits else "does NOT fit"
                                                            for m in stages.values()]}))
    doc.data("inference", {s: {**m.summary(), "peak_bytes": m.peak_bytes, "components_bytes": m.components,
                               "transient_bytes": m.transient} for s, m in stages.items()})
    doc.data("vae_tile_latent", tile)
    doc.data("vae_decode_schedule", decode.model_dump())
    doc.text(f"  VAE decode schedule: {decode.label()} ({decode.source})")
    _timeline(doc, verdict_.asked, "as asked")
    if verdict_.memory is not verdict_.asked:
        _timeline(doc, verdict_.memory, "with the change")
    doc.data("verdict", {"line": verdict_.line, "asked": verdict_.asked.summary(), "chosen": verdict_.memory.summary(),
                         "tried": [{"change": c, "reserved_GiB": g, "fits": f} for c, g, f in verdict_.tried]})
    if tile is not None and tiled is not None:
        doc.text(f"  VAE decode untiled needs {_gib(stages['vae_decode'].peak_bytes)}: decode in latent tiles of "
                 f"{tile[0]} x {tile[1]} x {tile[2]} (frames x height x width; "
                 f"{tile[1] * model.vae.spatial_compression} x {tile[2] * model.vae.spatial_compression} px) -> "
                 f"{_gib(tiled.peak_bytes)} ({', '.join(tiled.notes)})")
    if not stages["dit"].fits:
        need = stages["dit"].peak_bytes / stages["dit"].capacity_bytes
        doc.text(f"  the DiT forward needs {need:.1f}x one GPU: split the sequence (context parallel) over "
                 f">= {math.ceil(need)} GPUs")
    return doc


def _timeline(doc: Document, pm: object, what: str) -> None:
    """The pipeline's timeline (``PipelineMemory.to_frame``) as a table: GiB per resident tensor and phase."""
    from sora_compute.memory.pipeline import PipelineMemory

    assert isinstance(pm, PipelineMemory)
    df = pm.to_frame()
    doc.text(f"\nInference timeline on one {pm.gpu.key}, {what} (offload {pm.offload}; VAE decode "
             f"{pm.decode.label()}; GiB = 2^30 bytes; allocated = live tensors, reserved = with the allocator margin, "
             "CUDA context and workspaces):")
    human = df.drop(columns=["activations of"]).rename(columns=lambda c: c.replace(" [allocated GiB]", ""))
    doc.table(f"inference_timeline_{'asked' if what == 'as asked' else 'changed'}", df,
              human.assign(**{c: human[c].map("{:,.2f}".format) for c in human.columns if c != "phase"}))
    for n in pm.notes:
        doc.text(f"  note: {n}")
