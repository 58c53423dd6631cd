"""The training layout search in `plan` (``--layouts``, ``--layout`` to pin fields): the scenario's main stage shape
on the cluster, ranked layouts with their step-time breakdown. Unpinned, it is the search behind the plan's parallel
efficiency (``planning/scaling.py``: the same pins and global batch), so its best row is the plan's layout."""

from __future__ import annotations

import pandas as pd

from sora_compute.cli_support import Document, UsageError
from sora_compute.planning import TrainingEstimate
from sora_compute.planning.cluster import ClusterPlan
from sora_compute.planning.layouts import LAYOUT_FIELDS, search_training_layouts
from sora_compute.planning.scaling import StageScaling, scenario_scaling, search_pins
from sora_compute.planning.training_time import training_time
from sora_compute.specs import Workload

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


def _main_stage(est: TrainingEstimate, plan: ClusterPlan) -> StageScaling:
    """The main stage's shape, global batch and best layout as the plan's parallel efficiency has them (computed
    here, at bf16, when the plan scaled ideally: an assumed MFU or FP8)."""
    scaling = plan.scaling
    if scaling is None:
        c = plan.cluster
        scaling = scenario_scaling(training_time(est, c.profile, "bf16", c.attention_kernel), c.count)
    return next(s for s in scaling.stages if s.stage == est.main_stage)


def layouts_section(doc: Document, est: TrainingEstimate, plan: ClusterPlan, global_batch: int | None,
                    pin: dict[str, object], fmt: str) -> None:
    """Search the layouts of the plan's GPUs for the main stage's shape (the one the plan's parallel efficiency
    used) and add the result to ``doc``. Without ``pin`` and ``global_batch`` the search is the plan's own (its
    pins and global batch): its best row is the layout behind the plan's headline days."""
    sc, gpu, count = est.scenario, plan.cluster.gpu, plan.cluster.count
    stage = _main_stage(est, plan)
    w = Workload.of(sc.model, stage.video)
    kernel = plan.time.attention_kernel if plan.time is not None else plan.cluster.attention_kernel
    own = search_pins(w, sc.checkpointing, kernel)
    batch = global_batch if global_batch is not None else stage.global_batch
    s = search_training_layouts(sc.model, stage.video, plan.cluster.profile, count, batch,
                                pin={**own, **pin}, micro_batches=(1, 2))
    t = s.table
    video = stage.video
    head = (f"\nLayout search ({est.main_stage}: {video.width}x{video.height}, {video.num_frames} frames; "
            f"global batch {s.global_batch:,}; {count:,} x {gpu}; "
            + ", ".join(f"{k}={v}" for k, v in {**own, **pin}.items()) + f"): {len(t):,} layouts, "
            f"{len(s.fitting):,} fit")
    lines = [head]
    best = s.best
    if not len(t):
        lines.append(f"  no valid layout: no TP x CP x PP x DP of {count:,} GPUs (TP and Ulysses dividing the "
                     f"{sc.model.dit.num_heads} heads) has a data-parallel size whose micro-batches divide the "
                     f"global batch of {s.global_batch:,}")
    elif best is None:
        lines.append("  no layout fits: more GPUs, a smaller micro-batch or more checkpointing")
    else:
        comm = {k: float(best[f"{k}_comm_s"]) for k in ("tp", "cp", "fsdp", "dp")}
        lines.append(f"  best: {best['layout']}: {best['step_s']:.4g} s per step, MFU {best['mfu']:.1%}, "
                     f"{best['tokens_per_s_per_gpu']:,.0f} tokens/s per GPU, {best['peak_GiB']:,.1f} GiB allocated "
                     f"per GPU (communication buffers included; checked against {best['capacity_GiB']:,.1f} GiB "
                     "usable)")
        compute = best["compute_attention_s"] + best["compute_matmul_s"] + best["compute_other_s"]
        lines.append(f"  its step: compute {compute:.4g} s (attention {best['compute_attention_s']:.4g}), "
                     f"recompute {best['recompute_s']:.4g} s, "
                     f"exposed comm " + ", ".join(f"{k} {v:.3g} s" for k, v in comm.items())
                     + f", bubble {best['bubble_s']:.3g} s, optimizer {best['optimizer_s']:.3g} s")
        same = str(best["layout"]) == stage.layout and s.global_batch == stage.global_batch
        where = (f"this layout ({stage.efficiency:.0%} efficient)" if same else
                 f"{stage.layout or 'an ideal split'} at global batch {stage.global_batch:,} (this search is pinned "
                 "or batched differently)")
        lines.append(f"  the plan above ({plan.days:,.1f} days) " + (
            f"runs {est.main_stage} on {where}" if plan.scaling is not None else
            f"scales ideally ({plan.why_ideal or plan.why_assumed or 'assumed MFU'}); at the predicted parallel "
            f"efficiency {est.main_stage} would run on {where}"))
        doc.data("layout_best", {k: (v.item() if hasattr(v, "item") else v) for k, v in best.items()})
        doc.data("layout_days", plan.days)
    if fmt in ("table", "markdown"):
        doc.text("\n".join(lines))
    if not len(t):
        doc.data("layouts_considered", 0)
        doc.data("layouts_fitting", 0)
        return
    cols = ["layout", "fits", "peak_GiB", "step_s", "mfu", "tokens_per_s_per_gpu", "why_not_best"]
    shown = t.head(SHOWN)[cols]
    human = pd.DataFrame({"layout": shown["layout"], "fits": shown["fits"].map({True: "yes", False: "no"}),
                          "allocated GiB/GPU": shown["peak_GiB"].map("{:,.1f}".format),
                          "s/step": shown["step_s"].map("{:.4g}".format), "MFU": shown["mfu"].map("{:.1%}".format),
                          "why not best": shown["why_not_best"]})
    doc.table("layouts", t.head(TOP_DATA), human)
    doc.data("layouts_considered", len(t))
    doc.data("layouts_fitting", len(s.fitting))
