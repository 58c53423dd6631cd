"""VAE decode schedules (whole / tiled / chunked-causal) as ledger structure against the reference pipelines run on
CPU with the live-tensor tracker (fp32), and their MACs against FlopCounterMode (overlapping tiles recomputed)."""

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from reference_model.vae.tiling import temporal_tiled_decode, tiled_decode, tiled_encode
from sora_compute.calibration.build import build_vae
from sora_compute.calibration.measure import peak_live_bytes
from sora_compute.flops import MATMUL_ONLY
from sora_compute.ledger.vae_schedule import scheduled_decode
from sora_compute.memory.activations import vae_encode_peak
from sora_compute.memory.vae_schedule import decode_schedule_peak, encode_schedule_peak, scheduled_decode_macs
from sora_compute.presets import load_preset
from sora_compute.specs import LTXVAE, CogVideoXVAE, GenericVAE, MochiVAE, OpenSoraVAE, WanVAE
from sora_compute.specs.vae.schedule import DecodeSchedule, official_decode_schedule, official_encode_schedule

TILED_VAES = [
    GenericVAE(latent_channels=4, block_out_channels=(8, 16), spatial_compression=2, temporal_compression=2,
               causal=True, norm_groups=4, layers_per_block=1, mid_attention=True, quant_convs=True),
    CogVideoXVAE(latent_channels=4, block_out_channels=(8, 16, 16), spatial_compression=4, temporal_compression=2,
                 layers_per_block=1, norm_groups=4),
    WanVAE(latent_channels=4, block_out_channels=(8, 16, 16), spatial_compression=4, temporal_compression=2,
           layers_per_block=1),
    LTXVAE(latent_channels=4, block_out_channels=(16, 8), spatial_compression=4, patch_size=2,
           temporal_compression=2, layers_per_level=(1, 2, 2)),
    MochiVAE(latent_channels=4, block_out_channels=(32, 32, 64), decoder_block_out_channels=(32, 64, 64),
             spatial_compression=4, temporal_compression=6, temporal_factors=(2, 3), layers_per_level=(1, 1, 1, 1),
             norm_groups=4),
]


def _schedules(vae):
    """(latent grid, schedule): spatial tiles (edge tiles cut short, unequal strides), space and time, time only."""
    s, t = vae.spatial_compression, vae.temporal_compression
    return [((2, 8, 8), DecodeSchedule(mode="tiled", tile_px=(4 * s, 4 * s), stride_px=(3 * s, 3 * s))),
            ((2, 7, 9), DecodeSchedule(mode="tiled", tile_px=(4 * s, 4 * s), stride_px=(3 * s, 2 * s))),
            ((5, 6, 6), DecodeSchedule(mode="tiled", tile_px=(4 * s, 4 * s), stride_px=(3 * s, 3 * s),
                                       tile_frames=2 * t, stride_frames=t)),
            ((5, 4, 4), DecodeSchedule(mode="tiled", tile_frames=2 * t, stride_frames=t))]


def _run(model, vae, z, sch):
    s, t = vae.spatial_compression, vae.temporal_compression
    if sch.tile_frames is not None:
        return temporal_tiled_decode(model.decoder, z, s, t, sch.tile_px, sch.stride_px, sch.tile_frames,
                                     sch.stride_frames)
    return tiled_decode(model.decoder, z, s, sch.tile_px, sch.stride_px)


@pytest.mark.parametrize("vae", TILED_VAES, ids=lambda v: v.family)
def test_tiled_decode_peak_and_macs_equal_measured(vae):
    """diffusers-style tiled decode (tiles kept until blended, rows and result concatenated): the liveness walk over
    each tile's ledger on top of the tiles decoded before it equals the tracker's peak (measured errors: 0 in every
    case here, fp32 CPU); MACs summed over every tile call (overlap recomputed) equal FlopCounterMode's."""
    torch.manual_seed(0)
    model = build_vae(vae).eval()
    meta = build_vae(vae).eval().to("meta")  # FlopCounterMode counts SDPA on meta tensors (not on CPU ones)
    for grid, sch in _schedules(vae):
        if vae.family == "mochi" and sch.tile_frames is not None:
            continue  # Mochi is not causal in the 1 + t k sense diffusers' temporal tiles assume
        z = torch.randn(1, vae.latent_channels, *grid)
        with torch.no_grad():
            measured, _ = peak_live_bytes(lambda z=z, sch=sch: _run(model, vae, z, sch))
            with FlopCounterMode(display=False) as counter:
                _run(meta, vae, z.to("meta"), sch)
        sd = scheduled_decode(vae, grid, sch)
        assert decode_schedule_peak(vae, grid, sch, 1, 4) == pytest.approx(measured, rel=0.05), (grid, sch)
        assert 2 * scheduled_decode_macs(sd, MATMUL_ONLY) == counter.get_total_flops(), (grid, sch)


