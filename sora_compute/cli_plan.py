"""The `plan` and `sweep` commands' documents: a training scenario on a cluster, and a grid of what-ifs
(sora_compute/cli.py declares their options)."""

from __future__ import annotations

import pandas as pd

from sora_compute.cli_support import Document, UsageError, parse_axis, snap_resolution, split_names
from sora_compute.planning import Cluster, estimate_training, plan_cluster, resolve_scenario
from sora_compute.presets import load_preset
from sora_compute.units import fmt_duration_days, fmt_int, fmt_multiple, fmt_mwh, fmt_sci, fmt_usd

__all__ = ["plan_document", "sweep_document", "PLAN_GPUS"]

PLAN_GPUS = 4096  # `plan` without --gpus or --days


def plan_document(scenario: str, gpu: str, count: int | None, days: float | None, budget: float | None,
                  mfu: float | None, price: float | None, pue: float, precision: str, search: bool, pin: str | None,
                  global_batch: int | None, fmt: str) -> Document:
    """The document `sora-compute plan` prints for a scenario (the --recipe form is cli_recipe's)."""
    from sora_compute.cli_layouts import layouts_section, parse_pin
    from sora_compute.hardware import load_profile
    from sora_compute.planning import budget_plan, gpus_for_days
    from sora_compute.planning.cluster import predict_training

    pinned = parse_pin(pin)

    if days is not None and count is not None:
        raise UsageError("--days asks how many GPUs finish in time; --gpus fixes the GPUs: give one, not both")
    if days is not None and budget is not None:
        raise UsageError("--days and --budget are two different questions: give one, not both")
    sc = resolve_scenario(scenario)
    est = estimate_training(sc)
    profile = load_profile(gpu)  # the GPU, resolved once
    time = None if mfu is not None else predict_training(est, profile, precision)[0]  # type: ignore[arg-type]
    if days is not None:
        count = gpus_for_days(est, profile, days, mfu, precision, time=time)  # type: ignore[arg-type]
    if count is None:
        count = PLAN_GPUS
    cluster = Cluster(gpu=gpu, count=count, mfu=mfu, price_usd_per_hour=price, pue=pue, precision=precision)
    plan_ = plan_cluster(est, cluster, time=time, mfu_source="--mfu")
    row = plan_.summary()
    b = budget_plan(plan_, cluster, budget) if budget is not None else None
    if b is not None:
        row.update(b)
    if days is not None:
        row["deadline_days"] = days
    doc = Document("plan", query={"scenario": sc.name, "gpu": gpu, "gpus": count, "days": days, "budget_usd": budget,
                                  "mfu": mfu, "price_usd_per_gpu_hour": price, "pue": pue, "precision": precision},
                   units={"*_flops": "FLOPs (= 2 x MACs)", "days": "days", "gpu_hours": "GPU-hours",
                          "cost_usd": "USD", "energy_mwh": "MWh"}, assumptions=dict(sc.assumptions))
    lines = [f"{sc.name}: {fmt_sci(est.model_flops)} model FLOPs ({fmt_multiple(est.gpt3_multiple)} GPT-3), "
             f"{fmt_sci(est.hardware_flops)} hardware FLOPs"]
    if days is not None:
        lines.append(f"  to finish in {days:g} days: {count:,} x {gpu} at MFU {plan_.mfu:.2f} (fewest that do)")
    lines.append(f"  {count:,} x {gpu} ({precision}, MFU {plan_.mfu:.2f}, HFU {plan_.hfu:.2f}): "
                 f"{fmt_duration_days(plan_.days)}, {fmt_int(plan_.gpu_hours)} GPU-hours, {fmt_usd(plan_.cost_usd)}, "
                 f"{fmt_mwh(plan_.energy_mwh)} (PUE {pue:g})")
    lines.append(f"  time: {plan_.time_basis}")
    if b is not None and budget is not None:
        lines.append(f"  {fmt_usd(budget)} buys {fmt_duration_days(b['affordable_days'])} on this cluster: "
                     f"{b['fraction_completed']:.0%} of the run "
                     f"(the whole run costs {fmt_usd(b['budget_needed_usd'])})")
    if fmt in ("table", "markdown"):
        doc.text("\n".join(lines))
    if fmt != "table":
        doc.table("plan", pd.DataFrame([row]))
    if search or pin is not None:
        layouts_section(doc, est, plan_, global_batch, pinned, fmt)
    return doc


