"""The `calibrate` command's document without --device: the reference models profiled with fvcore and
FlopCounterMode against the analytic counts (sora_compute/cli.py declares its options; cli_device.py measures a
device)."""

from __future__ import annotations

import sys
from importlib import resources
from pathlib import Path

import click

from sora_compute.cli_support import Document, UsageError, progress_hidden

__all__ = ["calibrate_document"]


def calibrate_document(out_path: Path | None, write_record: bool, full: bool, fmt: str) -> Document:
    """Profile the reference models, write the per-module table (and the record with ``write_record``)."""
    if full:
        raise UsageError("--full applies to --device calibration only")
    out_dir = out_path if out_path is not None else Path("reports/calibration")
    if out_dir.exists() and not out_dir.is_dir():
        raise UsageError(f"--out: {str(out_dir)!r} is a file; give a folder")
    from sora_compute.calibration import profile as cal  # imports fvcore and torch.jit: only when asked

    cases = cal.default_cases()
    out_dir.mkdir(parents=True, exist_ok=True)  # fail on an unwritable folder before profiling
    with click.progressbar(length=len(cases), label="profiling", file=sys.stderr, hidden=progress_hidden()) as bar:
        result = cal.calibrate(cases, progress=lambda name: bar.update(1))
    record_path = Path(str(resources.files("sora_compute").joinpath(cal.RECORD_PATH))) if write_record else None
    if record_path is not None:
        record_path.parent.mkdir(parents=True, exist_ok=True)
    written = cal.write_outputs(result, out_dir, record_path)
    s = result.summary()
    rec = result.record()
    odd = result.unexpected_ops()
    doc = Document("calibrate", query={"out": str(out_dir)}, units={"*_rel_err": "relative error per module"})
    doc.table("summary", s, s.assign(worst_fvcore_rel_err=s["worst_fvcore_rel_err"].map("{:.2e}".format),
                                     worst_flopcounter_rel_err=s["worst_flopcounter_rel_err"].map("{:.2e}".format)))
    doc.text(f"worst per-module relative error: fvcore {rec['worst_rel_err']['fvcore']:.2e}, "
             f"FlopCounterMode (meta) {rec['worst_rel_err']['flopcounter']:.2e}; correction factors: none")
    doc.text(f"ops fvcore skipped beyond the elementwise ones: {odd if odd else 'none'}")
    doc.text("wrote " + ", ".join(str(p) for p in written))
    doc.data("worst_rel_err", rec["worst_rel_err"])
    doc.data("written", [str(p) for p in written])
    return doc
