"""Forward passes give the right shapes on CPU (images and videos, causal and not) and on meta."""

import torch
from hypothesis import given, settings

from sora_compute import load_preset
from sora_compute.calibration.build import build_dit, build_text_encoder, build_vae
from sora_compute.specs import GenericVAE, ModelSpec, VideoSpec

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
            if te.kind in ("clip", "bert"):  # (token states, pooled vector or None: bert without pooler)
                states, pooled = states
                assert (pooled.shape if pooled is not None else None) == (
                    (2, te.pooled_dim) if te.pooled_dim is not None else None)
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


def test_opensora_vae_frame_rule_and_partial_chunks():
    """Open-Sora 1.2 encodes 17-frame chunks, each padded in front to a multiple of 4 (17 -> 5 latent frames; a
    remainder of r frames -> ceil(r / 4)); decoding cuts the padding again. The counts of a decode to fewer frames
    than the latent could hold (an image: 1 latent frame -> 1 frame) match FlopCounterMode."""
    import numpy as np

    from sora_compute import MATMUL_ONLY, VideoGrid, count_vae_decode
    from sora_compute.calibration.profile import flop_counter_by_module
    from sora_compute.flops import latent_grid
    from sora_compute.specs import DiTSpec, VAESpec

    from .test_params import FAMILY_VAES

    spec: VAESpec = FAMILY_VAES["opensora"][0]
    vae = build_vae(spec, "meta")
    cases = {1: 1, 4: 1, 5: 2, 16: 4, 17: 5, 18: 6, 34: 10, 102: 30, 204: 60}
    for frames, latent in cases.items():
        assert spec.latent_frames(frames) == latent
        z = vae.encode(torch.empty(1, 3, frames, 64, 32, device="meta"))
        assert tuple(z.shape) == (1, 4, latent, 8, 4)
        assert vae.decoder(z, frames).shape[2] == frames
    assert [spec.decoded_frames(n) for n in (1, 5, 6, 30)] == [4, 17, 21, 102]
    model = ModelSpec(dit=DiTSpec(depth=1, hidden_size=8, num_heads=1, in_channels=4), vae=spec)
    grid = VideoGrid(width=np.full(len(cases), 64), height=np.full(len(cases), 32),
                     num_frames=np.array(list(cases), dtype=np.float64))
    assert list(latent_grid(model, grid).frames) == list(cases.values())
    assert [model.snap_frames(f) for f in (0, 1, 100)] == [1, 1, 100]  # any count fits (temporal patch 1)
    for frames in (1, 18):
        z = torch.empty(1, 4, spec.latent_frames(frames), 4, 8, device="meta")
        counted = flop_counter_by_module(vae.decoder, (z, frames))[""]
        video = VideoSpec(width=64, height=32, num_frames=frames)
        assert count_vae_decode(model, video, convention=MATMUL_ONLY).macs == counted


def test_stepvideo_vae_frame_rule_and_chunks():
    """Step-Video's VAE v2 encodes 17-frame chunks causally on their own (17 -> 9 -> 5 -> 3 latent frames), so 204
    frames give 36 latent frames; a remainder chunk of 1 + 8j frames gives 1 + j (the pipeline itself uses 17k frames,
    or 1). Decoding maps 3 -> 17 per chunk. A decode with a 1-frame remainder chunk matches FlopCounterMode."""
    import numpy as np
    import pytest

    from sora_compute import MATMUL_ONLY, VideoGrid, count_vae_decode, count_vae_encode
    from sora_compute.calibration.profile import flop_counter_by_module
    from sora_compute.flops import latent_grid
    from sora_compute.specs import DiTSpec, VAESpec, VideoShapeError

    from .test_params import STEPVIDEO_VAE

    spec: VAESpec = STEPVIDEO_VAE
    vae = build_vae(spec, "meta")
    cases = {1: 1, 9: 2, 17: 3, 18: 4, 26: 5, 34: 6, 102: 18, 204: 36}
    for frames, latent in cases.items():
        assert spec.latent_frames(frames) == latent and spec.decoded_frames(latent) == frames
        z = vae.encode(torch.empty(1, 3, frames, 32, 64, device="meta"))
        assert tuple(z.shape) == (1, 64, latent, 2, 4)
        assert vae.decoder(z).shape[2] == frames
    for bad in (2, 16, 20, 203):
        with pytest.raises(VideoShapeError, match="17k frames"):
            spec.latent_frames(bad)
    model = ModelSpec(dit=DiTSpec(depth=1, hidden_size=8, num_heads=1, in_channels=64, patch_size=(1, 1, 1)), vae=spec)
    grid = VideoGrid(width=np.full(len(cases), 992), height=np.full(len(cases), 544),
                     num_frames=np.array(list(cases), dtype=np.float64))
    assert list(latent_grid(model, grid).frames) == list(cases.values())
    with pytest.raises(VideoShapeError, match="17k"):
        latent_grid(model, VideoGrid(width=np.array([992]), height=np.array([544]), num_frames=np.array([100.0])))
    assert [model.snap_frames(f) for f in (0, 1, 4, 5, 12, 16, 100, 204)] == [1, 1, 1, 9, 9, 17, 102, 204]  # ties up
    assert list(model.snap_frames(np.array([4.0, 100.0]))) == [1.0, 102.0]
    lat = model.latent_shape(VideoSpec(width=992, height=544, num_frames=204))
    assert (lat.frames, lat.height, lat.width, lat.tokens) == (36, 34, 62, 75_888)
    video = VideoSpec(width=64, height=32, num_frames=18)
    z = torch.empty(1, 64, 4, 2, 4, device="meta")
    assert count_vae_decode(model, video, convention=MATMUL_ONLY).macs == flop_counter_by_module(vae.decoder, (z,))[""]
    x = torch.empty(1, 3, 18, 32, 64, device="meta")
    assert count_vae_encode(model, video, convention=MATMUL_ONLY).macs == flop_counter_by_module(vae.encoder, (x,))[""]


def test_wfvae_frame_rule_and_layout():
    """Open-Sora-Plan v1.3's WF-VAE: causal 1 + 4k frames (93 -> 24 latent frames, decoded back to 93), 8x spatial
    (352 x 640 -> 44 x 80), 8 latent channels; the module agrees on meta, and the fixed layout is validated."""
    import pytest

    from sora_compute.specs import VAESpec, VideoShapeError

    from .test_params import WFVAE_VAE

    spec: VAESpec = WFVAE_VAE
    vae = build_vae(spec, "meta")
    for frames, latent in {1: 1, 5: 2, 29: 8, 93: 24}.items():
        assert spec.latent_frames(frames) == latent and spec.decoded_frames(latent) == frames
    z = vae.encoder(torch.empty(1, 3, 93, 352, 640, device="meta"))
    assert tuple(z.shape) == (1, 16, 24, 44, 80)
    assert tuple(vae.decoder(z[:, :8]).shape) == (1, 3, 93, 352, 640)
    for bad in (2, 92, 94):
        with pytest.raises(VideoShapeError, match="1 \\+ 4k"):
            spec.latent_frames(bad)
    for bad in ({"spatial_compression": 16}, {"temporal_compression": 8}, {"block_out_channels": (128, 256, 256)},
                {"energy_flow_channels": (64, 64)}, {"energy_flow_channels": None}, {"causal": False}):
        with pytest.raises(ValueError):
            type(spec)(**{**spec.model_dump(), **bad})
    with pytest.raises(ValueError, match="energy_flow_channels\n  Extra inputs are not permitted"):  # a wfvae field
        GenericVAE(energy_flow_channels=(64, 128))
