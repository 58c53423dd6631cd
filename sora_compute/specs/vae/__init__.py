"""The 3D VAE specs: one pydantic model per family (one module each), joined as a union discriminated by ``family:``
(a spec without one is ``generic``). Each family declares only its own fields (``Literal`` where its layout fixes
them), its checks and, where it differs, its frame rule; parameters and MACs come from its ledger
(sora_compute/ledger/vae/).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, Union

from pydantic import Discriminator, Tag, TypeAdapter

from sora_compute.specs.vae.base import VAEBase
from sora_compute.specs.vae.cogvideox import CogVideoXVAE
from sora_compute.specs.vae.generic import GenericVAE
from sora_compute.specs.vae.ltx import LTXVAE
from sora_compute.specs.vae.mochi import MOCHI_FOURIER_FREQS, MOCHI_HEAD_DIM, MochiVAE
from sora_compute.specs.vae.opensora import OPENSORA_MICRO_BATCH, OpenSoraVAE
from sora_compute.specs.vae.stepvideo import STEPVIDEO_HEAD, StepVideoVAE
from sora_compute.specs.vae.wan import WanVAE
from sora_compute.specs.vae.wfvae import WFVAE, WFVAE_FLOW_LAYERS, WFVAE_HAAR_PARAMS

__all__ = ["VAESpec", "VAEFamily", "VAEBase", "vae_spec", "GenericVAE", "WanVAE", "CogVideoXVAE", "MochiVAE",
           "LTXVAE", "OpenSoraVAE", "StepVideoVAE", "WFVAE", "MOCHI_FOURIER_FREQS", "MOCHI_HEAD_DIM",
           "STEPVIDEO_HEAD", "OPENSORA_MICRO_BATCH", "WFVAE_FLOW_LAYERS", "WFVAE_HAAR_PARAMS"]


def _family(value: Any) -> str:
    """The tag of a spec or of its fields (none: ``generic``)."""
    if isinstance(value, dict):
        return str(value.get("family", "generic"))
    return str(getattr(value, "family", "generic"))


VAESpec = Annotated[
    Union[  # noqa: UP007  (the members carry their tags)
        Annotated[GenericVAE, Tag("generic")],
        Annotated[WanVAE, Tag("wan")],
        Annotated[CogVideoXVAE, Tag("cogvideox")],
        Annotated[MochiVAE, Tag("mochi")],
        Annotated[LTXVAE, Tag("ltx")],
        Annotated[OpenSoraVAE, Tag("opensora")],
        Annotated[StepVideoVAE, Tag("stepvideo")],
        Annotated[WFVAE, Tag("wfvae")],
    ],
    Discriminator(_family),
]
VAEFamily = Literal["generic", "wan", "cogvideox", "mochi", "ltx", "opensora", "stepvideo", "wfvae"]

_ADAPTER: TypeAdapter[VAESpec] = TypeAdapter(VAESpec)


def vae_spec(**fields: Any) -> VAESpec:
    """The spec of ``fields['family']`` (default ``generic``), validated: ``vae_spec(family="wan", ...)``."""
    return _ADAPTER.validate_python(fields)

