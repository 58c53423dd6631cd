"""The `presets` and `gpus` commands' documents (sora_compute/cli.py declares their options)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pandas as pd

from sora_compute.cli_show import fmt_params
from sora_compute.cli_support import Document, humanize
from sora_compute.evaluate.params import model_params
from sora_compute.hardware import gpu_catalog
from sora_compute.planning import sampling_defaults
from sora_compute.presets import all_presets, load_yardstick, yardstick_names
from sora_compute.specs import Workload
from sora_compute.units import fmt_flops

__all__ = ["presets_document", "gpus_document", "PRESETS_WIDTH"]

PRESETS_WIDTH = 120  # `presets` fits a terminal this wide


def presets_document(fmt: str) -> Document:
    """The document `sora-compute presets` prints: every preset and yardstick, one row each."""
    rows: list[dict[str, Any]] = []
    for p in all_presets():
        counts = model_params(p.model)
        sampling = sampling_defaults(p)
        rows.append({
            "preset": p.name, "kind": "video", "dit_params": counts["dit"],
            "dit_published": p.published.get("params"),
            "vae_params": counts["vae_encoder"] + counts["vae_decoder"], "text_params": counts["text_encoder"],
            "resolution": f"{p.video.width}x{p.video.height}", "frames": p.video.num_frames, "fps": p.video.fps,
            "duration_s": p.video.duration_s, "video_tokens": Workload.of(p.model, p.video).tokens,
            "text_tokens": p.model.num_text_tokens, "steps": sampling.steps, "cfg": sampling.cfg, "source": p.source,
        })
    for name in yardstick_names():
        y = load_yardstick(name)
        rows.append({"preset": y.name, "kind": "yardstick", "dit_params": y.params, "train_tokens": y.tokens,
                     "training_flops": y.training_flops, "source": y.source})
    df = pd.DataFrame(rows, dtype=object)  # exact ints in json / csv; None where a column does not apply

    def params(v: Any) -> str:
        return fmt_params(int(v))

    formatters: dict[str, Callable[[Any], str]] = {
        "dit_params": params, "dit_published": params, "vae_params": params, "text_params": params,
        "frames": lambda v: f"{int(v)}", "fps": lambda v: f"{v:g}", "duration_s": lambda v: f"{v:.2f}",
        "video_tokens": lambda v: f"{int(v):,}", "text_tokens": lambda v: f"{int(v)}", "steps": lambda v: f"{int(v)}",
        "cfg": lambda v: "yes" if v else "no", "train_tokens": lambda v: f"{v / 1e9:,.0f}B",
        "training_flops": fmt_flops, "source": str,
    }
    human = pd.DataFrame({c: [formatters[c](v) if c in formatters and v is not None and not pd.isna(v) else
                              (v if isinstance(v, str) else "—") for v in df[c]] for c in df.columns})
    if fmt == "table":  # fit PRESETS_WIDTH columns: the main columns, the source cut to what is left
        human = human[["preset", "kind", "dit_params", "resolution", "frames", "fps", "video_tokens", "text_tokens",
                       "steps", "cfg", "source"]]
        width = len(human.drop(columns="source").to_string(index=False).splitlines()[0]) + 2
        room = max(10, PRESETS_WIDTH - width)
        human = human.assign(source=[v if len(v) <= room else v[:room - 3] + "..." for v in human["source"]])
    doc = Document("presets", units={"*_params": "parameters (exact)", "fps": "frames per second",
                                     "duration_s": "seconds", "training_flops": "FLOPs (= 2 x MACs)"})
    doc.table("presets", df, human)
    return doc


def gpus_document(fmt: str) -> Document:
    """The document `sora-compute gpus` prints: the GPU catalog."""
    df = gpu_catalog()
    human = humanize(df)
    if fmt == "table":
        human = human[["key", "bf16_tflops", "fp8_tflops", "hbm_gb", "hbm_tbps", "scale_up_gbps", "tdp_w",
                       "price_usd_per_hour", "default_mfu"]]
    doc = Document("gpus", units={"*_tflops": "dense TFLOP/s", "hbm_gb": "GB (10^9 bytes)", "hbm_tbps": "TB/s",
                                  "scale_up_gbps": "GB/s", "tdp_w": "W", "price_usd_per_hour": "USD per GPU-hour"})
    doc.table("gpus", df, human)
    return doc
