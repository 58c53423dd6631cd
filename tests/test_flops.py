"""Analytic counts: the DiT paper's table, hand-derived formulas, scaling laws, vectorisation, no overflow."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from sora_compute import FVCORE, MATMUL_ONLY, VideoGrid, count_dit, count_vae_decode, count_video, load_preset
from sora_compute.flops import count_text_encoder, count_vae_encode
from sora_compute.ledger import DiTShape, dit_ledger
from sora_compute.specs import DiTSpec, VideoShapeError, VideoSpec


def dit_terms(spec, grid, text_tokens=0, batch=1):
    """The ledger ops of one DiT forward on a (T, H, W) token grid."""
    return dit_ledger(spec, DiTShape(batch, *grid, text_tokens))

# Peebles & Xie 2022, "Scalable Diffusion Models with Transformers", Table 4 (256x256) and the 512x512
# DiT-XL/2 figure (524.6 Gflops). Their "Gflops" are forward-pass multiply-accumulates (fvcore), VAE excluded
# (author's answer, facebookresearch/DiT issue #14).
PAPER_GMACS_256 = {
    "dit-s-8": 0.36, "dit-s-4": 1.41, "dit-s-2": 6.06,
    "dit-b-8": 1.42, "dit-b-4": 5.56, "dit-b-2": 23.01,
    "dit-l-8": 5.01, "dit-l-4": 19.70, "dit-l-2": 80.71,
    "dit-xl-8": 7.39, "dit-xl-4": 29.05, "dit-xl-2": 118.64,
}


@pytest.mark.parametrize("name, gmacs", PAPER_GMACS_256.items())
def test_dit_paper_table4_gflops_within_1pct(name, gmacs):
    assert count_dit(name).macs / 1e9 == pytest.approx(gmacs, rel=0.01)
    assert load_preset(name).published["gmacs_256"] == gmacs  # the preset carries the same citation


def test_dit_xl_2_at_512_within_1pct():
    assert count_dit("dit-xl-2", VideoSpec.image(512, 512)).macs / 1e9 == pytest.approx(524.6, rel=0.01)


def test_dit_xl_2_by_hand():
    """Hand derivation for DiT-XL/2 at 256 px: N = 256 tokens, d = 1152, m = 4608, 28 blocks."""
    N, d, m, depth = 256, 1152, 4608, 28
    block = (d * 6 * d                                  # adaLN on the conditioning vector
             + N * d * 3 * d + 2 * N * N * d + N * d * d  # qkv, attention core, proj
             + 2 * N * d * m                            # MLP
             + 2 * 4 * N * d)                           # two LayerNorms without affine, 4 per element
    total = (N * 4 * 4 * d                              # patch embed conv: C=4, 2x2 patch
             + 256 * d + d * d                          # timestep MLP
             + depth * block
             + d * 2 * d + 4 * N * d + N * d * 4 * 8)   # final adaLN, norm, linear to 2x2x8
    assert count_dit("dit-xl-2").macs == total


def test_flops_are_twice_macs_and_conventions_differ_by_norms():
    c = count_dit("dit-s-2")
    assert c.flops == 2 * c.macs
    mm = count_dit("dit-s-2", convention=MATMUL_ONLY)
    assert c.macs - mm.macs == c.by_kind()["norm"]
    assert c.breakdown()["flops"].sum() == c.flops


@given(st.integers(1, 64), st.integers(2, 6))
def test_attention_quadratic_mlp_linear_in_tokens(n, k):
    """Scaling the token count by k scales attention-core MACs by k^2 and MLP MACs by k."""
    spec = DiTSpec(depth=2, hidden_size=64, num_heads=4)
    small = {t.kind: t.total_macs for t in dit_terms(spec, (1, 1, n)) if t.kind in ("attention", "mlp")}
    big = {t.kind: t.total_macs for t in dit_terms(spec, (1, 1, k * n)) if t.kind in ("attention", "mlp")}
    assert big["attention"] == k * k * small["attention"]
    assert big["mlp"] == k * small["mlp"]


@given(st.integers(1, 8), st.integers(1, 8), st.integers(1, 8))
def test_factorised_attention_cost(t, h, w):
    """Spatial blocks cost 2 T (HW)^2 d, temporal blocks 2 HW T^2 d; full costs 2 (THW)^2 d."""
    base = {"depth": 2, "hidden_size": 32, "num_heads": 4}
    full = count_dit_kind(DiTSpec(**base), (t, h, w))
    fact = count_dit_kind(DiTSpec(**base, attention_layout="factorized"), (t, h, w))
    d = 32
    assert full == 2 * 2 * (t * h * w) ** 2 * d
    assert fact == 2 * t * (h * w) ** 2 * d + 2 * h * w * t * t * d


def count_dit_kind(spec, grid, kind="attention"):
    return sum(x.total_macs for x in dit_terms(spec, grid) if x.kind == kind)


def test_cross_attention_uses_its_own_key_length():
    spec = DiTSpec(depth=1, hidden_size=32, num_heads=4, conditioning="cross_attention", text_dim=16)
    terms = {t.path: t.macs for t in dit_terms(spec, (2, 3, 5), text_tokens=7, batch=3)}
    assert terms["blocks.{i}.cross_attn.core"] == 2 * 3 * 30 * 7 * 32  # 2 B N L d
    assert terms["blocks.{i}.cross_attn.kv"] == 3 * 7 * 32 * 64  # B L d 2d


def test_joint_attention_over_text_plus_video():
    spec = DiTSpec(depth=1, hidden_size=32, num_heads=4, conditioning="joint", text_dim=16)
    terms = {t.path: t.macs for t in dit_terms(spec, (2, 3, 5), text_tokens=7)}
    assert terms["blocks.{i}.attn.core"] == 2 * (30 + 7) ** 2 * 32
    assert terms["blocks.{i}.mlp.fc1"] == (30 + 7) * 32 * 128


def test_vectorised_equals_scalar():
    model = load_preset("sora").model
    widths, heights = np.array([256, 512, 1280, 1920]), np.array([256, 512, 720, 1088])
    frames = np.array([1, 17, 241, 1441])
    grid = VideoGrid(widths, heights, frames)
    for fn in (count_dit, count_vae_encode, count_vae_decode):
        vec = fn(model, grid).macs
        assert vec.dtype == np.float64
        for i in range(4):
            scalar = fn(model, VideoSpec(width=int(widths[i]), height=int(heights[i]), num_frames=int(frames[i]))).macs
            assert vec[i] == pytest.approx(scalar, rel=1e-12)


def test_huge_counts_never_overflow():
    """A minute of 4K at 60 fps: exact Python ints above int64, float64 arrays agree."""
    model = load_preset("sora").model
    video = VideoSpec(width=3840, height=2160 - 2160 % 16, num_frames=3601)  # 2160 -> 2144 (a multiple of 16)
    c = count_dit(model, video, batch=64)
    assert isinstance(c.macs, int) and c.macs > 2**63
    df = c.breakdown()
    assert sum(df["macs"]) == c.macs
    vec = count_dit(model, VideoGrid(np.array([3840]), np.array([video.height]), np.array([3601])), batch=64).macs
    assert float(vec[0]) == pytest.approx(c.macs, rel=1e-12)


def test_vectorised_rejects_bad_shapes():
    model = load_preset("sora").model
    with pytest.raises(VideoShapeError, match="height=1080"):
        count_dit(model, VideoGrid(1920, np.array([720, 1080]), 241))
    with pytest.raises(VideoShapeError, match="num_frames=240"):
        count_dit(model, VideoGrid(1280, 720, np.array([241, 240])))


def test_breakdown_frame_lists_every_block():
    df = count_dit("dit-s-2").breakdown()
    assert list(df.columns) == ["module", "kind", "op", "macs", "flops", "share"]
    assert df["module"].str.startswith("blocks.11.").any() and not df["module"].str.startswith("blocks.12.").any()
    assert df["share"].sum() == pytest.approx(1.0)


def test_count_video_components_and_class_model_has_no_text():
    df = count_video("dit-xl-2")
    assert list(df["component"]) == ["text_encode", "vae_encode", "dit_forward", "vae_decode"]
    assert df.loc[0, "macs"] == 0
    assert count_text_encoder("sora").macs > 0
    assert FVCORE.norms and not MATMUL_ONLY.norms
