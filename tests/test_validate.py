"""Predicted against published (sora_compute/planning/validate.py, `sora-compute validate`): each row is the time
model's prediction for the entry's own model, GPU, shape and sampling; statuses say why a row is not compared."""

from __future__ import annotations

import json
import textwrap

import pytest

from sora_compute.planning.inference import InferenceSettings, estimate_inference, sampling_defaults
from sora_compute.planning.timing import inference_times, predicted_seconds
from sora_compute.planning.validate import snap_video, validate
from sora_compute.planning.validation import load_validation
from sora_compute.presets import load_preset
from sora_compute.specs import VideoSpec
from tests.clirun import main

ENTRY = """\
  - id: {id}
    model: {model}
    kind: {kind}
    scope: {scope}
    gpu: {gpu}
    gpu_as_published: test
    gpus: {gpus}
    resolution: [720, 480]
    frames: 49
    steps: 50
    cfg: true
    seconds: {seconds}
    source: test
    quote: test
{extra}"""


def _file(tmp_path, *entries: dict, missing: str = "") -> str:
    text = (missing or "") + "entries:\n" + "".join(ENTRY.format(**{
        "kind": "inference", "scope": "end_to_end", "gpu": "h100-sxm", "gpus": 1, "seconds": 45.0,
        "model": "cogvideox-2b", **e, "extra": f"    layout: {json.dumps(e['layout'])}\n" if "layout" in e else ""})
        for e in entries)
    p = tmp_path / "v.yaml"
    p.write_text(text)
    return str(p)


def test_rows_are_the_time_model_for_the_entry_and_errors_are_ratios(tmp_path):
    path = _file(tmp_path, {"id": "one"}, {"id": "two-gpus", "gpus": 2, "seconds": 20.0},
                 {"id": "step", "scope": "denoise_step", "seconds": 0.5})
    run = validate(load_validation(path))
    t = run.table.set_index("id")
    est = estimate_inference("cogvideox-2b", VideoSpec(width=720, height=480, num_frames=49),
                             InferenceSettings(steps=50, cfg=True))
    whole = predicted_seconds(est, "h100-sxm")
    assert t.loc["one", "predicted_s"] == pytest.approx(whole)
    assert t.loc["one", "error"] == pytest.approx(whole / 45.0 - 1)
    assert t.loc["two-gpus", "status"] == "not modelled"  # a multi-GPU run without its layout
    assert "layout" in t.loc["two-gpus", "note"]
    times = inference_times(est, "h100-sxm").set_index("component")
    assert t.loc["step", "predicted_s"] == pytest.approx(times.loc["dit", "seconds"] / 50)
    assert len(run.compared) == 2  # the two single-GPU rows
    assert run.mean_abs_error == pytest.approx((abs(whole / 45 - 1) + abs(times.loc["dit", "seconds"] / 50 / 0.5 - 1))
                                               / 2)


def test_multi_gpu_rows_are_the_schedule_of_their_layout(tmp_path):
    """A run with its layout: the schedule's latency (a step: its per-step time) and the speedup over the same
    source's one-GPU run, published (45 / 20) and predicted (the schedule on one GPU / on the layout)."""
    from sora_compute.planning.parallel_inference import InferenceLayout, inference_schedule

    path = _file(tmp_path, {"id": "one"}, {"id": "cfg2", "gpus": 2, "seconds": 20.0, "layout": {"cfg": 2}},
                 {"id": "u2", "gpus": 2, "seconds": 0.3, "scope": "denoise_step", "layout": {"ulysses": 2}})
    run = validate(load_validation(path))
    t = run.table.set_index("id")
    est = estimate_inference("cogvideox-2b", VideoSpec(width=720, height=480, num_frames=49),
                             InferenceSettings(steps=50, cfg=True))
    two = inference_schedule(est, "h100-sxm", InferenceLayout(cfg=2))
    one = inference_schedule(est, "h100-sxm")
    assert t.loc["cfg2", "predicted_s"] == pytest.approx(two.latency_s)
    assert t.loc["cfg2", "speedup_published"] == pytest.approx(45 / 20)
    assert t.loc["cfg2", "speedup_predicted"] == pytest.approx(one.latency_s / two.latency_s)
    step = inference_schedule(est, "h100-sxm", InferenceLayout(ulysses=2)).step_s
    assert t.loc["u2", "predicted_s"] == pytest.approx(step)
    assert t.loc["u2", "speedup_published"] != t.loc["u2", "speedup_published"]  # no one-GPU step in the file: NaN
    assert len(run.multi_gpu) == 2 and len(run.compared) == 1
    assert (validate().multi_gpu["scope"] != "training_step").all()  # training rows are not inference schedules
    with pytest.raises(ValueError, match="uses 4 GPUs"):
        load_validation(_file(tmp_path, {"id": "x", "gpus": 2, "layout": {"cfg": 2, "ring": 2}}))


