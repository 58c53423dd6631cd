"""Invalid specs are rejected with a message that names the field."""

import pytest
from pydantic import ValidationError

from sora_compute import load_preset
from sora_compute.specs import (
    DiTSpec,
    GenericVAE,
    ModelSpec,
    VideoSpec,
    Workload,
    text_encoder_spec,
)

DIT = {"depth": 2, "hidden_size": 64, "num_heads": 4}


def _fails(cls, kwargs, *needles):
    with pytest.raises(ValidationError) as info:
        cls(**kwargs)
    text = str(info.value)
    for needle in needles:
        assert needle in text, text


@pytest.mark.parametrize("field", ["width", "height", "num_frames", "fps"])
def test_video_non_positive(field):
    kwargs = {"width": 64, "height": 64, "num_frames": 8, "fps": 24.0, field: 0}
    _fails(VideoSpec, kwargs, field)


def test_video_duration():
    assert VideoSpec(width=64, height=64, duration_s=10, fps=24).num_frames == 240
    assert VideoSpec(width=64, height=64, duration_s=2.5, fps=30).duration_s == 2.5
    _fails(VideoSpec, {"width": 64, "height": 64, "duration_s": -1}, "duration_s")
    _fails(VideoSpec, {"width": 64, "height": 64, "duration_s": 1, "num_frames": 24}, "not both")


@pytest.mark.parametrize("field", ["depth", "hidden_size", "num_heads", "in_channels"])
def test_dit_non_positive(field):
    _fails(DiTSpec, {**DIT, field: 0}, field)


def test_dit_heads_must_divide_hidden():
    _fails(DiTSpec, {**DIT, "num_heads": 5}, "num_heads=5", "hidden_size=64")


def test_dit_unknown_modes():
    _fails(DiTSpec, {**DIT, "attention_layout": "diagonal"}, "attention_layout", "full", "factorized")
    _fails(DiTSpec, {**DIT, "conditioning": "audio"}, "conditioning")
    _fails(DiTSpec, {**DIT, "conditioning": "joint", "attention_layout": "factorized"}, "joint", "full")
    _fails(DiTSpec, {**DIT, "patch_size": (1, 0, 2)}, "patch_size")


def test_vae_layout_errors():
    _fails(GenericVAE, {"spatial_compression": 6}, "spatial_compression", "power of two")
    _fails(GenericVAE, {"spatial_compression": 32}, "spatial_compression=32", "block_out_channels")
    _fails(GenericVAE, {"temporal_compression": 3}, "temporal_compression")
    _fails(GenericVAE, {"norm_groups": 24}, "norm_groups=24")
    _fails(GenericVAE, {"block_out_channels": (64, -1)}, "block_out_channels")
    _fails(GenericVAE, {"latent_channels": 0}, "latent_channels")


def test_text_encoder_errors():
    _fails(text_encoder_spec, {"d_model": -4}, "d_model")
    _fails(text_encoder_spec, {"max_tokens": 0}, "max_tokens")
    _fails(text_encoder_spec, {"kind": "clip", "vocab_size": 8, "num_layers": 1, "d_model": 8, "num_heads": 2,
                               "d_ff": 8, "max_tokens": 0}, "clip.max_tokens")


def test_specs_are_immutable_and_strict():
    spec = DiTSpec(**DIT)
    with pytest.raises(ValidationError):
        spec.depth = 3  # type: ignore[misc]
    _fails(DiTSpec, {**DIT, "dept": 3}, "dept")


def test_model_consistency_errors():
    vae = GenericVAE()
    _fails(ModelSpec, {"dit": {**DIT, "in_channels": 4}, "vae": vae}, "in_channels=4", "latent_channels=16")
    _fails(ModelSpec, {"dit": {**DIT, "in_channels": 16, "conditioning": "joint"}, "vae": vae}, "text_encoder")


def test_video_shape_not_divisible_names_dimension_and_fix():
    model = load_preset("sora").model
    _fails(Workload, {"model": model, "video": {"width": 1920, "height": 1080, "num_frames": 241}},
           "height=1080", "16", "1072 or 1088")
    _fails(Workload, {"model": model, "video": {"width": 1000, "height": 720, "num_frames": 241}},
           "width=1000", "992 or 1008")
    _fails(Workload, {"model": model, "video": {"width": 1280, "height": 720, "num_frames": 240}},
           "num_frames=240", "237 or 241")
    assert Workload(model=model, video=VideoSpec(width=1280, height=720, num_frames=241)).latent.tokens == 219_600


def test_non_causal_frames():
    vae = GenericVAE(causal=False)
    assert vae.latent_frames(16) == 4
    with pytest.raises(ValueError, match="num_frames=10.*8 or 12"):
        vae.latent_frames(10)
