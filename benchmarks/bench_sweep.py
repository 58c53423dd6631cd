"""Throughput of the planning sweep (issue 4's floor: 100k grid points in under a second on one core).

Run:  .venv/bin/python benchmarks/bench_sweep.py [--model sora]
      (--model open-sora-2.0: a preset whose VAE decodes in spatial and temporal tiles, each grid point's decode
      priced per distinct tile shape and gathered by its tile counts)

Sweeps the sora preset (or --model) over 50 resolutions x 50 durations x 4 frame rates x 2 GPU types x 5
cluster sizes = 100,000 rows, each with per-video FLOPs, training and inference FLOPs, GPT-3
multiple, days, GPU-hours, cost, energy and latency, and prints rows per second: with the time
predicted by the per-op time model (the default: every DiT training pass and the inference
components over the 10,000 shapes, per GPU type) and with an assumed MFU (--mfu). Wall and CPU
time (the CPU time is the figure to read on a shared, loaded machine).
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")

from sora_compute.planning import sweep  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="sora", help="preset to sweep (default: sora)")
    model = ap.parse_args().model
    resolutions = [(16 * (16 + 2 * i), 16 * (9 + i)) for i in range(50)]  # 256x144 ... 1824x944
    durations = [0.5 * (k + 1) for k in range(50)]  # 0.5 s ... 25 s
    kwargs = dict(models=model, resolutions=resolutions, durations_s=durations, fps=[12, 16, 24, 30],
                  gpus=["h100-sxm", "b200"], gpu_counts=[256, 1024, 2048, 4096, 8192])
    for label, mfu in (("predicted time", None), ("assumed MFU 0.4", 0.4)):
        sweep(**kwargs, mfu=mfu)  # warm-up (imports, preset load, kernel tables)
        times, cpu = [], []
        for _ in range(5):
            t0, c0 = time.perf_counter(), time.process_time()
            df = sweep(**kwargs, mfu=mfu)
            times.append(time.perf_counter() - t0)
            cpu.append(time.process_time() - c0)
        t, c = statistics.median(times), statistics.median(cpu)
        print(f"sweep ({label}): {len(df):,} rows x {df.shape[1]} columns in {t * 1e3:,.0f} ms wall, "
              f"{c * 1e3:,.0f} ms CPU = {len(df) / c:,.0f} rows per CPU-second (floor: 100,000 rows in < 1 s; "
              f"ratio to budget {c / (len(df) / 100_000):.3f} CPU-s per 100k)")


if __name__ == "__main__":
    main()
