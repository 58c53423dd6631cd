"""Speed of the time model: predicting one video and one training step.

Run:  .venv/bin/python benchmarks/bench_time.py [--preset sora] [--gpu h100-sxm] [--repeat 20] [--dtype bf16]
      (a measured profile with full tables: --gpu sora_compute/hardware/measured/cpu-2026-12-02.yaml --dtype fp32
      --kernel flash_cpu)

Prints the median milliseconds of (a) one video as the planners predict it: ``estimate_inference`` (the ledgers of
the text encoder, the DiT forward and the VAE decode) and ``planning.timing.predicted`` (each op timed, seconds per
component = one call x its count), (b) one training sample as the planners predict it:
``planning.training_time.sample_seconds`` (the DiT ledger built, its fwd, bwd_activation, bwd_weight and full
recomputation passes and the optimizer's share), each with cold tables (the efficiency memo emptied before every
call) and warm (memo kept), and the DataFrame form of a training step (``evaluate.time.training_times``) for
comparison. Floor (issue 14): (a) and (b) under 5 ms.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

from sora_compute import count_text_encoder, count_vae_decode, estimate_inference, load_preset
from sora_compute.evaluate.kernels import efficiencies
from sora_compute.evaluate.time import op_records, training_times
from sora_compute.flops import dit_ops
from sora_compute.hardware.profiles import load_profile
from sora_compute.planning.timing import predicted
from sora_compute.planning.training_time import sample_seconds
from sora_compute.specs import Workload


def median_ms(fn: Callable[[], object], repeat: int) -> float:
    """Median CPU milliseconds of ``fn`` (CPU time: the figure to read on a shared, loaded machine)."""
    times = []
    for _ in range(repeat):
        t0 = time.process_time()
        fn()
        times.append(time.process_time() - t0)
    return 1e3 * statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="sora")
    ap.add_argument("--gpu", default="h100-sxm")
    ap.add_argument("--repeat", type=int, default=20)
    ap.add_argument("--dtype", default="bf16", help="fp32 for a measured CPU profile")
    ap.add_argument("--kernel", default="fa2", help="attention kernel (flash_cpu for a measured CPU profile)")
    a = ap.parse_args()
    profile = load_profile(a.gpu)
    preset = load_preset(a.preset)
    steps = preset.sampling.steps if preset.sampling is not None else 50
    workload = Workload.of(preset.model, preset.video)

    def video() -> float:
        return predicted(estimate_inference(a.preset), profile, a.dtype, a.kernel)[0]

    def sample() -> float:
        return sample_seconds(workload, profile, a.dtype, a.kernel, checkpointing="full")["seconds"]

    def step() -> float:
        df = training_times(dit_ops(workload), profile, a.dtype, a.kernel, checkpointing="full")
        return float(df["seconds"].sum())

    def cold(fn: Callable[[], float]) -> Callable[[], float]:
        def run() -> float:
            efficiencies(profile, a.dtype).memo.clear()
            return fn()
        return run

    n_ops = len(count_text_encoder(a.preset).terms) + len(dit_ops(a.preset)) + len(count_vae_decode(a.preset).terms)
    print(f"{a.preset} on {a.gpu}: one video = {video():.1f} s predicted ({steps} steps), "
          f"one training sample = {sample():.2f} s (full recomputation); {n_ops} ledger records per video")
    for name, fn in (("one video (planning)", video), ("one training sample (planning)", sample),
                     ("one training step (DataFrame)", step)):
        cold_ms, warm_ms = median_ms(cold(fn), a.repeat), median_ms(fn, a.repeat)
        print(f"  {name:32s} cold {cold_ms:6.2f} CPU-ms   warm {warm_ms:6.2f} CPU-ms")
    ops = dit_ops(a.preset)
    records = median_ms(lambda: op_records(ops, profile, a.dtype, a.kernel), a.repeat)
    print(f"  {'DiT forward records only':32s} warm {records:6.2f} CPU-ms  (floor: one video and one step < 5 ms)")


if __name__ == "__main__":
    main()
