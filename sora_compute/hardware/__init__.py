"""GPU / accelerator catalog, loaded from ``gpus.yaml`` beside this module (each entry cites its source).

Units: peak throughput in TFLOP/s (dense, 2 FLOPs per MAC), memory in GB (decimal, as vendors
publish) and GiB, bandwidth in TB/s (HBM) and GB/s (scale-up link), power in W, price in USD per
GPU-hour (an assumed rental rate, overridable).
"""

from __future__ import annotations

from functools import cache
from importlib import resources
from typing import Literal

import pandas as pd
import yaml
from pydantic import BaseModel, ConfigDict, Field

from sora_compute._lookup import did_you_mean

__all__ = ["GPUSpec", "UnknownGPUError", "load_gpu", "gpu_names", "gpu_catalog", "Precision"]

Precision = Literal["bf16", "fp8"]


class UnknownGPUError(KeyError):
    def __str__(self) -> str:
        return str(self.args[0])


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


@cache
def _raw() -> dict[str, dict]:
    text = resources.files(__package__).joinpath("gpus.yaml").read_text()
    return dict(yaml.safe_load(text)["gpus"])


def gpu_names() -> list[str]:
    return list(_raw())


@cache
def load_gpu(key: str) -> GPUSpec:
    """The catalog entry ``key`` (e.g. ``h100-sxm``); unknown keys raise with a did-you-mean."""
    raw = _raw()
    if not isinstance(key, str):
        raise UnknownGPUError(f"gpu: expected a catalog key, got {key!r} (see `sora-compute gpus`)")
    k = key.strip().lower()
    if k not in raw:
        raise UnknownGPUError(f"unknown GPU {key!r}{did_you_mean(key, raw)} (see `sora-compute gpus`)")
    return GPUSpec(key=k, **raw[k])


def gpu_catalog() -> pd.DataFrame:
    """The whole catalog as a DataFrame (one row per GPU)."""
    return pd.DataFrame([load_gpu(k).model_dump() for k in gpu_names()])
