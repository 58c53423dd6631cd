"""The sweep's VAE MACs are the single-shape counts: each grid point's encode under the preset's official encode
schedule (Open-Sora 2.0's overlapping spatial tiles recomputed; Wan's chunks and CogVideoX's frame batches, which
compute the whole clip's convolutions), and its decode under the official decode schedule (Open-Sora 2.0's and
HunyuanVideo's spatial and temporal tiles recomputed) as ``count_vae_decode``, `flops` and ``estimate_inference``."""

import numpy as np
import pytest

from sora_compute.flops import MATMUL_ONLY, VideoGrid, count_vae_decode, count_vae_encode
from sora_compute.planning import sweep
from sora_compute.planning.inference import estimate_inference
from sora_compute.presets import load_preset
from sora_compute.specs import VideoSpec
from sora_compute.specs.vae.schedule import DecodeSchedule

SHAPES = {  # (width, height, frames): several tiles, an edge tile, one side under a tile, a clip under one tile
    "open-sora-2.0": [(1024, 576, 129), (240, 512, 33), (256, 256, 33), (1280, 720, 65)],
    "wan2.1-14b": [(832, 480, 81), (624, 368, 17)],
    "cogvideox-5b": [(720, 480, 49), (720, 480, 9)],
    "sora": [(640, 368, 17)],
}


def _video(name: str, w: int, h: int, f: int) -> VideoSpec:
    return VideoSpec(width=w, height=h, num_frames=f, fps=load_preset(name).video.fps)


@pytest.mark.parametrize("name", SHAPES)
def test_grid_encode_equals_single_shape_scheduled_count(name):
    w, h, f = (np.array(v) for v in zip(*SHAPES[name], strict=True))
    grid = count_vae_encode(name, VideoGrid(w, h, f), convention=MATMUL_ONLY).macs
    single = [count_vae_encode(name, _video(name, *s), convention=MATMUL_ONLY).macs for s in SHAPES[name]]
    assert [int(g) for g in grid] == single


def test_open_sora_2_tiles_by_hand():
    """1024x576: rows start at 0, 192, 384 (tiles 256, 256, 192 px high), columns at 0, 192, ..., 960 (five 256 px
    wide, the last 64): 10 tiles of 256x256, 2 of 256x64 (h x w), 5 of 192x256 and 1 of 192x64."""
    whole = DecodeSchedule()

    def tile(h: int, w: int) -> int:
        return count_vae_encode("open-sora-2.0", _video("open-sora-2.0", w, h, 129), schedule=whole).macs

    by_hand = 10 * tile(256, 256) + 2 * tile(256, 64) + 5 * tile(192, 256) + tile(192, 64)
    assert count_vae_encode("open-sora-2.0").macs == by_hand
    grid = count_vae_encode("open-sora-2.0", VideoGrid(np.array([1024]), np.array([576]), np.array([129]))).macs
    assert int(grid[0]) == by_hand > count_vae_encode("open-sora-2.0", schedule=whole).macs


@pytest.mark.parametrize("name", ["open-sora-2.0", "wan2.1-14b", "cogvideox-5b", "sora"])
def test_sweep_vae_flops_equal_single_shape_counts(name):
    preset = load_preset(name)
    v = preset.video
    df = sweep(name, [(v.width, v.height)], [v.num_frames / v.fps], gpus="h100-sxm", gpu_counts=1, mfu=0.4)
    row = df.iloc[0]
    assert int(row.num_frames) == v.num_frames
    assert row.vae_encode_flops == 2 * count_vae_encode(name, convention=MATMUL_ONLY).macs
    decode = count_vae_decode(name, convention=MATMUL_ONLY).macs
    assert row.vae_decode_flops == 2 * decode == 2 * estimate_inference(name).counts["vae_decode"].macs


DECODE_SHAPES = {  # the native shape (temporal and spatial tiles) and one other (spatial tiles only: 16 latent frames)
    "open-sora-2.0": [(1024, 576, 129), (848, 480, 61)],
    "hunyuanvideo": [(1280, 720, 129), (848, 480, 61)],
}


