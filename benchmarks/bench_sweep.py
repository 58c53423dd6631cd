"""Throughput of the planning sweep (issue 4's floor: 100k grid points in under a second on one core).

Run:  .venv/bin/python benchmarks/bench_sweep.py

Sweeps the sora preset over 50 resolutions x 50 durations x 4 frame rates x 2 GPU types x 5
cluster sizes = 100,000 rows, each with per-video FLOPs, training and inference FLOPs, GPT-3
multiple, days, GPU-hours, cost, energy and latency, and prints rows per second.
"""

from __future__ import annotations

import os
import statistics
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")

from sora_compute.planning import sweep  # noqa: E402


def main() -> None:
    resolutions = [(16 * (16 + 2 * i), 16 * (9 + i)) for i in range(50)]  # 256x144 ... 1824x944
    durations = [0.5 * (k + 1) for k in range(50)]  # 0.5 s ... 25 s
    kwargs = dict(models="sora", resolutions=resolutions, durations_s=durations, fps=[12, 16, 24, 30],
                  gpus=["h100-sxm", "b200"], gpu_counts=[256, 1024, 2048, 4096, 8192])
    sweep(**kwargs)  # warm-up (imports, preset load)
    times = []
    for _ in range(5):
        t0 = time.perf_counter()
        df = sweep(**kwargs)
        times.append(time.perf_counter() - t0)
    t = statistics.median(times)
    print(f"sweep: {len(df):,} rows x {df.shape[1]} columns in {t * 1e3:,.0f} ms = {len(df) / t:,.0f} rows/s "
          f"(floor: 100,000 rows in < 1 s; ratio to budget {t / (len(df) / 100_000):.3f} s per 100k)")


if __name__ == "__main__":
    main()
