"""Multi-GPU inference schedules and the inference layout search (planning/parallel_inference.py,
planning/inference_layouts.py): hand-derived bytes, bubbles and halvings; properties of the search."""

from __future__ import annotations

import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sora_compute.evaluate.comm import Group, collective_seconds, overlap
from sora_compute.hardware.profiles import load_profile
from sora_compute.planning.inference import InferenceSettings, estimate_inference
from sora_compute.planning.inference_layouts import (
    best_layouts,
    candidate_layouts,
    latency_scaling,
    search_inference_layouts,
)
from sora_compute.planning.parallel_inference import (
    InferenceLayout,
    inference_schedule,
    layout_problem,
    pipefusion_slots,
    ring_kv_bytes,
    ulysses_send_bytes,
)
from sora_compute.specs import Workload

H100 = load_profile("h100-sxm")
WAN = estimate_inference("wan2.1-1.3b")  # 832x480x81, 50 steps, CFG pair batched


def test_wan_shape_used_below():
    """The numbers the hand derivations below start from: Wan2.1-1.3B at 832x480, 81 frames: latent 21 x 60 x 104
    (8x spatial, 4x temporal causal: 1 + 80/4), patch 1x2x2 -> 21 x 30 x 52 = 32,760 tokens; hidden 1536, 12 heads,
    30 full-attention blocks (self-attention over the video, cross-attention to 512 text tokens); CFG pair: batch 2."""
    w = Workload.of(WAN.model, WAN.video)
    assert w.tokens == 21 * 30 * 52 == 32760
    d = WAN.model.dit
    assert (d.hidden_size, d.num_heads, d.depth) == (1536, 12, 30)
    assert WAN.settings.cfg and WAN.settings.cfg_mode == "batched"


def test_ulysses_bytes_per_layer_by_hand():
    """Ulysses u=4, batch 2: a rank holds 2 x 32,760 / 4 = 16,380 tokens; it sends q, k, v (3 x 16,380 x 1536 x 2 B
    = 150,958,080 B) and gets the output back (16,380 x 1536 x 2 = 50,319,360 B): 201,277,440 B per layer.
    On the wire (NCCL all-to-all bus factor (n-1)/n = 3/4): 150,958,080 B. On 8x H100 (busbw 460 GB/s, 10 us each):
    2 x 10 us + 150,958,080 / 460e9 s = 348.17 us per layer; x 30 self-attention layers = 10.445 ms per step."""
    assert ulysses_send_bytes(16380, 1536, 2) == 201_277_440
    s = inference_schedule(WAN, H100, InferenceLayout(ulysses=4))
    assert s.comm_per_step["ulysses_all_to_all"] == pytest.approx(30 * (2 * 10e-6 + 150_958_080 / 460e9), rel=1e-9)
    assert s.comm_per_step["ring_p2p"] == 0


def test_ring_kv_bytes_and_overlap_by_hand():
    """Ring r=4: one hop carries one rank's K and V: 2 x (2 x 32,760 / 4) x 1536 x 2 B = 100,638,720 B (p2p on
    NVSwitch: 10 us + 100,638,720 / 460e9 s = 228.78 us). Each of the r - 1 = 3 hops runs behind one block of the
    core; the exposed part per hop is what ``overlap`` leaves (compute slowed by 10% while both run)."""
    assert ring_kv_bytes(2 * 32760, 1536, 4, 1, 2) == 100_638_720
    hop = collective_seconds("p2p", 100_638_720, Group(4, 4), H100)
    assert hop == pytest.approx(10e-6 + 100_638_720 / 460e9)
    s = inference_schedule(WAN, H100, InferenceLayout(ring=4))
    # the core per layer: the sharded attention over 30 layers; each of its 4 blocks hides one hop
    block_s = s.compute_per_step["attention"] / 30 / 4  # all attention here is the self-attention core + cross
    exposed = s.comm_per_step["ring_p2p"] / 30 / 3
    assert exposed <= overlap(block_s, hop)[1] + 1e-12
    assert 0 < exposed <= 0.1 * hop + 1e-12  # the hop is shorter than a block: only the slowdown shows


def test_ring_hybrid_hop_splits_heads():
    """USP u=2 x r=2: a hop carries K and V of 1/2 of the tokens with 1/2 of the heads: 2 x 32,760 x 1536 / 4 x
    2 (K, V) x 2 B = 100,638,720 B, the same as Ring 4 alone (tokens / r x D / u)."""
    assert ring_kv_bytes(2 * 32760, 1536, 2, 2, 2) == ring_kv_bytes(2 * 32760, 1536, 4, 1, 2)


def test_pipefusion_bubble_by_hand():
    """PipeFusion 4 stages x 4 patches, 50 steps, 1 warm-up step: 50 x 4 = 200 slots of work, the warm-up step's
    fill (3 slots) and the pipeline's one fill after it (3 slots): 206 slots, bubble 6 (2.9%). One stage: none."""
    assert pipefusion_slots(50, 4, 4, 1) == (206, 6)
    assert pipefusion_slots(50, 8, 1, 1) == (400, 0)
    assert pipefusion_slots(1, 2, 2, 5) == (2 + 2, 2)  # warm-up capped at the steps
    s = inference_schedule(WAN, H100, InferenceLayout(pipefusion=4))
    slot = (sum(s.compute_per_step.values()) - 0) / 4  # one step = 4 patch slots (compute only)
    assert s.bubble_s == pytest.approx(6 * slot, rel=1e-9)


