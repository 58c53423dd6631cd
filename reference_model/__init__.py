"""Reference PyTorch models that sora-compute's analytic counts are calibrated against.

Plain modules with no dependency on sora_compute: a video DiT, a 3D (causal) VAE and text
encoders (T5, a Llama decoder, CLIP's text tower, BERT).
"""

from reference_model.dit import DiT, DiTConfig
from reference_model.text_encoder import (
    BertEncoder,
    BertEncoderConfig,
    CLIPTextEncoder,
    CLIPTextEncoderConfig,
    LlamaEncoder,
    LlamaEncoderConfig,
    T5Encoder,
    TextEncoderConfig,
)
from reference_model.vae import VAE3D, VAEConfig

__all__ = ["DiT", "DiTConfig", "VAE3D", "VAEConfig", "T5Encoder", "TextEncoderConfig", "LlamaEncoder",
           "LlamaEncoderConfig", "CLIPTextEncoder", "CLIPTextEncoderConfig", "BertEncoder", "BertEncoderConfig"]
