"""What every spec shares: an immutable pydantic model, the shape error, and parameter formulas of the
elementary layers."""

from __future__ import annotations

import math

from pydantic import BaseModel, ConfigDict

__all__ = ["_Spec", "VideoShapeError", "linear_params", "conv_params", "_is_power_of_two"]


class _Spec(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)  # inf / NaN are never valid


class VideoShapeError(ValueError):
    """A video shape that a model cannot process (e.g. not divisible by compression x patch)."""


def linear_params(fan_in: int, fan_out: int, bias: bool = True) -> int:
    """Parameters of nn.Linear: fan_in * fan_out (+ fan_out bias)."""
    return fan_in * fan_out + (fan_out if bias else 0)


def conv_params(c_in: int, c_out: int, kernel: tuple[int, ...], bias: bool = True) -> int:
    """Parameters of an N-d convolution: c_in * c_out * prod(kernel) (+ c_out bias)."""
    return c_in * c_out * math.prod(kernel) + (c_out if bias else 0)


def _is_power_of_two(n: int) -> bool:
    return n >= 1 and (n & (n - 1)) == 0
