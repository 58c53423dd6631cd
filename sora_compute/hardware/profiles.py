"""Hardware profiles: one yaml file per device (published figures, each group with its source) and kernel tables
(kernel-level throughput measurements shared by a GPU generation), the inputs of the time model.

Files: ``hardware/profiles/<key>.yaml`` (the catalog), ``hardware/measured/<key>-<date>.yaml`` (profiles measured
with ``sora-compute calibrate --device``), ``hardware/kernels/<name>.yaml`` (tables a profile names in
``kernels``). A profile may also carry its own tables inline (``tables``: a measured profile is one file). Any
profile file path is accepted wherever a catalog key is (``--gpu path/to/gpu.yaml``). Schema: /TIME.md of the
helpers' notes, mirrored by the pydantic models below.

Units: TFLOP/s dense (2 FLOPs per MAC), GB decimal, TB/s (1e12 B/s), GB/s, MiB, MHz, W, USD per hour,
microseconds.
"""

from __future__ import annotations

from functools import cache
from importlib import resources
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, Field, ValidationError, model_validator

from sora_compute._lookup import did_you_mean
from sora_compute.finite import SPEC_CONFIG, FiniteFloat

__all__ = [
    "Dtype",
    "DTYPE_BYTES",
    "PeakTflops",
    "GemmPoint",
    "AttentionPoint",
    "ConvPoint",
    "MemoryPoint",
    "KernelTable",
    "MeasuredOn",
    "Topology",
    "HardwareProfile",
    "UnknownProfileError",
    "ProfileFileError",
    "profile_keys",
    "load_profile",
    "load_kernel_table",
    "profile_tables",
    "is_profile_path",
]

Dtype = Literal["bf16", "fp16", "fp8", "tf32", "fp32"]
#: Bytes per element of each dtype (tf32 tensors are stored as fp32).
DTYPE_BYTES: dict[str, int] = {"bf16": 2, "fp16": 2, "fp8": 1, "tf32": 4, "fp32": 4}

Positive = FiniteFloat
Source = str
#: Used where a profile gives no kernel-level figure (null in its file): a large streaming copy reaching 90% of peak
#: bandwidth and a 4 us per-kernel floor. ASSUMED, not measured; the profile's ``sources`` says so.
ASSUMED_MEMORY_EFFICIENCY = 0.9
ASSUMED_LAUNCH_US = 4.0


class UnknownProfileError(KeyError):
    def __str__(self) -> str:
        return str(self.args[0])


class ProfileFileError(ValueError):
    """A profile or kernel-table file that cannot be read or does not match the schema."""


class PeakTflops(BaseModel):
    """Dense peak TFLOP/s per dtype (tensor cores where the part has them; fp32 = non-tensor); None: no such
    support published."""

    model_config = SPEC_CONFIG

    bf16: Positive | None = Field(default=None, gt=0)
    fp16: Positive | None = Field(default=None, gt=0)
    fp8: Positive | None = Field(default=None, gt=0)
    tf32: Positive | None = Field(default=None, gt=0)
    fp32: Positive | None = Field(default=None, gt=0)


class GemmPoint(BaseModel):
    """Achieved TFLOP/s of C[M x N] = A[M x K] B[K x N] (2 M N K FLOPs)."""

    model_config = SPEC_CONFIG

    m: int = Field(gt=0)
    n: int = Field(gt=0)
    k: int = Field(gt=0)
    dtype: Dtype
    tflops: Positive = Field(gt=0)
    source: Source = Field(min_length=1)
    approx: bool = Field(default=False, description="read off a plot or a third-party transcription")
    measured_on: str | None = Field(default=None, description="device of this point, when not the table's")


class AttentionPoint(BaseModel):
    """Achieved TFLOP/s of an attention core: 4 B h Lq Lk d FLOPs forward, 2.5x that backward."""

    model_config = SPEC_CONFIG

    kernel: str = Field(min_length=1, description="fa2 | fa3 | cudnn | math | flash_cpu | ...")
    dtype: Dtype
    pass_: Literal["fwd", "bwd", "fwd_bwd"] = Field(alias="pass",
                                                    description="fwd_bwd: forward + backward over their combined time")
    head_dim: int = Field(gt=0)
    seq_len: int = Field(gt=0, description="tokens per sequence (queries = keys)")
    causal: bool = False
    batch_heads: int | None = Field(default=None, gt=0, description="sequences x heads of the measurement")
    tflops: Positive = Field(gt=0)
    source: Source = Field(min_length=1)
    approx: bool = Field(default=False, description="read off a plot or a third-party transcription")
    measured_on: str | None = Field(default=None, description="device of this point, when not the table's")