def sweep_document(models: str, resolutions: str, durations: str, fps_list: str | None, gpu_list: str, counts: str,
                   samples: float, steps: int | None, cfg: bool | None, mfu: float | None, fmt: str) -> Document:
    """The document `sora-compute sweep` prints: one row per point of the grid."""
    from sora_compute.planning import SweepQuery
    from sora_compute.planning import sweep as run_sweep

    names = split_names(models, "--model")
    gpu_names = split_names(gpu_list, "--gpu")
    res_texts = split_names(resolutions, "--resolution")
    dur = parse_axis(durations, "--duration")
    fps_values = parse_axis(fps_list, "--fps") if fps_list is not None else None
    n = parse_axis(counts, "--gpus", integer=True)
    points = len(names) * len(res_texts) * len(dur) * len(fps_values or [1]) * len(gpu_names) * len(n)
    if points > 1_000_000:
        raise UsageError(f"the grid has {points:,} points; at most 1,000,000")
    doc = Document("sweep", units={"*_flops": "FLOPs (= 2 x MACs)", "duration_s": "seconds", "train_days": "days",
                                   "cost_usd": "USD", "energy_mwh": "MWh", "latency_s_1gpu": "seconds"})
    frames = []
    for name in names:
        model = load_preset(name).model
        res = []
        for r in res_texts:
            w, h, note = snap_resolution(model, r, snap_explicit=True)
            doc.note(note)
            res.append((w, h))
        frames.append(run_sweep([name], list(dict.fromkeys(res)), dur, fps=fps_values, gpus=gpu_names,
                                gpu_counts=n, samples=samples, steps=steps, cfg=cfg, mfu=mfu))
    df = pd.concat(frames, ignore_index=True)
    fields = SweepQuery.model_fields  # what the sweep ran with (the CLI leaves these at their defaults)
    kernel, checkpointing = fields["attention_kernel"].default, fields["checkpointing"].default
    # a sentence before the table (csv and json carry it as the time_basis column: stderr stays quiet)
    doc.text(f"time from assumed MFU {mfu:.2f} (--mfu): FLOPs / (GPUs x peak x MFU), ideal scaling"
             if mfu is not None else
             f"time predicted by the time model ({kernel} attention, bf16): training = each sample's DiT forward and "
             f"backward passes (recomputation: {checkpointing}) and optimizer share at the ASSUMED batches of "
             "planning/training_time.py, ideal scaling over the GPUs (plan/estimate include parallel overheads: the "
             "parallel efficiency of each stage's best fitting layout); "
             "latency = one video on one GPU; MFU = what the prediction implies")
    doc.query = {"models": names, "resolutions": res_texts, "durations_s": dur, "fps": fps_values,
                 "gpus": gpu_names, "gpu_counts": n, "samples": samples, "steps": steps, "cfg": cfg, "mfu": mfu}
    human = pd.DataFrame({
        "model": df["model"], "resolution": df["width"].astype(str) + "x" + df["height"].astype(str),
        "duration": df["duration_s"].map("{:.1f} s".format), "fps": df["fps"].map("{:g}".format),
        "tokens": df["video_tokens"].map("{:,.0f}".format), "steps": df["steps"].astype(str),
        "CFG": df["cfg"].map({True: "yes", False: "no"}),
        "train FLOPs": df["train_flops"].map(fmt_sci), "x GPT-3": df["gpt3_multiple"].map(fmt_multiple),
        "gpu": df["gpu"], "GPUs": df["gpus"].map("{:,}".format), "MFU": df["mfu"].map("{:.2f}".format),
        "days": df["train_days"].map("{:,.1f}".format),
        "cost": df["cost_usd"].map(fmt_usd), "latency 1 GPU": df["latency_s_1gpu"].map("{:,.0f} s".format)})
    doc.table("points", df, human)
    return doc
