"""The report's pipeline-memory section: the verdict on one GPU, and a figure of what is resident at each phase of one
generation (encode text -> denoise -> decode) under each offload mode, allocated and reserved, against the HBM."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from sora_compute.memory.pipeline import GiB, OffloadMode, pipeline_memory  # noqa: E402
from sora_compute.memory.verdict import memory_verdict  # noqa: E402
from sora_compute.specs import ModelSpec, VideoSpec  # noqa: E402

__all__ = ["pipeline_section", "fig_pipeline"]

MODES: tuple[OffloadMode, ...] = ("none", "free_text", "model", "sequential")


def fig_pipeline(model: ModelSpec, video: VideoSpec, gpu: str, path: Path, cfg_batch: int = 2,
                 steps: int = 50) -> tuple[Path, pd.DataFrame]:
    """Stacked bars: allocated GiB by resident tensor and activations per phase, one panel per offload mode; a tick
    at the reserved bytes; the dashed line is the GPU's HBM. Returns the figure and the timelines it draws."""
    frames = []
    fig, axes = plt.subplots(1, len(MODES), figsize=(11, 4), sharey=True)
    for ax, mode in zip(axes, MODES, strict=True):
        pm = pipeline_memory(model, video, gpu, mode, cfg_batch=cfg_batch, steps=steps)
        df = pm.to_frame()
        frames.append(df.assign(offload=mode))
        parts = [c for c in df.columns if c.endswith("[allocated GiB]")]
        bottom = [0.0] * len(df)
        for i, c in enumerate(parts):
            ax.bar(range(len(df)), df[c], bottom=bottom, color=f"C{i}", label=c.replace(" [allocated GiB]", ""))
            bottom = [b + v for b, v in zip(bottom, df[c], strict=True)]
        ax.scatter(range(len(df)), df["reserved_GiB"], marker="_", s=400, color="k", zorder=3,
                   label="reserved (margin, context, workspaces)")
        ax.axhline(pm.capacity_bytes / GiB, color="k", ls="--", lw=1)
        ax.set_xticks(range(len(df)), [p.split(" (")[0] for p in df["phase"]], fontsize=8)
        ax.set_title(f"offload: {mode}\n{pm.transfer_s:,.1f} s host link per video", fontsize=9)
    axes[0].set_ylabel("GiB per GPU (2^30 bytes)")
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(dict(zip(labels, handles, strict=True)).values(), dict(zip(labels, handles, strict=True)).keys(),
               loc="lower center", ncol=4, fontsize=8)
    fig.suptitle(f"{model.name}: one {video.width}x{video.height}, {video.num_frames}-frame video on one {gpu} "
                 "(dashed: HBM)", fontsize=10)
    fig.tight_layout(rect=(0, 0.12, 1, 1))
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path, pd.concat(frames, ignore_index=True)


def pipeline_section(model: ModelSpec, video: VideoSpec, gpu: str, out_dir: Path, number: int,
                     md_table: Callable[[pd.DataFrame], str], cfg_batch: int = 2, steps: int = 50
                     ) -> tuple[str, list[Path]]:
    """Markdown of the section (the verdict first) and its figure."""
    verdict = memory_verdict(model, video, gpu, cfg_batch=cfg_batch, steps=steps)
    path, _ = fig_pipeline(model, video, gpu, out_dir / "pipeline_memory.png", cfg_batch, steps)
    pm = verdict.memory
    df = pm.to_frame()
    shown = pd.DataFrame({"phase": df["phase"], "allocated GiB": df["allocated_GiB"].map("{:,.1f}".format),
                          "reserved GiB": df["reserved_GiB"].map("{:,.1f}".format),
                          "activations of": df["activations of"],
                          "host link s": df["host_link_s"].map("{:,.1f}".format)})
    md = f"""## {number}. Memory over one generation (inference)

**{verdict.line}.**

The timeline {'with that change' if pm is not verdict.asked else 'as run'} (offload {pm.offload}; VAE decode
{pm.decode.label()}):

{md_table(shown)}

![pipeline memory]({path.name})

Allocated bytes are live tensors (weights resident in the phase, text embeddings and latents carried between phases,
the running stage's activation peak); reserved adds the caching allocator's margin, the CUDA context and cuBLAS
workspace ({pm.overheads.sources['allocator_margin'][:60]}...). Host-link time uses {pm.link.name} at
{pm.link.h2d_gbps:g} GB/s.
"""
    return md, [path]