WAN_CHUNKED = [
    WanVAE(latent_channels=4, block_out_channels=(8, 16, 16, 16), temporal_compression=4),
    WanVAE(latent_channels=4, block_out_channels=(8, 16, 16), spatial_compression=4, temporal_compression=2,
           layers_per_block=1),
]


@pytest.mark.parametrize("vae", WAN_CHUNKED, ids=lambda v: f"wan-t{v.temporal_compression}")
@pytest.mark.parametrize("grid,batch,chunk", [((1, 2, 2), 1, 1), ((2, 4, 4), 1, 1), ((3, 4, 4), 2, 1),
                                              ((5, 4, 6), 1, 1), ((5, 4, 6), 1, 2)])
def test_wan_chunked_decode_peak_equals_measured(vae, grid, batch, chunk):
    """Wan2.1's decode, the first latent frame alone and then ``chunk`` per call, each causal conv replacing its
    feature cache as it runs (reference ``WanDecoder.chunked``): same video as the whole-clip decode, and the model's
    peak equals the tracker's byte for byte in every case here, one latent frame (the first chunk building its caches
    conv by conv) and two (the second chunk replacing one-frame caches by two-frame ones) included. Before the caches
    were tensors of the chunk's dataflow, the model held every cache at its full size from a call's start: +10.8% at
    1x2x2 and +5.6% at 2x4x4 (4-level VAE), +12.1% / +9.1% (3-level), exact from 3 latent frames on."""
    torch.manual_seed(0)
    model = build_vae(vae).eval()
    z = torch.randn(batch, vae.latent_channels, *grid)
    with torch.no_grad():
        measured, video = peak_live_bytes(lambda: model.decoder.chunked(z, chunk))
        torch.testing.assert_close(video, model.decoder(z), rtol=1e-4, atol=1e-4)
    sch = DecodeSchedule(mode="chunked", chunk_latent_frames=chunk)
    assert decode_schedule_peak(vae, grid, sch, batch, 4) == measured


@pytest.mark.parametrize("v,chunks,hw,batch,chunk", [(0, 0, (16, 16), 1, 1), (0, 3, (16, 24), 1, 1),
                                                     (0, 4, (16, 16), 1, 2), (1, 1, (16, 16), 1, 1),
                                                     (1, 2, (16, 16), 2, 1), (1, 3, (16, 24), 1, 1)])
def test_wan_chunked_encode_peak_equals_measured(v, chunks, hw, batch, chunk):
    """Wan2.1's encode (the first frame alone, then ``chunk`` x temporal-compression frames per call, each causal
    conv and temporal down-sampler replacing its feature cache; the outputs concatenated, quant_conv over them with
    the caches held; reference ``WanEncoder.chunked``): the same latent as the whole-clip encode, and the model's
    peak equals the tracker's byte for byte in every case here (1 to 5 latent frames, batch 2, chunks of two latent
    frames, 2x and 4x temporal compression; the 12 cases of both VAEs crossed with all these were equal too)."""
    torch.manual_seed(0)
    vae = WAN_CHUNKED[v]
    model = build_vae(vae).eval()
    video = (1 + chunks * vae.temporal_compression, *hw)
    x = torch.randn(batch, vae.in_channels, *video)
    with torch.no_grad():
        measured, z = peak_live_bytes(lambda: model.encoder.chunked(x, chunk))
        torch.testing.assert_close(z, model.encoder(x), rtol=1e-4, atol=1e-4)
    assert encode_schedule_peak(vae, video, DecodeSchedule(mode="chunked", chunk_latent_frames=chunk), batch, 4) \
        == measured


@pytest.mark.parametrize("grid,frame_batch,tiled", [((5, 4, 6), 2, False), ((2, 4, 4), 1, False),
                                                   ((3, 7, 9), 2, True)])
def test_cogvideox_frame_batches_equal_measured(grid, frame_batch, tiled):
    """diffusers' CogVideoX decode (use_framewise_decoding: ``frame_batch`` latent frames per decoder call, each
    causal conv fed the previous call's last two input frames, the old caches held until the call returns; reference
    ``CogDecoder.framewise``), of the whole latent or of each spatial tile: the model's peak equals the tracker's byte
    for byte (measured at every grid of 1-5 latent frames, batches of 1 and 2, 2x and 4x temporal compression)."""
    torch.manual_seed(0)
    vae = TILED_VAES[1]
    model = build_vae(vae).eval()
    s = vae.spatial_compression
    z = torch.randn(1, vae.latent_channels, *grid)
    sch = (DecodeSchedule(mode="tiled", tile_px=(4 * s, 4 * s), stride_px=(3 * s, 3 * s), frame_batch=frame_batch)
           if tiled else DecodeSchedule(frame_batch=frame_batch))
    with torch.no_grad():
        measured, _ = peak_live_bytes(
            lambda: tiled_decode(lambda t: model.decoder.framewise(t, frame_batch), z, s, sch.tile_px, sch.stride_px)
            if tiled else model.decoder.framewise(z, frame_batch))
    assert decode_schedule_peak(vae, grid, sch, 1, 4) == measured
    assert official_decode_schedule("cogvideox").frame_batch == 2


