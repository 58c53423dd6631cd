"""Capacity-planning report: markdown + self-contained HTML + matplotlib figures (PNG), from one call.

``write_report("sora", Path("reports/sora"))`` writes report.md, report.html and fig*.png:
1. headline: training compute, GPT-3 multiple, GPU-days and cost on H100/H200/B200 clusters, inference cost;
2. heatmap of training compute (x GPT-3) over resolution x duration of the main stage;
3. per-video FLOPs by component vs token count (where attention's quadratic term takes over);
4. days to train vs cluster size for several GPU types;
5. memory per GPU for candidate parallel layouts vs GPU capacity;
6. calibration: analytic vs fvcore per module;
7. tornado chart of the GPT-3 multiple's sensitivity;
8. the assumptions table, with sources.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Callable
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import markdown  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.colors import LogNorm  # noqa: E402
from matplotlib.ticker import NullFormatter  # noqa: E402

from sora_compute.evaluate.params import dit_params  # noqa: E402
from sora_compute.flops import MATMUL_ONLY, count_dit, count_text_encoder, count_vae_decode, count_vae_encode  # noqa: E402
from sora_compute.hardware import load_gpu  # noqa: E402
from sora_compute.memory import planner as mp  # noqa: E402
from sora_compute.planning import (  # noqa: E402
    GPT3_PAPER_FLOPS,
    Cluster,
    ClusterPlan,
    ServingPlan,
    TrainingEstimate,
    TrainingScenario,
    estimate_inference,
    estimate_training,
    load_scenario,
    plan_cluster,
    plan_serving,
    with_main_stage_shape,
)
from sora_compute.planning.cluster import predict_training  # noqa: E402
from sora_compute.planning.inference import InferenceEstimate  # noqa: E402
from sora_compute.planning.sensitivity import published_estimates, published_inference, sensitivity  # noqa: E402
from sora_compute.planning.training_time import (  # noqa: E402
    ASSUMED_GLOBAL_BATCH_TOKENS,
    ASSUMED_MICRO_BATCH_TOKENS,
    TrainingTime,
)
from sora_compute.presets import load_preset, preset_names  # noqa: E402
from sora_compute.specs import ModelSpec, VideoSpec, Workload  # noqa: E402
from sora_compute.specs.vae.schedule import official_decode_schedule  # noqa: E402
from sora_compute.units import fmt_duration_days, fmt_flops, fmt_int, fmt_multiple, fmt_mwh, fmt_sci, fmt_usd  # noqa: E402

__all__ = ["write_report", "REPORT_GPUS", "fig_heatmap", "fig_components", "fig_days", "fig_memory", "fig_calibration",
           "fig_tornado"]

REPORT_GPUS = ("h100-sxm", "h200", "b200")
plt.rcParams.update({"figure.dpi": 110, "font.size": 10, "axes.grid": True, "grid.alpha": 0.3})


def _save(fig: plt.Figure, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _decode_basis(inf: InferenceEstimate) -> str:
    """How the estimate counts and times the VAE decode: every call of its tiled schedule, or one call on the whole
    clip (the whole-clip and chunked schedules compute the same convolutions)."""
    calls = inf.counts["vae_decode"].shape.get("decoder_calls")
    if calls is None:
        return "VAE decode counted and timed as one call on the whole clip"
    vae = inf.model.vae
    sched = (inf.settings.vae_tiling.schedule(vae.temporal_compression) if inf.settings.vae_tiling is not None
             else official_decode_schedule(vae.family, inf.model.name))
    return f"VAE decode {sched.label()}: {int(calls):,} decoder calls counted and timed"


def fig_heatmap(sc: TrainingScenario, path: Path) -> Path:
    """Training compute (x GPT-3) with the main stage at each resolution x duration (other stages as they are)."""
    stage = estimate_training(sc).main_stage
    resolutions = [(640, 368), (848, 480), (1280, 720), (1920, 1088), (2560, 1440)]
    durations = [2, 5, 10, 20, 30, 60]
    grid = np.array([[estimate_training(with_main_stage_shape(sc, w, h, d, stage=stage)).gpt3_multiple
                      for d in durations]
                     for w, h in resolutions])
    fig, ax = plt.subplots(figsize=(7.5, 4.2))
    im = ax.imshow(grid, norm=LogNorm(), cmap="viridis", aspect="auto", origin="lower")
    ax.set_xticks(range(len(durations)), [f"{d} s" for d in durations])
    ax.set_yticks(range(len(resolutions)), [f"{w}x{h}" for w, h in resolutions])
    ax.set_xlabel(f"clip duration in stage '{stage}' (seconds)")
    ax.set_ylabel("resolution (pixels)")
    ax.grid(False)
    for i in range(grid.shape[0]):
        for j in range(grid.shape[1]):
            ax.text(j, i, f"{grid[i, j]:.3g}", ha="center", va="center", fontsize=8,
                    color="white" if grid[i, j] < np.sqrt(grid.max() * grid.min()) else "black")
    fig.colorbar(im, ax=ax, label=f"training compute (x GPT-3 175B, {fmt_sci(GPT3_PAPER_FLOPS)} FLOPs)")
    ax.set_title(f"{sc.name}: training compute vs main-stage clip shape", fontsize=10)
    return _save(fig, path)


def fig_components(sc: TrainingScenario, path: Path) -> Path:
    """Per-video FLOPs of one DiT forward (by kind) plus VAE and text encoder, vs video tokens."""
    model = sc.model
    rows = []
    for seconds in (0, 0.25, 0.5, 1, 2, 4, 8, 16, 32, 60):  # one frame up to a minute
        frames = model.snap_frames(max(1, int(round(seconds * 24))))
        v = VideoSpec(width=1280, height=720, num_frames=frames, fps=24)
        w = Workload.of(model, v)  # the latent shape, computed once
        kinds = count_dit(w, convention=MATMUL_ONLY).by_kind()
        attn = float(kinds.get("attention", 0))
        mlp = float(kinds.get("mlp", 0))
        other = float(sum(kinds.values())) - attn - mlp
        rows.append({"tokens": w.tokens, "attention core (QK^T, AV)": 2 * attn,
                     "MLP": 2 * mlp, "projections, adaLN, cross-attn, embeddings": 2 * other,
                     "VAE encode + decode": 2 * float(count_vae_encode(w, convention=MATMUL_ONLY).macs
                                                      + count_vae_decode(w, convention=MATMUL_ONLY).macs),
                     "text encoder": 2 * float(count_text_encoder(model, convention=MATMUL_ONLY).macs)})
    df = pd.DataFrame(rows)
    parts = [c for c in df.columns if c != "tokens"]
    share = df[parts].div(df[parts].sum(axis=1), axis=0)
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 4))
    for c in parts:
        a1.loglog(df["tokens"], df[c], marker="o", label=c)
    a1.set_xlabel("video tokens per clip (1280x720, one frame to 60 s)")
    a1.set_ylabel("FLOPs per video (one DiT forward)")
    a1.legend(fontsize=7)
    a2.stackplot(df["tokens"], *[share[c] for c in parts], labels=parts)
    a2.set_xscale("log")
    a2.set_ylim(0, 1)
    a2.set_xlabel("video tokens per clip")
    a2.set_ylabel("share of per-video FLOPs")
    cross = df[df["attention core (QK^T, AV)"] > df["MLP"]]
    if len(cross):
        a2.axvline(float(cross["tokens"].iloc[0]), color="k", ls="--", lw=1)
        a2.text(float(cross["tokens"].iloc[0]) * 1.05, 0.05, "attention > MLP", fontsize=8)
    fig.suptitle(f"{model.name}: where the FLOPs go as clips get longer", fontsize=10)
    return _save(fig, path)


#: cluster sizes of the days-vs-GPUs figure (each costs one layout search per stage and GPU, cached)
DAYS_COUNTS = (256, 1024, 4096, 8192, 16384, 32768)


def fig_days(est: TrainingEstimate, path: Path, gpus: tuple[str, ...] = REPORT_GPUS + ("a100-80gb", "mi300x"),
             times: dict[str, TrainingTime | None] | None = None) -> tuple[Path, pd.DataFrame]:
    """Wall-clock days vs cluster size per GPU: the predicted GPU-seconds at the parallel efficiency of each stage's
    best fitting layout (``planning/scaling.py``; ``times``: the predictions already made, by GPU), dotted: ideal
    scaling; at the GPU's planning MFU where the time model cannot predict. Also returns, per GPU and size, the
    ideal and predicted days, the efficiency and the main stage's layout."""
    counts = np.array(DAYS_COUNTS)
    fig, ax = plt.subplots(figsize=(7, 4.2))
    styles = ["-o", "--s", "-^", "-.D", ":v", "-x"]
    times = dict(times or {})
    rows = []
    for i, (g, style) in enumerate(zip(gpus, styles, strict=False)):
        one = Cluster(gpu=g, count=1)  # the GPU, resolved once; copies below keep it
        if g not in times:
            times[g] = predict_training(est, one.profile)[0]
        plans = [plan_cluster(est, one.model_copy(update={"count": int(n)}), time=times[g]) for n in counts]
        basis = "MFU {:.2f} on 1 GPU" if plans[0].time is not None else "assumed MFU {:.2f}, ideal"
        line = ax.loglog(counts, [p.days for p in plans], style, ms=5,
                         label=f"{g} ({one.spec.bf16_tflops:,.0f} TFLOP/s, "
                               f"{basis.format(plans[0].time.mfu if plans[0].time else plans[0].mfu)})")
        if plans[0].scaling is not None and i == 0:
            ax.loglog(counts, [p.time.gpu_seconds / p.cluster.count / 86400 for p in plans if p.time is not None],
                      ":", color=line[0].get_color(), lw=1, label=f"{g} ideal scaling")
        for p in plans:
            main = next((s for s in p.scaling.stages if s.stage == est.main_stage), None) if p.scaling else None
            rows.append({"gpu": g, "gpus": p.cluster.count, "days": p.days,
                         "ideal_days": p.time.gpu_seconds / p.cluster.count / 86400 if p.time else p.days,
                         "efficiency": p.efficiency, "main_stage_layout": main.layout if main else "",
                         "main_stage_global_batch": main.global_batch if main else 0})
    ax.axhline(30, color="grey", ls=":", lw=1)
    ax.text(counts[0], 31, "30 days", fontsize=8, color="grey")
    ax.set_xlabel("GPUs in the cluster")
    ax.set_ylabel("wall-clock days to train")
    ax.set_title(f"Days to train {fmt_flops(est.model_flops)} (predicted, at the best layout's parallel efficiency)",
                 fontsize=10)
    ax.legend(fontsize=7)
    return _save(fig, path), pd.DataFrame(rows)


