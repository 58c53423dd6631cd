"""The `show` command's document (sora_compute/cli.py declares its options)."""

from __future__ import annotations

import pandas as pd

from sora_compute.cli_support import Document
from sora_compute.evaluate.params import model_params, text_encoder_params
from sora_compute.planning import sampling_defaults
from sora_compute.presets import load_preset
from sora_compute.specs import Workload

__all__ = ["show_document", "fmt_params"]


def fmt_params(n: int) -> str:
    for unit, scale in (("B", 1e9), ("M", 1e6), ("K", 1e3)):
        if n >= scale:
            return f"{n / scale:,.2f}{unit}"
    return str(n)


def show_document(preset: str, fmt: str) -> Document:
    """The document `sora-compute show` prints: a preset's spec, exact parameter counts, tokens, sampling."""
    p = load_preset(preset)
    counts = model_params(p.model)
    latent = Workload.of(p.model, p.video).latent
    v, d = p.video, p.model.dit
    sampling = sampling_defaults(p)
    spec: list[tuple[str, str]] = [
        ("preset", p.name), ("source", p.source),
        ("video", f"{v.width}x{v.height} px, {v.num_frames} frames at {v.fps:g} fps ({v.duration_s:.2f} s)"),
        ("latent", f"{latent.frames} x {latent.height} x {latent.width} (T x H x W), "
                   f"{p.model.vae.latent_channels} channels"),
        ("tokens", f"{latent.tokens:,} video ({latent.tokens_t} x {latent.tokens_h} x {latent.tokens_w}), "
                   f"{p.model.num_text_tokens} text"),
        ("dit", f"depth {d.depth}, hidden {d.hidden_size}, heads {d.num_heads}, "
                f"patch {'x'.join(map(str, d.patch_size))}, {d.conditioning}, {d.attention_layout} attention"),
    ]
    encoders = [f"{e.kind} {fmt_params(text_encoder_params(e))} over {n} tokens"
                + (f", {e.inference_dtype} at inference" if e.inference_dtype else "")  # the official pipeline's
                for e, n in zip(p.model.text_encoders, p.model.text_encoder_tokens(), strict=True)]
    if encoders:
        spec.append(("text", "; ".join(encoders)))
    ours = {"params": counts["dit"], "vae_params": counts["vae_encoder"] + counts["vae_decoder"],
            "vae_decoder_params": counts["vae_decoder"], "text_params": counts["text_encoder"]}
    published = [f"{key.replace('params', '').replace('_', ' ').strip() or 'dit'} {fmt_params(int(x))} "
                 f"(ours {ours[key] / x - 1:+.1%})" for key, x in p.published.items() if key in ours]
    if published:
        spec.append(("published", "; ".join(published) + " (see the source)"))
    guidance = "CFG (2 evaluations per step)" if sampling.cfg else "no CFG pair (guidance-distilled or none)"
    origin = p.sampling.source if p.sampling is not None else "no published default: sora-compute's default"
    spec.append(("sampling", f"{sampling.steps} steps, {guidance} ({origin})"))
    doc = Document("show", query={"preset": p.name}, units={"params": "parameters (exact)"})
    if fmt == "table":
        doc.text("\n".join(f"{k:<13s} {val}" for k, val in spec))
        doc.text("parameters (exact):")
    else:
        doc.table("spec", pd.DataFrame(spec, columns=["field", "value"]), title="spec")
    doc.table("params", pd.DataFrame({"component": list(counts), "params": list(counts.values())}),
              pd.DataFrame({"component": list(counts), "params": [f"{n:,}" for n in counts.values()],
                            "approx": [fmt_params(n) for n in counts.values()]}),
              title="" if fmt == "table" else "parameters (exact)")
    doc.data("preset", p.name)
    doc.data("source", p.source)
    doc.data("model", p.model.model_dump())
    doc.data("video", p.video.model_dump())
    doc.data("latent", latent.model_dump())
    doc.data("video_tokens", latent.tokens)
    doc.data("text_tokens", p.model.num_text_tokens)
    doc.data("text_encoder_tokens", list(p.model.text_encoder_tokens()))
    doc.data("published", p.published)
    doc.data("sampling", {**sampling.model_dump(include={"steps", "cfg"}), "source": origin})
    return doc
