"""Forward passes give the right shapes on CPU (images and videos, causal and not) and on meta."""

import torch
from hypothesis import given, settings

from sora_compute import load_preset
from sora_compute.build import build_dit, build_text_encoder, build_vae
from sora_compute.specs import ModelSpec, VideoSpec

from .strategies import dit_inputs, models_and_videos


@settings(max_examples=15)
@given(models_and_videos())
def test_pipeline_shapes_on_cpu(mv: tuple[ModelSpec, VideoSpec]):
    model, video = mv
    latent = model.latent_shape(video)
    torch.manual_seed(0)
    vae, dit = build_vae(model.vae), build_dit(model.dit)
    x = torch.randn(2, model.vae.in_channels, video.num_frames, video.height, video.width)
    with torch.no_grad():
        z = vae.encode(x)
        assert z.shape == (2, model.vae.latent_channels, latent.frames, latent.height, latent.width)
        out = dit(*dit_inputs(model.dit, z, max(model.num_text_tokens, 1)))
        assert out.shape == (2, model.dit.out_channels, latent.frames, latent.height, latent.width)
        assert torch.isfinite(out).all()
        assert vae.decode(z).shape == x.shape
        if model.text_encoder is not None:
            te = model.text_encoder
            ids = torch.randint(0, te.vocab_size, (2, model.num_text_tokens))
            states = build_text_encoder(te)(ids)
            if te.kind == "clip":  # (token states, pooled vector)
                states, pooled = states
                assert pooled.shape == (2, te.pooled_dim)
            assert states.shape == (2, model.num_text_tokens, te.d_model)


def test_image_dit_is_a_one_frame_video():
    p = load_preset("dit-s-8")
    dit = build_dit(p.model.dit)
    z = torch.randn(3, 4, 1, 32, 32)
    assert dit(z, torch.rand(3), torch.tensor([1, 2, 1000])).shape == (3, 8, 1, 32, 32)


def test_causal_vae_frame_counts():
    p = load_preset("sora")
    vae = build_vae(p.model.vae, "meta")
    for frames, latent in ((1, 1), (5, 2), (17, 5), (241, 61)):
        assert p.model.vae.latent_frames(frames) == latent
        z = vae.encode(torch.empty(1, 3, frames, 64, 64, device="meta"))
        assert tuple(z.shape) == (1, 16, latent, 8, 8)
        assert vae.decode(z).shape[2] == frames


def test_sora_scale_forward_on_meta():
    """The full Sora preset (219,600 video tokens) runs on the meta device without memory."""
    p = load_preset("sora")
    lat = p.model.latent_shape(p.video)
    dit = build_dit(p.model.dit, "meta")
    z = torch.empty(1, 16, lat.frames, lat.height, lat.width, device="meta")
    y = torch.empty(1, p.model.num_text_tokens, 4096, device="meta")
    assert dit(z, torch.empty(1, device="meta"), y).shape == (1, 16, 61, 90, 160)
