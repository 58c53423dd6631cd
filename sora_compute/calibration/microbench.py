"""Kernel-level microbenchmarks of the local device, written as a measured hardware profile (``sora-compute calibrate
--device cpu``): a GEMM shape sweep (F.linear), scaled_dot_product_attention at video-like lengths and head dims
with each available backend, conv3d, and the bandwidth of memory-bound op classes (copy, elementwise add, activations,
norms, nearest up-sampling) across sizes; plus the per-op dispatch floor.

Only kernel-level measurements set the profile's parameters (nothing is fitted to a model's end-to-end time). Every
measurement runs with ``torch.set_num_threads(threads)`` (stated in the profile). Times are medians of repeats
after a warm-up call, on the CPU time of the calling thread when one thread runs (``clock_for``). GEMMs and
convolutions run twice: with cold weights and a hot input, as a layer of a model too big for the last-level cache
sees them (``cold_weights``: ``gemm``, ``conv3d``), and with warm weights (no flush: ``gemm_warm``,
``conv3d_warm``), as the layers of a model whose weights stay in that cache do; the profile records the cache's size
(``llc_mib``, ``last_level_cache``), by which the time model picks one or the other for a ledger. On CPU the
profile's ``peak_tflops[dtype]`` is the best cold-weight GEMM throughput measured (so GEMM efficiencies are relative
to it) and ``hbm_tbps`` the best streaming-add bandwidth measured, with ``memory_efficiency`` 1 (the bandwidth is
already an achieved one).
"""

from __future__ import annotations

import datetime as dt
import os
import platform
import statistics
import time
from collections.abc import Callable, Iterable
from functools import partial
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
import yaml

from sora_compute.hardware.profiles import DTYPE_BYTES, HardwareProfile

__all__ = ["Plan", "quick_plan", "full_plan", "measure_profile", "write_profile", "cpu_name", "default_out"]

TORCH_DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


class Plan:
    """Shapes a calibration run measures."""

    def __init__(self, gemm: Iterable[tuple[int, int, int]], attention: Iterable[tuple[int, int, int, int]],
                 conv: Iterable[tuple[int, int, tuple[int, int, int], tuple[int, int, int]]],
                 memory_numels: Iterable[int], attention_bwd: bool, min_time: float, max_flops: float) -> None:
        self.gemm = list(gemm)  # (M, N, K)
        self.attention = list(attention)  # (sequences, heads, seq_len, head_dim)
        self.conv = list(conv)  # (c_in, c_out, kernel, (T, H, W))
        self.memory_numels = list(memory_numels)
        self.attention_bwd = attention_bwd
        self.min_time = min_time  # seconds of repeats per measurement (after the warm-up)
        self.max_flops = max_flops  # shapes above this many FLOPs are skipped
        self.clock: Callable[[], float] = time.perf_counter


def quick_plan() -> Plan:
    """The default run: about a minute on 2 CPU cores."""
    gemm = [(m, n, k) for m in (16, 128, 1024, 4096) for n in (256, 1024, 4096) for k in (256, 1024, 4096)]
    # narrow layers (a 64-wide DiT's projections and MLP): below the 256 x 256 corner, where the table would extrapolate
    gemm += [(m, n, k) for m in (16, 128) for n, k in ((64, 64), (64, 256), (256, 64))]
    attention = [(s, h, n, d) for d in (64, 128) for (s, h, n) in ((32, 6, 256), (8, 6, 1024), (2, 6, 4096))]
    attention += [(1, 1, 256, 512), (1, 1, 1024, 512)]  # VAE mid-block attention: one head of the channel width
    conv = [(c, c, (3, 3, 3), g) for c in (32, 64, 128, 256) for g in ((4, 16, 16), (8, 32, 32), (8, 64, 64))]
    conv += [(c, 2 * c, (1, 1, 1), (8, 32, 32)) for c in (64, 256)] + [(16, 384, (1, 2, 2), (4, 16, 16))]
    conv += [(32, 3, (3, 3, 3), (8, 64, 64))]  # a decoder's conv_out to RGB
    conv += [(32, 32, (3, 3, 3), (16, 64, 64))]  # a narrow conv large enough for oneDNN (see _algorithm)
    return Plan(gemm, attention, conv, [2**k for k in (12, 15, 18, 21, 24)], False, 0.1, 6e10)


