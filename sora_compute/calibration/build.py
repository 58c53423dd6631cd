"""Build the reference PyTorch modules of ``reference_model/`` from sora_compute specs.

Use ``device="meta"`` to build any size without allocating memory (shapes only).
"""

from __future__ import annotations

import torch

from reference_model import (
    VAE3D,
    BertEncoder,
    BertEncoderConfig,
    CLIPTextEncoder,
    CLIPTextEncoderConfig,
    DiT,
    DiTConfig,
    LlamaEncoder,
    LlamaEncoderConfig,
    T5Encoder,
    TextEncoderConfig,
    VAEConfig,
)
from sora_compute.ledger.registry import lookup, register
from sora_compute.specs import DiTSpec, TextEncoderSpec, VAESpec
from sora_compute.specs.text_encoder import BertEncoderSpec, CLIPTextSpec, LlamaEncoderSpec, T5EncoderSpec

__all__ = ["build_dit", "build_vae", "build_text_encoder"]


def build_dit(spec: DiTSpec, device: str | torch.device = "cpu") -> DiT:
    with torch.device(device):
        return DiT(DiTConfig(**spec.model_dump(), block_modes=spec.block_modes()))


def build_vae(spec: VAESpec, device: str | torch.device = "cpu") -> VAE3D:
    with torch.device(device):
        return VAE3D(VAEConfig(**spec.model_dump()))


def build_text_encoder(spec: TextEncoderSpec, device: str | torch.device = "cpu"
                       ) -> T5Encoder | LlamaEncoder | CLIPTextEncoder | BertEncoder:
    """The reference encoder of ``spec.kind`` (the builder registered for it below: T5Encoder, LlamaEncoder,
    CLIPTextEncoder or BertEncoder)."""
    sizes = {"vocab_size": spec.vocab_size, "num_layers": spec.num_layers, "d_model": spec.d_model,
             "num_heads": spec.num_heads, "d_kv": spec.d_kv, "d_ff": spec.d_ff, "max_tokens": spec.max_tokens}
    with torch.device(device):
        return lookup("reference_text_encoder", spec.kind)(spec, sizes)


@register("reference_text_encoder", "t5")
def _t5(spec: T5EncoderSpec, sizes: dict[str, int]) -> T5Encoder:
    return T5Encoder(TextEncoderConfig(
        **sizes, gated_ffn=spec.gated_ffn, relative_attention_num_buckets=spec.relative_attention_num_buckets,
        relative_attention_max_distance=spec.relative_attention_max_distance,
        shared_relative_bias=spec.shared_relative_bias))


@register("reference_text_encoder", "llama")
def _llama(spec: LlamaEncoderSpec, sizes: dict[str, int]) -> LlamaEncoder:
    return LlamaEncoder(LlamaEncoderConfig(**sizes, num_kv_heads=spec.kv_heads,
                                           hidden_state_skip=spec.hidden_state_skip, final_norm=spec.final_norm,
                                           rotary=spec.rotary, fused_projections=spec.fused_projections))


@register("reference_text_encoder", "clip")
def _clip(spec: CLIPTextSpec, sizes: dict[str, int]) -> CLIPTextEncoder:
    return CLIPTextEncoder(CLIPTextEncoderConfig(**sizes, projection_dim=spec.projection_dim))


@register("reference_text_encoder", "bert")
def _bert(spec: BertEncoderSpec, sizes: dict[str, int]) -> BertEncoder:
    return BertEncoder(BertEncoderConfig(**sizes, max_position_embeddings=spec.positions,
                                         type_vocab_size=spec.type_vocab_size, pooler=spec.pooler))