@pytest.mark.parametrize("name", DECODE_SHAPES)
def test_tiled_decode_single_shape_flops_and_sweep_agree(name):
    """The official tiled decode counted once: single shape, the `flops` command, the grid count and the sweep."""
    import json

    from click.testing import CliRunner

    from sora_compute.cli import cli
    from sora_compute.ledger.vae_schedule import scheduled_decode
    from sora_compute.memory.vae_schedule import scheduled_decode_macs
    from sora_compute.specs import Workload
    from sora_compute.specs.vae.schedule import official_decode_schedule

    p = load_preset(name)
    w, h, f = (np.array(v) for v in zip(*DECODE_SHAPES[name], strict=True))
    grid = count_vae_decode(name, VideoGrid(w, h, f), convention=MATMUL_ONLY).macs
    for k, (width, height, frames) in enumerate(DECODE_SHAPES[name]):
        video = _video(name, width, height, frames)
        single = count_vae_decode(name, video, convention=MATMUL_ONLY).macs
        lat = Workload.of(p.model, video).latent
        sd = scheduled_decode(p.model.vae, (lat.frames, lat.height, lat.width),
                              official_decode_schedule(p.model.vae.family, name))
        assert single == int(grid[k]) == scheduled_decode_macs(sd, MATMUL_ONLY) and sd.n_calls > 1
        assert single > count_vae_decode(name, video, convention=MATMUL_ONLY, schedule=DecodeSchedule()).macs
        r = CliRunner().invoke(cli, ["flops", name, "--resolution", f"{width}x{height}", "--frames", str(frames),
                                     "--matmul-only", "--format", "json"])
        assert r.exit_code == 0, r.output
        rows = {row["component"]: row for row in json.loads(r.output)["rows"]}
        assert rows["vae_decode"]["macs"] == single
        df = sweep(name, [(width, height)], [frames / video.fps], gpus="h100-sxm", gpu_counts=1, mfu=0.4)
        assert int(df.iloc[0].num_frames) == frames
        assert df.iloc[0].vae_decode_flops == 2 * single
    assert count_vae_decode(name, convention=MATMUL_ONLY).macs == estimate_inference(name).counts["vae_decode"].macs


def test_open_sora_2_decode_tiles_by_hand():
    """1024x576x129 -> latent 33x72x128. Temporal tiles of 64 // 4 + 1 = 17 latent frames every 48 // 4 = 12: starts
    0, 12, 24 (17, 17, 9 latent frames = 65, 65, 33 video frames). Each spatially in latent tiles of 32 every 24: rows
    at 0, 24, 48 (32, 32, 24 high), columns at 0, 24, ..., 120 (five 32 wide, the last 8): in pixels 10 tiles of
    256x256, 2 of 256x64, 5 of 192x256 and 1 of 192x64 (h x w)."""
    whole = DecodeSchedule()

    def tile(frames: int, h: int, w: int) -> int:
        return count_vae_decode("open-sora-2.0", _video("open-sora-2.0", w, h, frames), schedule=whole).macs

    def plane(frames: int) -> int:
        return 10 * tile(frames, 256, 256) + 2 * tile(frames, 256, 64) + 5 * tile(frames, 192, 256) + \
            tile(frames, 192, 64)

    by_hand = 2 * plane(65) + plane(33)
    assert count_vae_decode("open-sora-2.0").macs == by_hand
    grid = count_vae_decode("open-sora-2.0", VideoGrid(np.array([1024]), np.array([576]), np.array([129]))).macs
    assert int(grid[0]) == by_hand > count_vae_decode("open-sora-2.0", schedule=whole).macs


def test_untiled_decode_schedules_count_the_whole_clip():
    """Wan's chunks and the whole-clip schedules: the default decode count is the whole clip's ledger."""
    for name in ("wan2.1-14b", "sora"):
        assert count_vae_decode(name).macs == count_vae_decode(name, schedule=DecodeSchedule()).macs


def _decode_seconds(count, gpu="h100-sxm"):
    from sora_compute.evaluate.time import call_records

    return sum(r[10] for r in call_records(count.timed_calls, gpu))


TIMED = {  # tiled (spatial and temporal; CogVideoX's spatial tiles in frame batches) and chunked (Wan: whole clip)
    "open-sora-2.0": [(1024, 576, 129), (848, 480, 61), (256, 256, 33)],
    "hunyuanvideo": [(1280, 720, 129)],
    "cogvideox-5b": [(720, 480, 49), (720, 480, 9), (1360, 768, 49)],
    "wan2.1-14b": [(832, 480, 81)],
}


@pytest.mark.parametrize("name", TIMED)
def test_decode_seconds_single_shape_and_grid_agree(name):
    """The grid's decode seconds (each distinct tile call timed once over the grid, gathered per point by its calls)
    equal each shape's own (each distinct call of its schedule timed once, times its calls), as the MACs do."""
    from sora_compute.evaluate.time_grid import calls_seconds

    w, h, f = (np.array(v) for v in zip(*TIMED[name], strict=True))
    grid = count_vae_decode(name, VideoGrid(w, h, f), convention=MATMUL_ONLY)
    seconds = calls_seconds(grid.timed_calls, "h100-sxm")
    for k, shape in enumerate(TIMED[name]):
        single = count_vae_decode(name, _video(name, *shape), convention=MATMUL_ONLY)
        assert single.macs == int(grid.macs[k])
        assert seconds[k] == pytest.approx(_decode_seconds(single), rel=1e-12)


def test_open_sora_2_decode_seconds_by_hand():
    """1024x576x129: the tiles of ``test_open_sora_2_decode_tiles_by_hand``, each timed as a decode of its own shape:
    2 x plane(65 frames) + plane(33), a plane 10 tiles of 256x256, 2 of 256x64, 5 of 192x256, 1 of 192x64 (h x w)."""
    whole = DecodeSchedule()

    def tile(frames: int, h: int, w: int) -> float:
        return _decode_seconds(count_vae_decode("open-sora-2.0", _video("open-sora-2.0", w, h, frames),
                                                convention=MATMUL_ONLY, schedule=whole))

    def plane(frames: int) -> float:
        return 10 * tile(frames, 256, 256) + 2 * tile(frames, 256, 64) + 5 * tile(frames, 192, 256) + \
            tile(frames, 192, 64)

    by_hand = 2 * plane(65) + plane(33)
    tiled = count_vae_decode("open-sora-2.0", convention=MATMUL_ONLY)
    assert _decode_seconds(tiled) == pytest.approx(by_hand, rel=1e-12)
    assert by_hand > _decode_seconds(count_vae_decode("open-sora-2.0", convention=MATMUL_ONLY, schedule=whole))


