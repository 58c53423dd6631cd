"""Elementary operation counts, in multiply-accumulates (MACs).

One function per operation type, each with its equation. They take Python ints (exact, any
size) or numpy float64 arrays (vectorised sweeps); nothing here casts to a fixed-width integer.

Conventions (the default, ``FVCORE``, matches fvcore's handles so calibration can be exact):

- linear / matmul: tokens x fan_in x fan_out; bias adds are not counted (fvcore, FlopCounterMode).
- convolution: batch x output positions x c_in x c_out x kernel volume (fvcore ``conv_flop_count``).
- attention core (scaled_dot_product_attention): Q K^T and softmax(.) V, i.e.
  groups x heads x q_len x k_len x (d_qk + d_v); softmax, scaling and masking are elementwise.
- LayerNorm / GroupNorm: 5 per element with an affine transform, 4 without (fvcore
  ``norm_flop_counter``, "a rough estimate"); RMSNorm: 4 with weight, 3 without (sora-compute's
  handle for ``aten::rms_norm``, which fvcore lacks: square, mean, rescale, weight).
- nearest up-sampling: 1 per output element (fvcore's rule for ``upsample_nearest2d``, applied by
  sora-compute's handle to ``upsample_nearest3d``); (tri)linear up-sampling: one per corner per output
  element, 4 (fvcore's rule for ``upsample_bilinear2d``) or 8 (sora-compute's handle for ``upsample_trilinear3d``).
- elementwise activations, residual adds, modulation: not counted (neither profiler counts them).

``MATMUL_ONLY`` drops norms and resampling: what torch's ``FlopCounterMode`` counts (it reports
FLOPs = 2 x MACs).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, TypeAlias

import numpy as np

__all__ = [
    "Number",
    "CountingConvention",
    "FVCORE",
    "MATMUL_ONLY",
    "linear_macs",
    "conv_macs",
    "attention_macs",
    "layer_norm_macs",
    "group_norm_macs",
    "rms_norm_macs",
    "upsample_nearest_macs",
    "upsample_linear_macs",
    "as_number",
    "linear_elements",
    "conv_elements",
    "attention_elements",
]

Number: TypeAlias = Any  # int (exact) or np.ndarray of float64 (vectorised)


@dataclass(frozen=True)
class CountingConvention:
    """Which non-matmul operations are counted. Matmuls and convolutions always are."""

    norms: bool = True
    resampling: bool = True
    name: str = "fvcore"


FVCORE = CountingConvention()
MATMUL_ONLY = CountingConvention(norms=False, resampling=False, name="matmul_only")


def as_number(x: Any) -> Number:
    """Python ints stay exact; arrays (and numpy scalars) become float64 so products never overflow."""
    if isinstance(x, (bool, np.bool_)):
        raise TypeError("expected a number, got a bool")
    if isinstance(x, int):
        return x
    if isinstance(x, np.integer):
        return int(x)
    return np.asarray(x, dtype=np.float64)


def linear_macs(tokens: Number, fan_in: Number, fan_out: Number) -> Number:
    """nn.Linear on ``tokens`` rows: tokens * fan_in * fan_out."""
    return fan_in * fan_out * tokens  # scalars first: one array multiply in sweeps


def conv_macs(batch: Number, out_positions: Number, c_in: Number, c_out: Number, kernel_volume: Number) -> Number:
    """Convolution: batch * out_positions * c_in * c_out * prod(kernel)."""
    return c_in * c_out * kernel_volume * batch * out_positions


def attention_macs(groups: Number, heads: Number, q_len: Number, k_len: Number, head_dim: Number) -> Number:
    """SDPA core: scores Q K^T plus weighted sum A V = 2 * groups * heads * q_len * k_len * head_dim."""
    return 2 * heads * head_dim * groups * q_len * k_len


def layer_norm_macs(numel: Number, affine: bool, convention: CountingConvention = FVCORE) -> Number:
    """LayerNorm: (5 if affine else 4) per element, when the convention counts norms."""
    return numel * (5 if affine else 4) if convention.norms else 0 * numel


def group_norm_macs(numel: Number, affine: bool = True, convention: CountingConvention = FVCORE) -> Number:
    """GroupNorm: (5 if affine else 4) per element, when the convention counts norms."""
    return layer_norm_macs(numel, affine, convention)


def rms_norm_macs(numel: Number, affine: bool = True, convention: CountingConvention = FVCORE) -> Number:
    """RMSNorm: (4 if weighted else 3) per element, when the convention counts norms."""
    return numel * (4 if affine else 3) if convention.norms else 0 * numel


def upsample_nearest_macs(out_numel: Number, convention: CountingConvention = FVCORE) -> Number:
    """Nearest-neighbour up-sampling: 1 per output element, when the convention counts resampling."""
    return out_numel if convention.resampling else 0 * out_numel


def upsample_linear_macs(out_numel: Number, corners: int, convention: CountingConvention = FVCORE) -> Number:
    """(Bi/tri)linear up-sampling: ``corners`` (4 or 8) per output element, when the convention counts resampling."""
    return corners * out_numel if convention.resampling else 0 * out_numel


# Minimum memory traffic (elements read + written once; multiply by bytes per element), for rooflines.

def linear_elements(tokens: Number, fan_in: Number, fan_out: Number) -> Number:
    """Input tokens x fan_in + weight fan_in x fan_out + output tokens x fan_out."""
    return fan_in * tokens + fan_in * fan_out + fan_out * tokens


def conv_elements(batch: Number, in_positions: Number, out_positions: Number, c_in: Number, c_out: Number,
                  kernel_volume: Number) -> Number:
    """Input activations + weights + output activations."""
    return c_in * batch * in_positions + c_in * c_out * kernel_volume + c_out * batch * out_positions


def attention_elements(groups: Number, heads: Number, q_len: Number, k_len: Number, head_dim: Number) -> Number:
    """Fused (flash) attention reads Q, K, V and writes O; the score matrix never leaves on-chip memory."""
    return 2 * heads * head_dim * groups * (q_len + k_len)