def test_chunked_wan_at_480p_is_a_fraction_of_the_whole_clip():
    """Wan2.1-1.3B at 832x480, 81 frames (21 x 60 x 104 latent), bf16: the whole-clip decode's peak is several times
    the chunked one (the issue's 37.6 GB against what the official pipeline needs)."""
    p = load_preset("wan2.1-1.3b")
    grid = (21, 60, 104)
    whole = decode_schedule_peak(p.model.vae, grid, DecodeSchedule())
    chunked = decode_schedule_peak(p.model.vae, grid, official_decode_schedule("wan"))
    assert whole > 4 * chunked
    assert official_decode_schedule("wan").mode == "chunked"


def test_chunked_wan_encode_at_480p_is_a_fraction_of_the_whole_clip():
    """Wan2.1 at 832x480, 81 frames, bf16: the official chunked encode (1 + 20 chunks of 4 frames) needs about a
    tenth of the whole-clip encode's peak (34.9 GiB whole, 3.48 GiB chunked by this model); the whole schedule is
    the whole-clip ledger's peak."""
    vae = load_preset("wan2.1-1.3b").model.vae
    whole = encode_schedule_peak(vae, (81, 480, 832), DecodeSchedule())
    chunked = encode_schedule_peak(vae, (81, 480, 832), official_encode_schedule("wan"))
    assert whole == vae_encode_peak(vae, (81, 480, 832))
    assert 9 * chunked < whole < 11 * chunked
    assert official_encode_schedule("cogvideox").frame_batch == 8


@pytest.mark.parametrize("frames,batch,frame_batch", [(9, 1, 8), (25, 2, 8), (13, 1, 4)])
def test_cogvideox_encode_frame_batches_equal_measured(frames, batch, frame_batch):
    """diffusers' CogVideoX encode (max(F // 8, 1) calls of ``frame_batch`` video frames, the first with the F % 8
    left over, each causal conv fed the previous call's conv_cache, held until the call returns; reference
    ``CogEncoder.framewise``): the model's peak equals the tracker's byte for byte (measured also at 1, 16 and 17
    frames and with 4x temporal compression: equal). The latent differs from the whole-clip encode only through
    GroupNorm's statistics, taken per call (as in diffusers): with GroupNorm made the identity the two are equal."""
    torch.manual_seed(0)
    vae = TILED_VAES[1]
    model = build_vae(vae).eval()
    x = torch.randn(batch, vae.in_channels, frames, 16, 16)
    with torch.no_grad():
        measured, _ = peak_live_bytes(lambda: model.encoder.framewise(x, frame_batch))
    assert encode_schedule_peak(vae, (frames, 16, 16), DecodeSchedule(frame_batch=frame_batch), batch, 4) == measured


def test_schedule_errors_are_clear():
    with pytest.raises(ValueError, match="stride_px"):
        DecodeSchedule(mode="tiled", tile_px=(64, 64), stride_px=(96, 64))
    with pytest.raises(ValueError, match="tile_px"):
        DecodeSchedule(mode="tiled")
    cog = TILED_VAES[1]
    with pytest.raises(ValueError, match="chunked decoding"):
        scheduled_decode(cog, (3, 4, 4), DecodeSchedule(mode="chunked"))
    os_vae = OpenSoraVAE(latent_channels=4, block_out_channels=(8, 16), spatial_compression=2, layers_per_block=1,
                         norm_groups=4, temporal_block_out_channels=(8, 16, 16), layers_per_level=(1, 1, 1, 1))
    with pytest.raises(ValueError, match="only the 'whole'"):
        scheduled_decode(os_vae, (3, 4, 4), DecodeSchedule(mode="tiled", tile_px=(8, 8), stride_px=(4, 4)))


@pytest.mark.parametrize("video,batch,stride", [((5, 28, 36), 1, (12, 8)), ((9, 32, 32), 2, (12, 12))])
def test_tiled_encode_peak_equals_measured(video, batch, stride):
    """Spatially tiled encode (HunyuanVideo spatial_tiled_encode, Open-Sora 2.0's training default: 16 px tiles here,
    edge tiles cut short, every tile kept until blended, rows and result concatenated; reference ``tiled_encode``):
    the model's peak equals the tracker's byte for byte (measured also with 4x spatial and temporal compression and
    a one-tile clip: equal)."""
    torch.manual_seed(0)
    vae = TILED_VAES[0]
    model = build_vae(vae).eval()
    x = torch.randn(batch, vae.in_channels, *video)
    sch = DecodeSchedule(mode="tiled", tile_px=(16, 16), stride_px=stride)
    with torch.no_grad():
        measured, _ = peak_live_bytes(lambda: tiled_encode(model.encoder, x, vae.spatial_compression, sch.tile_px,
                                                           sch.stride_px))
    assert encode_schedule_peak(vae, video, sch, batch, 4) == measured
    assert official_encode_schedule("generic", "open-sora-2.0").tile_px == (256, 256)
