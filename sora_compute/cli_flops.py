"""The `flops` command's document (sora_compute/cli.py declares its options)."""

from __future__ import annotations

import pandas as pd

from sora_compute.cli_support import Document, shape_query, video_from_options, with_text_tokens
from sora_compute.flops import FVCORE, MATMUL_ONLY, count_dit, count_text_encoder, count_vae_decode, count_vae_encode
from sora_compute.presets import load_preset
from sora_compute.specs import Workload

__all__ = ["flops_document"]


def flops_document(preset: str, resolution: str | None, frames: int | None, duration: float | None,
                   fps: float | None, batch: int, by: str, matmul_only: bool, text_tokens: int | None,
                   fmt: str) -> Document:
    """The document `sora-compute flops` prints: MACs and FLOPs of one video per component, kind or module."""
    p = load_preset(preset)
    model = with_text_tokens(p.model, text_tokens)
    doc = Document("flops", units={"macs": "multiply-accumulates", "flops": "FLOPs (= 2 x MACs)",
                                   "share": "fraction of the total MACs"})
    video = video_from_options(model, p.video, resolution, frames, duration, fps, doc)
    conv = MATMUL_ONLY if matmul_only else FVCORE
    w = Workload.of(model, video)  # the latent shape, computed once
    dit = count_dit(w, batch=batch, convention=conv)
    if by == "component":
        counts = [count_text_encoder(model, batch=batch, convention=conv),
                  count_vae_encode(w, batch=batch, convention=conv), dit,
                  count_vae_decode(w, batch=batch, convention=conv)]
        df = pd.DataFrame({"component": [c.component for c in counts], "macs": [c.macs for c in counts],
                           "flops": [c.flops for c in counts]})
    elif by == "kind":
        kinds = dit.by_kind()
        df = pd.DataFrame({"kind": list(kinds), "macs": list(kinds.values()),
                           "flops": [2 * v for v in kinds.values()]})
    else:
        df = dit.breakdown()[["module", "kind", "op", "macs", "flops"]]
    total = df["macs"].sum()
    df["share"] = [float(m) / float(total) if total else 0.0 for m in df["macs"]]
    doc.query = {"preset": p.name, **shape_query(video), "video_tokens": dit.shape["tokens"],
                 "text_tokens": model.num_text_tokens, "batch": batch, "by": by,
                 "convention": "matmul-only" if matmul_only else "fvcore"}
    doc.text(f"{p.name}: {video.width}x{video.height}, {video.num_frames} frames at {video.fps:g} fps, "
             f"{dit.shape['tokens']:,} video tokens, {model.num_text_tokens} text tokens, batch {batch}; "
             "MACs, FLOPs = 2 x MACs")
    human = df.assign(macs=[f"{float(m):.4g}" for m in df["macs"]], flops=[f"{float(f):.4g}" for f in df["flops"]],
                      share=[f"{x:.1%}" for x in df["share"]])
    doc.table("rows", df, human)
    return doc
