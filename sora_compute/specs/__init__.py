"""Specifications of video diffusion models and of the videos they process.

Every spec is an immutable pydantic (v2) model. Units are in field descriptions: pixels for
video sizes, seconds for durations, frames per second for rates, channels for widths.
One module per spec: base (shared), video, dit, vae (a package: one module per VAE family, joined as a union on
``family:``), text_encoder (a union on ``kind:``), model (ModelSpec, LatentShape, Workload).
Parameters come from the ledgers (``evaluate/params.py``).
"""

from sora_compute.specs.base import VideoShapeError, conv_params, linear_params
from sora_compute.specs.dit import DiTSpec
from sora_compute.specs.model import LatentShape, ModelSpec, Workload, as_workload
from sora_compute.specs.text_encoder import (
    BertEncoderSpec,
    CLIPTextSpec,
    LlamaEncoderSpec,
    T5EncoderSpec,
    TextEncoderSpec,
    text_encoder_spec,
)
from sora_compute.specs.vae import (
    LTXVAE,
    MOCHI_FOURIER_FREQS,
    MOCHI_HEAD_DIM,
    STEPVIDEO_HEAD,
    WFVAE,
    WFVAE_FLOW_LAYERS,
    WFVAE_HAAR_PARAMS,
    CogVideoXVAE,
    GenericVAE,
    MochiVAE,
    OpenSoraVAE,
    StepVideoVAE,
    VAEBase,
    VAESpec,
    WanVAE,
    vae_spec,
)
from sora_compute.specs.video import MAX_FRAMES, MAX_SIDE_PX, RESOLUTIONS, VideoSpec

__all__ = [
    "VideoSpec",
    "DiTSpec",
    "VAESpec",
    "VAEBase",
    "vae_spec",
    "GenericVAE",
    "WanVAE",
    "CogVideoXVAE",
    "MochiVAE",
    "LTXVAE",
    "OpenSoraVAE",
    "StepVideoVAE",
    "WFVAE",
    "TextEncoderSpec",
    "T5EncoderSpec",
    "LlamaEncoderSpec",
    "CLIPTextSpec",
    "BertEncoderSpec",
    "text_encoder_spec",
    "ModelSpec",
    "Workload",
    "as_workload",
    "LatentShape",
    "VideoShapeError",
    "MAX_SIDE_PX",
    "RESOLUTIONS",
    "MAX_FRAMES",
    "linear_params",
    "conv_params",
    "MOCHI_FOURIER_FREQS",
    "MOCHI_HEAD_DIM",
    "STEPVIDEO_HEAD",
    "WFVAE_FLOW_LAYERS",
    "WFVAE_HAAR_PARAMS",
]
