"""The report's demand section: the factorial-funds-2024 market served by the scenario's model, with two figures
(GPUs vs AI share per platform and GPU type; cumulative inference vs training compute over time)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from sora_compute.planning.demand import DemandEstimate, estimate_demand  # noqa: E402
from sora_compute.planning.demand_analysis import cumulative_compute, gpus_vs_share  # noqa: E402
from sora_compute.planning.demand_spec import DemandScenario, TrainingReference, load_demand  # noqa: E402
from sora_compute.planning.scenarios import TrainingScenario  # noqa: E402
from sora_compute.planning.training import estimate_training  # noqa: E402
from sora_compute.presets import load_preset, preset_names  # noqa: E402
from sora_compute.units import fmt_sci  # noqa: E402

__all__ = ["DEMAND_PRESET", "DEMAND_GPUS", "report_market", "fig_demand_share", "fig_break_even", "demand_section"]

DEMAND_PRESET = "factorial-funds-2024"
DEMAND_GPUS = ("h100-sxm", "b200")


def report_market(sc: TrainingScenario) -> DemandScenario | None:
    """The report's market: the demand preset served by the scenario's model, weighed against the scenario's own
    training run (None when the model is not a video preset). The published throughput and its checks stay only
    for the sora preset, whose estimate they are."""
    name = sc.model.name
    if name not in preset_names() or load_preset(name).video.num_frames == 1:
        return None
    base = load_demand(DEMAND_PRESET)
    own = TrainingReference(name=f"{sc.name} (this scenario)", flops=estimate_training(sc).model_flops)
    update: dict[str, object] = {"model": name, "training": (own,)}
    if name != "sora":
        update.update({"published_throughput": None, "published": None, "gap_steps": ()})
    return base.model_copy(update=update)


def fig_demand_share(market: DemandScenario, path: Path) -> Path:
    """Average GPUs each platform needs alone vs its AI-generated share, per GPU type."""
    shares = np.linspace(0.05, 1.0, 20)
    df = gpus_vs_share(market, DEMAND_GPUS, list(shares))
    fig, ax = plt.subplots(figsize=(7.5, 4.2))
    colors = {s.name: f"C{i}" for i, s in enumerate(market.sources)}
    styles = dict(zip(DEMAND_GPUS, ("-", "--", ":", "-."), strict=False))
    for (src, gpu), g in df.groupby(["source", "gpu"], sort=False):
        ax.plot(100 * g["ai_share"], g["gpus_avg"], marker=".", ls=styles[str(gpu)], color=colors[str(src)],
                label=f"{src}, {gpu}")
    for s in market.sources:
        ax.axvline(100 * s.ai_share, color="grey", lw=0.6, ls=":")
    ax.set_yscale("log")
    ax.set_xlabel("AI-generated share of the platform's minutes (%)")
    ax.set_ylabel("GPUs on average")
    ax.legend(fontsize=8)
    ax.set_title(f"{market.model}: GPUs vs AI share ({market.candidates:g} candidates, "
                 f"{market.utilisation:.0%} utilisation)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def fig_break_even(est: DemandEstimate, path: Path) -> Path:
    """Cumulative inference FLOPs of the market over time, per basis, against each training run."""
    be = est.break_even
    days_max = max(2.0, 4 * float(np.nanmax(be["break_even_days"]))) if len(be) else 30.0
    days = list(np.geomspace(days_max / 1e4, days_max, 60))
    cum = cumulative_compute(est, days)
    fig, ax = plt.subplots(figsize=(7.5, 4.2))
    for basis, g in cum.groupby("basis", sort=False):
        ax.loglog(g["day"], g["inference_flops"], label=f"inference: {basis}")
    for name, flops in dict(zip(be["training"], be["training_flops"], strict=True)).items():
        ax.axhline(flops, color="black", lw=0.8, ls="--")
        ax.text(days[0], flops * 1.15, f"one training run: {name}", fontsize=7)
    ax.set_xlabel("days of this market")
    ax.set_ylabel("cumulative FLOPs")
    ax.legend(fontsize=8)
    ax.set_title("Cumulative inference vs one training run", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _md(df: pd.DataFrame) -> str:
    return df.to_markdown(index=False, disable_numparse=True)


def demand_section(sc: TrainingScenario, out_dir: Path, number: int) -> tuple[str, list[Path]]:
    """Markdown for the demand section (numbered ``number``) and the figures it wrote."""
    market = report_market(sc)
    title = f"## {number}. Compute demand: serving a market of generated video\n\n"
    if market is None:
        return title + "(skipped: the scenario's model is not a video preset)\n", []
    est = estimate_demand(market)
    figs = [fig_demand_share(market, out_dir / "fig8_demand_share.png"),
            fig_break_even(est, out_dir / "fig9_demand_break_even.png")]
    s = est.summary
    table = pd.DataFrame({"basis": s["basis"],
                          "video-min per GPU-hour": [f"{x:.3g}" for x in s["video_minutes_per_gpu_hour"]],
                          "GPUs average": [f"{x:,}" for x in s["gpus_avg"]],
                          "GPUs peak": [f"{x:,}" for x in s["gpus_peak"]],
                          "MW peak": [f"{x:,.0f}" for x in s["mw_peak"]],
                          "GWh a year": [f"{x:,.0f}" for x in s["gwh_per_year"]]})
    be = est.break_even
    be_md = pd.DataFrame({"basis": be["kind"], "training run": be["training"],
                          "training FLOPs": [fmt_sci(x) for x in be["training_flops"]],
                          "break-even minutes": [f"{x:,.0f}" for x in be["break_even_minutes"]],
                          "days of this market": [f"{x:.3g}" for x in be["break_even_days"]],
                          "training GPUs": [f"{x:,} in {d:.3g} days" for x, d in zip(be["training_gpus"],
                                                                                    be["training_days"], strict=True)]})
    sources = " + ".join(f"{x.name} {x.minutes / 1e6:,.4g}M min/day x {x.ai_share:.0%}" for x in market.sources)
    md = (f"{title}The {DEMAND_PRESET} market ({market.source}): {sources} = "
          f"{est.kept_minutes_per_day / 1e6:,.4g}M AI-generated minutes kept a day, {market.candidates:g} candidates "
          f"per kept video, peak {market.peak_to_average:g}x the average, {market.utilisation:.0%} utilisation; "
          f"served by {market.model} ({s['detail'].iloc[0]}). `sora-compute demand` prints the full analysis "
          "(published figures recomputed, the throughput gap, sensitivity).\n\n"
          f"{_md(table)}\n\n{_md(be_md)}\n\n![GPUs vs AI share]({figs[0].name})\n\n"
          f"![inference vs training]({figs[1].name})\n")
    return md, figs