class ConvPoint(BaseModel):
    """Achieved TFLOP/s of a 3D convolution (stride 1, 'same' padding): voxels = batch x output positions."""

    model_config = SPEC_CONFIG

    c_in: int = Field(gt=0)
    c_out: int = Field(gt=0)
    kernel: tuple[int, int, int]
    voxels: int = Field(gt=0)
    dtype: Dtype
    tflops: Positive = Field(gt=0)
    source: Source = Field(min_length=1)
    approx: bool = Field(default=False, description="read off a plot or a third-party transcription")
    measured_on: str | None = Field(default=None, description="device of this point, when not the table's")
    algorithm: str | None = Field(default=None, description="the library's algorithm that ran, as its profiler names "
                                  "it (PyTorch on CPU: mkldnn or native); the time model matches an op only against "
                                  "points of the algorithm the op runs")

    @property
    def macs(self) -> float:
        return float(self.c_in * self.c_out * self.kernel[0] * self.kernel[1] * self.kernel[2] * self.voxels)

    @property
    def elements(self) -> float:
        """Minimum traffic in elements: input + weights + output (ledger/formulas.py conv_elements)."""
        vol = self.kernel[0] * self.kernel[1] * self.kernel[2]
        return float(self.c_in * self.voxels + self.c_in * self.c_out * vol + self.c_out * self.voxels)


class MemoryPoint(BaseModel):
    """Achieved bandwidth (TB/s, bytes read + written) of a memory-bound op class moving ``bytes`` in one call."""

    model_config = SPEC_CONFIG

    op: str = Field(min_length=1, description="copy | elementwise | layer_norm | ... (op classes of the ledger)")
    bytes: int = Field(gt=0)
    tbps: Positive = Field(gt=0)
    source: Source = Field(min_length=1)


class KernelTable(BaseModel):
    """Kernel-level measurements of one device (``measured_on``), shared by the profiles that name the table."""

    model_config = SPEC_CONFIG

    name: str = Field(min_length=1)
    measured_on: str = Field(min_length=1, description="profile key whose peak_tflops gives the efficiencies")
    references: dict[str, Source] = Field(default_factory=dict, description="full citations the points refer to")
    gemm: list[GemmPoint] = Field(default_factory=list)
    attention: list[AttentionPoint] = Field(default_factory=list)
    conv3d: list[ConvPoint] = Field(default_factory=list)
    memory: list[MemoryPoint] = Field(default_factory=list)
    gemm_warm: list[GemmPoint] = Field(
        default_factory=list, description="the GEMM shapes again with the weights already in the last-level cache "
        "(no flush between calls): what a ledger whose weights fit in ``llc_mib`` runs at (evaluate/time.py)")
    conv3d_warm: list[ConvPoint] = Field(default_factory=list, description="the conv3d shapes again, weights warm")


class MeasuredOn(BaseModel):
    """How a measured profile was measured: date, libraries, threads, the device as the OS names it."""

    model_config = SPEC_CONFIG

    date: str = Field(min_length=1)
    device: str = Field(min_length=1)
    torch: str = Field(min_length=1)
    threads: int = Field(gt=0, description="torch.set_num_threads during every measurement")
    clock: str | None = Field(default=None, description="thread_time (CPU time of the one compute thread) or "
                                                       "perf_counter (wall)")
    driver: str | None = None
    libraries: dict[str, str] = Field(default_factory=dict)
    command: str | None = None
    seconds: FiniteFloat | None = Field(default=None, ge=0, description="wall time of the calibration run")


class Topology(BaseModel):
    """How GPUs of this kind are wired into a cluster (the communication model's inputs, ``evaluate/comm.py``): a
    node of ``gpus_per_node`` GPUs on one intra-node link (NVSwitch / NVLink / PCIe / xGMI / ICI), and the node's
    NICs to the scale-out network (InfiniBand / RoCE). Bandwidths are ACHIEVED figures (nccl-tests ``busbw``, or
    per-NIC rates), GB/s (1e9 B/s) one direction; latencies are a small message's collective time, microseconds."""

    model_config = SPEC_CONFIG

    gpus_per_node: int = Field(gt=0, description="GPUs sharing the intra-node link (an NVL72 rack: 72)")
    intra_link: Literal["nvswitch", "nvlink", "pcie", "xgmi", "ici"]
    intra_busbw_gbps: Positive = Field(gt=0, description="large-message bus bandwidth inside a node, GB/s")
    intra_latency_us: Positive = Field(gt=0, description="small-message collective time inside a node, us")
    nics_per_node: int = Field(gt=0)
    nic_gbps: Positive = Field(gt=0, description="achieved bandwidth of one NIC, GB/s one direction")
    inter_latency_us: Positive = Field(gt=0, description="added per tree level (doubling of nodes) across nodes, us")
    sources: dict[str, Source] = Field(min_length=1, description="where each figure comes from (or ASSUMED: why)")

    @property
    def nic_share_gbps(self) -> float:
        """Scale-out bandwidth of one GPU: nics_per_node x nic_gbps / gpus_per_node, GB/s."""
        return self.nics_per_node * self.nic_gbps / self.gpus_per_node


