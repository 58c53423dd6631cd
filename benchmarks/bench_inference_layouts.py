"""Speed of the inference layout search (planning/inference_layouts.py): every cfg x ulysses x ring x pipefusion
layout (FSDP or not, VAE split or not; replicas of smaller layouts) of one video on N GPUs, timed by the multi-GPU
schedules and memory-checked.

Run:  .venv/bin/python benchmarks/bench_inference_layouts.py      (add --model wan2.1-14b --gpu h20 --gpus 16)

Prints the layouts searched, the median wall and CPU seconds per search and layouts per second. No floor is set for
inference (the issue's 2 s floor is the training search's); the ratio printed is to the `serve` command's budget of
10 s a search on this machine (ASSUMED: an interactive command).
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")

from sora_compute.planning.inference import estimate_inference  # noqa: E402
from sora_compute.planning.inference_layouts import best_layouts, search_inference_layouts  # noqa: E402

BUDGET_SECONDS = 10.0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="hunyuanvideo")
    ap.add_argument("--gpu", default="h100-sxm")
    ap.add_argument("--gpus", type=int, default=8)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    times, cpu, n, fit, best = [], [], 0, 0, None
    for _ in range(args.repeat):
        est = estimate_inference(args.model)  # a fresh estimate: nothing cached between rounds
        t0, c0 = time.perf_counter(), time.process_time()
        table = search_inference_layouts(est, args.gpu, args.gpus)
        times.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
        n, fit, best = len(table), int(table["fits"].sum()), best_layouts(table)[0]
    med = statistics.median(times)
    print(f"{args.model} on {args.gpus} x {args.gpu}: {n:,} layouts ({fit:,} fit) in {med:.3f} s (median of "
          f"{args.repeat}); {n / med:,.0f} layouts/s; CPU time {statistics.median(cpu):.3f} s")
    print(f"fastest that fits: {best['layout'] if best is not None else 'none'}"
          + (f", {float(best['latency_s']):,.1f} s per video" if best is not None else ""))
    print(f"budget: {BUDGET_SECONDS:g} s a search -> x{BUDGET_SECONDS / med:.2f} under it")


if __name__ == "__main__":
    main()
