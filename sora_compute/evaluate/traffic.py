"""The memory-traffic evaluator: bytes each op moves at least once (inputs and weights read, output written),
elementwise work included, which neither FLOP convention counts.

This is the minimum traffic of an op run on its own (no fusion with its neighbours, no re-reads from cache
misses): the memory side of a roofline.
"""

from __future__ import annotations

from collections.abc import Iterable

import pandas as pd

from sora_compute.ledger.formulas import Number
from sora_compute.ledger.ops import Op

__all__ = ["traffic_bytes", "traffic_by_op"]


def traffic_bytes(ops: Iterable[Op], bytes_per_element: int = 2) -> Number:
    """Bytes moved by all ops: elements x instances x ``bytes_per_element`` (2 for bf16)."""
    total: Number = 0
    for op in ops:
        total = total + op.elements * op.instances
    return total * bytes_per_element


def traffic_by_op(ops: Iterable[Op], bytes_per_element: int = 2) -> pd.DataFrame:
    """Bytes moved per operator class (linear, sdpa, layer_norm, elementwise, ...) for scalar shapes, largest
    first: columns op, bytes, share."""
    out: dict[str, int] = {}
    for op in ops:
        out[op.op] = out.get(op.op, 0) + int(op.elements * op.instances * bytes_per_element)
    total = sum(out.values())
    df = pd.DataFrame({"op": list(out), "bytes": pd.Series(list(out.values()), dtype=object)})
    df["share"] = [b / total if total else 0.0 for b in df["bytes"]]
    return df.sort_values("share", ascending=False, ignore_index=True)