def test_cfg_parallel_halves_the_dit_work():
    """CFG parallel: each group runs batch 1 instead of the pair: exactly half the DiT FLOPs per GPU; the text
    encoder's two prompts split (one each)."""
    one = inference_schedule(WAN, H100)
    two = inference_schedule(WAN, H100, InferenceLayout(cfg=2))
    assert two.dit_flops_per_step == pytest.approx(one.dit_flops_per_step / 2, rel=1e-12)
    assert two.text_s == pytest.approx(one.text_s / 2)
    assert sum(two.compute_per_step.values()) < sum(one.compute_per_step.values())
    no_cfg = estimate_inference("wan2.1-1.3b", settings=InferenceSettings(cfg=False))
    assert layout_problem(InferenceLayout(cfg=2), no_cfg) is not None
    with pytest.raises(ValueError, match="CFG pair"):
        inference_schedule(no_cfg, H100, InferenceLayout(cfg=2))


def test_ulysses_needs_heads_to_divide():
    """12 heads: Ulysses 8 cannot split them (ring 8 can)."""
    assert "does not divide the 12 heads" in (layout_problem(InferenceLayout(ulysses=8), WAN) or "")
    assert layout_problem(InferenceLayout(ring=8), WAN) is None
    assert all(WAN.model.dit.num_heads % lay.ulysses == 0 for lay in candidate_layouts(8, WAN))


