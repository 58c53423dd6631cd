"""Predicted against published for multi-GPU TRAINING entries of the validation file: the layout search
(``planning/layouts.py``) on the entry's model, shape, GPU count and global batch, with the layout fields the source
states pinned (``settings``: tensor_parallel, pipeline_parallel, context_parallel, data_parallel, zero_stage,
micro_batch, checkpointing); fields the source leaves open take the fastest fitting choice (the note says so).
Published throughputs are compared as seconds per step (global batch x tokens per sample / tokens per second when
the source gives tokens/s). Reported, never fitted.
"""

from __future__ import annotations

import math

from sora_compute.hardware.profiles import UnknownProfileError, load_profile
from sora_compute.planning.layouts import search_training_layouts
from sora_compute.planning.training_time import encode_seconds
from sora_compute.planning.validation import ValidationEntry
from sora_compute.presets import load_preset, preset_names
from sora_compute.specs import Workload

__all__ = ["training_row", "PINNED_SETTINGS"]

#: settings keys of a validation entry -> the layout field they pin
PINNED_SETTINGS = {"tensor_parallel": "tp", "pipeline_parallel": "pp", "data_parallel": "dp", "zero_stage": "zero",
                   "micro_batch": "micro_batch", "checkpointing": "checkpointing"}


def training_row(e: ValidationEntry, attention_kernel: str = "fa2") -> dict:
    """The validate table's columns for a training entry (status, note, and when compared published_s,
    predicted_s, error, mfu_s, mfu_error)."""
    from sora_compute.planning.validate import snap_video  # validate imports this module

    if e.model not in preset_names():
        return {"status": "no preset", "note": f"{e.model} is not a preset"}
    try:
        profile = load_profile(e.gpu)
    except UnknownProfileError:
        return {"status": "no profile", "note": f"{e.gpu} has no hardware profile"}
    if e.resolution is None or e.frames is None:
        return {"status": "not modelled", "note": "training: the source states no video shape"}
    model = load_preset(e.model).model
    video, snapped = snap_video(model, *e.resolution, e.frames)
    notes = [f"snapped: {snapped}"] if snapped else []
    batch = e.settings.get("global_batch")
    if not isinstance(batch, int) or isinstance(batch, bool):
        return {"status": "not modelled", "note": "training: the source states no global batch"}
    pin: dict[str, object] = {f: e.settings[k] for k, f in PINNED_SETTINGS.items() if k in e.settings}
    w = Workload.of(model, video)
    s = search_training_layouts(w, None, profile, e.gpus, batch, pin=pin, kernels=(attention_kernel,))
    best = s.best
    fits = best is not None
    if best is None:
        best = s.table.iloc[0] if len(s.table) else None
    if best is None:
        return {"status": "not modelled", "note": f"no valid layout of {e.gpus} GPUs for batch {batch}"}
    tokens = w.latent.tokens
    if e.seconds is not None:
        published = e.seconds
    elif e.tokens_per_second is not None:
        published = batch * tokens / e.tokens_per_second
    else:
        return {"status": "no timing", "note": "training: no step time or throughput published"}
    # encoders the source runs on the fly (settings latents / text: on_the_fly): each data-parallel rank encodes its
    # share of the global batch before its DiT step (the DiT step's own time is the layout search's step_s)
    vae_otf, text_otf = (e.settings.get(k) == "on_the_fly" for k in ("latents", "text"))
    enc = encode_seconds(w, profile, e.dtype or "bf16", attention_kernel, vae_otf, text_otf)
    per_rank = batch / float(best["dp"])
    encode_s = per_rank * (enc["vae_encode_s"] + enc["text_encode_s"])
    predicted = float(best["step_s"]) + encode_s
    encoders = " and ".join(n for n, key in (("VAE", "vae_encode_s"), ("text", "text_encode_s")) if enc[key] > 0)
    # the same model FLOPs (the DiT step's, plus the encoders' when they run on the fly) at the GPU's planning MFU
    enc_flops = per_rank * enc["flops"]
    at_mfu = ((float(best["mfu"]) * float(best["step_s"]) + enc_flops / profile.peak_flops(e.dtype or "bf16"))
              / profile.default_mfu if profile.default_mfu is not None else math.nan)
    fixed = set(pin) | ({"tp", "pp"} if pin.get("dp") == e.gpus else set())  # DP over every GPU: no TP, PP, CP
    open_fields = sorted({"tp", "pp", "dp", "zero", "micro_batch", "checkpointing"} - fixed)
    notes = [*notes, f"{best['layout']} (fastest fitting; {', '.join(open_fields)} not stated by the source)"
             if open_fields else best["layout"], f"global batch {batch}, {tokens:,} tokens per sample",
             f"DiT step + {encode_s:.3g} s of on-the-fly encoding ({encoders}, {per_rank:g} samples per rank); "
             "data loading not in it" if encode_s > 0 else "DiT step only (the source's settings run no encoder on "
             "the fly, or the model has none; data loading not in it)"]
    if not fits:
        notes.append("no layout fits the GPU's memory: the fastest shown")
    return {"basis": "layout search", "published_s": published, "predicted_s": predicted,
            "error": predicted / published - 1, "mfu_s": at_mfu, "mfu_error": at_mfu / published - 1,
            "status": "compared", "note": "; ".join(notes)}
