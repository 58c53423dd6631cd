"""The `estimate` command's document (sora_compute/cli.py declares its options)."""

from __future__ import annotations

from typing import Any

import pandas as pd

from sora_compute.cli_support import (
    Document,
    UsageError,
    humanize,
    shape_query,
    snap_resolution,
    split_names,
    video_from_options,
)
from sora_compute.evaluate.params import dit_params
from sora_compute.planning import (
    GPT3_6ND_FLOPS,
    GPT3_PAPER_FLOPS,
    Cluster,
    ClusterPlan,
    ServingPlan,
    estimate_inference,
    estimate_training,
    plan_cluster,
    plan_serving,
    resolve_scenario,
    sampling_defaults,
    with_main_stage_shape,
)
from sora_compute.planning.sensitivity import published_estimates, published_inference, sensitivity
from sora_compute.presets import load_preset, preset_names
from sora_compute.units import fmt_duration_days, fmt_flops, fmt_int, fmt_multiple, fmt_mwh, fmt_sci, fmt_usd

__all__ = ["estimate_document"]


def _stage_rows(est: Any) -> tuple[pd.DataFrame, pd.DataFrame]:
    st = est.by_stage()
    human = pd.DataFrame({"stage": st["stage"], "samples": [fmt_sci(x) for x in st["samples"]],
                          "model FLOPs": [fmt_sci(x) for x in st["model_flops"]],
                          "x GPT-3": [fmt_multiple(x) for x in st["gpt3_multiple"]]})
    return st, human



def _time_note(plans: list[ClusterPlan], checkpointing: str) -> str:
    """Where the cluster plans' time comes from, in words built from the plans."""
    if all(p.time is not None for p in plans):
        t = plans[0].time
        assert t is not None
        return (f"time predicted by the time model ({t.attention_kernel} attention, {t.precision}): the scenario "
                "written as a recipe (iterations of a global batch per stage) and timed by the recipe time path: each "
                f"sample's DiT forward, backward, {checkpointing} recomputation and optimizer share at each stage's "
                "fastest fitting layout, with its communication and bubble; parallel efficiency against one GPU: "
                + "; ".join(
                    f"{p.cluster.gpu} {p.efficiency:.0%}" + (f" ({p.scaling.describe()})" if p.scaling else
                                                             f" ({p.why_ideal})") for p in plans))
    if len({p.time_basis for p in plans}) == 1:
        return plans[0].time_basis
    return "; ".join(f"{p.cluster.gpu}: {p.time_basis}" for p in plans)


def _serving_note(serving: list[ServingPlan]) -> str:
    """Where the serving latency comes from, in words built from the plans."""
    if all(x.predicted_s is not None for x in serving):
        x = serving[0]
        return f"latency predicted by the time model ({x.attention_kernel} attention, {x.dtypes}; MFU it implies)"
    if len({x.time_basis for x in serving}) == 1:
        return f"latency {serving[0].time_basis}"
    return "; ".join(f"{x.gpu.key}: {x.time_basis}" for x in serving)


