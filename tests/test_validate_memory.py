"""Published peak memory (validation.yaml) against the pipeline memory model: the runs' settings read as the sources
state them, the predictions built from the model (never fitted to the published figures)."""

import pytest

from sora_compute.hardware import resolve_gpu
from sora_compute.memory.pipeline import GiB, overheads, pipeline_memory
from sora_compute.planning.validate_memory import decode_of, offload_of, validate_memory
from sora_compute.planning.validation import load_validation
from sora_compute.presets import load_preset
from sora_compute.specs.vae.schedule import DecodeSchedule


@pytest.fixture(scope="module")
def table():
    return validate_memory()


def _entry(entry_id):
    return next(e for e in load_validation().entries if e.id == entry_id)


def test_offload_read_from_the_sources_settings():
    """Wan's --t5_cpu and --offload_model True, diffusers' sequential CPU offload, a plain run."""
    assert offload_of(_entry("wan-t2v-1.3b-rtx-4090-1gpu")) == "text_on_cpu"
    assert offload_of(_entry("wan-t2v-14b-h800-1gpu")) == "free_text"
    assert offload_of(_entry("torchao-cogvideox-5b-h100-sxm-bf16")) == "none"


def test_decode_read_from_the_sources_settings():
    """torchao's CogVideoX runs say "no VAE tiling": the whole latent, in diffusers' default frame batches of 2 latent
    frames; a source silent on it gets the official schedule (Wan's chunks)."""
    cog = decode_of(_entry("torchao-cogvideox-5b-h100-sxm-bf16"), "cogvideox")
    assert (cog.mode, cog.tile_px, cog.frame_batch) == ("whole", None, 2)
    assert decode_of(_entry("wan-t2v-1.3b-rtx-4090-1gpu"), "wan").mode == "chunked"


def test_every_memory_figure_has_a_row_and_compared_rows_are_the_models(table):
    """One row per published peak-memory figure; a compared row is the pipeline model's allocated and reserved peak for
    the run as stated (here torchao's CogVideoX-5B on an A100: no offload, CFG batched, bf16, no VAE tiling: the whole
    latent in frame batches of 2), its error predicted / published - 1."""
    n = sum(e.peak_memory_gib is not None for e in load_validation().entries)
    assert len(table) == n and (table["status"] == "compared").sum() >= 40
    row = table.set_index("id").loc["torchao-cogvideox-5b-a100-80gb-bf16"]
    p = load_preset("cogvideox-5b")  # 720x480, 49 frames (the source's run)
    pm = pipeline_memory(p.model, p.video.model_copy(update={"width": 720, "height": 480, "num_frames": 49}),
                         "a100-80gb", "none", DecodeSchedule(frame_batch=2), cfg_batch=2, steps=50)
    assert row["allocated_GiB"] == pytest.approx(pm.allocated_peak / GiB)
    assert row["reserved_GiB"] == pytest.approx(overheads(resolve_gpu("a100-80gb")).reserved(pm.allocated_peak) / GiB)
    assert row["error_reserved"] == pytest.approx(row["reserved_GiB"] / row["published_GiB"] - 1)


def test_validate_prints_the_memory_table():
    from .clirun import main

    r = main("validate", "--format", "json")
    assert r.code == 0
    assert "error_reserved" in r.out
