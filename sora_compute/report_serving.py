"""The report's serving section: latency of one video against the GPUs that generate it (the fastest layout that fits
at each count, from the multi-GPU schedules), beside the ideal split, and published multi-GPU speedups against the
predicted ones (``sora-compute validate``)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from sora_compute.planning.inference import InferenceEstimate  # noqa: E402
from sora_compute.planning.inference_layouts import latency_scaling, search_inference_layouts  # noqa: E402
from sora_compute.planning.validate import ValidationRun, validate  # noqa: E402

__all__ = ["serving_section", "published_series"]


def published_series(run: ValidationRun, min_points: int = 3) -> pd.DataFrame:
    """Multi-GPU validation rows grouped by their one-GPU baseline, series with at least ``min_points`` GPU counts
    (the baseline included): baseline, gpus, speedup_published, speedup_predicted."""
    cols = ["baseline", "gpus", "speedup_published", "speedup_predicted"]
    m = run.multi_gpu.dropna(subset=["speedup_published"])[cols]
    m = m[m.groupby("baseline")["gpus"].transform("nunique") >= min_points - 1]
    ones = pd.DataFrame({"baseline": m["baseline"].unique(), "gpus": 1, "speedup_published": 1.0,
                         "speedup_predicted": 1.0})
    return pd.concat([ones, m], ignore_index=True).sort_values(["baseline", "gpus"], ignore_index=True)


def fig_serving(scaling: pd.DataFrame, series: pd.DataFrame, title: str, path: Path) -> Path:
    """Left: predicted latency per video against GPUs per video, with the ideal split of the one-GPU time. Right:
    published against predicted speedup of the validation series."""
    fig, (ax, bx) = plt.subplots(1, 2, figsize=(10, 3.8))
    g, lat = scaling["gpus_per_video"], scaling["latency_s"]
    ax.plot(g, lat, "o-", label="schedule (fastest layout that fits)")
    ax.plot(g, lat.iloc[0] * g.iloc[0] / g, "--", color="gray", label="ideal split")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("GPUs per video")
    ax.set_ylabel("seconds per video")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    for i, (name, s) in enumerate(series.groupby("baseline", sort=True)):
        color = f"C{i % 10}"
        bx.plot(s["gpus"], s["speedup_published"], "o-", color=color, label=str(name).removesuffix("-1gpu"))
        bx.plot(s["gpus"], s["speedup_predicted"], "x--", color=color)
    top = max(int(series["gpus"].max()) if len(series) else 1, 2)
    bx.plot([1, top], [1, top], ":", color="gray")
    bx.set_xlabel("GPUs (published run)")
    bx.set_ylabel("speedup over one GPU")
    bx.set_title("published (o, solid) vs predicted (x, dashed)", fontsize=9)
    bx.legend(fontsize=6)
    bx.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def serving_section(estimate: InferenceEstimate, gpu: str, gpus: int, out_dir: Path, number: int,
                    md_table: Callable[[pd.DataFrame], str], run: ValidationRun | None = None
                    ) -> tuple[str, list[Path]]:
    """Markdown for the section (numbered ``number``) and its figure: ``estimate`` on 1 .. ``gpus`` GPUs of ``gpu``
    per video, and the validation's multi-GPU series (``run``, default: a fresh ``validate()``)."""
    table = search_inference_layouts(estimate, gpu, gpus)
    scaling = latency_scaling(table)
    run = run if run is not None else validate()
    series = published_series(run)
    v = estimate.video
    title = (f"{estimate.model.name} {v.width}x{v.height}x{v.num_frames}, {estimate.settings.steps} steps on {gpu}")
    path = fig_serving(scaling, series, title, out_dir / f"fig{number}_serving.png")
    rows = pd.DataFrame({"GPUs per video": scaling["gpus_per_video"].astype(str), "layout": scaling["layout"],
                         "seconds per video": scaling["latency_s"].map("{:,.1f}".format),
                         "speedup": scaling["speedup"].map("{:.2f}x".format),
                         "efficiency": scaling["efficiency"].map("{:.0%}".format),
                         "GiB per GPU": scaling["peak_GiB"].map("{:,.1f}".format)})
    fits = int(table["fits"].sum())
    md = (f"## {number}. Serving latency vs GPUs per video (predicted)\n\n"
          f"One video of {title}: the fastest layout that fits at each GPU count ({len(table)} layouts of up to "
          f"{gpus} GPUs considered, {fits} fit), from the multi-GPU schedules (each GPU's share by the per-op time "
          "model, communication by the collective model, the text encoder serial; `sora-compute serve`).\n\n"
          + (md_table(rows) if len(rows) else "(no layout fits)") + "\n\n"
          f"![serving latency]({path.name})\n\n"
          f"Against {len(run.multi_gpu)} published multi-GPU timings the schedules' mean |error| is "
          f"{run.multi_gpu_mean_abs_error:.0%}; the predicted speedup over the same source's one-GPU run is off by "
          f"{run.speedup_mean_abs_error:.0%} on average (|predicted / published - 1|), which judges the parallel model "
          "apart from the one-GPU time model. Published figures are reported, never fitted.\n")
    return md, [path]