def fig_memory(model: ModelSpec, video: VideoSpec, path: Path, gpu: str = "h100-sxm", gpus: int = 4096) -> Path:
    df = mp.search_layouts(model, video, gpu, gpus=gpus, zero_stages=(3,))
    df = df.sort_values(["model_parallel", "peak_GiB"]).groupby("model_parallel").head(2).head(12)
    cap = float(df["capacity_GiB"].iloc[0])
    fig, ax = plt.subplots(figsize=(8, 4.4))
    colors = ["tab:green" if f else "tab:red" for f in df["fits"]]
    labels = [f"TP{r.tp} CP{r.cp} PP{r.pp}" for r in df.itertuples()]
    ax.barh(range(len(df)), df["peak_GiB"], color=colors)
    ax.axvline(cap, color="k", ls="--", lw=1)
    ax.text(cap, len(df) - 0.5, f" usable {cap:.0f} GiB of {load_gpu(gpu).hbm_gb:.0f} GB", fontsize=8, va="top")
    ax.set_yticks(range(len(df)), labels, fontsize=8)
    ax.invert_yaxis()
    ax.set_xscale("log")
    lo, hi = float(df["peak_GiB"].min()), max(float(df["peak_GiB"].max()), cap)
    ticks = [m * 10**e for e in range(-1, 6) for m in (1, 2, 5) if lo / 2 <= m * 10**e <= hi * 2]
    ax.set_xticks(ticks, [f"{t:g}" for t in ticks])
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel("peak memory per GPU (GiB, log scale)")
    ax.set_title(f"Training memory per {gpu} ({gpus} GPUs, ZeRO-3, full checkpointing): green fits", fontsize=10)
    return _save(fig, path)