def test_sequence_parallel_splits_activations_not_weights():
    """Ulysses 4: the DiT's weights stay whole on every GPU (2 bytes x parameters), the DiT forward's activation
    peak shrinks; FSDP 4 divides the weights by 4; PipeFusion 2 holds half the blocks (plus stale K/V)."""
    from sora_compute.evaluate.params import dit_params

    weights = dit_params(WAN.model.dit) * 2
    one = inference_schedule(WAN, H100).memory
    uly = inference_schedule(WAN, H100, InferenceLayout(ulysses=4))
    assert uly.memory.components["DiT weights"] == one.components["DiT weights"] == weights
    act = {k: v for k, v in uly.memory.transient.items() if k.startswith("DiT forward")}
    act1 = {k: v for k, v in one.transient.items() if k.startswith("DiT forward")}
    assert max(act.values()) < max(act1.values())
    assert any("not the weights" in n for n in uly.notes)
    fsdp = inference_schedule(WAN, H100, InferenceLayout(ulysses=4, fsdp=4)).memory
    assert fsdp.components["DiT weights"] == -(-weights // 4)
    pf = inference_schedule(WAN, H100, InferenceLayout(pipefusion=2)).memory
    assert pf.components["DiT weights"] == -(-weights // 2)
    assert pf.components["PipeFusion stale K/V (stage's layers)"] > 0


def test_one_gpu_layout_has_no_communication_and_amdahl_parts():
    """One GPU: no communication, no bubble; the text encoder and the VAE decode are the serial part; with the VAE
    split over 8 GPUs only the text encoder stays serial."""
    s = inference_schedule(WAN, H100)
    assert sum(s.comm_per_step.values()) == 0 and s.bubble_s == 0
    assert s.serial_s == pytest.approx(s.text_s + s.vae_s)
    assert s.latency_s == pytest.approx(s.text_s + s.vae_s + s.steps_run * s.step_s)
    par = inference_schedule(WAN, H100, InferenceLayout(ring=4, cfg=2, vae_parallel=True))
    assert par.serial_s == par.text_s
    assert par.vae_s < s.vae_s
    b = par.breakdown()
    assert b["seconds"].sum() == pytest.approx(par.latency_s)


def test_cost_and_throughput_follow_latency():
    """videos per GPU-hour = 3600 / (latency x GPUs); USD per video = price x GPUs x latency / 3600."""
    s = inference_schedule(WAN, H100, InferenceLayout(ulysses=2, cfg=2), price_usd_per_hour=3.0)
    assert s.videos_per_gpu_hour == pytest.approx(3600 / (s.latency_s * 4))
    assert s.cost_per_video_usd == pytest.approx(3.0 * 4 * s.latency_s / 3600)


def test_bad_layouts_are_refused():
    with pytest.raises(ValueError, match="patches"):
        InferenceLayout(pipefusion=4, patches=2)
    with pytest.raises(ValueError, match="fsdp"):
        InferenceLayout(ulysses=2, fsdp=4)
    with pytest.raises(ValueError):
        InferenceLayout(cfg=3)
    with pytest.raises(ValueError, match="integer"):
        search_inference_layouts(WAN, H100, 0)


# ------------------------------------------------------------------------------------------------
# properties
# ------------------------------------------------------------------------------------------------

FAST = settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
SMALL = estimate_inference("cogvideox-2b")  # 30 heads, 30 blocks, CFG


@FAST
@given(st.sampled_from(["ulysses", "ring", "cfg", "pipefusion"]), st.sampled_from([1, 2, 3]),
       st.sampled_from(["h100-sxm", "l40", "a100-80gb"]))
def test_more_gpus_never_raise_a_layouts_per_gpu_compute(axis, start, gpu):
    """Doubling one degree of a layout (more GPUs per video) never raises the DiT FLOPs or compute seconds one GPU
    runs per step."""
    base = {"ulysses": 1, "ring": 1, "cfg": 1, "pipefusion": 1, axis: start}
    if axis == "cfg" and start > 1:
        base["cfg"], base["ring"] = 1, start
    bigger = {**base, axis: base[axis] * 2}
    lays = [InferenceLayout(**base), InferenceLayout(**bigger)]
    if any(layout_problem(lay, SMALL) for lay in lays):
        return
    a, b = (inference_schedule(SMALL, gpu, lay) for lay in lays)
    assert b.dit_flops_per_step <= a.dit_flops_per_step * (1 + 1e-12)
    assert sum(b.compute_per_step.values()) <= sum(a.compute_per_step.values()) * (1 + 1e-9)


SEARCH = {g: search_inference_layouts(SMALL, g, 4) for g in ("rtx-4090", "l40")}


@FAST
@given(st.sampled_from(sorted(SEARCH)), st.randoms(use_true_random=False))
def test_search_is_invariant_to_enumeration_order(gpu, rnd: random.Random):
    """The same table (rows, order, ranks) whatever order the layouts come in."""
    lays = [lay for g in (1, 2, 4) for lay in candidate_layouts(g, SMALL)]
    rnd.shuffle(lays)
    again = search_inference_layouts(SMALL, gpu, 4, layouts=lays)
    assert again.equals(SEARCH[gpu])


@FAST
@given(st.sampled_from(["rtx-4090", "l40", "a100-40gb", "h100-sxm"]), st.sampled_from([1, 2, 4]),
       st.sampled_from(["cogvideox-2b", "wan2.1-1.3b"]))
def test_a_layout_that_does_not_fit_is_never_recommended(gpu, gpus, model):
    table = search_inference_layouts(estimate_inference(model), gpu, gpus)
    fastest, cheapest = best_layouts(table)
    if not table["fits"].any():
        assert fastest is None and cheapest is None
        return
    assert bool(fastest["fits"]) and bool(cheapest["fits"])
    assert (table.loc[~table["fits"], ["latency_rank", "cost_rank"]] == 0).all().all()
    fit = table[table["fits"]]
    assert fastest["latency_s"] == fit["latency_s"].min()
    assert cheapest["cost_per_video_usd"] == fit["cost_per_video_usd"].min()


def test_latency_scaling_is_sublinear_with_serial_parts():
    """The fastest fitting layout per GPU count: latency falls, efficiency <= 1 (serial text encoder, unsplit
    parts, communication)."""
    sc = latency_scaling(search_inference_layouts(WAN, H100, 8))
    assert list(sc["gpus_per_video"]) == [1, 2, 4, 8]
    assert sc["latency_s"].is_monotonic_decreasing
    assert (sc["efficiency"] <= 1 + 1e-9).all()


# ------------------------------------------------------------------------------------------------
# `sora-compute serve`
# ------------------------------------------------------------------------------------------------

def test_cli_serve_searches_and_pins():
    """The JSON carries every layout, the latency-optimal schedule and the scaling rows; a pinned layout is the only
    row; prose numbers come from the same run."""
    import json

    from tests.clirun import main

    r = main("serve", "wan2.1-1.3b", "--gpus", "4", "--format", "json")
    assert r.code == 0, r.err
    out = json.loads(r.out)
    table = search_inference_layouts(WAN, H100, 4)
    assert len(out["layouts"]) == len(table)
    assert out["schedule"]["layout"] == best_layouts(table)[0]["layout"]
    assert [row["gpus_per_video"] for row in out["scaling"]] == [1, 2, 4]
    r = main("serve", "wan2.1-1.3b", "--gpus", "4", "--layout", "cfg=2,ring=2")
    assert r.code == 0, r.err
    s = inference_schedule(WAN, H100, InferenceLayout(cfg=2, ring=2))
    assert "pinned layout cfg2 x ring2" in r.out and f"{s.latency_s:,.1f} s per video" in r.out


@pytest.mark.parametrize("layout, needle", [("ulysses=8", "12 heads"), ("ring=3", "not a divisor"),
                                            ("tp=2", "--layout"), ("pipefusion=4,patches=2", "patches"),
                                            ("cfg=3", "cfg")])
def test_cli_serve_bad_layouts_are_one_line(layout, needle):
    from tests.clirun import main

    r = main("serve", "wan2.1-1.3b", "--gpus", "8", "--layout", layout)
    assert r.code == 2 and len(r.err.strip().splitlines()) == 1 and needle in r.err and "Traceback" not in r.err