def test_inference_time_prices_the_elementwise_work_a_flop_count_leaves_out():
    """The one-GPU inference time reads the DiT's whole ledger (modulation, gates, residual adds, activations are
    memory traffic and launches), as the multi-GPU schedule and the training time do; the FLOPs stay the counted
    ops'."""
    from sora_compute.evaluate.time import predict_seconds
    from sora_compute.flops import dit_ops

    video = VideoSpec(width=720, height=480, num_frames=49)
    est = estimate_inference("cogvideox-2b", video, InferenceSettings(steps=50, cfg=True))
    full = dit_ops("cogvideox-2b", video, batch=2)
    count = est.counts["dit"]
    assert [o.path for o in count.timed_ops] == [o.path for o in full]  # the ledger, in its order
    assert {o.op for o in full} - {o.op for o in count.terms} == {"elementwise"}
    per_call = inference_times(est, "h100-sxm").set_index("component").loc["dit", "seconds_per_call"]
    assert per_call == pytest.approx(predict_seconds(full, "h100-sxm"))
    assert per_call > predict_seconds(count.terms, "h100-sxm")


def test_stated_offload_adds_its_weight_copies_and_unstated_steps_are_not_guessed(tmp_path):
    """diffusers' sequential CPU offload streams every DiT weight each forward (50 steps, CFG batched: 50 times), the
    text encoder once and the VAE decoder's each decoder call, over the H100's PCIe Gen5 host link at 55.6 GB/s, not
    overlapped with compute. An entry that does not state its steps is not compared."""
    from sora_compute.evaluate.params import dit_params, text_encoder_params, vae_params

    text = textwrap.dedent("""\
        entries:
          - {id: seq, model: cogvideox-2b, kind: inference, scope: end_to_end, gpu: h100-sxm, gpu_as_published: t,
             gpus: 1, resolution: [720, 480], frames: 49, steps: 50, cfg: true, seconds: 45.0, source: t, quote: t,
             settings: {offload: sequential_cpu}}
          - {id: nosteps, model: cogvideox-2b, kind: inference, scope: end_to_end, gpu: h100-sxm,
             gpu_as_published: t, gpus: 1, resolution: [720, 480], frames: 49, seconds: 2.0, source: t, quote: t}
        """)
    path = tmp_path / "v.yaml"
    path.write_text(text)
    t = validate(load_validation(str(path))).table.set_index("id")
    m = load_preset("cogvideox-2b").model
    # bytes, fp16 weights; the VAE decoder's once per decoder call: the official decode of the 13 x 60 x 90 latent in
    # 30 x 45 tiles every 25 x 36 (3 x 3 tiles), each in 7 batches of 2 latent frames: 63 calls
    copied = 2 * (sum(text_encoder_params(e) for e in m.text_encoders) + 50 * dit_params(m.dit)
                  + 63 * vae_params(m.vae)[1])
    est = estimate_inference("cogvideox-2b", VideoSpec(width=720, height=480, num_frames=49),
                             InferenceSettings(steps=50, cfg=True))
    assert t.loc["seq", "predicted_s"] == pytest.approx(predicted_seconds(est, "h100-sxm") + copied / 55.6e9)
    assert "sequential offload" in t.loc["seq", "note"]
    assert t.loc["nosteps", "status"] == "not modelled" and "steps" in t.loc["nosteps", "note"]


