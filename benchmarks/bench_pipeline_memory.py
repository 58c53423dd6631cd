"""The small reference pipeline of tests/test_pipeline_measured.py measured under every offload mode and decode
schedule (the test runs a few of them): model vs the live-tensor tracker, bytes at the peak phase and per phase.

Run:  PYTHONPATH=. .venv/bin/python benchmarks/bench_pipeline_memory.py

Prints one line per (offload mode, decode schedule): the modelled and measured allocated peak, their ratio, and the
phase ratios (encode text, denoise step, decode)."""

from __future__ import annotations

from tests.test_pipeline_measured import MODES, SCHEDULES, measure_phases


def main() -> None:
    print(f"{'offload':18s} {'decode':8s} {'model B':>11s} {'measured B':>11s} {'ratio':>8s}  phase ratios")
    for offload in MODES:
        for name, schedule in SCHEDULES.items():
            measured, pm = measure_phases(offload, schedule)
            ratios = " ".join(f"{p.allocated / m:.4f}" if m else "-" for p, m in zip(pm.phases, measured, strict=True))
            print(f"{offload:18s} {name:8s} {pm.allocated_peak:>11,d} {max(measured):>11,d} "
                  f"{pm.allocated_peak / max(measured):8.4f}  {ratios}")


if __name__ == "__main__":
    main()
