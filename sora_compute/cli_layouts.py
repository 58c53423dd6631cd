"""The training layout search in `plan` (``--layouts``, ``--layout`` to pin fields): the scenario's main shape on the
cluster, ranked layouts with their step-time breakdown, and the days at the best layout's predicted MFU."""

from __future__ import annotations

import pandas as pd

from sora_compute.cli_support import Document, UsageError
from sora_compute.planning import Cluster, TrainingEstimate, plan_cluster
from sora_compute.planning.layouts import LAYOUT_FIELDS, search_training_layouts
from sora_compute.specs import VideoSpec

__all__ = ["parse_pin", "layouts_section"]

_TEXT_FIELDS = {"checkpointing", "attention_kernel"}
SHOWN = 8  # layouts shown (the JSON carries the best TOP_DATA)
TOP_DATA = 50


def parse_pin(text: str | None) -> dict[str, object]:
    """``tp=2,cp_ring=4,zero=3`` -> {"tp": 2, "cp_ring": 4, "zero": 3}; a clear error naming the bad part."""
    if text is None:
        return {}
    pin: dict[str, object] = {}
    for part in (p.strip() for p in text.split(",")):
        key, sep, value = part.partition("=")
        key, value = key.strip(), value.strip()
        if not sep or not key or not value:
            raise UsageError(f"--layout: expected FIELD=VALUE pairs separated by commas, got {part!r}")
        if key not in LAYOUT_FIELDS:
            raise UsageError(f"--layout: unknown field {key!r} (fields: {', '.join(LAYOUT_FIELDS)})")
        if key in _TEXT_FIELDS:
            pin[key] = value
        else:
            if not value.isdigit() or int(value) < (0 if key == "zero" else 1) or int(value) > 1 << 20:
                raise UsageError(f"--layout: {key} must be a whole number"
                                 f"{' 0-3' if key == 'zero' else ' >= 1'}, got {value!r}")
            pin[key] = int(value)
    return pin


def _main_shape(est: TrainingEstimate) -> VideoSpec:
    """The video shape of the main stage's bucket with the most model FLOPs."""
    t = est.table[est.table["stage"] == est.main_stage]
    row = t.iloc[int(t["model_flops"].to_numpy().argmax())]
    return VideoSpec(width=int(row["width"]), height=int(row["height"]), num_frames=int(row["num_frames"]),
                     fps=float(row["fps"]))


def layouts_section(doc: Document, est: TrainingEstimate, gpu: str, count: int, global_batch: int | None,
                    pin: dict[str, object], fmt: str) -> None:
    """Search the layouts of ``count`` GPUs for the scenario's main shape and add the result to ``doc``."""
    sc = est.scenario
    video = _main_shape(est)
    s = search_training_layouts(sc.model, video, gpu, count, global_batch, pin=pin, micro_batches=(1, 2))
    t = s.table
    head = (f"\nLayout search ({est.main_stage}: {video.width}x{video.height}, {video.num_frames} frames; "
            f"global batch {s.global_batch:,}; {count:,} x {gpu}): {len(t):,} layouts, {len(s.fitting):,} fit")
    lines = [head]
    best = s.best
    if best is None:
        lines.append("  no layout fits: more GPUs, a smaller micro-batch or more checkpointing")
    else:
        comm = {k: float(best[f"{k}_comm_s"]) for k in ("tp", "cp", "fsdp", "dp")}
        cl = Cluster(gpu=gpu, count=count, mfu=float(best["mfu"]))
        days = plan_cluster(est, cl).days
        lines.append(f"  best: {best['layout']}: {best['step_s']:.4g} s per step, MFU {best['mfu']:.1%}, "
                     f"{best['tokens_per_s_per_gpu']:,.0f} tokens/s per GPU, {best['peak_GiB']:,.1f} GiB per GPU")
        compute = best["compute_attention_s"] + best["compute_matmul_s"] + best["compute_other_s"]
        lines.append(f"  its step: compute {compute:.4g} s (attention {best['compute_attention_s']:.4g}), "
                     f"recompute {best['recompute_s']:.4g} s, "
                     f"exposed comm " + ", ".join(f"{k} {v:.3g} s" for k, v in comm.items())
                     + f", bubble {best['bubble_s']:.3g} s, optimizer {best['optimizer_s']:.3g} s")
        lines.append(f"  at this layout's predicted MFU (the main stage's shape) the whole scenario takes "
                     f"{days:,.1f} days on {count:,} x {gpu}")
        doc.data("layout_best", {k: (v.item() if hasattr(v, "item") else v) for k, v in best.items()})
        doc.data("layout_days", days)
    if fmt in ("table", "markdown"):
        doc.text("\n".join(lines))
    cols = ["layout", "fits", "peak_GiB", "step_s", "mfu", "tokens_per_s_per_gpu", "why_not_best"]
    shown = t.head(SHOWN)[cols]
    human = pd.DataFrame({"layout": shown["layout"], "fits": shown["fits"].map({True: "yes", False: "no"}),
                          "GiB/GPU": shown["peak_GiB"].map("{:,.1f}".format),
                          "s/step": shown["step_s"].map("{:.4g}".format), "MFU": shown["mfu"].map("{:.1%}".format),
                          "why not best": shown["why_not_best"]})
    doc.table("layouts", t.head(TOP_DATA), human)
    doc.data("layouts_considered", len(t))
    doc.data("layouts_fitting", len(s.fitting))