def fig_calibration(path: Path) -> Path:
    from sora_compute.calibration.profile import calibrate

    table = calibrate().table
    table = table[table["module"] != "(total)"]
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 4))
    for comp, g in table.groupby("component"):
        a1.loglog(g["fvcore_macs"].clip(lower=1), g["analytic_macs"].clip(lower=1), "o", ms=3, label=str(comp))
    lim = [1, float(table["analytic_macs"].max()) * 2]
    a1.plot(lim, lim, "k--", lw=1)
    a1.set_xlabel("fvcore MACs per module")
    a1.set_ylabel("analytic MACs per module")
    a1.legend(fontsize=7)
    a1.set_title("analytic vs fvcore, every module", fontsize=10)
    err = table[["fvcore_rel_err", "flopcounter_rel_err"]].astype(float)
    a2.hist([err["fvcore_rel_err"].dropna(), err["flopcounter_rel_err"].dropna()], bins=20, range=(0, 0.005),
            label=["vs fvcore", "vs FlopCounterMode (meta)"])
    a2.axvline(0.005, color="r", ls=":", lw=1)
    a2.set_xlabel("relative error per module (floor 0.5%)")
    a2.set_ylabel("modules")
    a2.legend(fontsize=8)
    a2.set_title(f"{len(table)} module comparisons, worst {err.max().max():.1e}", fontsize=10)
    return _save(fig, path)


