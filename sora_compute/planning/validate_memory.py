"""Published peak-memory figures (validation.yaml ``peak_memory_gib``) against the pipeline memory model: predicted
allocated and reserved bytes per GPU for the run as the source describes it (offload from its settings; a multi-GPU
run's DiT split from its stated layout: sequence parallel over ulysses x ring, CFG branches apart, FSDP; its VAE
decode as its settings say, ``decode_of``). Reported,
never fitted. Sources rarely say whether they print allocated (``torch.cuda.max_memory_allocated``) or reserved
(nvidia-smi) bytes, nor GB or GiB: both predictions are shown, the error against each.
"""

from __future__ import annotations

import math

import pandas as pd

from sora_compute.hardware import resolve_gpu
from sora_compute.hardware.profiles import UnknownProfileError
from sora_compute.memory.pipeline import GiB, OffloadMode, pipeline_memory
from sora_compute.planning.inference import sampling_defaults
from sora_compute.planning.validate import entry_model, snap_video
from sora_compute.planning.validation import ValidationEntry, ValidationFile, load_validation
from sora_compute.presets import preset_names
from sora_compute.specs.vae.schedule import DecodeSchedule, official_decode_schedule

__all__ = ["validate_memory", "offload_of", "decode_of"]


def offload_of(e: ValidationEntry) -> OffloadMode:
    """The offload a source's settings describe: diffusers' sequential CPU offload; Wan's ``--offload_model True``
    (Wan2.1 text2video.py: umT5 moved to the CPU after encoding, the DiT after sampling: ``free_text``, the DiT's
    move before the small VAE decode not modelled) and ``--t5_cpu`` (umT5 never on the GPU); Open-Sora's
    ``--offload True`` (model-level); else none."""
    text = " ".join(str(v) for v in e.settings.values())
    if str(e.settings.get("offload", "")) == "sequential_cpu":
        return "sequential"
    if "--t5_cpu" in text:
        return "text_on_cpu"
    if "--offload_model True" in text:
        return "free_text"
    if "--offload True" in text:
        return "model"
    return "none"


def decode_of(e: ValidationEntry, family: str) -> DecodeSchedule:
    """The VAE decode a source's settings describe: "no VAE tiling" the whole latent, in the frame batches the
    family's pipeline decodes it in by default (CogVideoX: diffusers' use_framewise_decoding); else the official
    schedule."""
    official = official_decode_schedule(family, e.model)
    if "no vae tiling" in " ".join(str(v) for v in e.settings.values()).lower():
        return DecodeSchedule(frame_batch=official.frame_batch,
                              source="the source's settings: no VAE tiling" + (
                                  " (framewise batches by default)" if official.frame_batch else ""))
    return official


def _row(e: ValidationEntry) -> dict[str, object]:
    row: dict[str, object] = {"id": e.id, "model": e.model, "gpu": e.gpu, "gpus": e.gpus,
                              "published_GiB": e.peak_memory_gib, "unit_as_published": e.memory_unit_as_published,
                              "offload": "", "allocated_GiB": math.nan, "reserved_GiB": math.nan,
                              "error_allocated": math.nan, "error_reserved": math.nan, "status": "", "note": ""}
    if e.model not in preset_names():
        return {**row, "status": "no preset", "note": f"{e.model} is not a preset"}
    if e.kind != "inference" or e.resolution is None or e.frames is None:
        return {**row, "status": "not modelled", "note": "training memory or no shape stated"}
    fsdp, sp, cfg_apart = 1, 1, False
    if e.gpus > 1:
        if e.layout is None or e.layout.pipefusion > 1:
            return {**row, "status": "not modelled", "note": "multi-GPU run without a stated layout (or PipeFusion)"}
        fsdp, sp, cfg_apart = e.layout.fsdp, e.layout.ulysses * e.layout.ring, e.layout.cfg > 1
    try:
        gpu = resolve_gpu(e.gpu)
    except (UnknownProfileError, KeyError, ValueError):
        return {**row, "status": "no profile", "note": f"{e.gpu} has no hardware profile"}
    model = entry_model(e)
    video, _ = snap_video(model, *e.resolution, e.frames)
    s = sampling_defaults(e.model)
    cfg = e.cfg if e.cfg is not None else s.cfg
    offload = offload_of(e)
    pm = pipeline_memory(model, video, gpu, offload, decode_of(e, model.vae.family),
                         cfg_batch=2 if cfg and not cfg_apart else 1, steps=e.steps or s.steps, fsdp=fsdp,
                         sequence_parallel=sp)
    pub = float(e.peak_memory_gib or math.nan)
    a, r = pm.allocated_peak / GiB, pm.reserved_peak / GiB
    text = model.text_encoder_dtypes("bf16")
    return {**row, "offload": offload, "allocated_GiB": a, "reserved_GiB": r, "error_allocated": a / pub - 1,
            "error_reserved": r / pub - 1, "status": "compared",
            "note": f"peak at {pm.peak_phase}" + (f"; text encoder {text}" if text not in ("", "bf16") else "")}


def validate_memory(file: ValidationFile | None = None) -> pd.DataFrame:
    """One row per published peak-memory figure: predicted allocated and reserved GiB per GPU and the errors
    (predicted / published - 1), or why it is not compared."""
    f = file if file is not None else load_validation()
    return pd.DataFrame([_row(e) for e in f.entries if e.peak_memory_gib is not None])
