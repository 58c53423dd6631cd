"""Host links: the achieved host-to-device and device-to-host copy bandwidth of each catalog GPU
(``host_links.yaml``, each interface with its source), what moving weights between CPU and GPU memory costs."""

from __future__ import annotations

from functools import cache
from importlib import resources

import yaml
from pydantic import BaseModel, ConfigDict, Field

__all__ = ["HostLink", "host_link"]


class HostLink(BaseModel):
    """One interface's achieved copy bandwidth, GB/s (1e9 B/s) per direction."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    name: str
    h2d_gbps: float = Field(gt=0)
    d2h_gbps: float = Field(gt=0)
    source: str

    def seconds(self, h2d_bytes: float, d2h_bytes: float = 0) -> float:
        """Copy time: h2d / (h2d_gbps 1e9) + d2h / (d2h_gbps 1e9) seconds (directions not overlapped)."""
        return h2d_bytes / (self.h2d_gbps * 1e9) + d2h_bytes / (self.d2h_gbps * 1e9)


@cache
def _data() -> dict[str, dict[str, object]]:
    text = resources.files("sora_compute.hardware").joinpath("host_links.yaml").read_text()
    data: dict[str, dict[str, object]] = yaml.safe_load(text)
    return data


def host_link(gpu_key: str) -> HostLink:
    """The host link of catalog GPU ``gpu_key`` (a GPU not in the file: the file's ASSUMED default)."""
    d = _data()
    gpus: dict[str, str] = d["gpus"]  # type: ignore[assignment]
    name = gpus.get(gpu_key, str(d["default"]))
    links: dict[str, dict[str, object]] = d["links"]  # type: ignore[assignment]
    return HostLink.model_validate({"name": name, **links[name]})
