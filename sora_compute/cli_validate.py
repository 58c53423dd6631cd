"""The `validate` command's document (sora_compute/cli.py declares its options)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from sora_compute.cli_support import MISSING, Document
from sora_compute.planning.validate import validate as run_validation
from sora_compute.planning.validation import load_validation
from sora_compute.units import fmt_seconds

__all__ = ["validate_document"]


def validate_document(kernel: str, path: Path | None, show_all: bool) -> Document:
    """The document `sora-compute validate` prints: predicted against published, row by row, and the means."""
    run = run_validation(load_validation(path) if path is not None else None, kernel)
    t = run.table
    shown = t if show_all else t[t["status"] == "compared"]
    doc = Document("validate", units={"published_s": "s (wall, as published)", "predicted_s": "s", "mfu_s": "s",
                                      "error": "predicted / published - 1", "mfu_error": "mfu_s / published - 1"})
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
    train = t[(t["status"] == "compared") & (t["scope"] == "training_step")]
    if len(train):
        doc.text(f"Multi-GPU training, {len(train):,} compared (layout search, step time): mean |error| "
                 f"{train['error'].abs().mean():.1%}, mean error {train['error'].mean():+.1%}.")
    human = pd.DataFrame({"id": shown["id"], "gpu": shown["gpu"], "gpus": shown["gpus"], "scope": shown["scope"],
                          "published": [fmt_seconds(x) for x in shown["published_s"]],
                          "predicted": [fmt_seconds(x) for x in shown["predicted_s"]],
                          "error": [MISSING if x != x else f"{x:+.0%}" for x in shown["error"]],
                          "at planning MFU": [MISSING if x != x else f"{x:+.0%}" for x in shown["mfu_error"]],
                          "note": shown["note"]})
    doc.table("entries", shown.drop(columns=["source"]), human)
    return doc