def fig_tornado(sens: pd.DataFrame, path: Path) -> Path:
    base = float(sens["multiple_base"].iloc[0])
    fig, ax = plt.subplots(figsize=(8.5, 0.45 * len(sens) + 1.2))
    for i, r in enumerate(sens.to_dict(orient="records")):
        low, high = float(r["multiple_low"]), float(r["multiple_high"])
        ax.barh(i, low - base, left=base, color="tab:blue")
        ax.barh(i, high - base, left=base, color="tab:orange")
        ax.text(low, i, f"{r['low']} ({low:.1f}x) ", ha="right", va="center", fontsize=7)
        ax.text(high, i, f" {r['high']} ({high:.1f}x)", ha="left", va="center", fontsize=7)
    ax.axvline(base, color="k", lw=1)
    ax.set_yticks(range(len(sens)), sens["assumption"], fontsize=8)
    ax.invert_yaxis()
    ax.set_xscale("log")
    lo, hi = float(sens["multiple_low"].min()), float(sens["multiple_high"].max())
    ax.set_xlim(lo / 3, hi * 3)
    ax.set_xlabel(f"training compute (x GPT-3 175B); base {base:.2f}x")
    ax.set_title("Sensitivity: one assumption at a time (blue low, orange high)", fontsize=10)
    return _save(fig, path)


def _native_video(sc: TrainingScenario) -> VideoSpec:
    """The preset's native clip when the scenario's model is a preset, else the main stage's first bucket."""
    if sc.model.name in preset_names():
        return load_preset(sc.model.name).video
    stage = next(s for s in sc.stages if s.name == estimate_training(sc).main_stage)
    return stage.buckets[0].video(sc.model)


def _md_table(df: pd.DataFrame) -> str:
    return df.to_markdown(index=False, disable_numparse=True)


