"""The report's pipeline-memory section: the verdict first, the timeline table and the figure."""

from sora_compute.memory.verdict import memory_verdict
from sora_compute.presets import load_preset
from sora_compute.report_pipeline import MODES, fig_pipeline, pipeline_section


def test_pipeline_section_leads_with_the_verdict(tmp_path):
    p = load_preset("wan2.1-1.3b")
    md, figs = pipeline_section(p.model, p.video, "rtx-4090", tmp_path, 11, lambda d: d.to_markdown(index=False))
    line = memory_verdict(p.model, p.video, "rtx-4090").line
    assert md.splitlines()[2] == f"**{line}.**"
    assert figs[0].exists() and figs[0].stat().st_size > 10_000


def test_pipeline_figure_draws_every_mode(tmp_path):
    p = load_preset("wan2.1-1.3b")
    _, df = fig_pipeline(p.model, p.video, "h100-sxm", tmp_path / "f.png")
    assert list(dict.fromkeys(df["offload"])) == list(MODES) and len(df) == 3 * len(MODES)
