"""``sora-compute calibrate --device``: kernel microbenchmarks of the local device into a measured hardware profile
(the torch side is sora_compute/calibration/microbench.py, imported only when the command runs)."""

from __future__ import annotations

import sys
from pathlib import Path

import click
import pandas as pd

from sora_compute.cli_support import Document, UsageError, progress_hidden

__all__ = ["calibrate_device"]


def calibrate_device(device: str, out_path: Path | None, full: bool, threads: int, fmt: str) -> None:
    """``calibrate --device``: microbenchmarks into a measured hardware profile."""
    if device == "cuda":
        raise UsageError("--device cuda: no CUDA device here (torch CPU build); run it on a GPU machine")
    if out_path is not None and out_path.is_dir():
        raise UsageError(f"--out: {str(out_path)!r} is a folder; give the profile file to write")
    from sora_compute.calibration import microbench as mb  # imports torch: only when asked

    if out_path is not None:
        out_path.parent.mkdir(parents=True, exist_ok=True)  # fail on an unwritable place before measuring
    steps = ["gemm", "attention", "conv3d", "memory"]
    with click.progressbar(length=len(steps), label="measuring", file=sys.stderr, hidden=progress_hidden()) as bar:
        prof = mb.measure_profile(device, full=full, threads=threads, log=lambda _: bar.update(1))
    written = mb.write_profile(prof, out_path if out_path is not None else mb.default_out(prof))
    table = prof.tables[0]
    best = {"gemm": max(p.tflops for p in table.gemm)}
    rows = [("gemm", len(table.gemm), f"best {best['gemm'] * 1e3:.1f} GFLOP/s")]
    if table.gemm_warm:
        rows.append(("gemm (weights warm)", len(table.gemm_warm),
                     f"best {max(p.tflops for p in table.gemm_warm) * 1e3:.1f} GFLOP/s"))
    for kernel in dict.fromkeys(p.kernel for p in table.attention):
        pts = [p for p in table.attention if p.kernel == kernel]
        rows.append((f"attention {kernel}", len(pts), f"best {max(p.tflops for p in pts) * 1e3:.1f} GFLOP/s"))
    if table.conv3d:
        rows.append(("conv3d", len(table.conv3d), f"best {max(p.tflops for p in table.conv3d) * 1e3:.1f} GFLOP/s"))
    if table.conv3d_warm:
        rows.append(("conv3d (weights warm)", len(table.conv3d_warm),
                     f"best {max(p.tflops for p in table.conv3d_warm) * 1e3:.1f} GFLOP/s"))
    for op in dict.fromkeys(p.op for p in table.memory):
        mem = [p for p in table.memory if p.op == op]
        rows.append((op, len(mem), f"best {max(p.tbps for p in mem) * 1e3:.2f} GB/s"))
    df = pd.DataFrame(rows, columns=["kernel", "points", "throughput"])
    assert prof.measured is not None
    doc = Document("calibrate", query={"device": device, "full": full, "threads": threads, "out": str(written)},
                   units={"throughput": "GFLOP/s (2 FLOPs per MAC) or GB/s read + written"})
    doc.table("kernels", df, df)
    doc.text(f"{prof.name}: peak {prof.peak_flops('fp32') / 1e9:.1f} GFLOP/s fp32 (best GEMM), "
             f"{prof.hbm_tbps * 1e3:.2f} GB/s streaming, {prof.launch_overhead_us:.1f} us per op"
             f"{f', last-level cache {prof.llc_mib:g} MiB' if prof.llc_mib is not None else ''}; "
             f"{prof.measured.seconds:.0f} s with {threads} thread(s)")
    doc.text(f"wrote {written}")
    doc.data("profile", {"key": prof.key, "peak_tflops_fp32": prof.peak_flops("fp32") / 1e12,
                         "hbm_tbps": prof.hbm_tbps, "launch_overhead_us": prof.launch_overhead_us})
    doc.data("written", [str(written)])
    doc.emit(fmt)
