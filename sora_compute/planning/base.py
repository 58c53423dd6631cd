"""What the planning specs share: frozen pydantic models that refuse unknown keys and non-finite numbers."""

from __future__ import annotations

from pydantic import BaseModel

from sora_compute.finite import SPEC_CONFIG


class _Spec(BaseModel):
    model_config = SPEC_CONFIG  # frozen, no unknown keys, no inf / NaN