def test_untiled_decode_seconds_are_the_whole_clip():
    """Wan's chunked and the whole-clip schedules: one ledger on the whole latent, timed as before."""
    for name in ("wan2.1-14b", "sora"):
        count = count_vae_decode(name, convention=MATMUL_ONLY)
        assert count.calls == () and count.timed_calls == ((count.timed_ops, 1),)


@pytest.mark.parametrize("name", ["open-sora-2.0", "hunyuanvideo", "cogvideox-5b", "wan2.1-14b"])
def test_sweep_predicted_latency_equals_single_video_prediction(name):
    """The sweep's predicted one-GPU latency at a preset's native shape is the single-video prediction (text
    encoder, steps x DiT, the decode under its official schedule)."""
    from sora_compute.planning.timing import predicted

    v = load_preset(name).video
    df = sweep(name, [(v.width, v.height)], [v.num_frames / v.fps], gpus="h100-sxm", gpu_counts=1)
    assert df.iloc[0].latency_s_1gpu == pytest.approx(predicted(estimate_inference(name), "h100-sxm")[0], rel=1e-12)


TINY_TILED = [  # (VAE, schedule): spatial and temporal tiles; CogVideoX's spatial tiles in frame batches of 2
    ("generic", DecodeSchedule(mode="tiled", tile_px=(8, 8), stride_px=(6, 6), tile_frames=4, stride_frames=2)),
    ("cogvideox", DecodeSchedule(mode="tiled", tile_px=(16, 16), stride_px=(12, 8), frame_batch=2)),
]


@pytest.mark.parametrize("family,schedule", TINY_TILED, ids=[f for f, _ in TINY_TILED])
def test_grid_tiled_decode_macs_equal_flop_counter(family, schedule):
    """The grid's tiled decode (every tile, overlaps recomputed; CogVideoX's frame batches with the conv cache) equals
    FlopCounterMode on the reference decoder running that schedule (meta tensors), at each point of a grid of
    latents: several tiles with edge tiles, one side under a tile, a clip under one tile, odd frame counts."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from reference_model.vae.tiling import temporal_tiled_decode, tiled_decode
    from sora_compute.calibration.build import build_vae
    from sora_compute.evaluate.flops import count_calls
    from sora_compute.flops.vae_tiles import tiled_decode_calls
    from sora_compute.specs import CogVideoXVAE, GenericVAE

    vae = {"generic": GenericVAE(latent_channels=4, block_out_channels=(8, 16), spatial_compression=2,
                                 temporal_compression=2, causal=True, norm_groups=4, layers_per_block=1,
                                 quant_convs=True),
           "cogvideox": CogVideoXVAE(latent_channels=4, block_out_channels=(8, 16, 16), spatial_compression=4,
                                     temporal_compression=2, layers_per_block=1, norm_groups=4)}[family]
    s, tc = vae.spatial_compression, vae.temporal_compression
    latents = [(3, 6, 5), (2, 3, 7), (1, 2, 2)]
    meta = build_vae(vae).eval().to("meta")
    decoder = meta.decoder
    if schedule.frame_batch is not None:
        def decoder(z, d=meta.decoder, fb=schedule.frame_batch):
            return d.framewise(z, fb)
    t, h, w = (np.array(v, dtype=np.float64) for v in zip(*latents, strict=True))
    grid = count_calls("vae_decode", [tiled_decode_calls(vae, t, h, w, schedule)], MATMUL_ONLY).macs
    for k, (T, H, W) in enumerate(latents):
        z = torch.empty(1, vae.latent_channels, T, H, W, device="meta")
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            if schedule.tile_frames is not None and schedule.tile_frames // tc < T:  # diffusers' rule
                temporal_tiled_decode(decoder, z, s, tc, schedule.tile_px, schedule.stride_px, schedule.tile_frames,
                                      schedule.stride_frames)
            elif schedule.tile_px[0] // s < H or schedule.tile_px[1] // s < W:
                tiled_decode(decoder, z, s, schedule.tile_px, schedule.stride_px)
            else:
                decoder(z)
        assert 2 * int(grid[k]) == counter.get_total_flops(), (T, H, W)


def test_report_states_the_decode_schedule_it_times():
    """The report's inference assumption names the decode it counts and times: Open-Sora 2.0's 3 temporal x 18
    spatial tiles (``test_open_sora_2_decode_tiles_by_hand``), Wan's whole-clip count."""
    from sora_compute.report import _decode_basis

    assert _decode_basis(estimate_inference("open-sora-2.0")).endswith(": 54 decoder calls counted and timed")
    assert "whole clip" in _decode_basis(estimate_inference("wan2.1-14b"))