class HardwareProfile(BaseModel):
    """One device: peaks, memory, links, power, price, memory efficiency, launch overhead, kernel tables."""

    model_config = SPEC_CONFIG

    key: str = Field(min_length=1, description="catalog key, e.g. h100-sxm")
    name: str = Field(min_length=1)
    vendor: Literal["nvidia", "amd", "google", "intel", "cpu"]
    architecture: Literal["ampere", "ada", "hopper", "blackwell", "cdna3", "tpu", "cpu"]
    peak_tflops: PeakTflops
    hbm_gb: Positive = Field(gt=0, description="device memory, GB (decimal)")
    hbm_tbps: Positive = Field(gt=0, description="device memory bandwidth, TB/s")
    l2_mib: Positive | None = Field(default=None, gt=0)
    llc_mib: Positive | None = Field(
        default=None, gt=0, description="last-level cache, MiB (a CPU's L3 as sysfs gives it): a ledger whose GEMM "
        "and conv weights fit in it runs them at the tables' warm points (gemm_warm, conv3d_warm)")
    sms: int | None = Field(default=None, gt=0, description="SMs / CUs / cores")
    boost_clock_mhz: Positive | None = Field(default=None, gt=0)
    tdp_w: Positive | None = Field(default=None, gt=0, description="board power, W (None: not published)")
    scale_up_gbps: Positive | None = Field(default=None, gt=0, description="per-device scale-up bandwidth, GB/s")
    scale_out_gbps: Positive | None = Field(default=None, gt=0, description="per-device network bandwidth, GB/s")
    price_usd_per_hour: Positive | None = Field(default=None, gt=0, description="ASSUMED rental price, USD/hour")
    default_mfu: Positive | None = Field(default=None, gt=0, le=1, description="for the explicit --mfu path only")
    memory_efficiency: Positive = Field(default=ASSUMED_MEMORY_EFFICIENCY, gt=0, le=1,
                                        description="achieved / peak memory bandwidth")
    launch_overhead_us: Positive = Field(default=ASSUMED_LAUNCH_US, ge=0,
                                         description="per-kernel launch floor, microseconds")
    dispatch_overhead_us: Positive | None = Field(
        default=None, description="host microseconds of a bare ATen call (a view op, a tiny kernel) outside a module, "
        "where the device waits on the host (CPU); None: the device runs ahead of the host (GPU), so eager view ops "
        "cost nothing and extra eager kernels their launch floor")
    topology: Topology | None = Field(default=None, description="cluster wiring (None: single-device only)")
    kernels: list[str] = Field(default_factory=list, description="kernel tables in hardware/kernels/")
    tables: list[KernelTable] = Field(default_factory=list, description="kernel tables carried inline")
    measured: MeasuredOn | None = None
    source: Source = Field(default="", description="the catalog's one-line source (default: the peaks' source)")
    sources: dict[str, Source] = Field(min_length=1)

    @model_validator(mode="before")
    @classmethod
    def _assumed(cls, data: object) -> object:
        """memory_efficiency / launch_overhead_us given as null (no published kernel-level figure): the assumed
        defaults, said so in ``sources``."""
        if isinstance(data, dict):
            for name, value in (("memory_efficiency", ASSUMED_MEMORY_EFFICIENCY),
                                ("launch_overhead_us", ASSUMED_LAUNCH_US)):
                if name in data and data[name] is None:
                    data = {**data, name: value,
                            "sources": {**(data.get("sources") or {}),
                                        name: f"ASSUMED {value:g}: no published kernel-level figure"}}
        return data

    @model_validator(mode="after")
    def _sources(self) -> HardwareProfile:
        if "peak_tflops" not in self.sources:
            raise ValueError("sources: name the source of peak_tflops")
        if all(getattr(self.peak_tflops, d) is None for d in DTYPE_BYTES):
            raise ValueError("peak_tflops: give at least one dtype")
        if not self.source:
            object.__setattr__(self, "source", self.sources["peak_tflops"])
        return self

    def peak_flops(self, dtype: str = "bf16") -> float:
        """Dense peak FLOP/s at ``dtype`` (raises if the device has no such support)."""
        if dtype not in DTYPE_BYTES:
            raise ValueError(f"dtype: expected one of {', '.join(DTYPE_BYTES)}, got {dtype!r}")
        tf = getattr(self.peak_tflops, dtype)
        if tf is None:
            raise ValueError(f"{self.key} has no published {dtype} peak; use another dtype")
        return float(tf) * 1e12

    @property
    def memory_bytes_per_s(self) -> float:
        """Sustained bandwidth of a large streaming op: hbm_tbps x memory_efficiency, bytes/s."""
        return self.hbm_tbps * 1e12 * self.memory_efficiency



