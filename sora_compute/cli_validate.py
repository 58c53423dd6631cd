"""The `validate` command's document (sora_compute/cli.py declares its options)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from sora_compute.cli_support import MISSING, Document
from sora_compute.planning.validate import validate as run_validation
from sora_compute.planning.validation import TRAINING_SCOPES, load_validation
from sora_compute.units import fmt_seconds

__all__ = ["validate_document"]


def validate_document(kernel: str, path: Path | None, show_all: bool) -> Document:
    """The document `sora-compute validate` prints: predicted against published, row by row, and the means."""
    run = run_validation(load_validation(path) if path is not None else None, kernel)
    t = run.table
    shown = t if show_all else t[t["status"] == "compared"]
    doc = Document("validate", units={"published_s": "s (wall, as published)", "predicted_s": "s", "mfu_s": "s",
                                      "error": "predicted / published - 1", "mfu_error": "mfu_s / published - 1",
                                      "speedup_*": "one-GPU seconds / these seconds (same source; same model)"})
    doc.query = {"kernel": kernel, "file": str(path) if path is not None else "packaged"}
    counts = t["status"].value_counts()
    single = run.compared
    doc.text(f"{len(t):,} published figures: " + ", ".join(f"{n:,} {k}" for k, n in counts.items()) + ".")
    if len(single):
        worst = single.iloc[int(single["error"].abs().to_numpy().argmax())]
        doc.text(f"Single-GPU inference, {len(single):,} compared: mean |error| {run.mean_abs_error:.1%}, mean "
                 f"error {run.mean_error:+.1%} (attention kernel {kernel}); worst {worst['id']} at "
                 f"{worst['error']:+.0%}. At each GPU's planning MFU instead: mean |error| "
                 f"{run.mfu_mean_abs_error:.1%}. Published figures are reported, never fitted.")
    searched = (t["basis"] == "layout search") if "basis" in t else pd.Series(False, index=t.index)
    trained = t[t["scope"].isin(TRAINING_SCOPES) & (t["status"] == "compared") & ~searched]
    if len(trained):
        ratio = trained["error"] + 1
        under, over = int((ratio < 1).sum()), int((ratio > 1).sum())
        doc.text(f"Training runs and steps predicted by recipe presets, {len(trained):,} compared: predicted / "
                 f"published {ratio.min():.2f}x to {ratio.max():.2f}x, {under:,} under and {over:,} over. "
                 "Data loading, host overhead and waits for the slowest rank's bucket are not modelled, which "
                 "leaves predictions under; see each row's note for the rest.")
    multi = run.multi_gpu
    if len(multi):
        sp = multi.dropna(subset=["speedup_error"])
        doc.text(f"Multi-GPU inference, {len(multi):,} compared by the schedule of the layout each source states: "
                 f"mean |error| {run.multi_gpu_mean_abs_error:.1%}; speedup over the same source's one-GPU run, "
                 f"{len(sp):,} with one: predicted / published - 1 averages {sp['speedup_error'].mean():+.1%} "
                 f"(mean |error| {run.speedup_mean_abs_error:.1%}), which judges the parallel model apart from the "
                 "one-GPU time model.")
    train = t[searched & (t["status"] == "compared")]
    if len(train):
        doc.text(f"Multi-GPU training of presets, {len(train):,} compared by the training layout search (step time): "
                 f"mean |error| {train['error'].abs().mean():.1%}, mean error {train['error'].mean():+.1%}.")
    human = pd.DataFrame({"id": shown["id"], "gpu": shown["gpu"], "gpus": shown["gpus"], "scope": shown["scope"],
                          "published": [fmt_seconds(x) for x in shown["published_s"]],
                          "predicted": [fmt_seconds(x) for x in shown["predicted_s"]],
                          "error": [MISSING if x != x else f"{x:+.0%}" for x in shown["error"]],
                          "at planning MFU": [MISSING if x != x else f"{x:+.0%}" for x in shown["mfu_error"]],
                          "speedup pub/pred": [MISSING if a != a or b != b else f"{a:.2f}x / {b:.2f}x"
                                               for a, b in zip(shown["speedup_published"], shown["speedup_predicted"],
                                                               strict=True)],
                          "note": shown["note"]})
    doc.table("entries", shown.drop(columns=["source"]), human)
    _memory(doc, path, show_all)
    return doc


def _memory(doc: Document, path: Path | None, show_all: bool) -> None:
    """Published peak memory per GPU against the pipeline memory model (allocated and reserved)."""
    from sora_compute.planning.validate_memory import validate_memory

    m = validate_memory(load_validation(path) if path is not None else None)
    if m.empty:
        return
    c = m[m["status"] == "compared"]
    counts = m["status"].value_counts()
    doc.text(f"\nPeak memory per GPU, {len(m):,} published figures: " + ", ".join(f"{n:,} {k}" for k, n in
                                                                              counts.items()) + ".")
    if len(c):
        doc.text(f"Compared with the pipeline memory model (offload and layout as each source states): mean |error| "
                 f"{c['error_allocated'].abs().mean():.1%} against predicted allocated bytes, "
                 f"{c['error_reserved'].abs().mean():.1%} against reserved (mean {c['error_reserved'].mean():+.1%}); "
                 "sources seldom say which they print. Reported, never fitted.")
    shown = m if show_all else c
    human = pd.DataFrame({"id": shown["id"], "gpus": shown["gpus"], "offload": shown["offload"],
                          "published GiB": [f"{x:,.1f}" for x in shown["published_GiB"]],
                          "allocated GiB": [MISSING if x != x else f"{x:,.1f}" for x in shown["allocated_GiB"]],
                          "reserved GiB": [MISSING if x != x else f"{x:,.1f}" for x in shown["reserved_GiB"]],
                          "error (reserved)": [MISSING if x != x else f"{x:+.0%}" for x in shown["error_reserved"]],
                          "note": shown["note"]})
    doc.table("memory", shown, human)
