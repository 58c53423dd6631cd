"""GPU / accelerator catalog: the hardware profiles in ``profiles/`` (one yaml per device, each fact group with its
source; ``profiles.py`` holds the schema and loader). ``GPUSpec`` is the planning view of a profile: the fields the
planners read, unchanged since the catalog was one ``gpus.yaml``. Every function that takes a catalog key also takes
a profile file path (``load_gpu("my_gpu.yaml")``).

Units: peak throughput in TFLOP/s (dense, 2 FLOPs per MAC), memory in GB (decimal, as vendors
publish) and GiB, bandwidth in TB/s (HBM) and GB/s (scale-up link), power in W, price in USD per
GPU-hour (an assumed rental rate, overridable).
"""

from __future__ import annotations

from typing import Literal

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from sora_compute.hardware.profiles import (
    HardwareProfile,
    ProfileFileError,
    UnknownProfileError,
    load_profile,
    profile_keys,
)

__all__ = ["GPUSpec", "UnknownGPUError", "ProfileFileError", "HardwareProfile", "load_gpu", "load_profile",
           "resolve_gpu", "gpu_names", "gpu_catalog", "Precision"]

Precision = Literal["bf16", "fp8"]


UnknownGPUError = UnknownProfileError  # an unknown catalog key (a KeyError with a did-you-mean)


class GPUSpec(BaseModel):
    """One accelerator: peak dense throughput, memory, bandwidth, power, price."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    key: str = Field(description="catalog identifier, e.g. h100-sxm")
    name: str
    vendor: str
    bf16_tflops: float = Field(gt=0, description="dense BF16 peak, TFLOP/s")
    fp8_tflops: float | None = Field(default=None, gt=0, description="dense FP8 peak, TFLOP/s (None: no FP8)")
    hbm_gb: float = Field(gt=0, description="device memory, GB (decimal)")
    hbm_tbps: float = Field(gt=0, description="device memory bandwidth, TB/s")
    scale_up_gbps: float = Field(gt=0, description="per-GPU scale-up link bandwidth, GB/s")
    tdp_w: float | None = Field(default=None, gt=0, description="board power, W (None: not published)")
    price_usd_per_hour: float = Field(gt=0, description="assumed rental price, USD per GPU-hour")
    default_mfu: float = Field(gt=0, le=1, description="planning default model-FLOPs utilisation")
    source: str = Field(min_length=1)

    def peak_flops(self, precision: Precision = "bf16") -> float:
        """Peak dense FLOP/s at ``precision`` (raises if the part has no such tensor cores)."""
        if precision == "fp8":
            if self.fp8_tflops is None:
                raise ValueError(f"{self.key} has no FP8 tensor cores; use precision='bf16'")
            return self.fp8_tflops * 1e12
        return self.bf16_tflops * 1e12

    @property
    def hbm_bytes(self) -> float:
        return self.hbm_gb * 1e9

    @property
    def hbm_gib(self) -> float:
        return self.hbm_bytes / 2**30

    @property
    def hbm_bytes_per_s(self) -> float:
        return self.hbm_tbps * 1e12


def gpu_names() -> list[str]:
    """Catalog keys (the profile files), sorted."""
    return profile_keys()


def gpu_spec(profile: HardwareProfile) -> GPUSpec:
    """The planning view of ``profile``; a profile without a planning field (a measured CPU profile has no price)
    is an error naming the field."""
    missing = [f for f in ("scale_up_gbps", "price_usd_per_hour", "default_mfu") if getattr(profile, f) is None]
    if missing or profile.peak_tflops.bf16 is None:
        field = missing[0] if missing else "peak_tflops.bf16"
        raise ProfileFileError(f"gpu {profile.key}: {field} is not given; planning commands need it")
    return GPUSpec(key=profile.key, name=profile.name, vendor=profile.vendor, bf16_tflops=profile.peak_tflops.bf16,
                   fp8_tflops=profile.peak_tflops.fp8, hbm_gb=profile.hbm_gb, hbm_tbps=profile.hbm_tbps,
                   scale_up_gbps=profile.scale_up_gbps, tdp_w=profile.tdp_w,
                   price_usd_per_hour=profile.price_usd_per_hour, default_mfu=profile.default_mfu,
                   source=profile.source)


def load_gpu(key: str) -> GPUSpec:
    """The catalog entry ``key`` (e.g. ``h100-sxm``) or the profile file at a path; unknown keys raise with a
    did-you-mean."""
    return gpu_spec(load_profile(key))


def resolve_gpu(gpu: str | GPUSpec | HardwareProfile) -> GPUSpec:
    """The GPU a planner runs on, resolved once at the edge: a catalog key or profile path (``load_gpu``), a
    HardwareProfile (its planning view) or a GPUSpec as is."""
    if isinstance(gpu, GPUSpec):
        return gpu
    if isinstance(gpu, HardwareProfile):
        return gpu_spec(gpu)
    return load_gpu(gpu)


def gpu_catalog() -> pd.DataFrame:
    """The whole catalog as a DataFrame (one row per GPU)."""
    return pd.DataFrame([load_gpu(k).model_dump() for k in gpu_names()])