def _headline_basis(plans: list[ClusterPlan], serving: list[ServingPlan]) -> str:
    """Where the headline's time comes from, in words built from the plans."""
    if all(p.time is not None for p in plans) and all(x.predicted_s is not None for x in serving):
        t = plans[0].time
        assert t is not None
        return (f"time predicted by the per-op time model, {t.attention_kernel} attention, {t.precision}: every "
                "training sample's DiT passes, recomputation and optimizer share, the scenario written as a recipe "
                "and timed by the recipe time path at each stage's fastest fitting layout (parallel efficiency " +
                "; ".join(
                    f"{p.cluster.gpu} {p.efficiency:.0%}" for p in plans) + ", section 4); inference the same model "
                "per video; MFU and HFU are what the prediction implies; section 10 shows where the time goes")
    return "; ".join([f"{p.cluster.gpu} training: {p.time_basis}" for p in plans]
                     + [f"{x.gpu.key} inference: {x.time_basis}" for x in serving])


def write_report(scenario: str | TrainingScenario, out_dir: Path, gpus: int = 4096,
                 progress: Callable[[str], None] | None = None, calibration: bool = True) -> list[Path]:
    """Write report.md, report.html and the figures for ``scenario`` into ``out_dir``; return the paths."""
    sc = load_scenario(scenario) if isinstance(scenario, str) else scenario
    out_dir.mkdir(parents=True, exist_ok=True)
    step = progress or (lambda _: None)
    step("training estimate")
    est = estimate_training(sc)
    clusters = [Cluster(gpu=g, count=gpus) for g in REPORT_GPUS]  # each GPU resolved once, here
    times = {c.gpu: predict_training(est, c.profile)[0] for c in clusters}  # the time model, once per GPU
    plans = [plan_cluster(est, c, time=times[c.gpu]) for c in clusters]
    video = _native_video(sc)
    inf = estimate_inference(sc.model, video)
    serving = [plan_serving(inf, c.profile) for c in clusters]
    figs: dict[str, Path] = {}
    step("heatmap")
    figs["heatmap"] = fig_heatmap(sc, out_dir / "fig2_heatmap.png")
    step("components")
    figs["components"] = fig_components(sc, out_dir / "fig3_components.png")
    step("days vs cluster size")
    figs["days"], days_df = fig_days(est, out_dir / "fig4_days.png", times=times)
    first_gpu = str(days_df["gpu"].iloc[0])
    first = days_df[days_df["gpu"] == first_gpu]
    days_md = pd.DataFrame({"GPUs": [fmt_int(x) for x in first["gpus"]],
                            "ideal days": [f"{x:,.1f}" for x in first["ideal_days"]],
                            "predicted days": [f"{x:,.1f}" for x in first["days"]],
                            "parallel efficiency": [f"{x:.0%}" for x in first["efficiency"]],
                            f"{est.main_stage} layout (global batch)": [
                                f"{lay} ({b:,})" if lay else "ideal" for lay, b in
                                zip(first["main_stage_layout"], first["main_stage_global_batch"], strict=True)]})
    step("memory layouts")
    figs["memory"] = fig_memory(sc.model, video, out_dir / "fig5_memory.png", gpus=gpus)
    if calibration:
        step("calibration")
        figs["calibration"] = fig_calibration(out_dir / "fig6_calibration.png")
    step("sensitivity")
    sens = sensitivity(sc)
    figs["tornado"] = fig_tornado(sens, out_dir / "fig7_tornado.png")
    m, v = sc.model, video
    sampling = f"{inf.settings.steps} steps, {'CFG pair' if inf.settings.cfg else 'no CFG pair'}"
    headline = pd.DataFrame({
        "GPU": [p.cluster.gpu for p in plans], "GPUs": [fmt_int(p.cluster.count) for p in plans],
        "MFU": [f"{p.mfu:.2f}" for p in plans], "HFU": [f"{p.hfu:.2f}" for p in plans],
        "parallel eff.": [f"{p.efficiency:.0%}" for p in plans],
        "wall clock": [fmt_duration_days(p.days) for p in plans],
        "GPU-days": [fmt_int(p.gpu_days) for p in plans], "cost": [fmt_usd(p.cost_usd) for p in plans],
        "energy": [fmt_mwh(p.energy_mwh) for p in plans],
        "inference $/video-minute": [fmt_usd(s.cost_per_video_minute_usd) for s in serving]})
    stages = est.by_stage()
    stage_md = pd.DataFrame({"stage": stages["stage"], "samples": [fmt_sci(x) for x in stages["samples"]],
                             "model FLOPs": [fmt_sci(x) for x in stages["model_flops"]],
                             "x GPT-3": [fmt_multiple(x) for x in stages["gpt3_multiple"]]})
    published_md = ""
    if sc.model.name == "sora":  # the published figures are Sora estimates: compare only Sora plans (as the CLI)
        published = published_estimates(est)
        pub_md = pd.DataFrame({"source": published["source"], "FLOPs": [fmt_sci(x) for x in published["flops"]],
                               "x GPT-3": [fmt_multiple(x) for x in published["gpt3_multiple"]],
                               "under our model": published["reading"]})
        pi = published_inference()
        table = pd.DataFrame({
            "source": pi["source"],
            "video-minutes per H100-hour": [f"{x:.3g}" for x in pi["video_minutes_per_h100_hour"]],
            "FLOPs per video-minute": [fmt_sci(x) for x in pi["flops_per_video_minute"]], "reading": pi["reading"]})
        published_md = ("\nPublished Sora estimates under this model:\n\n" + _md_table(pub_md) + "\n\n"
                        "Published inference estimate under this model:\n\n" + _md_table(table) + "\n")
    assumptions = pd.DataFrame({"assumption": list(sc.assumptions), "value / source": list(sc.assumptions.values())})
    extra = pd.DataFrame({"assumption": ["checkpointing", "latents / text", "GPU catalog", "time", "batches", "PUE",
                                         "inference"],
                          "value / source": [sc.checkpointing,
                                             f"VAE on the fly: {sc.vae_on_the_fly}; "
                                             f"text on the fly: {sc.text_on_the_fly}",
                                             "sora_compute/hardware/profiles/ (vendor datasheets; prices assumed)",
                                             "; ".join(f"{p.cluster.gpu}: {p.time_basis}" for p in plans),
                                             f"ASSUMED: micro-batches of at least {ASSUMED_MICRO_BATCH_TOKENS:,} "
                                             f"tokens, global batches of {ASSUMED_GLOBAL_BATCH_TOKENS:,} tokens "
                                             "(planning/training_time.py)",
                                             f"{plans[0].cluster.pue:g}", f"{sampling}, {_decode_basis(inf)}"]})
    vae_shape = f"{m.vae.temporal_compression}x{m.vae.spatial_compression}x{m.vae.spatial_compression}"
    md = f"""# Capacity plan: {sc.name}

Generated by sora-compute from `sora-compute report --scenario {sc.name}`. Units: FLOPs = 2 x MACs;
memory in GiB (2^30 bytes); costs in USD at the catalog's assumed rental prices.

Model: {m.name} preset, DiT {dit_params(m.dit) / 1e9:.2f}B parameters ({m.dit.depth} blocks x {m.dit.hidden_size}),
{m.dit.conditioning}, {m.dit.attention_layout} attention; VAE {vae_shape}
({m.vae.latent_channels} channels); native clip {v.width}x{v.height}, {v.num_frames} frames at {v.fps:g} fps
= {Workload.of(m, v).tokens:,} video tokens.

## 1. Headline

- **Training compute: {fmt_flops(est.model_flops)} = {fmt_multiple(est.gpt3_multiple)} GPT-3 175B**
  ({fmt_sci(GPT3_PAPER_FLOPS)} FLOPs, Brown et al. 2020 Table D.1; {fmt_multiple(est.gpt3_multiple_6nd)} GPT-3 counted
  by 6·N·D). Hardware FLOPs with {sc.checkpointing} recomputation: {fmt_flops(est.hardware_flops)}.
  A 6·N·D count of the same plan says {fmt_multiple(est.six_nd_multiple)}: it leaves out attention.
- **Inference: {fmt_flops(inf.flops_per_video)} per {v.duration_s:.3g} s clip,
  {fmt_flops(inf.flops_per_minute)} per minute of video** ({sampling}).

{_md_table(stage_md)}

Clusters of {gpus:,} GPUs ({_headline_basis(plans, serving)}):

{_md_table(headline)}

## 2. Training compute over resolution x duration

![heatmap]({figs['heatmap'].name})

## 3. Where the FLOPs go

![components]({figs['components'].name})

## 4. Days to train vs cluster size

![days]({figs['days'].name})

On {first_gpu}: days = each stage's predicted GPU-seconds / (GPUs x parallel efficiency), the efficiency
being the best fitting layout's (layout search pinned to the scenario's checkpointing, the time model's micro-batch,
at the stage's global batch, fixed as the cluster grows) ideal / predicted seconds per sample:

{_md_table(days_md)}

## 5. Memory per GPU for candidate layouts

![memory]({figs['memory'].name})

## 6. Calibration of the FLOPs model

{"![calibration](" + figs['calibration'].name + ")" if "calibration" in figs else "(skipped)"}

## 7. Sensitivity of the GPT-3 multiple

![tornado]({figs['tornado'].name})
{published_md}

## 8. Assumptions

{_md_table(pd.concat([assumptions, extra], ignore_index=True))}
"""
    step("demand")
    demand_md, demand_figs = _demand(sc, out_dir)
    md += "\n" + demand_md
    step("time")
    from sora_compute.report_time import time_section

    time_md, time_figs = time_section(inf, REPORT_GPUS, out_dir, 10, _md_table, training=times, clusters={
        p.cluster.gpu: (p.cluster.count, p.gpu_days) for p in plans if p.time is not None})
    md += "\n" + time_md
    step("serving")
    from sora_compute.report_serving import serving_section

    serving_md, serving_figs = serving_section(inf, REPORT_GPUS[0], 8, out_dir, 11, _md_table)
    md += "\n" + serving_md
    from sora_compute.report_pipeline import pipeline_section

    pipe_md, pipe_figs = pipeline_section(m, v, REPORT_GPUS[0], out_dir, 12, _md_table, 2 if inf.settings.cfg else 1,
                                          inf.settings.steps)
    md += "\n" + pipe_md
    md_path = out_dir / "report.md"
    md_path.write_text(md)
    step("html")
    html_body = markdown.markdown(md, extensions=["tables"])

    def inline(match: re.Match[str]) -> str:
        data = base64.b64encode((out_dir / match.group(1)).read_bytes()).decode()
        return f'src="data:image/png;base64,{data}"'

    html_body = re.sub(r'src="([^"]+\.png)"', inline, html_body)
    html = ("<!doctype html><html><head><meta charset='utf-8'><title>Capacity plan: " + sc.name + "</title>"
            "<style>body{font-family:sans-serif;max-width:980px;margin:2em auto;line-height:1.4}"
            "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:3px 6px;font-size:90%}"
            "img{max-width:100%}</style></head><body>" + html_body + "</body></html>")
    html_path = out_dir / "report.html"
    html_path.write_text(html)
    return [md_path, html_path, *figs.values(), *demand_figs, *time_figs, *serving_figs, *pipe_figs]


def _demand(sc: TrainingScenario, out_dir: Path) -> tuple[str, list[Path]]:
    """Section 9: the factorial-funds-2024 market served by the scenario's model (sora_compute/report_demand.py)."""
    from sora_compute.report_demand import demand_section

    return demand_section(sc, out_dir, number=9)
