"""Training memory's framework buffers, on-the-fly encodes and allocator margin, against values derived by hand from
the components' exact parameter counts and the sourced defaults in data/memory_overheads.yaml (DeepSpeed's
reduce_bucket_size 5e8 elements, FSDP's two gathered units, DDP's gradient-copy buckets, the 10% allocator margin)."""

import pytest

from sora_compute.evaluate.params import dit_block_params, dit_params, vae_params
from sora_compute.memory.activations import vae_encode_peak
from sora_compute.memory.planner import DDP_BUCKETS, DS_BUCKET, FSDP_GRAD, ParallelLayout, training_memory
from sora_compute.memory.vae_schedule import encode_schedule_peak
from sora_compute.presets import load_preset
from sora_compute.specs.vae.schedule import DecodeSchedule, official_encode_schedule

MiB = 2**20


@pytest.fixture(scope="module")
def wan():
    p = load_preset("wan2.1-1.3b")
    return p.model, p.video.model_copy(update={"width": 416, "height": 240, "num_frames": 17})


def _train(wan, zero, **kw):
    model, video = wan
    return training_memory(model, video, ParallelLayout(dp=8, zero=zero), "h100-sxm", checkpointing="full", **kw)


def test_communication_buffers_by_framework(wan):
    """ZeRO-0 (DDP): buckets holding a copy of the bf16 gradients, P x 2 bytes; ZeRO-1/2 (DeepSpeed): one gradient
    bucket of 5e8 elements x 2 bytes = 1,000,000,000 bytes whatever the model's size; ZeRO-3 (FSDP): two gathered
    blocks and one block's unsharded bf16 gradient, block x 2 bytes."""
    model, _ = wan
    p, block = dit_params(model.dit), dit_block_params(model.dit)
    ddp, ds1, ds2, fsdp = (_train(wan, z).components for z in (0, 1, 2, 3))
    assert ddp[DDP_BUCKETS] == p * 2 and DS_BUCKET not in ddp
    assert ds1[DS_BUCKET] == ds2[DS_BUCKET] == 1_000_000_000 and DDP_BUCKETS not in ds2 and FSDP_GRAD not in ds2
    assert fsdp[FSDP_GRAD] == block * 2 and fsdp["FSDP gather buffers (2 blocks)"] == 2 * block * 2
    assert DS_BUCKET not in fsdp


def test_on_the_fly_encode_sits_on_the_model_states_alone(wan):
    """The VAE and text encodes run before the forward, after zero_grad freed the gradients: the encode's peak (Wan's
    official chunked encode; the whole clip when asked) sits on
    the bf16 weights (P x 2), the fp32 master (P x 4 / 8) and AdamW moments (P x 8 / 8) sharded over 8 ranks
    (ZeRO-2), and the frozen VAE encoder's weights, not on saved activations, gradients or the gradient bucket."""
    model, video = wan
    p = dit_params(model.dit)
    t = _train(wan, 2, vae_on_the_fly=True)
    states = p * 2 + -(-p * 4 // 8) + -(-p * 8 // 8) + t.components["frozen VAE encoder weights"]
    assert t.components["frozen VAE encoder weights"] == vae_params(model.vae)[0] * 2
    shape = (video.num_frames, video.height, video.width)
    encode = encode_schedule_peak(model.vae, shape, official_encode_schedule("wan"), 1, 2)
    assert t.before_forward["VAE encode of the micro-batch"] == encode < vae_encode_peak(model.vae, shape, 1, 2)
    whole = _train(wan, 2, vae_on_the_fly=True, encode=DecodeSchedule()).before_forward
    assert whole["VAE encode of the micro-batch"] == vae_encode_peak(model.vae, shape, 1, 2)
    assert t.before_forward_bytes == states + max(t.before_forward.values())
    step = t.resident_bytes + max(t.transient.values())
    assert t.peak_bytes == max(step, t.before_forward_bytes)
    assert "VAE encode of the micro-batch" not in t.transient  # no longer stacked on the saved activations


def test_reserved_is_allocated_with_margin_context_and_workspace(wan):
    """H100: reserved = allocated x 1.10 + 512 MiB CUDA context + 32 MiB cuBLAS workspace, as for inference."""
    t = _train(wan, 3)
    assert t.reserved_bytes == int(t.peak_bytes * 1.10) + 512 * MiB + 32 * MiB
    assert t.summary()["reserved_GiB"] == t.reserved_bytes / 2**30
