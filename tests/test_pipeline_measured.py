"""The pipeline's phases measured: a small Wan-shaped pipeline (umT5-style encoder, cross-attention DiT, Wan VAE) run
on CPU in fp32 under the live-tensor tracker, phase by phase, as diffusers' ``__call__`` runs it (batch-1 latents,
doubled for each CFG forward; the text embeddings held to the end), each offload mode's residency simulated by
creating a component's weights inside the tracked run while it is on the GPU (a copy: what moving it there
allocates); sequential offload by accelerate's hooks: each module's own parameters copied before its forward and
dropped after it (``_stream``).

Measured (bytes, model vs tracker at the peak phase, the decode in every case; benchmarks/bench_pipeline_memory.py
prints every offload mode x decode schedule): equal byte for byte in all 18 cases, e.g. none + chunked 10,087,980,
model + tiled 4,182,956, sequential + chunked 7,851,552 (the chunked decode holding the last chunk's output under the
next, as Wan2.1's ``out_``; 196,608 bytes less when the reference freed it). Before the decode phase held the text
embeddings (diffusers keeps ``prompt_embeds`` to the end), the denoise phase the batch-1 latents beside their CFG
batch, and sequential offload streamed the VAE (it counted the whole VAE, and a whole DiT block), the model was
-0.17% (none, chunked) and +16.3% (sequential, chunked)."""

import copy

import pytest
import torch

from reference_model.vae.tiling import temporal_tiled_decode
from sora_compute.calibration.build import build_dit, build_text_encoder, build_vae
from sora_compute.calibration.measure import LiveTracker
from sora_compute.memory.pipeline import pipeline_memory
from sora_compute.presets import load_preset
from sora_compute.specs import DiTSpec, WanVAE
from sora_compute.specs.vae.schedule import DecodeSchedule

from .strategies import dit_inputs

SCHEDULES = {"whole": DecodeSchedule(), "chunked": DecodeSchedule(mode="chunked"),
             "tiled": DecodeSchedule(mode="tiled", tile_px=(40, 40), stride_px=(32, 32), tile_frames=8,
                                     stride_frames=8)}
MODES = ["none", "free_text", "text_on_cpu", "model", "model_text_on_cpu", "sequential"]


def _small_wan():
    p = load_preset("wan2.1-1.3b")
    te = p.model.text_encoder.model_copy(update={"vocab_size": 100, "num_layers": 2, "d_model": 64, "num_heads": 4,
                                                 "d_kv": 16, "d_ff": 160})
    dit = DiTSpec.model_validate({**p.model.dit.model_dump(), "depth": 2, "hidden_size": 64, "num_heads": 4,
                                  "text_dim": 64, "mlp_hidden_size": 128, "frequency_embedding_size": 32})
    vae = WanVAE(latent_channels=16, block_out_channels=(8, 16, 16, 16), temporal_compression=4)
    model = p.model.model_copy(update={"text_encoder": te, "dit": dit, "vae": vae, "text_tokens": 8})
    video = p.video.model_copy(update={"width": 64, "height": 64, "num_frames": 9})
    return model, video


def _stream(*modules):
    """accelerate's ``cpu_offload``: a module with parameters of its own gets them on the device before its forward
    (a copy, made under the tracker) and drops them when it returns. Returns the hooks' handles."""
    def pre(mod, args):
        mod.on_device = [p.detach().clone() for p in mod.parameters(recurse=False)]

    def post(mod, args, out):
        del mod.on_device
    return [h for root in modules for m in root.modules() if list(m.parameters(recurse=False))
            for h in (m.register_forward_pre_hook(pre), m.register_forward_hook(post))]


def _decode(vae, schedule, z):
    if schedule.mode == "whole":
        return vae.decoder(z)
    if schedule.mode == "chunked":
        return vae.decoder.chunked(z)
    return temporal_tiled_decode(vae.decoder, z, 8, 4, schedule.tile_px, schedule.stride_px, schedule.tile_frames,
                                 schedule.stride_frames)


