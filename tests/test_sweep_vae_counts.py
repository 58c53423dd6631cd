"""The sweep's VAE MACs are the single-shape counts: each grid point's encode under the preset's official encode
schedule (Open-Sora 2.0's overlapping spatial tiles recomputed; Wan's chunks and CogVideoX's frame batches, which
compute the whole clip's convolutions), and its decode as ``count_vae_decode`` and ``estimate_inference``."""

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