def test_open_sora_2_samples_three_guidance_branches_per_step():
    """Open-Sora 2.0's sampler (method 'i2v', t2v too) runs the DiT on [cond, text-uncond, image-uncond] each step:
    50 steps are 150 single-sample forwards, batched 3 at a time; a CFG-parallel layout of 2 cannot split 3."""
    from sora_compute.flops import count_dit
    from sora_compute.memory.planner import inference_memory
    from sora_compute.planning.parallel_inference import InferenceLayout, layout_problem

    s = sampling_defaults("open-sora-2.0")
    assert (s.steps, s.cfg, s.guidance_branches, s.dit_evaluations) == (50, True, 3, 150)
    video = VideoSpec(width=256, height=256, num_frames=129)
    est = estimate_inference("open-sora-2.0", video, s)
    one = count_dit("open-sora-2.0", video, batch=1, convention=est.counts["dit"].convention)
    assert est.counts["dit"].flops == 3 * one.flops and est.multipliers["dit"] == 50
    assert est.flops_by_component["dit"] == 150 * one.flops
    assert "does not divide the 3 guidance branches" in str(layout_problem(InferenceLayout(cfg=2), est))
    assert sampling_defaults("cogvideox-2b").guidance_branches == 2
    # the schedules hold the three branches' latents (and activations) at once
    model = load_preset("open-sora-2.0").model
    one, three = (inference_memory(model, video, stage="dit", cfg_batch=b) for b in (1, 3))
    assert three.components["latents (CFG pair)"] == 3 * one.components["latents (CFG pair)"]


def test_rows_not_compared_say_why(tmp_path):
    missing = "missing:\n  models: [not-a-preset]\n  gpus: [no-such-gpu]\n"
    path = _file(tmp_path, {"id": "m", "model": "not-a-preset"}, {"id": "g", "gpu": "no-such-gpu"},
                 {"id": "t", "kind": "training", "scope": "training_step"}, missing=missing)
    t = validate(load_validation(path)).table.set_index("id")
    assert t.loc["m", "status"] == "no preset" and t.loc["g", "status"] == "no profile"
    assert t.loc["t", "status"] == "not modelled" and "training" in t.loc["t", "note"]


def test_published_shapes_snap_to_the_model_grid():
    model = load_preset("cogvideox-2b").model  # 8x spatial VAE x 2x2 patch: 16-px grid; causal 4x: 1 + 4k frames
    video, note = snap_video(model, 854, 480, 50)
    assert (video.width, video.height, video.num_frames) == (848, 480, 49)
    assert note == "854x480 -> 848x480; 50 -> 49 frames"
    assert snap_video(model, 720, 480, 49)[1] == ""


def test_packaged_file_compares_single_gpu_inference_and_the_cli_prints_the_mean():
    run = validate()
    assert len(run.compared) >= 40
    assert 0 < run.mean_abs_error < 10
    r = main("validate")
    assert r.code == 0 and f"mean |error| {run.mean_abs_error:.1%}" in r.out
    # the multi-GPU inference mean holds inference rows only: training runs and steps have their own lines
    assert set(run.multi_gpu["scope"]) <= {"end_to_end", "denoise_step"} and len(run.multi_gpu)
    assert f"Multi-GPU inference, {len(run.multi_gpu):,} compared" in r.out
    # the training line counts the rows predicted under and over their published figure, from this run
    t = run.table
    trained = t[t["scope"].isin(["training_run", "training_step"]) & (t["status"] == "compared")
                & (t["basis"] != "layout search")]
    under, over = int((trained["error"] < 0).sum()), int((trained["error"] > 0).sum())
    assert under + over == len(trained) and f"{under:,} under and {over:,} over" in r.out


