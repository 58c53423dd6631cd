"""``sora-compute demand``: the document it prints (built from one run of the demand model), and its what-ifs."""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from sora_compute.cli_support import Document, UsageError, snap_resolution
from sora_compute.planning.demand import DemandEstimate, estimate_demand
from sora_compute.planning.demand_analysis import demand_sensitivity, throughput_gap
from sora_compute.planning.demand_spec import DemandScenario, TrainingReference, resolve_demand
from sora_compute.presets import load_preset
from sora_compute.units import fmt_sci, fmt_usd

__all__ = ["apply_what_ifs", "demand_document", "parse_ai_share"]


def _usd(x: float) -> str:
    return fmt_usd(x) if math.isfinite(x) else "—"


def _n(x: float) -> str:
    return f"{x:,.0f}" if math.isfinite(x) else "—"


def _mw(x: float) -> str:
    return "—" if not math.isfinite(x) else f"{x:,.0f}" if x >= 100 else f"{x:.3g}"


def _minutes(x: float) -> str:
    return f"{x / 1e6:,.4g}M" if x >= 1e6 else f"{x:,.0f}"


def parse_ai_share(text: str, sc: DemandScenario) -> dict[str, float]:
    """``0.3`` (every source) or ``TikTok=0.5,YouTube=0.15`` -> {source: share} (validated by the scenario)."""
    names = [s.name for s in sc.sources]

    def share(value: str) -> float:
        try:
            x = float(value)
        except ValueError:
            raise UsageError(f"--ai-share: expected a share (0.3) or NAME=SHARE pairs, got {text!r}") from None
        if not 0 <= x <= 1:  # NaN fails too
            raise UsageError(f"--ai-share: a share is a number from 0 to 1, got {value.strip()!r}")
        return x

    if "=" not in text:
        return dict.fromkeys(names, share(text))
    out: dict[str, float] = {}
    for item in (t.strip() for t in text.split(",") if t.strip()):
        name, _, value = item.partition("=")
        match = next((n for n in names if n.lower() == name.strip().lower()), None)
        if match is None:
            raise UsageError(f"--ai-share: no source {name.strip()!r} (sources: {', '.join(names)})")
        out[match] = share(value)
    return out


def apply_what_ifs(sc: DemandScenario, opts: dict[str, Any], doc: Document) -> DemandScenario:
    """The scenario with the command line's what-ifs (validated again: a bad value names its field)."""
    data = sc.model_dump()
    simple = {"model": "model", "gpu": "gpu", "gpus_per_video": "gpus_per_video", "mfu": "mfu",
              "candidates": "candidates", "peak": "peak_to_average", "utilisation": "utilisation",
              "growth": "growth_per_year", "gpu_price": "gpu_price_usd", "price": "price_usd_per_gpu_hour",
              "electricity": "electricity_usd_per_kwh", "pue": "pue"}
    for opt, key in simple.items():
        if opts.get(opt) is not None:
            data[key] = opts[opt]
    for opt in ("steps", "cfg", "cache_skip"):
        if opts.get(opt) is not None:
            data["sampling"]["cache_skip_fraction" if opt == "cache_skip" else opt] = opts[opt]
    if opts.get("ai_share") is not None:
        shares = parse_ai_share(opts["ai_share"], sc)
        data["sources"] = [{**s, "ai_share": shares.get(s["name"], s["ai_share"])} for s in data["sources"]]
    if opts.get("scenario") is not None:
        from sora_compute.planning.scenarios import resolve_scenario

        name = resolve_scenario(opts["scenario"]).name  # fail early, one line
        keep = [t for t in data["training"] if t["scenario"] is None]
        data["training"] = [*keep, TrainingReference(name=f"{name} scenario (sora-compute)",
                                                     scenario=opts["scenario"]).model_dump()]
    if any(opts.get(k) is not None for k in ("resolution", "duration", "fps")):
        model = load_preset(data["model"])
        native = model.video
        w, h = native.width, native.height
        if opts.get("resolution"):
            w, h, note = snap_resolution(model.model, opts["resolution"])
            doc.note(note)
        shapes = data["shapes"] or [{"width": native.width, "height": native.height,
                                     "duration_s": native.duration_s, "fps": native.fps, "share": 1.0}]
        data["shapes"] = [{**s, "width": w if opts.get("resolution") else s["width"],
                           "height": h if opts.get("resolution") else s["height"],
                           "duration_s": opts.get("duration") or s["duration_s"],
                           "fps": opts.get("fps") or s["fps"]} for s in shapes]
    return DemandScenario.model_validate(data)