def full_plan() -> Plan:
    """``--full``: more shapes, longer repeats, the attention backward (several minutes)."""
    q = quick_plan()
    gemm = [(m, n, k) for m in (1, 16, 64, 256, 1024, 4096, 16384) for n in (128, 384, 1024, 1536, 4096)
            for k in (128, 384, 1024, 1536, 4096)]
    attention = [(s, h, n, d) for d in (32, 64, 128, 256)
                 for (s, h, n) in ((64, 6, 128), (32, 6, 256), (8, 6, 1024), (4, 6, 2048), (2, 6, 4096), (1, 6, 8192))]
    attention += [(1, 1, n, c) for n in (256, 1024, 4096) for c in (256, 512)]
    conv = q.conv + [(c_in, c_out, (3, 3, 3), g) for c_in, c_out in ((64, 64), (512, 512), (128, 256))
                     for g in ((2, 8, 8), (4, 16, 16), (8, 32, 32))]
    return Plan(gemm, attention, conv, [2**k for k in range(10, 27, 2)], True, 0.2, 2e11)


def clock_for(threads: int) -> tuple[Callable[[], float], str]:
    """The clock measurements use: with one thread, the CPU time of the calling thread (``time.thread_time``: torch
    runs its intra-op work inline in that thread, so this is the op's compute time, the wall time of an idle
    machine, and robust to other jobs on a shared machine); with more, the wall clock (``time.perf_counter``)."""
    return (time.thread_time, "thread_time") if threads == 1 else (time.perf_counter, "perf_counter")


FLUSH_BYTES = 64 * 2**20  # written between timed calls to evict the last-level cache (32 MiB here)


def median_time(fn: Callable[[], Any], min_time: float, clock: Callable[[], float] = time.perf_counter,
                min_reps: int = 3, max_reps: int = 200, before: Callable[[], Any] | None = None) -> float:
    """Median seconds of ``fn()`` on ``clock`` over repeats lasting ``min_time`` (at least ``min_reps``), after one
    warm-up call; ``before()`` runs untimed before each timed call."""
    fn()
    times: list[float] = []
    while len(times) < min_reps or (sum(times) < min_time and len(times) < max_reps):
        if before is not None:
            before()
        t0 = clock()
        fn()
        times.append(clock() - t0)
    return statistics.median(times)