def _profiles_dir() -> Path:
    return Path(str(resources.files("sora_compute.hardware").joinpath("profiles")))


def _kernels_dir() -> Path:
    return Path(str(resources.files("sora_compute.hardware").joinpath("kernels")))


CATALOG_INDEX = "catalog"  # profiles/catalog.yaml: the listing order, not a profile


@cache
def profile_keys() -> list[str]:
    """Catalog keys: the profile files in hardware/profiles/, in catalog.yaml's order, then the rest sorted."""
    keys = sorted(p.stem for p in _profiles_dir().glob("*.yaml") if p.stem != CATALOG_INDEX)
    index = _profiles_dir() / f"{CATALOG_INDEX}.yaml"
    order = [k for k in (yaml.safe_load(index.read_text()) or {}).get("order", []) if k in keys] if index.is_file() \
        else []
    return order + [k for k in keys if k not in order]


def is_profile_path(text: str) -> bool:
    """Whether ``text`` names a file rather than a catalog key (a path separator or a .yaml/.yml/.json ending)."""
    t = text.strip().lower()
    return "/" in t or "\\" in t or t.endswith((".yaml", ".yml", ".json"))


def _read_yaml(path: Path, what: str) -> dict:
    try:
        data = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise ProfileFileError(f"{what}: no such file {str(path)!r}") from None
    except (OSError, UnicodeDecodeError) as e:
        raise ProfileFileError(f"{what}: cannot read {str(path)!r} ({e.__class__.__name__})") from None
    except yaml.YAMLError as e:
        raise ProfileFileError(f"{what}: {str(path)!r} is not valid YAML ({str(e).splitlines()[0]})") from None
    if not isinstance(data, dict):
        raise ProfileFileError(f"{what}: {str(path)!r} must hold a mapping")
    return data


def _validate(cls: type[BaseModel], data: dict, where: str) -> BaseModel:
    try:
        return cls.model_validate(data)
    except ValidationError as e:
        err = e.errors()[0]
        field = ".".join(str(x) for x in err["loc"]) or "file"
        raise ProfileFileError(f"{where}: {field}: {err['msg']}") from None


@cache
def load_kernel_table(name: str) -> KernelTable:
    """The kernel table hardware/kernels/<name>.yaml."""
    path = _kernels_dir() / f"{name}.yaml"
    if not path.is_file():
        known = sorted(p.stem for p in _kernels_dir().glob("*.yaml"))
        raise UnknownProfileError(f"unknown kernel table {name!r}{did_you_mean(name, known)}")
    table = _validate(KernelTable, _read_yaml(path, "kernel table"), f"kernel table {name}")
    assert isinstance(table, KernelTable)
    return table


@cache
def _load_file(path: str, mtime: float) -> HardwareProfile:
    data = _read_yaml(Path(path), "gpu")
    profile = _validate(HardwareProfile, data, f"gpu file {path}")
    assert isinstance(profile, HardwareProfile)
    for name in profile.kernels:
        load_kernel_table(name)  # an unknown table name fails at load, not at first use
    return profile


def load_profile(key_or_path: str) -> HardwareProfile:
    """The profile of a catalog key (``h100-sxm``; case and spaces ignored) or of a yaml file path."""
    if not isinstance(key_or_path, str):
        raise UnknownProfileError(f"gpu: expected a catalog key or a profile file, got {key_or_path!r}")
    if is_profile_path(key_or_path):
        p = Path(key_or_path).expanduser()
        if not p.is_file():
            raise ProfileFileError(f"gpu: no such profile file {key_or_path!r}")
        return _load_file(str(p.resolve()), p.stat().st_mtime)
    return _catalog_profile(key_or_path.strip().lower(), key_or_path)


@cache
def _catalog_profile(k: str, given: str) -> HardwareProfile:
    keys = profile_keys()
    if k not in keys:
        raise UnknownProfileError(f"unknown GPU {given!r}{did_you_mean(given, keys)} "
                                  "(see `sora-compute gpus`, or give a profile file path)")
    path = _profiles_dir() / f"{k}.yaml"
    profile = _load_file(str(path), path.stat().st_mtime)
    if profile.key != k:
        raise ProfileFileError(f"profile {path.name}: key {profile.key!r} differs from the file name")
    return profile


def profile_tables(profile: HardwareProfile) -> list[KernelTable]:
    """The kernel tables that apply to ``profile``: its inline tables first, then the named ones."""
    return [*profile.tables, *(load_kernel_table(n) for n in profile.kernels)]