def demand_document(arg: str, opts: dict[str, Any], fmt: str = "json") -> Document:
    """Everything ``sora-compute demand`` prints, from one run."""
    doc = Document("demand", units={"*minutes_per_day": "video-minutes a day", "*flops*": "FLOPs (= 2 x MACs)",
                                    "gpus_*": "GPUs", "mw_*": "MW (10^6 W, with PUE)", "gwh_per_year": "GWh a year",
                                    "*_usd*": "USD", "break_even_days": "days of this market",
                                    "gpu_seconds_per_video_minute": "GPU-seconds per generated video-minute"})
    sc = apply_what_ifs(resolve_demand(arg), opts, doc)
    est = estimate_demand(sc)
    doc.query = {"demand": sc.name, **{k: v for k, v in opts.items() if v is not None}}
    doc.assumptions = {"scenario": sc.model_dump(exclude={"published", "gap_steps"})}
    _market(doc, est)
    _check(doc, est)
    _break_even(doc, est)
    gap = throughput_gap(sc)
    if len(gap):
        _gap(doc, est, gap)
    sens = demand_sensitivity(sc)
    doc.text(f"\nSensitivity of the GPUs at peak ({est.row()['gpu']}, sora-compute basis; base "
             f"{est.row()['gpus_peak']:,}):")
    doc.table("sensitivity", sens, pd.DataFrame({
        "assumption": sens["assumption"], "base": sens["base"],
        "low": [f"{a} -> {_n(b)}" for a, b in zip(sens["low"], sens["gpus_peak_low"], strict=True)],
        "high": [f"{a} -> {_n(b)}" for a, b in zip(sens["high"], sens["gpus_peak_high"], strict=True)]}))
    if len(est.growth):
        doc.text(f"\nGrowth at {sc.growth_per_year:.0%} a year:")
        g = est.growth
        human: dict[str, list[str]] = {"year": [str(y) for y in g["year"]]}
        for kind in ("model", "published"):
            if f"gpus_avg_{kind}" in g:
                human[f"generated / day ({kind})"] = [_minutes(x) for x in g[f"generated_minutes_per_day_{kind}"]]
                human[f"GPUs avg ({kind})"] = [_n(x) for x in g[f"gpus_avg_{kind}"]]
                human[f"GPUs peak ({kind})"] = [_n(x) for x in g[f"gpus_peak_{kind}"]]
        doc.table("growth", g, pd.DataFrame(human))
    if fmt == "table":  # the prose above already carries these numbers
        doc.blocks = [b for b in doc.blocks if b.name != "published_check"]
    return doc


def _market(doc: Document, est: DemandEstimate) -> None:
    sc = est.scenario
    doc.text(f"== {sc.name}: {sc.description}".rstrip(": ") if sc.description else f"== {sc.name}")
    if sc.source:
        doc.text(f"source: {sc.source}")
    kept, gen = est.kept_minutes_per_day, est.generated_minutes_per_day
    parts = " + ".join(f"{s.name} {_minutes(s.minutes)} x {s.ai_share:.0%}" for s in sc.sources)
    doc.text(f"\nMarket: {parts} = {_minutes(kept)} AI-generated minutes kept a day; x {sc.candidates:g} candidates "
             f"per kept video = {_minutes(gen)} generated. Peak {sc.peak_to_average:g}x the average, target "
             f"utilisation {sc.utilisation:.0%}, PUE {sc.pue:g}.")
    s = est.summary
    doc.table("summary", s, pd.DataFrame({
        "basis": s["basis"], "video-min / GPU-h": [f"{x:.3g}" for x in s["video_minutes_per_gpu_hour"]],
        "FLOPs / video-min": [fmt_sci(x) for x in s["flops_per_video_minute"]],
        "FLOPs / day": [fmt_sci(x) for x in s["flops_per_day"]],
        "GPUs avg": [_n(x) for x in s["gpus_avg"]], "GPUs peak": [_n(x) for x in s["gpus_peak"]],
        "MW avg / peak": [f"{_mw(a)} / {_mw(b)}" for a, b in zip(s["mw_avg"], s["mw_peak"], strict=True)],
        "GWh / yr": [_mw(x) for x in s["gwh_per_year"]], "capital": [_usd(x) for x in s["capital_usd"]],
        "rental / yr": [_usd(x) for x in s["rental_usd_per_year"]]}))
    doc.text("\n".join(f"  {r['basis']}: {r['detail']}" for r in s.to_dict(orient="records")))
    p = est.platforms
    doc.text("\nBy source (each alone):")
    doc.table("platforms", p, pd.DataFrame({
        "basis": p["kind"], "source": p["source"], "minutes / day": [_minutes(x) for x in p["minutes_per_day"]],
        "AI share": [f"{x:.0%}" for x in p["ai_share"]],
        "kept / day": [_minutes(x) for x in p["kept_minutes_per_day"]],
        "GPUs avg": [_n(x) for x in p["gpus_avg"]], "GPUs peak": [_n(x) for x in p["gpus_peak"]]}))


