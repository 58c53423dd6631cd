"""The sensitivity table's alternatives step from the run's own base (a what-if never leaves stale labels)."""

from __future__ import annotations

from sora_compute.planning import load_scenario, with_main_stage_shape
from sora_compute.planning.sensitivity import NONE_HIGHER, NONE_LOWER, generic_variations, sensitivity, sora_variations

SORA = load_scenario("sora")
MAIN = "video-720p-10s"  # the sora scenario's dominant stage (most model FLOPs)


def rows(sc):
    return {v.assumption.split(",")[0]: (v.low, v.base, v.high) for v in sora_variations(sc, MAIN)}


def test_1080p_20s_what_if_steps_from_its_own_base():
    s = sensitivity(with_main_stage_shape(SORA, 1920, 1088, 20.0, stage=MAIN))
    assert set(s["assumption"]) >= {f"resolution, {MAIN}", f"clip length, {MAIN}", f"epochs, {MAIN}"}
    r = {a.removesuffix(f", {MAIN}"): (lo, b, hi)
         for a, lo, b, hi in zip(s["assumption"], s["low"], s["base"], s["high"], strict=True)}
    # 1080p on sora's 16-px grid is 1920x1088; one named size down is 720p, up is 1440p (both on the grid)
    assert r["resolution"] == ("1280x720", "1920x1088", "2560x1440")
    assert r["clip length"] == ("10 s", "20 s", "40 s")  # half / double the run's 20 s
    assert r["epochs"] == ("1.5", "3", "6")  # the stage's 3 epochs halved / doubled
    assert r["VAE temporal compression"] == ("8x (half the tokens)", "4x", "2x (twice the tokens)")
    assert r["latents and text"] == (NONE_LOWER, "pre-computed", "encoded on the fly")
    assert r["clips, video-480p-4s"] == ("25M", "50M x 2 epochs", "100M")
    assert all(lo != b and hi != b for lo, b, hi in r.values())
    moving = s[s["low"] != NONE_LOWER]
    assert (moving["multiple_low"] < moving["multiple_base"]).all()
    assert (s["multiple_high"] > s["multiple_base"]).all()


def test_resolution_ladder_ends_and_snapping():
    # 4k: one size down is 1440p; past the ladder's top, double per side
    assert rows(with_main_stage_shape(SORA, 3840, 2160, stage=MAIN))["resolution"] == (
        "2560x1440", "3840x2160", "7680x4320")
    # 480p (848x480 on the grid): 360p snaps to 640x352 (360 / 16 = 22.5 -> 22 x 16), 720p is 1280x720
    assert rows(with_main_stage_shape(SORA, 848, 480, 5.0, stage=MAIN))["resolution"] == (
        "640x352", "848x480", "1280x720")
    # the unreshaped stage: each bucket one size down / up, its share kept
    assert rows(SORA)["resolution"] == ("848x480 (90%), 1280x720 (10%)", "1280x720 (90%), 1920x1088 (10%)",
                                        "1920x1088 (90%), 2560x1440 (10%)")


def test_binary_and_edge_rows_have_no_stale_side():
    fly = SORA.model_copy(update={"vae_on_the_fly": True, "text_on_the_fly": True})
    assert rows(fly)["latents and text"] == ("pre-computed", "encoded on the fly", NONE_HIGHER)
    vae1 = SORA.with_model(SORA.model.model_copy(update={"vae": SORA.model.vae.model_copy(
        update={"temporal_compression": 1})}))
    assert rows(vae1)["VAE temporal compression"] == ("2x (half the tokens)", "1x", NONE_HIGHER)
    dit = rows(SORA)["DiT size"]
    assert "(28 x 3072)" in dit[0] and "(32 x 4096)" in dit[1] and "(48 x 5120)" in dit[2]


def test_generic_rows_read_their_base_from_the_run():
    wan = with_main_stage_shape(load_scenario("wan2.1-14b"), 1920, 1088, 20.0)
    r = {v.assumption.split(",")[0]: (v.low, v.base, v.high) for v in generic_variations(wan)}
    assert r["resolution"] == ("1280x720", "1920x1088", "2560x1440")
    assert r["clip length"] == ("10 s", "20 s", "40 s")
    assert r["latents and text"] == (NONE_LOWER, "pre-computed", "encoded on the fly")
    assert all(lo != b and hi != b for lo, b, hi in r.values())