def measure_phases(offload, schedule):
    """Peak live bytes of each phase (encode text, denoise step, decode) of the small pipeline, and the model's
    ``PipelineMemory``."""
    torch.manual_seed(0)
    model, video = _small_wan()
    te, dit, vae = (build_text_encoder(model.text_encoder).eval(), build_dit(model.dit).eval(),
                    build_vae(model.vae).eval())
    L = model.num_text_tokens
    ids = torch.randint(0, 100, (2, L))
    grid = (3, 8, 8)  # 9 frames of 64 x 64 at 4 x 8 x 8 compression
    text_cpu = offload in ("text_on_cpu", "model_text_on_cpu")
    streamed = offload == "sequential"
    peaks = []

    def phase_ends(tracker):
        peaks.append(tracker.peak)
        tracker.peak = tracker.live

    def run(tracker):
        on = {"te": te, "dit": dit, "vae": vae} if streamed else {}
        if not streamed and not text_cpu:
            on["te"] = copy.deepcopy(te)  # moved to the GPU
        if offload in ("none", "free_text", "text_on_cpu"):
            on["dit"], on["vae"] = copy.deepcopy(dit), copy.deepcopy(vae)
        emb = emb_cpu.clone() if text_cpu else on["te"](ids)  # text_on_cpu: the embeddings moved to the GPU
        if text_cpu:
            phase_ends(tracker)  # no text phase on the GPU: its moves belong to the next
        if offload in ("free_text", "model"):
            del on["te"]
        phase_ends(tracker)
        if offload in ("model", "model_text_on_cpu"):
            on["dit"] = copy.deepcopy(dit)
        latents = torch.randn(1, 16, *grid)
        x = torch.cat([latents, latents])  # the CFG batch
        out = on["dit"](x, t, emb, *rest)
        del out, x
        if offload in ("model", "model_text_on_cpu"):
            del on["dit"]
        phase_ends(tracker)
        if offload in ("model", "model_text_on_cpu"):
            on["vae"] = copy.deepcopy(vae)
        video_out = _decode(on["vae"], schedule, latents)
        phase_ends(tracker)
        return video_out

    _, t, _, *rest = dit_inputs(model.dit, torch.empty(2, 16, *grid), L)  # the timestep: made before
    with torch.no_grad():
        emb_cpu = te(ids) if text_cpu else None
        handles = _stream(te, dit, vae) if streamed else []
        try:
            with LiveTracker() as tracker:
                run(tracker)
        finally:
            for h in handles:
                h.remove()
    pm = pipeline_memory(model, video, "h100-sxm", offload, schedule, cfg_batch=2, weight_bytes=4, act_bytes=4)
    return peaks[-len(pm.phases):], pm


@pytest.mark.parametrize("offload,schedule", [("none", "chunked"), ("text_on_cpu", "chunked"), ("model", "chunked"),
                                              ("sequential", "chunked"), ("none", "whole"), ("model", "tiled")])
def test_pipeline_phase_peaks_equal_measured(offload, schedule):
    """Every phase's allocated bytes (resident weights + carried state + the stage's activation peak, with each
    module's weights while it runs under sequential offload) against the tracker's peak in that phase: equal in every
    phase (the denoise phase was 512 bytes low until the DiT walk held the shared adaLN's conditioning vector beside
    its projection), except the denoise phase under sequential offload, 1,536 bytes low (-0.53%): the blocks'
    scale_shift_table, a parameter of the block module itself, which accelerate's hook keeps for the whole block
    while the ledger counts it at its use."""
    measured, pm = measure_phases(offload, SCHEDULES[schedule])
    modelled = [p.allocated for p in pm.phases]
    if offload == "sequential":
        assert modelled[0] == measured[0] and modelled[2] == measured[2], (modelled, measured)
        assert measured[1] - modelled[1] == 4 * 384  # a block's 6 x 64 table, fp32
    else:
        assert modelled == measured
    assert pm.peak_phase == "decode"
