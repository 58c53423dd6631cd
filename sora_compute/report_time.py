"""The report's time section: where one video's predicted time goes (per GPU, by component and op class), next to
the time at the GPU's planning MFU (the --mfu path), where the training plan's GPU-days go (by pass), and how the
time model fares against published timings."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from sora_compute.evaluate.time import COLUMNS  # noqa: E402
from sora_compute.hardware.profiles import load_profile  # noqa: E402
from sora_compute.planning.cluster import plan_serving  # noqa: E402
from sora_compute.planning.inference import InferenceEstimate  # noqa: E402
from sora_compute.planning.timing import component_records  # noqa: E402
from sora_compute.planning.training_time import TrainingTime  # noqa: E402
from sora_compute.planning.validate import validate  # noqa: E402
from sora_compute.units import fmt_int  # noqa: E402

__all__ = ["time_section", "time_by_class"]

#: Op classes as the figure groups them (the ledger's operator classes).
GROUPS = {"sdpa": "attention core", "linear": "linear (GEMM)", "conv3d": "convolution", "conv2d": "convolution"}


def time_by_class(estimate: InferenceEstimate, gpu: str, kernel: str = "fa2") -> pd.DataFrame:
    """Predicted seconds of one video on one ``gpu`` by component and op class (attention core, linear, convolution,
    memory-bound rest): columns component, group, seconds (the op records of ``timing.component_records``)."""
    rows = []
    for name, _, calls, records in component_records(estimate, load_profile(gpu), "bf16", kernel):
        df = pd.DataFrame.from_records(records, columns=COLUMNS)
        group = df["op"].map(lambda o: GROUPS.get(o, "norms, elementwise, copies"))
        s = (df.assign(group=group).groupby("group")["seconds"].sum() * calls).reset_index()
        rows.append(s.assign(component=name))
    return pd.concat(rows, ignore_index=True)[["component", "group", "seconds"]]


def fig_time(estimate: InferenceEstimate, gpus: tuple[str, ...], path: Path) -> tuple[Path, pd.DataFrame]:
    """Stacked bars: predicted seconds per video by op class, one bar per GPU (log scale would hide the stack)."""
    frames = {g: time_by_class(estimate, g).groupby("group")["seconds"].sum() for g in gpus}
    table = pd.DataFrame(frames).fillna(0.0)
    fig, ax = plt.subplots(figsize=(8, 3.8))
    bottom = pd.Series(0.0, index=table.columns)
    for group, row in table.iterrows():
        ax.bar(table.columns, row / 3600, bottom=bottom / 3600, label=str(group))
        bottom += row
    ax.set_ylabel("hours per video (one GPU)")
    v = estimate.video
    ax.set_title(f"{estimate.model.name}: {v.width}x{v.height}, {v.num_frames} frames, "
                 f"{estimate.settings.steps} steps ({'CFG pair' if estimate.settings.cfg else 'no CFG pair'}), "
                 "predicted time by op class")
    ax.legend(fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path, table


def _training_table(times: Mapping[str, TrainingTime | None],
                    clusters: Mapping[str, tuple[int, float]] | None = None) -> pd.DataFrame:
    """GPU-days of the training plan by part (DiT passes, recomputation, encoders, optimizer) per GPU, with shares
    of the total; with ``clusters`` (GPU -> (GPUs, the cluster plan's GPU-days)) a row for what the cluster's layouts
    add to the one-GPU parts (plan GPU-days - sum of the parts) and the total, the plan's GPU-days."""
    cols: dict[str, list[str]] = {}
    parts: list[str] = []
    count = 0
    for g, t in times.items():
        if t is None:
            continue
        bp = t.by_part()
        days = [float(x) / 86400 for x in bp["gpu_seconds"]]
        parts = [str(x).replace("_", " ") for x in bp["part"]]
        if clusters and g in clusters:
            count, total = clusters[g]
            days += [total - sum(days)]
        total = sum(days)
        cols[g] = [f"{fmt_int(d)} ({d / total:.0%})" for d in days]
        if clusters and g in clusters:
            cols[g].append(fmt_int(total))  # as section 1 prints it
    if clusters and cols:
        parts += [f"parallel overheads on {count:,} GPUs", "total (section 1)"]
    return pd.DataFrame({"part": parts, **cols})


def time_section(estimate: InferenceEstimate, gpus: tuple[str, ...], out_dir: Path, number: int,
                 md_table: Callable[[pd.DataFrame], str],
                 training: Mapping[str, TrainingTime | None] | None = None,
                 clusters: Mapping[str, tuple[int, float]] | None = None) -> tuple[str, list[Path]]:
    """Markdown for the section (numbered ``number``) and the figure it wrote; ``md_table`` renders a DataFrame;
    ``training``: the training plan's predicted times by GPU (a table of GPU-days by part)."""
    path, by_class = fig_time(estimate, gpus, out_dir / "fig10_time.png")
    rows = []
    for g in gpus:
        predicted = plan_serving(estimate, g)
        assumed = plan_serving(estimate, g, predict=False)
        rows.append({"gpu": g, "predicted": f"{predicted.latency_s:,.0f} s", "MFU implied": f"{predicted.mfu:.2f}",
                     "at the planning MFU (--mfu)": f"{assumed.latency_s:,.0f} s ({assumed.mfu:.2f})",
                     "no kernel-table point": f"{predicted.fallback_share:.0%} of the time"})
    shares = by_class / by_class.sum()
    top = {g: (str(shares[g].idxmax()), float(shares[g].max())) for g in gpus}
    run = validate()
    train_md = ""
    if training and any(t is not None for t in training.values()):
        train_md = ("Training, GPU-days of the whole plan by part (predicted; per sample on one GPU: the DiT's "
                    "forward, activation- and weight-gradient passes, the recomputation of its checkpointing policy, "
                    "encoders run on the fly, and the optimizer step's share of its global batch"
                    + ("; then what the cluster's layouts add: exposed communication, pipeline bubble, replicated "
                       "optimizer work and idle GPUs, up to section 1's GPU-days" if clusters else "") + "):\n\n"
                    + md_table(_training_table(training, clusters)) + "\n\n")
    md = (f"## {number}. Where the time goes (predicted)\n\n"
          "Every time in this report comes from the per-op time model (each op at the larger of its compute and "
          "memory time, with efficiencies from published kernel measurements; `sora-compute validate`); `--mfu` "
          "replaces it by FLOPs / (peak x MFU). One video of "
          f"{estimate.model.name} at its native shape on one GPU; the largest share: "
          + "; ".join(f"{g} {top[g][0]} ({top[g][1]:.0%})" for g in gpus) + ".\n\n"
          + md_table(pd.DataFrame(rows)) + "\n\n"
          f"![time by op class]({path.name})\n\n" + train_md +
          f"Against {len(run.compared)} published single-GPU inference timings the time model's mean |error| is "
          f"{run.mean_abs_error:.0%} (the planning MFU's: {run.mfu_mean_abs_error:.0%}; docs/time_model.md gives the "
          "misses and their causes).\n")
    return md, [path]
