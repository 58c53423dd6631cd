"""One Workload carries the validated video, latent grid and token counts: the layers below never recompute it."""

from collections.abc import Callable
from typing import Any

import pytest

from sora_compute import load_preset
from sora_compute.flops import count_dit, count_vae_decode, count_video
from sora_compute.memory.planner import inference_memory, search_layouts, training_memory
from sora_compute.planning import InferenceSettings, VAETiling, estimate_inference
from sora_compute.specs import ModelSpec, VideoShapeError, VideoSpec, Workload, as_workload


def test_sora_workload_by_hand() -> None:
    # sora preset: 1280x720, 241 frames; causal VAE 4x8x8 -> (241-1)/4+1 = 61 latent frames, 90x160; patch 1x2x2
    p = load_preset("sora")
    w = Workload(model=p.model, video=p.video)
    assert (w.latent.frames, w.latent.height, w.latent.width) == (61, 90, 160)
    assert w.tokens == 61 * 45 * 80 == 219_600
    assert w.text_tokens == p.model.num_text_tokens
    assert Workload.of(p.model, p.video) == w


def test_of_raises_the_shape_error() -> None:
    p = load_preset("sora")
    with pytest.raises(VideoShapeError, match="height=1080"):
        Workload.of(p.model, VideoSpec(width=1920, height=1080, num_frames=241))
    with pytest.raises(ValueError, match="not a Workload and another video"):
        as_workload(Workload.of(p.model, p.video), VideoSpec(width=640, height=360, num_frames=241))


@pytest.fixture
def latent_calls(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    calls: list[int] = []
    original: Callable[..., Any] = ModelSpec.latent_shape

    def counted(self: ModelSpec, video: VideoSpec) -> Any:
        calls.append(1)
        return original(self, video)

    monkeypatch.setattr(ModelSpec, "latent_shape", counted)
    return calls


@pytest.mark.parametrize(("run", "shapes"), [
    (lambda m, v: estimate_inference(m, v), 1),
    # a tiled decode cuts its tiles from the latent: no second video shape
    (lambda m, v: estimate_inference(m, v, InferenceSettings(vae_tiling=VAETiling(tile_px=256))), 1),
    (lambda m, v: count_video(m, v), 1),
    (lambda m, v: training_memory(m, v), 1),
    (lambda m, v: inference_memory(m, v), 1),
    (lambda m, v: search_layouts(m, v, gpus=64), 1),  # every layout of one shape
])
def test_latent_shape_computed_once(run: Callable[[ModelSpec, VideoSpec], Any], shapes: int,
                                    latent_calls: list[int]) -> None:
    p = load_preset("sora")
    run(p.model, p.video)
    assert len(latent_calls) == shapes


def test_workload_and_model_video_agree() -> None:
    p = load_preset("sora")
    w = Workload.of(p.model, p.video)
    assert count_dit(w).macs == count_dit(p.model, p.video).macs
    assert count_vae_decode(w).macs == count_vae_decode(p.model, p.video).macs
    assert training_memory(w, None).peak_bytes == training_memory(p.model, p.video).peak_bytes
    assert inference_memory(w, None).peak_bytes == inference_memory(p.model, p.video).peak_bytes
    assert estimate_inference(w).flops_per_video == estimate_inference(p.model, p.video).flops_per_video


def test_gpu_resolved_once_at_the_edge(monkeypatch: pytest.MonkeyPatch) -> None:
    import sora_compute.hardware as hw

    key = "h100-sxm"
    profile = hw.load_profile(key)
    assert hw.resolve_gpu(key) == hw.resolve_gpu(profile) == hw.load_gpu(key)
    spec = hw.load_gpu(key)
    assert hw.resolve_gpu(spec) is spec
    p = load_preset("sora")
    by_key = search_layouts(p.model, p.video, key, gpus=64)
    calls: list[str] = []
    original = hw.load_gpu
    monkeypatch.setattr(hw, "load_gpu", lambda k: calls.append(k) or original(k))
    by_spec = search_layouts(p.model, p.video, spec, gpus=64)
    assert calls == [] and by_spec.equals(by_key)  # a GPUSpec is never looked up again
    search_layouts(p.model, p.video, key, gpus=64)
    assert calls == [key]  # a key: once for every layout


def test_plan_serving_takes_a_profile() -> None:
    from sora_compute.hardware import load_profile
    from sora_compute.planning import plan_serving

    inf = estimate_inference("sora")
    for predict in (False, True):
        a = plan_serving(inf, "h100-sxm", predict=predict)
        b = plan_serving(inf, load_profile("h100-sxm"), predict=predict)
        assert a.latency_s == b.latency_s and a.mfu == b.mfu
