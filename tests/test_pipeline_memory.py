"""The pipeline's memory timeline (residency under offload modes, allocated vs reserved, host-link time) and the
verdict, against numbers derived by hand from the components' exact parameter counts and the sourced overheads."""

import pytest

from sora_compute.evaluate.params import dit_block_params, dit_params, text_encoder_params, vae_params
from sora_compute.hardware import resolve_gpu
from sora_compute.hardware.host_link import host_link
from sora_compute.memory.pipeline import GiB, overheads, pipeline_memory
from sora_compute.memory.verdict import memory_verdict
from sora_compute.presets import load_preset

MiB = 2**20


@pytest.fixture(scope="module")
def wan():
    return load_preset("wan2.1-1.3b")


def _weights(p):
    m = p.model
    return (sum(text_encoder_params(e) for e in m.text_encoders) * 2, dit_params(m.dit) * 2, sum(vae_params(m.vae)) * 2)


def test_residency_per_offload_mode(wan):
    """none: every weight in every phase; free_text: the text encoder only while encoding; model: only the running
    component; sequential: no component resident, each module's weights counted in its stage's peak while it runs
    (between the activations alone and the activations with a whole DiT block; bf16: 2 bytes per parameter)."""
    text, dit, vae = _weights(wan)
    block = dit_block_params(wan.model.dit) * 2
    w = {mode: pipeline_memory(wan.model, wan.video, offload=mode) for mode in
         ("none", "free_text", "model", "sequential", "text_on_cpu")}
    weights = ("text encoder weights (bf16)", "DiT weights", "VAE weights")  # the whole VAE: both halves; umT5: bf16

    def resident(pm, k):
        return tuple(pm.phases[k].resident.get(n, 0) for n in weights)

    assert [resident(w["none"], k) for k in range(3)] == [(text, dit, vae)] * 3
    assert [resident(w["free_text"], k) for k in range(3)] == [(text, dit, vae), (0, dit, vae), (0, dit, vae)]
    assert [resident(w["text_on_cpu"], k) for k in range(3)] == [(0, dit, vae)] * 3
    assert [resident(w["model"], k) for k in range(3)] == [(text, 0, 0), (0, dit, 0), (0, 0, vae)]
    assert [resident(w["sequential"], k) for k in range(3)] == [(0, 0, 0)] * 3
    act = w["none"].phases[1].activation[1]
    assert act <= w["sequential"].phases[1].activation[1] <= act + block
    # the activation peaks do not depend on where the weights are, unless they are streamed
    assert {pm.phases[1].activation for m, pm in w.items() if m != "sequential"} == {w["none"].phases[1].activation}
    assert w["none"].allocated_peak > w["free_text"].allocated_peak > w["model"].allocated_peak


def test_reserved_is_allocated_with_margin_context_and_workspace(wan):
    """H100 (Hopper): reserved = allocated x 1.10 + 512 MiB CUDA context + 32 MiB cuBLAS workspace; an Ampere A100:
    8.125 MiB workspace (PyTorch's :4096:2:16:8 default)."""
    pm = pipeline_memory(wan.model, wan.video, "h100-sxm")
    assert pm.reserved_peak == int(pm.allocated_peak * 1.10) + 512 * MiB + 32 * MiB
    assert overheads(resolve_gpu("a100-80gb")).workspace_bytes == int(8.125 * MiB)
    assert pm.capacity_bytes == 80e9


