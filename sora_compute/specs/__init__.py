"""Specifications of video diffusion models and of the videos they process.

Every spec is an immutable pydantic (v2) model. Units are in field descriptions: pixels for
video sizes, seconds for durations, frames per second for rates, channels for widths.
One module per spec: base (shared), video, dit, vae, text_encoder, model (ModelSpec, LatentShape, Workload).
The DiT's and the text encoders' parameters come from their ledgers (``evaluate/params.py``).
"""

from sora_compute.specs.base import VideoShapeError, conv_params, linear_params
from sora_compute.specs.dit import DiTSpec
from sora_compute.specs.model import LatentShape, ModelSpec, Workload
from sora_compute.specs.text_encoder import (
    BertEncoderSpec,
    CLIPTextSpec,
    LlamaEncoderSpec,
    T5EncoderSpec,
    TextEncoderSpec,
    text_encoder_spec,
)
from sora_compute.specs.vae import (
    MOCHI_FOURIER_FREQS,
    MOCHI_HEAD_DIM,
    STEPVIDEO_HEAD,
    WFVAE_FLOW_LAYERS,
    WFVAE_HAAR_PARAMS,
    VAESpec,
)
from sora_compute.specs.video import MAX_FRAMES, MAX_SIDE_PX, VideoSpec

__all__ = [
    "VideoSpec",
    "DiTSpec",
    "VAESpec",
    "TextEncoderSpec",
    "T5EncoderSpec",
    "LlamaEncoderSpec",
    "CLIPTextSpec",
    "BertEncoderSpec",
    "text_encoder_spec",
    "ModelSpec",
    "Workload",
    "LatentShape",
    "VideoShapeError",
    "MAX_SIDE_PX",
    "MAX_FRAMES",
    "linear_params",
    "conv_params",
    "MOCHI_FOURIER_FREQS",
    "MOCHI_HEAD_DIM",
    "STEPVIDEO_HEAD",
    "WFVAE_FLOW_LAYERS",
    "WFVAE_HAAR_PARAMS",
]
