"""Report generation on a small scenario: files exist, figures are valid PNGs, markdown links resolve."""

import re

from sora_compute import DataBucket, TrainingScenario, TrainingStage, load_preset
from sora_compute.report import write_report

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def test_report_on_a_small_scenario(tmp_path):
    model = load_preset("dit-s-2").model.model_copy(update={"name": "my-image-dit"})  # not a preset name
    sc = TrainingScenario(name="dit-s-2-demo", model=model, stages=(
        TrainingStage(name="imagenet-256", steps=1000, global_batch=256,
                      buckets=(DataBucket(width=256, height=256, num_frames=1),)),))
    written = write_report(sc, tmp_path, gpus=64, calibration=False)
    md = (tmp_path / "report.md").read_text()
    html = (tmp_path / "report.html").read_text()
    pngs = [p for p in written if p.suffix == ".png"]
    assert len(pngs) == 8  # heatmap, components, days, memory, tornado, time, serving, pipeline memory (calibration,
    # demand skipped)
    for p in pngs:
        assert p.read_bytes()[:8] == PNG_MAGIC and p.stat().st_size > 10_000
    links = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", md)
    assert links and all((tmp_path / link).exists() for link in links)
    assert "x GPT-3 175B" in md and "## 8. Assumptions" in md and "## 10. Where the time goes" in md
    assert "## 11. Serving latency vs GPUs per video" in md
    assert "## 12. Memory over one generation (inference)" in md
    assert html.count("data:image/png;base64,") == len(links)  # self-contained
    # the headline's time is the time model's, and section 10 says where the training GPU-days go
    assert "time predicted by the per-op time model" in md and "GPU-days of the whole plan by part" in md
    # ... and its parts add up to the headline's GPU-days (one training-time source: the one-GPU parts plus what the
    # cluster's layouts add)
    head = next(line for line in md.splitlines() if line.startswith("| h100-sxm | 64 "))
    cells = [c.strip() for c in head.split("|")]
    total = next(line for line in md.splitlines() if line.startswith("| total (section 1)"))
    assert [c.strip() for c in total.split("|")][2] == cells[7]  # GPU | GPUs | MFU | HFU | eff. | wall | GPU-days
    assert "| parallel overheads on 64 GPUs" in md
