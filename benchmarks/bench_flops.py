"""Speed of the analytic counts against counting the reference model with FlopCounterMode on meta.

Run:  .venv/bin/python benchmarks/bench_flops.py            (add --sweep 100000 --repeat 5 to change sizes)

Prints (a) the time of one analytic whole-model count (text encode + VAE encode + one DiT forward
+ VAE decode) of the sora preset at its native 1280x720 x 241 frames, (b) the throughput of a
vectorised sweep over N random (width, height, frames) configurations, and (c) how many times
faster (a) is than FlopCounterMode counting the same four forwards on the meta device.
Floors (issue 3): (c) >= 1000x; (b) 100k configurations well under a second on one core.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable

os.environ.setdefault("OMP_NUM_THREADS", "1")  # one core, as the floor says

import numpy as np  # noqa: E402
import torch  # noqa: E402

from sora_compute import VideoGrid, count_dit, count_text_encoder, count_vae_decode, count_vae_encode  # noqa: E402
from sora_compute.calibration.profile import CalibrationCase, flop_counter_by_module  # noqa: E402
from sora_compute.flops import MATMUL_ONLY  # noqa: E402
from sora_compute.presets import load_preset  # noqa: E402


def best_of(fn: Callable[[], object], repeat: int, number: int = 1) -> float:
    """Median seconds per call over ``repeat`` rounds of ``number`` calls."""
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        for _ in range(number):
            fn()
        times.append((time.perf_counter() - t0) / number)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sweep", type=int, default=100_000, help="configurations in the vectorised sweep")
    ap.add_argument("--repeat", type=int, default=5, help="timing rounds (median is reported)")
    args = ap.parse_args()
    torch.set_num_threads(1)

    p = load_preset("sora")
    model, video = p.model, p.video

    def analytic() -> int:
        return sum(c.macs for c in (
            count_text_encoder(model, convention=MATMUL_ONLY),
            count_vae_encode(model, video, convention=MATMUL_ONLY),
            count_dit(model, video, convention=MATMUL_ONLY),
            count_vae_decode(model, video, convention=MATMUL_ONLY),
        ))

    cases = [CalibrationCase("sora", comp, model, video) for comp in
             ("text_encode", "vae_encode", "dit_forward", "vae_decode")]
    built = [c.module_and_inputs("meta") for c in cases]

    def flop_counter() -> int:
        return sum(flop_counter_by_module(m, inputs)[""] for m, inputs in built)

    assert analytic() == flop_counter(), "analytic and FlopCounterMode disagree"
    t_analytic = best_of(analytic, args.repeat, number=200)
    t_counter = best_of(flop_counter, max(1, args.repeat // 2))

    rng = np.random.default_rng(0)
    n = args.sweep
    grid = VideoGrid(width=16 * rng.integers(8, 241, n), height=16 * rng.integers(8, 136, n),
                     num_frames=1 + 4 * rng.integers(0, 360, n))

    def sweep() -> np.ndarray:
        return (count_dit(model, grid).macs + count_vae_encode(model, grid).macs + count_vae_decode(model, grid).macs)

    sweep()
    t_sweep = best_of(sweep, args.repeat)

    print(f"(a) analytic whole-model count (sora, {analytic():.4g} MACs): {t_analytic * 1e6:,.0f} us")
    print(f"    FlopCounterMode on meta, same four forwards:           {t_counter * 1e3:,.0f} ms")
    print(f"(b) vectorised sweep, {n:,} configurations (DiT + VAE enc/dec): {t_sweep * 1e3:,.1f} ms "
          f"= {n / t_sweep:,.0f} configs/s")
    print(f"(c) analytic is {t_counter / t_analytic:,.0f}x faster than FlopCounterMode (floor: 1,000x)")
    print(f"    100k sweep time / 1 s budget: {t_sweep * 100_000 / n:.3f}")


if __name__ == "__main__":
    main()
