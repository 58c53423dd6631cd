"""Predicted against published for multi-GPU TRAINING entries of the validation file: the layout search
(``planning/layouts.py``) on the entry's model, shape, GPU count and global batch, with the layout fields the source
states pinned (``settings``: tensor_parallel, pipeline_parallel, context_parallel, data_parallel, zero_stage,
micro_batch, checkpointing); fields the source leaves open take the fastest fitting choice (the note says so).
Published throughputs are compared as seconds per step (global batch x tokens per sample / tokens per second when
the source gives tokens/s). Reported, never fitted.
"""

from __future__ import annotations

import math

from sora_compute.hardware.profiles import HardwareProfile
from sora_compute.planning.layouts import search_training_layouts
from sora_compute.planning.validation import ValidationEntry
from sora_compute.specs import VideoSpec, Workload

__all__ = ["training_row", "PINNED_SETTINGS"]

#: settings keys of a validation entry -> the layout field they pin
PINNED_SETTINGS = {"tensor_parallel": "tp", "pipeline_parallel": "pp", "data_parallel": "dp", "zero_stage": "zero",
                   "micro_batch": "micro_batch", "checkpointing": "checkpointing"}


def training_row(e: ValidationEntry, row: dict, model: object, video: VideoSpec, profile: HardwareProfile,
                 notes: list[str], attention_kernel: str = "fa2") -> dict:
    """``row`` (the validate table's columns) filled for a training entry on a preset ``model`` at ``video``."""
    batch = e.settings.get("global_batch")
    if not isinstance(batch, int) or isinstance(batch, bool):
        return {**row, "status": "not modelled", "note": "training: the source states no global batch"}
    pin: dict[str, object] = {f: e.settings[k] for k, f in PINNED_SETTINGS.items() if k in e.settings}
    w = Workload.of(model, video)  # type: ignore[arg-type]
    s = search_training_layouts(w, None, profile, e.gpus, batch, pin=pin, kernels=(attention_kernel,))
    best = s.best
    fits = best is not None
    if best is None:
        best = s.table.iloc[0] if len(s.table) else None
    if best is None:
        return {**row, "status": "not modelled", "note": f"no valid layout of {e.gpus} GPUs for batch {batch}"}
    tokens = w.latent.tokens
    if e.seconds is not None:
        published = e.seconds
    elif e.tokens_per_second is not None:
        published = batch * tokens / e.tokens_per_second
    else:
        return {**row, "status": "no timing", "note": "training: no step time or throughput published"}
    predicted = float(best["step_s"])
    at_mfu = (float(best["mfu"]) * predicted / profile.default_mfu if profile.default_mfu is not None
              else math.nan)  # the same model FLOPs at the GPU's planning MFU
    fixed = set(pin) | ({"tp", "pp"} if pin.get("dp") == e.gpus else set())  # DP over every GPU: no TP, PP, CP
    open_fields = sorted({"tp", "pp", "dp", "zero", "micro_batch", "checkpointing"} - fixed)
    notes = [*notes, f"{best['layout']} (fastest fitting; {', '.join(open_fields)} not stated by the source)"
             if open_fields else best["layout"], f"global batch {batch}, {tokens:,} tokens per sample",
             "DiT step only (encoders run on the fly and data loading not in it)"]
    if not fits:
        notes.append("no layout fits the GPU's memory: the fastest shown")
    return {**row, "published_s": published, "predicted_s": predicted, "error": predicted / published - 1,
            "mfu_s": at_mfu, "mfu_error": at_mfu / published - 1, "status": "compared", "note": "; ".join(notes)}
