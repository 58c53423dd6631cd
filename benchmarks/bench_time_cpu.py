"""Validate the time model on this CPU: predict the wall time of reference-model forwards from a measured CPU profile
(``sora-compute calibrate --device cpu``), measure them, print predicted / measured per config and the mean.

Run:  .venv/bin/python benchmarks/bench_time_cpu.py [--profile sora_compute/hardware/measured/cpu-....yaml]
                                                     [--repeat 7] [--only dit-]

The profile's kernel tables are kernel-level microbenchmarks only: nothing here is fitted to these end-to-end times.
Each forward runs in fp32 under ``torch.inference_mode`` with the profile's thread count; the measured time is the
median of ``--repeat`` calls after one warm-up call, on the clock the microbenchmarks used: with one thread the CPU
time of the compute thread (the wall time of an idle machine; on a machine shared with other jobs the wall clock
measures them too, so it is printed beside). The prediction is ``predict_seconds`` of the config's ledger (dtype
fp32, attention kernel flash_cpu, the kernel CPU SDPA picks for these inputs); ``weights`` says which of the
profile's GEMM/conv points priced it: ``warm`` where the ledger's GEMM and conv weights fit in the profile's
last-level cache (``llc_mib``), else ``cold`` (``evaluate/time.weights_fit``). Target (issue 14): each config within
30%, the mean |error| within 15%.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import torch

from sora_compute.calibration.microbench import clock_for, cpu_name
from sora_compute.calibration.profile import CalibrationCase
from sora_compute.evaluate.time import op_times, predict_seconds, rollup, weights_fit
from sora_compute.flops import dit_ops, text_encoder_ledger
from sora_compute.hardware.profiles import load_profile
from sora_compute.ledger.ops import Op
from sora_compute.specs import DiTSpec, ModelSpec, VideoSpec, text_encoder_spec, vae_spec

MEASURED = Path(__file__).resolve().parents[1] / "sora_compute" / "hardware" / "measured"


def configs() -> list[CalibrationCase]:
    """Small reference configs: DiTs from latency/memory-bound (narrow, few tokens) to compute-bound (wide, more
    tokens), VAE decoders at two widths, T5 and Llama text encoders."""
    vae = vae_spec(latent_channels=4, block_out_channels=(32, 64, 64), spatial_compression=4, temporal_compression=2,
                  norm_groups=8, causal=True)
    te = text_encoder_spec(vocab_size=1000, num_layers=4, d_model=512, num_heads=8, d_kv=64, d_ff=1024, max_tokens=256)
    out = []
    for name, d, heads, depth, video, batch in (
            ("dit-tiny-12tok", 64, 2, 2, VideoSpec(width=16, height=16, num_frames=5), 1),
            ("dit-s-192tok", 384, 6, 4, VideoSpec(width=64, height=64, num_frames=5), 1),
            ("dit-s-768tok", 384, 6, 4, VideoSpec(width=128, height=128, num_frames=5), 1),
            ("dit-b-768tok", 768, 12, 2, VideoSpec(width=128, height=128, num_frames=5), 1)):
        dit = DiTSpec(depth=depth, hidden_size=d, num_heads=heads, patch_size=(1, 2, 2), in_channels=4,
                      conditioning="cross_attention", text_dim=512)
        model = ModelSpec(dit=dit, vae=vae, text_encoder=te, text_tokens=32)
        out.append(CalibrationCase(name, "dit_forward", model, video, batch=batch))
    for name, widths, video in (("vae-decode-32", (32, 64, 64), VideoSpec(width=64, height=64, num_frames=5)),
                                ("vae-decode-64", (64, 128, 128), VideoSpec(width=64, height=64, num_frames=5))):
        v = vae.model_copy(update={"block_out_channels": widths})
        model = ModelSpec(dit=DiTSpec(depth=1, hidden_size=8, num_heads=1, in_channels=4), vae=v)
        out.append(CalibrationCase(name, "vae_decode", model, video))
    dit = DiTSpec(depth=1, hidden_size=32, num_heads=4, in_channels=4, conditioning="cross_attention", text_dim=512)
    for name, enc, tokens in (("t5-small-128tok", te, 128),
                              ("llama-tiny-32tok", text_encoder_spec(kind="llama", vocab_size=1000, num_layers=2,
                                                                   d_model=256, num_heads=4, num_kv_heads=2, d_ff=512,
                                                                   max_tokens=64), 32)):
        model = ModelSpec(dit=dit.model_copy(update={"text_dim": enc.d_model}), vae=vae, text_encoder=enc,
                          text_tokens=tokens)
        out.append(CalibrationCase(name, "text_encode", model, VideoSpec(width=16, height=16, num_frames=1)))
    return out


def measure(case: CalibrationCase, repeat: int, clock: Callable[[], float]) -> tuple[float, float]:
    """Median seconds of the reference forward over ``repeat`` calls after a warm-up call: on ``clock`` (the
    profile's) and on the wall clock."""
    module, inputs = case.module_and_inputs("cpu")
    with torch.inference_mode():
        module(*inputs)
        times, walls = [], []
        for _ in range(repeat):
            w0, t0 = time.perf_counter(), clock()
            module(*inputs)
            times.append(clock() - t0)
            walls.append(time.perf_counter() - w0)
    return statistics.median(times), statistics.median(walls)


def ledger(case: CalibrationCase) -> list[Op]:
    """The ops of the config's forward: the DiT's and the text encoder's full ledgers (elementwise work, rotary
    embedding, residual adds and lookups included, which a FLOP Count's terms leave out); the VAE decoder's terms."""
    if case.component == "text_encode":
        assert case.model.text_encoder is not None
        return text_encoder_ledger(case.model.text_encoder, case.model.num_text_tokens, case.batch)
    if case.component != "dit_forward":
        return list(case.analytic().terms)
    return dit_ops(case.model, case.video, batch=case.batch)


def latest_profile() -> str:
    """The latest measured profile of this CPU (its ``measured.device`` is this machine's model name): a profile
    measured on another CPU predicts that CPU, not this one. Without one, the latest of any, said so."""
    found = sorted(MEASURED.glob("cpu-*.yaml"))
    if not found:
        raise SystemExit("no measured CPU profile: run `sora-compute calibrate --device cpu` first")
    here = cpu_name()
    mine = [p for p in found if (m := load_profile(str(p)).measured) is not None and m.device == here]
    if mine:
        return str(mine[-1])
    print(f"no measured profile of this CPU ({here}): predicting with the latest of another CPU; run "
          "`sora-compute calibrate --device cpu` here first")
    return str(found[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--profile", default=None, help="measured profile file (default: the latest in hardware/measured)")
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--only", default="", help="configs whose name starts with this")
    ap.add_argument("--breakdown", action="store_true", help="print the predicted seconds per op class too")
    a = ap.parse_args()
    path = a.profile or latest_profile()
    profile = load_profile(path)
    assert profile.measured is not None
    torch.set_num_threads(profile.measured.threads)
    print(f"profile {path} ({profile.name}; {profile.measured.threads} thread(s), measured {profile.measured.date})")
    clock, clock_name = clock_for(profile.measured.threads)
    print(f"measured on {clock_name} (the profile's microbenchmarks used {profile.measured.clock}); wall clock too")
    print(f"{'config':18s} {'bound':>8s} {'weights':>7s} {'predicted':>11s} {'measured':>11s} {'wall':>11s} "
          f"{'pred/meas':>9s} {'pred/wall':>9s}")
    errors, errors_wall = [], []
    for case in configs():
        if not case.name.startswith(a.only):
            continue
        ops = ledger(case)
        pred = predict_seconds(ops, profile, dtype="fp32", attention_kernel="flash_cpu")
        df = op_times(ops, profile, dtype="fp32", attention_kernel="flash_cpu")
        share = df.groupby("bound")["seconds"].sum() / df["seconds"].sum()
        meas, wall = measure(case, a.repeat, clock)
        errors.append(pred / meas - 1)
        errors_wall.append(pred / wall - 1)
        cache = "warm" if weights_fit(ops, profile, "fp32") else "cold"
        print(f"{case.name:18s} {share.idxmax():>8s} {cache:>7s} {pred * 1e3:9.2f}ms {meas * 1e3:9.2f}ms "
              f"{wall * 1e3:9.2f}ms {pred / meas:9.2f} {pred / wall:9.2f}")
        if a.breakdown:
            r = rollup(df, "op")
            print("    " + ", ".join(f"{o} {s * 1e3:.2f}ms" for o, s in zip(r["op"], r["seconds"], strict=True)))
    for what, errs in ((clock_name, errors), ("wall", errors_wall)):
        if errs:
            mean_abs = sum(abs(e) for e in errs) / len(errs)
            worst = max(errs, key=abs)
            print(f"vs {what}: mean |error| {mean_abs:.1%}; mean signed {sum(errs) / len(errs):+.1%}; worst "
                  f"{worst:+.1%}; within 30%: {sum(abs(e) <= 0.3 for e in errs)}/{len(errs)} "
                  "(targets: each within 30%, mean within 15%)")


if __name__ == "__main__":
    main()