def _check(doc: Document, est: DemandEstimate) -> None:
    pc, p = est.published_check, est.scenario.published
    if p is None or not len(pc):
        return
    doc.text(f"\nPublished figures recomputed from their own inputs ({p.source}):\n  quote: {p.quote}")
    for r in pc.to_dict(orient="records"):
        same = abs(r["ratio"] - 1) < 0.01
        verdict = "agrees (within 1%)" if same else f"their inputs give {r['ratio']:.3g}x the published figure"
        doc.text(f"  {r['figure']}: published {_n(r['published'])}, recomputed {_n(r['recomputed'])}: {verdict}; "
                 f"{r['reading']}")
    doc.table("published_check", pc, pd.DataFrame({
        "figure": pc["figure"], "published": [_n(x) for x in pc["published"]],
        "recomputed": [_n(x) for x in pc["recomputed"]], "ratio": [f"{x:.3g}" for x in pc["ratio"]]}))


def _break_even(doc: Document, est: DemandEstimate) -> None:
    be = est.break_even
    if not len(be):
        return
    doc.text("\nBreak-even: generated minutes whose inference FLOPs equal one training run (and days of this market);"
             " inference GPUs at peak next to the training cluster:")
    doc.table("break_even", be, pd.DataFrame({
        "basis": be["kind"], "training run": be["training"],
        "training FLOPs": [fmt_sci(x) for x in be["training_flops"]],
        "break-even minutes": [_minutes(x) for x in be["break_even_minutes"]],
        "days": [f"{x:,.3g}" if math.isfinite(x) else "—" for x in be["break_even_days"]],
        "training GPUs": [_n(x) for x in be["training_gpus"]],
        "inference GPUs peak": [_n(x) for x in be["inference_gpus_peak"]],
        "inference / training GPUs": [f"{x:,.3g}x" for x in be["inference_to_training_gpus"]]}))


def _gap(doc: Document, est: DemandEstimate, gap: pd.DataFrame) -> None:
    ours, theirs = est.row("model"), est.row("published")
    ratio = theirs["video_minutes_per_gpu_hour"] / ours["video_minutes_per_gpu_hour"]
    crossed = gap[gap["gap_left"] <= 1]
    doc.text(f"\nWhy the throughputs differ: sora-compute serves {ours['video_minutes_per_gpu_hour']:.3g} "
             f"video-minutes per {ours['gpu']}-hour, the published figure is "
             f"{theirs['video_minutes_per_gpu_hour']:.3g} "
             f"({ratio:.3g}x; {fmt_sci(ours['flops_per_video_minute'])} vs "
             f"{fmt_sci(theirs['flops_per_video_minute'])} FLOPs per video-minute). Applied one after another:")
    doc.table("throughput_gap", gap, pd.DataFrame({
        "step": gap["step"], "change": gap["change"],
        "video-min / GPU-h": [f"{x:.3g}" for x in gap["video_minutes_per_gpu_hour"]],
        "alone": [f"{x:.3g}x" for x in gap["factor_alone"]],
        "in sequence": [f"{x:.3g}x" for x in gap["factor_in_sequence"]],
        "gap left": [f"{x:.3g}x" for x in gap["gap_left"]]}))
    if len(crossed):
        first = crossed.iloc[0]
        doc.text(f"  the steps up to '{first['step']}' close the gap ({first['gap_left']:.3g}x left: "
                 f"{'they overshoot' if first['gap_left'] < 1 else 'equal'}); the published throughput is reachable "
                 "with a lighter sampler and a smaller clip than the preset's")
    else:
        doc.text(f"  after every step {gap['gap_left'].iloc[-1]:.3g}x is left: the published throughput needs more "
                 "than these changes")