def test_cli_bad_file_is_one_line(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(textwrap.dedent("entries:\n  - id: x\n"))
    for args in (["validate", "--file", str(tmp_path / "absent.yaml")], ["validate", "--file", str(bad)]):
        r = main(*args)
        assert r.code == 2 and len(r.err.strip().splitlines()) == 1 and "Traceback" not in r.err


def test_serving_plan_with_predicted_time():
    """plan_serving(predict=True): on 2 GPUs the fastest 2-GPU schedule; the MFU it implies; the reason when it
    cannot predict (no cuDNN attention points for A100), and an explicit MFU still wins."""
    import sora_compute as sc

    est = sc.estimate_inference("cogvideox-2b")
    one = predicted_seconds(est, "h100-sxm")
    plan = sc.plan_serving(est, "h100-sxm", gpus_per_video=2, predict=True)
    from sora_compute.planning.inference_layouts import best_layouts, candidate_layouts, search_inference_layouts

    fastest = best_layouts(search_inference_layouts(est, "h100-sxm", 2, layouts=candidate_layouts(2, est)))[0]
    assert plan.latency_s == pytest.approx(fastest["latency_s"])  # the 2-GPU schedule, not one / 2
    assert fastest["layout"] in plan.time_basis
    assert plan.mfu == pytest.approx(est.flops_per_video / (one * 989e12))  # h100-sxm dense BF16 peak
    assert plan.time_basis.startswith("predicted by the time model (fa2 attention, bf16); MFU ")
    assert sc.plan_serving(est, "h100-sxm").latency_s == one  # predicted is the default
    no_points = sc.plan_serving(est, "a100-80gb", predict=True, attention_kernel="cudnn")
    assert no_points.predicted_s is None and "cudnn" in no_points.time_basis and no_points.mfu == 0.40
    fp8 = sc.plan_serving(est, "h100-sxm", precision="fp8", predict=True)  # FA2 attention stays 16-bit
    assert fp8.predicted_s is not None and one / 2 < fp8.predicted_s < one
    assumed = sc.plan_serving(est, "h100-sxm", mfu=0.5, predict=True)
    assert assumed.latency_s == pytest.approx(est.flops_per_video / (989e12 * 0.5))
    assert assumed.time_basis == "time from assumed MFU 0.50 (given)"
    assert sc.plan_serving(est, "h100-sxm", mfu=0.5, mfu_source="--mfu").time_basis.endswith("0.50 (--mfu)")
    assert (sc.plan_serving(est, "h100-sxm", predict=False).time_basis
            == "time from assumed MFU 0.40 (the GPU's planning MFU)")


TRAIN = """\
entries:
  - id: {id}
    model: dit-xl-2
    kind: training
    scope: training_step
    gpu: h800
    gpu_as_published: test
    gpus: 8
    resolution: [256, 256]
    frames: 16
    seconds: 1.0
    settings: {{global_batch: 64, data_parallel: 8, micro_batch: 8, checkpointing: full, zero_stage: 2{extra}}}
    source: test
    quote: test
"""


def test_training_steps_add_the_encoders_a_source_runs_on_the_fly(tmp_path):
    from sora_compute.planning.training_time import encode_seconds
    from sora_compute.specs import Workload

    rows = {}
    for name, extra in (("pre", ""), ("otf", ", latents: on_the_fly, text: on_the_fly")):
        p = tmp_path / f"{name}.yaml"
        p.write_text(TRAIN.format(id=name, extra=extra))
        rows[name] = validate(load_validation(str(p))).table.set_index("id").loc[name]
    pre, otf = rows["pre"], rows["otf"]
    assert pre["status"] == otf["status"] == "compared" and "DP8" in otf["note"] and "mb8" in otf["note"]
    # 64 samples over 8 data-parallel ranks: each encodes 8 clips (dit-xl-2 is class-conditioned: no text encoder)
    w = Workload.of(load_preset("dit-xl-2").model, VideoSpec(width=256, height=256, num_frames=16))
    vae = encode_seconds(w, "h800", "bf16", "fa2", True, True)
    assert vae["vae_encode_s"] > 0 and vae["text_encode_s"] == 0
    assert otf["predicted_s"] - pre["predicted_s"] == pytest.approx(8 * vae["vae_encode_s"])
    assert "VAE, 8 samples per rank" in otf["note"] and "text" not in otf["note"].split("encoding")[1].split(";")[0]
    assert "DiT step only" in pre["note"]
    bad = tmp_path / "bad.yaml"
    bad.write_text(TRAIN.format(id="bad", extra=", latents: on-the-fly"))
    with pytest.raises(ValueError, match="settings.latents"):
        load_validation(str(bad))
    r = main("validate", "--file", str(bad))
    assert r.code == 2 and len(r.err.strip().splitlines()) == 1 and "settings.latents" in r.err
