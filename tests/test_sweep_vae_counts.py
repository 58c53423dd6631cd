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
