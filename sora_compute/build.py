"""Build the reference PyTorch modules of ``reference_model/`` from sora_compute specs.

Use ``device="meta"`` to build any size without allocating memory (shapes only).
"""

from __future__ import annotations

import torch

from reference_model import VAE3D, DiT, DiTConfig, T5Encoder, TextEncoderConfig, VAEConfig
from sora_compute.specs import DiTSpec, TextEncoderSpec, VAESpec

__all__ = ["build_dit", "build_vae", "build_text_encoder"]


def build_dit(spec: DiTSpec, device: str | torch.device = "cpu") -> DiT:
    with torch.device(device):
        return DiT(DiTConfig(**spec.model_dump()))


def build_vae(spec: VAESpec, device: str | torch.device = "cpu") -> VAE3D:
    with torch.device(device):
        return VAE3D(VAEConfig(**spec.model_dump()))


def build_text_encoder(spec: TextEncoderSpec, device: str | torch.device = "cpu") -> T5Encoder:
    with torch.device(device):
        return T5Encoder(TextEncoderConfig(**spec.model_dump()))