def estimate_document(scenario: str, resolution: str | None, duration: float | None, fps: float | None,
                      stage: str | None, gpu_list: str, count: int, mfu: float | None, price: float | None,
                      pue: float, steps: int | None, cfg: bool | None, fmt: str) -> Document:
    """The document `sora-compute estimate` prints (see its --help)."""
    sc = resolve_scenario(scenario)
    gpu_names = split_names(gpu_list, "--gpu")
    doc = Document("estimate", units={"*_flops": "FLOPs (= 2 x MACs)",
                                      "gpt3_multiple": f"model FLOPs / {fmt_sci(GPT3_PAPER_FLOPS)}",
                                      "days": "days", "gpu_hours": "GPU-hours", "cost_usd": "USD",
                                      "energy_mwh": "MWh", "latency_s": "seconds", "*_usd": "USD"},
                   assumptions=dict(sc.assumptions))
    w = h = None
    if resolution:
        w, h, note = snap_resolution(sc.model, resolution)
        doc.note(note)
    if stage is not None and resolution is None and duration is None and fps is None:
        raise UsageError("--stage names the stage that --resolution/--duration/--fps reshape: give one of them")
    reshaped = None
    if resolution or duration is not None or fps is not None:
        reshaped = stage if stage is not None else estimate_training(sc).main_stage
        sc = with_main_stage_shape(sc, w, h, duration, fps, stage=reshaped)
    est = estimate_training(sc)
    clusters = [Cluster(gpu=g, count=count, mfu=mfu, price_usd_per_hour=price, pue=pue) for g in gpu_names]
    plans = [plan_cluster(est, c, mfu_source="--mfu") for c in clusters]
    preset = load_preset(sc.model.name) if sc.model.name in preset_names() else None
    native = preset.video if preset is not None else next(
        s for s in sc.stages if s.name == est.main_stage).buckets[0].video(sc.model)
    video = video_from_options(sc.model, native, f"{w}x{h}" if w else None, None, duration, fps)
    default = sampling_defaults(sc.model)
    settings = default.model_copy(update={"steps": steps if steps is not None else default.steps,
                                          "cfg": cfg if cfg is not None else default.cfg})
    inf = estimate_inference(sc.model, video, settings)
    serving = [plan_serving(inf, c.profile, gpus_per_video=1, mfu=mfu, price_usd_per_hour=price, mfu_source="--mfu")
               for c in clusters]
    sens = sensitivity(sc)
    published = published_estimates(est) if sc.model.name == "sora" else None
    doc.query = {"scenario": sc.name, "reshaped_stage": reshaped, "resolution": resolution, "duration_s": duration,
                 "fps": fps, "gpus": count, "mfu": mfu, "price_usd_per_gpu_hour": price, "pue": pue,
                 "steps": settings.steps, "cfg": settings.cfg}
    m = sc.model
    doc.text(f"== {sc.name}: {m.name} preset, DiT {dit_params(m.dit) / 1e9:.2f}B parameters "
             f"({m.dit.depth} x {m.dit.hidden_size}), {m.dit.conditioning}, {m.dit.attention_layout} attention")
    if reshaped is not None:
        b = next(s for s in sc.stages if s.name == reshaped).buckets
        shapes = ", ".join(dict.fromkeys(f"{x.width}x{x.height} {x.video(m).duration_s:.3g} s at {x.fps:g} fps"
                                         for x in b))
        doc.text(f"what-if: stage '{reshaped}' reshaped to {shapes}; the inference clip likewise")
    doc.text("\nTraining compute (FLOPs = 2 x MACs; model FLOPs = 3 x DiT forward per sample):")
    st, st_human = _stage_rows(est)
    doc.table("stages", st, st_human)
    doc.text(f"  total           {fmt_flops(est.model_flops)} = {fmt_multiple(est.gpt3_multiple)} GPT-3 175B "
             f"({fmt_sci(GPT3_PAPER_FLOPS)}, paper); {fmt_multiple(est.gpt3_multiple_6nd)} GPT-3 by 6·N·D "
             f"({fmt_sci(GPT3_6ND_FLOPS)})\n"
             f"  hardware FLOPs  {fmt_flops(est.hardware_flops)} (with {sc.checkpointing} activation recomputation)\n"
             f"  6·N·D reading   {fmt_flops(est.six_nd_flops)} = {fmt_multiple(est.six_nd_multiple)} GPT-3 by "
             f"6·N·D: what a parameter-count estimate of the same plan says (no attention term)")
    doc.data("scenario", sc.name)
    doc.data("training", est.summary())
    doc.text(f"\nCluster plans ({count:,} GPUs each; {_time_note(plans, sc.checkpointing)}):")
    doc.table("clusters", pd.DataFrame([p.summary() for p in plans]), pd.DataFrame({
        "gpu": [p.cluster.gpu for p in plans], "MFU": [f"{p.mfu:.2f}" for p in plans],
        "HFU": [f"{p.hfu:.2f}" for p in plans], "parallel eff.": [f"{p.efficiency:.0%}" for p in plans],
        "wall clock": [fmt_duration_days(p.days) for p in plans], "GPU-days": [fmt_int(p.gpu_days) for p in plans],
        "$/GPU-hour": [fmt_usd(p.cluster.price) for p in plans],
        "cost": [fmt_usd(p.cost_usd) for p in plans], "energy": [fmt_mwh(p.energy_mwh) for p in plans]}))
    v = inf.video
    guidance = "CFG pair" if settings.cfg else "no CFG pair"
    doc.text(f"\nInference, one {v.width}x{v.height} clip of {v.num_frames} frames at {v.fps:g} fps "
             f"({v.duration_s:.3g} s), {settings.steps} steps, {guidance}:")
    comp = inf.to_frame()
    doc.text("  " + ", ".join(f"{c} {fmt_sci(float(f))} ({sh:.0%})"
                              for c, f, sh in zip(comp["component"], comp["flops"], comp["share"], strict=True))
             + f"\n  {fmt_flops(inf.flops_per_video)} per video, {fmt_flops(inf.flops_per_minute)} per minute of "
               f"video, {fmt_flops(inf.flops_per_1k_videos)} per 1k videos")
    doc.table("inference_components", comp, humanize(comp).assign(share=[f"{x:.0%}" for x in comp["share"]]),
              title="" if fmt == "table" else "inference FLOPs by component")
    doc.data("inference", {"flops_per_video": inf.flops_per_video, "flops_per_minute": inf.flops_per_minute,
                           "flops_per_1k_videos": inf.flops_per_1k_videos, "video": shape_query(v),
                           "steps": settings.steps, "cfg": settings.cfg})
    doc.text(f"  serving: {_serving_note(serving)}")
    doc.table("serving", pd.DataFrame([x.summary() for x in serving]), pd.DataFrame({
        "gpu": [x.gpu.key for x in serving], "latency (1 GPU)": [f"{x.latency_s:,.0f} s" for x in serving],
        "MFU": [f"{x.mfu:.2f}" for x in serving],
        "roofline bound": [f"{x.latency_lower_bound_s:,.0f} s" for x in serving],
        "video min / GPU-hour": [f"{x.video_minutes_per_gpu_hour:.3g}" for x in serving],
        "$ / video minute": [fmt_usd(x.cost_per_video_minute_usd) for x in serving]}))
    doc.text(f"\nSensitivity of the GPT-3 multiple (base {fmt_multiple(est.gpt3_multiple)}):")

    def arrow(labels: pd.Series, values: pd.Series) -> list[str]:
        return [f"{a} -> {fmt_multiple(b)}" for a, b in zip(labels, values, strict=True)]

    doc.table("sensitivity", sens, pd.DataFrame({"assumption": sens["assumption"], "base": sens["base"],
                                                 "low": arrow(sens["low"], sens["multiple_low"]),
                                                 "high": arrow(sens["high"], sens["multiple_high"])}))
    if published is not None:
        pub = published.drop(columns=["reading"])
        doc.text("\nPublished Sora estimates under this model:")
        doc.text("\n".join(f"  {r['source']}: {fmt_flops(float(r['flops']))} = {fmt_multiple(r['gpt3_multiple'])} "
                           f"GPT-3. {r['reading']}" for r in published.to_dict(orient="records")))
        doc.table("published", published, pd.DataFrame({
            "source": pub["source"], "FLOPs": [fmt_sci(x) for x in pub["flops"]],
            "x GPT-3": [fmt_multiple(x) for x in pub["gpt3_multiple"]],
            "ratio to ours": [fmt_multiple(x) for x in pub["ratio_to_ours"]]}), title="" if fmt == "table" else
            "published Sora estimates")
        pi = published_inference(inference=inf)  # this run's clip and sampling, on an H100 as theirs
        doc.text("Published Sora inference estimate under this model:\n" + "\n".join(
            f"  {r['source']}: {r['video_minutes_per_h100_hour']:.3g} video-minutes per H100-hour "
            f"({fmt_sci(float(r['flops_per_video_minute']))} FLOPs per minute). {r['reading']}"
            for r in pi.to_dict(orient="records")))
        doc.table("published_inference", pi, humanize(pi), title="" if fmt == "table" else
                  "published inference estimate")
    if fmt == "table":  # the prose already carries these tables' numbers
        doc.blocks = [b for b in doc.blocks if b.name not in ("inference_components", "published",
                                                              "published_inference")]
    return doc
