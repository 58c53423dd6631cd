"""What the planning specs share: frozen pydantic models that refuse unknown keys and non-finite numbers, and the
rule that the stages of a plan have distinct names."""

from __future__ import annotations

from collections.abc import Iterable

from pydantic import BaseModel

from sora_compute.finite import SPEC_CONFIG


class _Spec(BaseModel):
    model_config = SPEC_CONFIG  # frozen, no unknown keys, no inf / NaN


def check_unique_names(names: Iterable[str]) -> None:
    """Raise ValueError naming every stage name that appears more than once."""
    names = list(names)
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise ValueError(f"stage names must be unique: {', '.join(map(repr, twice))} appears more than once")