def test_host_link_time_of_offload_modes(wan):
    """Model offload moves each component in once and the previous one out (text, DiT, VAE in; text, DiT out) over
    PCIe Gen5 at 55.6 GB/s on an H100; sequential offload streams the DiT's weights every step (batched CFG: one
    forward per step) and the VAE decoder's every decoder call (Wan's chunked decode: 21 latent frames, 21 calls)."""
    text, dit, vae = _weights(wan)
    gbps = host_link("h100-sxm").h2d_gbps
    assert gbps == 55.6 and host_link("rtx-4090").h2d_gbps == 25.0
    model = pipeline_memory(wan.model, wan.video, offload="model")
    assert model.transfer_s == pytest.approx((text + dit + vae) / (gbps * 1e9) + (text + dit) / (gbps * 1e9))
    seq = pipeline_memory(wan.model, wan.video, offload="sequential", steps=50)
    decoder = vae_params(wan.model.vae)[1] * 2
    assert seq.transfer_s == pytest.approx((text + 50 * dit + 21 * decoder) / (gbps * 1e9))
    assert pipeline_memory(wan.model, wan.video).transfer_s == 0


def test_fsdp_and_sequence_parallel_split_the_dit(wan):
    """FSDP over 4: DiT weights / 4 + two gathered blocks; sequence parallel over 4: the DiT forward's activations
    / 4 (rounded up)."""
    _, dit, _ = _weights(wan)
    block = dit_block_params(wan.model.dit) * 2
    one = pipeline_memory(wan.model, wan.video)
    four = pipeline_memory(wan.model, wan.video, fsdp=4, sequence_parallel=4)
    assert four.phases[1].resident["DiT weights"] == -(-dit // 4) + 2 * block
    assert four.phases[1].activation[1] == -(-one.phases[1].activation[1] // 4)


def test_timeline_frame(wan):
    df = pipeline_memory(wan.model, wan.video, "h100-sxm", offload="model").to_frame()
    assert list(df["phase"]) == ["encode text", "denoise (each of 50 steps)", "decode"]
    assert (df["reserved_GiB"] > df["allocated_GiB"]).all()


def test_verdicts():
    """Wan2.1-1.3B at 480p fits an H100 as it is; Wan2.1-14B at 480p does not fit an RTX 4090 until the weights are
    streamed (sequential offload, with its host-link time); at 720p the eager RoPE's fp32 temporaries of q and k (two
    products and the rotated half beside the sum, ledger/rope.py) put its denoise peak past the card even streamed;
    HunyuanVideo on 4 L40S fits with FSDP or offload; a 1 px budget never fits."""
    wan13, wan14 = load_preset("wan2.1-1.3b"), load_preset("wan2.1-14b")
    assert memory_verdict(wan13.model, wan13.video, "h100-sxm").line.startswith("fits: ")
    assert memory_verdict(wan14.model, wan14.video, "rtx-4090").line.startswith("does not fit")
    v = memory_verdict(wan14.model, wan14.video.model_copy(update={"width": 832, "height": 480}), "rtx-4090")
    assert v.line.startswith("fits with sequential CPU offload") and "s host link per video" in v.line
    assert not v.asked.fits and v.memory.fits and v.memory.reserved_peak <= 24e9
    assert all(not fits for _, _, fits in v.tried[:-1])
    with pytest.raises(ValueError, match="gpus"):
        memory_verdict(wan13.model, wan13.video, "h100-sxm", 0)
    with pytest.raises(ValueError, match="offload"):
        pipeline_memory(wan13.model, wan13.video, offload="cpu")


def test_verdict_falls_back_to_fewer_frames_then_does_not_fit(wan):
    """A 1.3B model on a 16 GB-class budget: every offload mode's decode and DiT peaks at 81 frames of 4K exceed it,
    fewer frames fit; sizes in GiB (2^30)."""
    from sora_compute.hardware import GPUSpec

    small = resolve_gpu("rtx-4090").model_copy(update={"hbm_gb": 6.0})
    big = wan.video.model_copy(update={"width": 3840, "height": 2160})
    v = memory_verdict(wan.model, big, small)
    assert v.line.startswith(("fits with fewer frames", "does not fit"))
    tiny = GPUSpec.model_validate({**small.model_dump(), "hbm_gb": 0.5})
    assert memory_verdict(wan.model, wan.video, tiny).line.startswith("does not fit")
    assert GiB == 2**30
