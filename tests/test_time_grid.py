"""The time model over a grid (evaluate/time_grid.py) equals the per-call time model (evaluate/time.py) point by
point: same ledger, same tables, every GPU kind (kernel tables, fallbacks), kernels and dtypes."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sora_compute.evaluate.time import predict_seconds
from sora_compute.evaluate.time_grid import forward_seconds
from sora_compute.flops import VideoGrid, count_dit, count_text_encoder, count_vae_decode
from sora_compute.presets import load_preset
from sora_compute.specs import VideoSpec

CASES = [("wan2.1-1.3b", "h100-sxm", "bf16", "fa2"), ("cogvideox-2b", "a100-80gb", "bf16", "fa2"),
         ("hunyuanvideo", "b200", "bf16", "fa2"), ("mochi-1", "l40s", "bf16", "fa2"),
         ("open-sora-plan", "h100-sxm", "fp8", "fa2"), ("dit-xl-2", "h100-sxm", "bf16", "math"),
         ("ltx-video", "h200", "bf16", "fa3")]


@pytest.mark.parametrize(("name", "gpu", "dtype", "kernel"), CASES)
def test_scalar_shapes_equal_the_per_call_model(name, gpu, dtype, kernel):
    p = load_preset(name)
    for count in (count_dit(p.model, p.video), count_vae_decode(p.model, p.video), count_text_encoder(p.model)):
        one = predict_seconds(count.terms, gpu, dtype, kernel)
        assert forward_seconds(count.terms, gpu, dtype, kernel)[0] == pytest.approx(one, rel=1e-12)


@settings(max_examples=15, deadline=None)
@given(st.lists(st.tuples(st.integers(2, 60), st.integers(2, 40), st.integers(0, 30)), min_size=1, max_size=6),
       st.sampled_from(CASES))
def test_a_grid_equals_the_model_at_each_point(shapes, case):
    name, gpu, dtype, kernel = case
    p = load_preset(name)
    m = p.model
    s = m.vae.spatial_compression * m.dit.patch_size[1]
    videos = [VideoSpec(width=w * s, height=h * s, num_frames=int(m.snap_frames(4 * f + 1))) for w, h, f in shapes]
    grid = VideoGrid(width=np.array([v.width for v in videos], float), height=np.array([v.height for v in videos],
                     float), num_frames=np.array([v.num_frames for v in videos], float))
    got = forward_seconds(count_dit(m, grid).terms, gpu, dtype, kernel)
    want = [predict_seconds(count_dit(m, v).terms, gpu, dtype, kernel) for v in videos]
    np.testing.assert_allclose(got, want, rtol=1e-12)
