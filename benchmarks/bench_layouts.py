"""Speed of the training layout search (planning/layouts.py): every DP x TP x CP (Ulysses, ring) x PP layout of the
sora preset at its native shape on 4,096 H100s, with ZeRO stage, micro-batch, interleaving, checkpointing and
attention kernel, memory-checked and timed.

Run:  .venv/bin/python benchmarks/bench_layouts.py            (add --gpus 8192 --repeat 5 to change sizes)

Prints the layouts searched, the median wall and CPU seconds per search, layouts per second, and the ratio to the floor
(issue 15: at least 1,000 layouts for the sora preset on 4,096 GPUs in under 2 s on this machine).
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")

from sora_compute.planning.layouts import search_training_layouts  # noqa: E402
from sora_compute.presets import load_preset  # noqa: E402
from sora_compute.specs import Workload  # noqa: E402

FLOOR_LAYOUTS, FLOOR_SECONDS = 1000, 2.0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--gpus", type=int, default=4096)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--gpu", default="h100-sxm")
    args = ap.parse_args()
    p = load_preset("sora")
    times, cpu, n = [], [], 0
    for _ in range(args.repeat):
        w = Workload.of(p.model, p.video)  # a fresh workload: nothing cached between rounds
        t0, c0 = time.perf_counter(), time.process_time()
        s = search_training_layouts(w, None, args.gpu, args.gpus)
        times.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
        n = len(s.table)
    med = statistics.median(times)
    print(f"sora {p.video.width}x{p.video.height}x{p.video.num_frames} on {args.gpus:,} x {args.gpu}: "
          f"{n:,} layouts ({len(s.fitting):,} fit) in {med:.3f} s (median of {args.repeat}); "
          f"{n / med:,.0f} layouts/s; CPU time {statistics.median(cpu):.3f} s (wall minus waiting on a shared machine)")
    print(f"best: {s.best['layout'] if s.best is not None else 'none fits'}")
    print(f"floor: >= {FLOOR_LAYOUTS:,} layouts in < {FLOOR_SECONDS} s -> layouts x{n / FLOOR_LAYOUTS:.1f}, "
          f"time x{FLOOR_SECONDS / med:.2f} under the limit")


if __name__ == "__main__":
    main()
