"""Finite numbers at every boundary: a pydantic annotated type, a model config, and a plain check.

inf and NaN are never valid inputs (no duration, price, count or rate is infinite); pydantic models that carry
``SPEC_CONFIG`` reject them in every float field, and ``FiniteFloat`` does so for a single annotated field.
"""

from __future__ import annotations

import math
from typing import Annotated, Any

from pydantic import AllowInfNan, ConfigDict

__all__ = ["FiniteFloat", "SPEC_CONFIG", "require_finite", "MAX_EXACT_INT"]

FiniteFloat = Annotated[float, AllowInfNan(False)]
SPEC_CONFIG = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)
MAX_EXACT_INT = 2**53  # float64 holds every integer up to here; int64 casts of larger values are refused


def require_finite(name: str, value: Any, positive: bool = False) -> float:
    """``value`` as a float, or ValueError naming ``name`` when it is not a finite (positive) number."""
    try:
        x = float(value)
    except (TypeError, ValueError, OverflowError):
        raise ValueError(f"{name}: expected a finite number, got {value!r}") from None
    if not math.isfinite(x):
        raise ValueError(f"{name}: expected a finite number, got {value!r}")
    if positive and x <= 0:
        raise ValueError(f"{name}: expected a positive number, got {value!r}")
    return x