def cold_weights(*hot: torch.Tensor) -> Callable[[], None]:
    """Untimed set-up for a layer with cold weights and a hot input, as in a model's forward (each layer's weights
    are read once per forward; its input was just written by the previous op): write a buffer larger than the
    last-level cache, then read the ``hot`` tensors back into it."""
    buf = torch.empty(FLUSH_BYTES // 4)

    def run() -> None:
        buf.fill_(1.0)
        for t in hot:
            t.sum()
    return run


def last_level_cache() -> tuple[float, str] | None:
    """(MiB, where from) of the CPU's last-level cache: the highest-level data or unified cache sysfs lists for cpu0
    (/sys/devices/system/cpu/cpu0/cache/index*/{level,type,size}); None where sysfs has none."""
    best: tuple[int, float, str] | None = None
    for d in sorted(Path("/sys/devices/system/cpu/cpu0/cache").glob("index*")):
        try:
            level, kind, size = ((d / f).read_text().strip() for f in ("level", "type", "size"))
        except OSError:
            continue
        units = {"K": 2**10, "M": 2**20, "G": 2**30}
        if kind == "Instruction" or not size or not (size[:-1].isdigit() and size[-1] in units or size.isdigit()):
            continue
        nbytes = int(size[:-1]) * units[size[-1]] if size[-1] in units else int(size)
        if best is None or int(level) > best[0]:
            best = (int(level), nbytes / 2**20, f"sysfs {d}: level {level} {kind}, size {size}")
    return None if best is None else (best[1], best[2])


def cpu_name() -> str:
    """The CPU model as /proc/cpuinfo names it (else platform.processor())."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _memory_gb() -> float:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) * 1024 / 1e9
    except OSError:
        pass
    return 1.0


def _gemm(plan: Plan, dtype: torch.dtype, tag: str, log: Callable[[str], None]) -> tuple[list[dict], list[dict]]:
    """(cold-weight points, warm-weight points) of the GEMM sweep."""
    out: tuple[list[dict], list[dict]] = ([], [])
    for m, n, k in plan.gemm:
        if 2 * m * n * k > plan.max_flops:
            continue
        x, w, bias = torch.randn(m, k, dtype=dtype), torch.randn(n, k, dtype=dtype), torch.randn(n, dtype=dtype)
        # the GEMM as a model's nn.Linear runs it: x W^T + b, allocating its output
        call = partial(F.linear, x, w, bias)
        for points, state, before in ((out[0], "cold", cold_weights(x)), (out[1], "warm", None)):
            s = median_time(call, plan.min_time, plan.clock, before=before)
            points.append({"m": m, "n": n, "k": k, "dtype": tag, "tflops": round(2 * m * n * k / s / 1e12, 6),
                           "source": f"measured: F.linear {m}x{k} by a {n}x{k} weight + bias (weights {state}, "
                                     f"input hot), median {s:.3g} s"})
    log(f"gemm: {len(out[0])} shapes, weights cold and warm")
    return out


def _backends() -> list[tuple[str, Any]]:
    from torch.nn.attention import SDPBackend
    return [("flash_cpu", SDPBackend.FLASH_ATTENTION), ("math", SDPBackend.MATH)]


def _attention(plan: Plan, dtype: torch.dtype, tag: str, log: Callable[[str], None]) -> list[dict]:
    from torch.nn.attention import sdpa_kernel
    out = []
    for name, backend in _backends():
        for s_, h, n, d in plan.attention:
            flops = 4 * s_ * h * n * n * d
            if flops > plan.max_flops:
                continue
            q, k, v = (torch.randn(s_, h, n, d, dtype=dtype) for _ in range(3))
            try:
                with sdpa_kernel([backend]):
                    t = median_time(partial(F.scaled_dot_product_attention, q, k, v), plan.min_time, plan.clock)
            except RuntimeError:  # backend not available for this shape / build
                continue
            where = f"{s_} sequences x {h} heads, {n} tokens, head dim {d}"
            out.append({"kernel": name, "dtype": tag, "pass": "fwd", "head_dim": d, "seq_len": n, "causal": False,
                        "batch_heads": s_ * h, "tflops": round(flops / t / 1e12, 6),
                        "source": f"measured: scaled_dot_product_attention ({name}) fwd, {where}, median {t:.3g} s"})
            if not plan.attention_bwd:
                continue
            with torch.inference_mode(False), torch.enable_grad(), sdpa_kernel([backend]):
                qg, kg, vg = (torch.randn(s_, h, n, d, dtype=dtype, requires_grad=True) for _ in range(3))
                o = F.scaled_dot_product_attention(qg, kg, vg)
                g = torch.randn_like(o)
                t = median_time(partial(torch.autograd.grad, o, (qg, kg, vg), g, retain_graph=True), plan.min_time,
                                plan.clock)
            out.append({"kernel": name, "dtype": tag, "pass": "bwd", "head_dim": d, "seq_len": n, "causal": False,
                        "batch_heads": s_ * h, "tflops": round(2.5 * flops / t / 1e12, 6),
                        "source": f"measured: scaled_dot_product_attention ({name}) bwd (2.5x fwd FLOPs), {where}, "
                                  f"median {t:.3g} s"})
    log(f"attention: {len(out)} points")
    return out


#: PyTorch's CPU convolution kernels by the name its profiler gives them, and the algorithm label each stands for.
CONV_KERNELS = {"aten::mkldnn_convolution": "mkldnn", "aten::slow_conv3d_forward": "native",
                "aten::_slow_conv2d_forward": "native"}


def _algorithm(call: Callable[[], Any]) -> str | None:
    """The convolution algorithm ``call`` ran, read off torch's profiler (``CONV_KERNELS``; None if none matched)."""
    from torch.profiler import profile
    saved = os.dup(2)  # the profiler's backend logs its start and stop on stderr: keep calibrate's output clean
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
            with profile() as prof:
                call()
    finally:
        os.dup2(saved, 2)
        os.close(saved)
    names = {e.name for e in prof.events()}
    found = sorted({algo for name, algo in CONV_KERNELS.items() if name in names})
    return found[0] if len(found) == 1 else None


def _conv(plan: Plan, dtype: torch.dtype, tag: str, log: Callable[[str], None]) -> tuple[list[dict], list[dict]]:
    """(cold-weight points, warm-weight points) of the conv3d shapes."""
    out: tuple[list[dict], list[dict]] = ([], [])
    for c_in, c_out, kernel, (T, H, W) in plan.conv:
        vol = kernel[0] * kernel[1] * kernel[2]
        stride = kernel if kernel != (3, 3, 3) and vol > 1 else (1, 1, 1)  # patchify: kernel = stride
        pad = tuple(x // 2 for x in kernel) if stride == (1, 1, 1) else 0
        To, Ho, Wo = (T, H, W) if stride == (1, 1, 1) else (T // stride[0], H // stride[1], W // stride[2])
        voxels = To * Ho * Wo
        flops = 2 * c_in * c_out * vol * voxels
        if flops > plan.max_flops:
            continue
        x = torch.randn(1, c_in, T, H, W, dtype=dtype)
        w = torch.randn(c_out, c_in, *kernel, dtype=dtype)
        call = partial(F.conv3d, x, w, stride=stride, padding=pad)
        algo = _algorithm(call)
        for points, state, before in ((out[0], "cold", cold_weights(x)), (out[1], "warm", None)):
            s = median_time(call, plan.min_time, plan.clock, before=before)
            points.append({"c_in": c_in, "c_out": c_out, "kernel": list(kernel), "voxels": voxels, "dtype": tag,
                           "tflops": round(flops / s / 1e12, 6), **({"algorithm": algo} if algo else {}),
                           "source": f"measured: conv3d {c_in}->{c_out} k{kernel} stride {stride} on {T}x{H}x{W} "
                                     f"(weights {state}{f', {algo}' if algo else ''}), median {s:.3g} s"})
    log(f"conv3d: {len(out[0])} shapes, weights cold and warm")
    return out


def _memory_ops(numel: int, dtype: torch.dtype) -> dict[str, tuple[Callable[[], Any], int]]:
    """op class -> (call, elements moved as the ledger counts them)."""
    a, b = torch.randn(numel, dtype=dtype), torch.randn(numel, dtype=dtype)
    c = torch.empty_like(a)
    width = 1024 if numel >= 1024 else numel
    rows = a.view(-1, width)
    gn = a.view(1, -1, 1024) if numel >= 32 * 1024 else a.view(1, -1, 1)
    groups = 32 if gn.shape[1] % 32 == 0 else 1
    side = max(1, round((numel / 64) ** (1 / 3) / 2))
    small = torch.randn(1, 64, side, side, side, dtype=dtype)
    return {
        "copy": (lambda: c.copy_(a), 2 * numel),
        "elementwise": (lambda: torch.add(a, b, out=c), 3 * numel),
        "elementwise.activation": (lambda: F.gelu(a, approximate="tanh"), 2 * numel),
        "layer_norm": (lambda: F.layer_norm(rows, (width,)), 2 * numel),
        "rms_norm": (lambda: F.rms_norm(rows, (width,)), 2 * numel),
        "group_norm": (lambda: F.group_norm(gn, groups), 2 * numel),
        "upsample": (lambda: F.interpolate(small, scale_factor=2, mode="nearest"), 9 * small.numel()),
    }


def _memory(plan: Plan, dtype: torch.dtype, log: Callable[[str], None]) -> list[dict]:
    out = []
    size = torch.empty((), dtype=dtype).element_size()
    for numel in plan.memory_numels:
        for op, (fn, elements) in _memory_ops(numel, dtype).items():
            s = median_time(fn, plan.min_time, plan.clock)
            nbytes = elements * size
            out.append({"op": op, "bytes": nbytes, "tbps": round(nbytes / s / 1e12, 8),
                        "source": f"measured: {op} moving {nbytes} bytes per call, median {s:.3g} s"})
    log(f"memory: {len(out)} points")
    return out


def _launch(plan: Plan) -> float:
    """Seconds of a tiny op (the per-op floor of eager PyTorch: module call, dispatch, kernel): nn.Linear(8, 8) on
    one row (median of at least 50 calls)."""
    lin, x = torch.nn.Linear(8, 8), torch.randn(1, 8)
    return median_time(lambda: lin(x), plan.min_time, plan.clock, min_reps=50)


def _dispatch(plan: Plan) -> float:
    """Seconds of a bare ATen call outside a module (the floor of the view ops and small kernels eager code runs
    around modules): the median of an add of two 8-element tensors and an unsqueeze (at least 50 calls each)."""
    a = torch.randn(1, 8)
    add = median_time(lambda: a + a, plan.min_time, plan.clock, min_reps=50)
    view = median_time(lambda: a.unsqueeze(1), plan.min_time, plan.clock, min_reps=50)
    return (add + view) / 2


def measure_profile(device: str = "cpu", full: bool = False, threads: int | None = None, dtype: str = "fp32",
                    key: str | None = None, log: Callable[[str], None] = lambda s: None) -> HardwareProfile:
    """Run the microbenchmarks on ``device`` and return the measured profile (tables inline)."""
    if device != "cpu":
        raise ValueError(f"--device: only cpu can be calibrated here (got {device!r}); a CUDA run needs a GPU")
    if dtype not in TORCH_DTYPES:
        raise ValueError(f"dtype: expected one of {', '.join(TORCH_DTYPES)}, got {dtype!r}")
    t0 = time.perf_counter()
    threads = threads or torch.get_num_threads()
    torch.set_num_threads(threads)
    plan = full_plan() if full else quick_plan()
    plan.clock, clock_name = clock_for(threads)
    tdt = TORCH_DTYPES[dtype]
    date = dt.date.today().isoformat()
    key = key or f"cpu-{date}"
    with torch.inference_mode():
        launch = _launch(plan)
        dispatch = _dispatch(plan)
        gemm, gemm_warm = _gemm(plan, tdt, dtype, log)
        attention = _attention(plan, tdt, dtype, log)
        conv, conv_warm = _conv(plan, tdt, dtype, log)
        memory = _memory(plan, tdt, log)
    peak = max(p["tflops"] for p in gemm)
    bw = max(p["tbps"] for p in memory if p["op"] == "elementwise")
    cpu = cpu_name()
    llc = last_level_cache()
    table = {"name": f"{key}-measured", "measured_on": key, "gemm": gemm, "attention": attention, "conv3d": conv,
             "memory": memory, "gemm_warm": gemm_warm, "conv3d_warm": conv_warm}
    data = {
        "key": key, "name": f"{cpu} ({threads} threads, torch {torch.__version__})", "vendor": "cpu",
        "architecture": "cpu", "peak_tflops": {dtype: peak}, "hbm_gb": round(_memory_gb(), 3),
        "hbm_tbps": bw, "sms": os.cpu_count(), "memory_efficiency": 1.0,
        **({"llc_mib": round(llc[0], 3)} if llc else {}),
        "launch_overhead_us": round(launch * 1e6, 3), "dispatch_overhead_us": round(dispatch * 1e6, 3),
        "tables": [table],
        "measured": {"date": date, "device": cpu, "torch": torch.__version__, "threads": threads,
                     "clock": clock_name,
                     "libraries": {"mkldnn": str(torch.backends.mkldnn.is_available()),
                                   "python": platform.python_version()},
                     "command": f"sora-compute calibrate --device {device}{' --full' if full else ''}",
                     "seconds": round(time.perf_counter() - t0, 1)},
        "sources": {
            "peak_tflops": f"measured: best {dtype} F.linear throughput of the GEMM sweep ({len(gemm)} shapes)",
            "memory": f"measured: best streaming torch.add bandwidth (read 2, write 1) over "
                      f"{len(plan.memory_numels)} sizes; hbm_gb: /proc/meminfo MemTotal",
            "memory_efficiency": "1: hbm_tbps is itself an achieved bandwidth",
            "launch_overhead_us": "measured: median nn.Linear(8, 8) call on one row (per-op floor: module call, "
                                  "dispatch, kernel)",
            "dispatch_overhead_us": "measured: mean of the medians of an 8-element add and an unsqueeze (a bare "
                                    "ATen call)",
            "gemm_warm": "measured: the GEMM and conv3d shapes again without flushing the last-level cache between "
                         "calls (weights warm); the time model uses them for a ledger whose weights fit in llc_mib",
            **({"llc_mib": f"{llc[1]} (the last-level cache)"} if llc else {})},
    }
    assert DTYPE_BYTES[dtype]
    return HardwareProfile.model_validate(data)


def default_out(profile: HardwareProfile) -> Path:
    """sora_compute/hardware/measured/<key>.yaml in the source tree (or the installed package)."""
    from importlib import resources
    return Path(str(resources.files("sora_compute.hardware"))) / "measured" / f"{profile.key}.yaml"


def write_profile(profile: HardwareProfile, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    data = profile.model_dump(mode="json", by_alias=True, exclude_none=True)
    header = ("# Measured hardware profile written by `sora-compute calibrate --device` "
              "(sora_compute/calibration/microbench.py).\n# Kernel-level measurements only; each point names what "
              "was timed.\n")
    path.write_text(header + yaml.safe_dump(data, sort_keys=False, width=200))
    return path
