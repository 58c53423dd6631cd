"""Calibration: the analytic counts against two profilers, module by module.

- fvcore ``FlopCountAnalysis`` (jit trace, real tensors on CPU, MACs per module via ``by_module``).
  fvcore has no handle for ``aten::scaled_dot_product_attention`` (it warns and counts 0),
  ``aten::upsample_nearest3d``, ``aten::upsample_trilinear3d`` or ``aten::rms_norm``: sora-compute registers
  handles for them (``EXTRA_HANDLES``). Every other op fvcore skips is reported: the elementwise ones that neither
  profiler counts by convention (``ELEMENTWISE_NOT_COUNTED``) separately from anything unexpected.
- torch ``FlopCounterMode`` on the ``meta`` device (shapes only: any size, no memory). It counts
  2 FLOPs per MAC, matmuls/convolutions/attention only, so it is compared with the analytic count
  under the ``MATMUL_ONLY`` convention. (On CPU tensors it misses SDPA: PyTorch's CPU flash kernel
  has no registered formula; on meta SDPA takes the math path and is counted.)

No correction factors: where the analytic count and a profiler differ, the formula is fixed.
"""

from __future__ import annotations

import json
import logging
import platform
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from functools import cached_property
from importlib import metadata, resources
from math import prod
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from fvcore.nn import FlopCountAnalysis
from fvcore.nn.jit_handles import get_shape
from torch.utils.flop_counter import FlopCounterMode

from sora_compute.calibration.build import build_dit, build_text_encoder, build_vae
from sora_compute.flops import (
    FVCORE,
    MATMUL_ONLY,
    Count,
    count_dit,
    count_text_encoder,
    count_vae_decode,
    count_vae_encode,
)
from sora_compute.ledger.formulas import CountingConvention
from sora_compute.specs import (
    LTXVAE,
    WFVAE,
    CogVideoXVAE,
    DiTSpec,
    GenericVAE,
    MochiVAE,
    ModelSpec,
    OpenSoraVAE,
    StepVideoVAE,
    TextEncoderSpec,
    VAESpec,
    VideoSpec,
    WanVAE,
    Workload,
    text_encoder_spec,
)
from sora_compute.specs.vae.schedule import DecodeSchedule

__all__ = [
    "EXTRA_HANDLES",
    "ELEMENTWISE_NOT_COUNTED",
    "CalibrationCase",
    "default_cases",
    "FvcoreProfile",
    "fvcore_by_module",
    "flop_counter_by_module",
    "compare",
    "calibrate",
    "CalibrationResult",
    "load_record",
    "RECORD_PATH",
]

RECORD_PATH = "data/calibration.json"  # inside the sora_compute package


# ------------------------------------------------------------------------------------------------
# fvcore handles for the ops it lacks
# ------------------------------------------------------------------------------------------------

def sdpa_flop_jit(inputs: list[Any], outputs: list[Any]) -> int:
    """aten::scaled_dot_product_attention(q, k, v, ...): QK^T + AV = B h Lq Lk (d_qk + d_v) MACs."""
    q, k, v = (get_shape(x) for x in inputs[:3])
    batch_heads = prod(q[:-2])
    return batch_heads * q[-2] * k[-2] * (q[-1] + v[-1])


def upsample_nearest3d_flop_jit(inputs: list[Any], outputs: list[Any]) -> int:
    """aten::upsample_nearest3d: 1 per output element (fvcore's rule for upsample_nearest2d)."""
    return prod(get_shape(outputs[0]))


def upsample_trilinear3d_flop_jit(inputs: list[Any], outputs: list[Any]) -> int:
    """aten::upsample_trilinear3d: 8 per output element (fvcore's rule for upsample_bilinear2d is 4)."""
    return 8 * prod(get_shape(outputs[0]))


def rms_norm_flop_jit(inputs: list[Any], outputs: list[Any]) -> int:
    """aten::rms_norm(x, shape, weight, eps): 4 per element with weight, 3 without."""
    has_weight = get_shape(inputs[2]) is not None
    return prod(get_shape(inputs[0])) * (4 if has_weight else 3)


EXTRA_HANDLES: dict[str, Callable[[list[Any], list[Any]], int]] = {
    "aten::scaled_dot_product_attention": sdpa_flop_jit,
    "aten::upsample_nearest3d": upsample_nearest3d_flop_jit,
    "aten::upsample_trilinear3d": upsample_trilinear3d_flop_jit,
    "aten::rms_norm": rms_norm_flop_jit,
}

#: Ops fvcore reports as unsupported that neither it nor FlopCounterMode counts by convention.
ELEMENTWISE_NOT_COUNTED = frozenset({
    "aten::add", "aten::sub", "aten::mul", "aten::div", "aten::rsub", "aten::neg", "aten::pow", "aten::exp",
    "aten::log", "aten::sin", "aten::cos", "aten::silu", "aten::gelu", "aten::relu", "aten::sigmoid",
    "aten::reciprocal", "aten::rsqrt", "aten::sqrt", "aten::abs", "aten::lt", "aten::where", "aten::embedding",
    "aten::meshgrid", "aten::pad", "aten::mean", "aten::sum", "aten::softmax", "aten::add_", "aten::mul_",
    "aten::clamp_min", "aten::zeros_like", "aten::tanh",
    "aten::argmax",  # CLIP's end-of-text position (an index, no MACs)
    # Step-Video VAE v2: zero frames written before a causal conv, the head's channel duplication (a copy), the
    # in-place SiLU of Res3DBlockUpsample, a view
    "aten::fill_", "aten::repeat_interleave", "aten::silu_", "aten::unflatten",
    # WF-VAE: CausalConv3d's copies of the first frame (torch.Tensor.repeat)
    "aten::repeat",
})


@dataclass(frozen=True)
class FvcoreProfile:
    """fvcore's view of one forward: MACs per module path (rolled up to ancestors; '' = the whole
    module), MACs per counted operator, and the ``aten::`` ops it skipped with how often each ran."""

    by_module: dict[str, int]
    by_operator: dict[str, int]
    skipped: Counter[str]


def fvcore_by_module(module: torch.nn.Module, inputs: tuple[Any, ...]) -> FvcoreProfile:
    """Profile ``module(*inputs)`` with fvcore plus sora-compute's extra handles."""
    logging.getLogger("fvcore").setLevel(logging.ERROR)
    fca = FlopCountAnalysis(module, inputs)
    for name, handle in EXTRA_HANDLES.items():
        fca.set_op_handle(name, handle)
    fca.unsupported_ops_warnings(False).uncalled_modules_warnings(False).tracer_warnings("none")
    with torch.no_grad():
        by_module = {k: int(v) for k, v in fca.by_module().items()}
    return FvcoreProfile(by_module, {k: int(v) for k, v in fca.by_operator().items()}, Counter(fca.unsupported_ops()))


def flop_counter_by_module(module: torch.nn.Module, inputs: tuple[Any, ...]) -> dict[str, int]:
    """FlopCounterMode MACs (its FLOPs / 2) per module path; run it on meta tensors for any size."""
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        module(*inputs)
    root = type(module).__name__
    out: dict[str, int] = {}
    for name, ops in counter.get_flop_counts().items():
        if name == "Global":
            continue
        path = "" if name == root else name.removeprefix(root + ".")
        flops = sum(int(v) for v in ops.values())
        assert flops % 2 == 0, (name, flops)
        out[path] = flops // 2
    return out


# ------------------------------------------------------------------------------------------------
# Cases: a component of a model at one shape, with its module, inputs and analytic count
# ------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class CalibrationCase:
    name: str
    component: str  # dit_forward | vae_encode | vae_decode | text_encode
    model: ModelSpec
    video: VideoSpec
    batch: int = 1

    @cached_property
    def workload(self) -> Workload:
        """The model on the case's video: its latent grid, computed once (``Workload.of``)."""
        return Workload.of(self.model, self.video)

    def analytic(self, convention: CountingConvention = FVCORE) -> Count:
        kw: dict[str, Any] = {"batch": self.batch, "convention": convention}
        if self.component == "dit_forward":
            return count_dit(self.workload, **kw)
        if self.component == "vae_encode":
            return count_vae_encode(self.workload, **kw)
        if self.component == "vae_decode":  # the profiled module is the decoder on the whole latent: one call
            return count_vae_decode(self.workload, schedule=DecodeSchedule(source="one decoder call"), **kw)
        # the profiled module is the token encoder: leave the extra encoders (each calibrated as its own case) out
        return count_text_encoder(self.model.model_copy(update={"extra_text_encoders": ()}), **kw)

    def module_and_inputs(self, device: str) -> tuple[torch.nn.Module, tuple[Any, ...]]:
        """The reference module and example inputs (random on CPU, empty on meta)."""
        m, v, B = self.model, self.video, self.batch
        gen = torch.Generator().manual_seed(0)

        def tensor(*shape: int) -> torch.Tensor:
            if device == "meta":
                return torch.empty(*shape, device="meta")
            return torch.randn(*shape, generator=gen)

        if self.component == "dit_forward":
            g = self.workload.latent
            x = tensor(B, m.dit.in_channels, g.frames, g.height, g.width)
            t = tensor(B)
            if m.dit.conditioning == "class":
                cond = torch.zeros(B, dtype=torch.long, device=device)
            else:
                cond = tensor(B, m.num_text_tokens, m.dit.text_dim)
            pooled = tensor(B, m.dit.pooled_text_dim) if m.dit.pooled_text_dim is not None else None
            guidance = tensor(B) if m.dit.guidance_embed else None
            fps = tensor(B) if m.dit.fps_embed else None
            n = g.tokens
            cond_latents = tensor(B, n, m.dit.cond_channels) if m.dit.cond_channels is not None else None
            extra = (tensor(B, m.dit.extra_text_tokens, m.dit.extra_text_dim) if m.dit.extra_text_dim is not None
                     else None)
            return build_dit(m.dit, device).eval(), (x, t, cond, pooled, guidance, fps, cond_latents, extra)
        if self.component in ("vae_encode", "vae_decode"):
            vae = build_vae(m.vae, device).eval()
            if self.component == "vae_encode":
                return vae.encoder, (tensor(B, m.vae.in_channels, v.num_frames, v.height, v.width),)
            g = self.workload.latent
            return vae.decoder, (tensor(B, m.vae.latent_channels, g.frames, g.height, g.width),)
        assert m.text_encoder is not None
        ids = torch.zeros(B, m.num_text_tokens, dtype=torch.long, device=device)
        return build_text_encoder(m.text_encoder, device).eval(), (ids,)


def _small_text_encoder() -> TextEncoderSpec:
    return text_encoder_spec(vocab_size=64, num_layers=2, d_model=32, num_heads=4, d_kv=8, d_ff=48, max_tokens=16)


def _family_vaes() -> list[tuple[VAESpec, VideoSpec]]:
    """Tiny configs of each exact VAE family with a video that exercises its temporal down/up-sampling."""
    return [
        (WanVAE(latent_channels=4, block_out_channels=(8, 16, 16), spatial_compression=4,
                 temporal_compression=2, layers_per_block=1), VideoSpec(width=16, height=8, num_frames=5)),
        (CogVideoXVAE(latent_channels=4, block_out_channels=(8, 16, 16), spatial_compression=4,
                 temporal_compression=2, layers_per_block=1, norm_groups=4),
         VideoSpec(width=16, height=8, num_frames=5)),
        (MochiVAE(latent_channels=4, block_out_channels=(32, 32, 64),
                 decoder_block_out_channels=(32, 64, 64), spatial_compression=4, temporal_compression=6,
                 temporal_factors=(2, 3), layers_per_level=(1, 1, 1, 1), norm_groups=4),
         VideoSpec(width=8, height=8, num_frames=13)),
        (LTXVAE(latent_channels=4, block_out_channels=(8, 16, 16), spatial_compression=8, patch_size=2,
                 temporal_compression=4, layers_per_level=(1, 1, 2, 1)), VideoSpec(width=16, height=8, num_frames=5)),
        # Open-Sora 1.2: 2D VAE in micro-batches of frames, temporal VAE on 5-frame chunks padded to 8 (2 whole chunks
        # and a remainder of 4 frames: 5 latent frames, decoded back to 14)
        (OpenSoraVAE(latent_channels=4, block_out_channels=(8, 16), spatial_compression=2,
                 layers_per_block=1, norm_groups=4, temporal_block_out_channels=(8, 16, 16),
                 layers_per_level=(1, 1, 1, 1), chunk_frames=5, chunk_latent_frames=2),
         VideoSpec(width=8, height=4, num_frames=14)),
        # Step-Video VAE v2: a 2D then two 3D level boundaries and the pixel-unshuffle head (t = 8, s = 16), causal
        # mid attention, 9-frame chunks (two whole and a 1-frame remainder: 2 + 2 + 1 latent frames, decoded to 19)
        (StepVideoVAE(latent_channels=2, spatial_compression=16, temporal_compression=8,
                 block_out_channels=(8, 16, 16, 16), decoder_block_out_channels=(8, 8, 16, 16), stem_channels=4,
                 norm_groups=4, chunk_frames=9, chunk_latent_frames=2),
         VideoSpec(width=32, height=16, num_frames=19)),
        # Open-Sora-Plan v1.3 WF-VAE: Haar wavelets as fixed convs (conv_transpose in the decoder), per-frame 2D levels,
        # energy-flow branches, per-frame mid attention, nearest-in-time + trilinear up-sampling (9 frames -> 3)
        (WFVAE(latent_channels=2, spatial_compression=8, temporal_compression=4,
                 block_out_channels=(8, 16, 32), layers_per_block=1, energy_flow_channels=(8, 8), norm_groups=4),
         VideoSpec(width=16, height=8, num_frames=9)),
    ]


def default_cases() -> list[CalibrationCase]:
    """Small configs covering every module type: DiT (3 conditioning modes x 2 layouts, joint only full; shared
    adaLN with q/k norms and cross-attention norm), VAE encoder and decoder (causal and not), T5 (gated and not),
    Llama (GQA; hidden-state skip) and CLIP (with and without the pooled projection) text encoders."""
    te = _small_text_encoder()
    vae = GenericVAE(latent_channels=4, block_out_channels=(8, 16, 16), spatial_compression=4, temporal_compression=2,
                  norm_groups=4, causal=True)
    cases: list[CalibrationCase] = []
    for cond in ("class", "cross_attention", "joint"):
        for layout in ("full", "factorized"):
            if cond == "joint" and layout == "factorized":
                continue
            dit = DiTSpec(depth=2, hidden_size=32, num_heads=4, patch_size=(1, 2, 2), in_channels=4,
                          conditioning=cond, attention_layout=layout, num_classes=10, text_dim=32)
            model = ModelSpec(dit=dit, vae=vae, text_encoder=te if cond != "class" else None, text_tokens=6)
            cases.append(CalibrationCase(f"dit-{cond}-{layout}", "dit_forward", model,
                                         VideoSpec(width=32, height=16, num_frames=5), batch=2))
    # adaLN-single, q/k RMSNorm and the cross-attention LayerNorm (Wan2.1 / PixArt-alpha / STDiT3 blocks), with
    # 3D RoPE (Wan) or temporal RoPE (STDiT3)
    for qk, layout, rope in (("across_heads", "full", "video"), ("per_head", "factorized", "temporal")):
        dit = DiTSpec(depth=2, hidden_size=32, num_heads=4, patch_size=(1, 2, 2), in_channels=4,
                      conditioning="cross_attention", attention_layout=layout, text_dim=32, modulation="shared",
                      qk_norm=qk, cross_attn_norm=True, mlp_hidden_size=72, rope=rope)
        model = ModelSpec(dit=dit, vae=vae, text_encoder=te, text_tokens=6)
        cases.append(CalibrationCase(f"dit-shared-adaln-qknorm-{layout}", "dit_forward", model,
                                     VideoSpec(width=32, height=16, num_frames=5), batch=2))
    # CogVideoX blocks: joint attention with expert adaLN from a narrower time embedding, affine norms,
    # per-head q/k LayerNorm, linear text projection, pre-norm over all tokens, RoPE on the video tokens (5B)
    dit = DiTSpec(depth=2, hidden_size=32, num_heads=4, patch_size=(1, 2, 2), in_channels=4, conditioning="joint",
                  text_dim=32, frequency_embedding_size=32, cond_dim=16, norm_affine=True,
                  qk_norm="per_head_layernorm", text_proj="linear", final_prenorm=True, rope="video")
    cases.append(CalibrationCase("dit-cogvideox-style", "dit_forward", ModelSpec(dit=dit, vae=vae, text_encoder=te,
                                                                                 text_tokens=6),
                                 VideoSpec(width=32, height=16, num_frames=5), batch=2))
    for causal in (True, False):
        v = vae.model_copy(update={"causal": causal})
        model = ModelSpec(dit=DiTSpec(depth=1, hidden_size=8, num_heads=1, in_channels=4), vae=v)
        video = VideoSpec(width=16, height=8, num_frames=5 if causal else 4)
        tag = "causal" if causal else "noncausal"
        cases.append(CalibrationCase(f"vae-encode-{tag}", "vae_encode", model, video))
        cases.append(CalibrationCase(f"vae-decode-{tag}", "vae_decode", model, video))
    # MMDiT (SD3 / FLUX / HunyuanVideo): dual-stream blocks, then single-stream blocks, per-head q/k RMSNorm, RoPE
    # over the whole joint sequence (FLUX, Open-Sora 2.0)
    dit = DiTSpec(depth=2, single_blocks=2, hidden_size=32, num_heads=4, patch_size=(1, 2, 2), in_channels=4,
                  conditioning="dual_stream", text_dim=32, qk_norm="per_head", rope="all")
    cases.append(CalibrationCase("dit-mmdit-dual-single", "dit_forward", ModelSpec(dit=dit, vae=vae, text_encoder=te,
                                                                                   text_tokens=6),
                                 VideoSpec(width=32, height=16, num_frames=5), batch=2))
    # HunyuanVideo's text path: token refiner, pooled-text vector, embedded guidance scale
    dit = dit.model_copy(update={"text_proj": "refiner", "refiner_depth": 2, "pooled_text_dim": 24,
                                 "guidance_embed": True, "rope": "video"})  # RoPE on the video tokens only
    pooler = te.model_copy(update={"d_model": 24})  # the encoder of the pooled vector (CLIP in HunyuanVideo)
    cases.append(CalibrationCase("dit-hunyuan-refiner-pooled-guidance", "dit_forward",
                                 ModelSpec(dit=dit, vae=vae, text_encoder=te, extra_text_encoders=(pooler,),
                                           text_tokens=6),
                                 VideoSpec(width=32, height=16, num_frames=5), batch=2))
    # Mochi AsymmDiT: narrower text stream, scale + tanh-gate modulation, attention-pooled text, SwiGLU, last block
    # without text update
    dit = DiTSpec(depth=3, hidden_size=32, num_heads=4, patch_size=(1, 2, 2), in_channels=4, conditioning="asymmetric",
                  text_proj="linear", text_dim=32, text_hidden_size=16, mlp_act="swiglu", mlp_hidden_size=40,
                  text_mlp_hidden_size=24, mlp_bias=False, qkv_bias=False, qk_norm="per_head", text_pool_heads=4,
                  rope="video")
    cases.append(CalibrationCase("dit-mochi-asymmetric", "dit_forward",
                                 ModelSpec(dit=dit, vae=vae, text_encoder=te, text_tokens=6),
                                 VideoSpec(width=32, height=16, num_frames=5), batch=2))
    # STDiT3 (fps embedding, q/k norms in self-attention only), Open-Sora 2.0's conditioning latents, Step-Video's
    # second text encoder (tokens prepended to the cross-attention keys), text LayerNorm, affine block norms
    dit = DiTSpec(depth=2, hidden_size=32, num_heads=4, patch_size=(1, 2, 2), in_channels=4,
                  conditioning="cross_attention", attention_layout="factorized", text_dim=32, modulation="shared",
                  qk_norm="per_head", cross_qk_norm=False, fps_embed=True, cond_channels=20, extra_text_dim=24,
                  extra_text_tokens=3, text_norm=True, norm_affine=True, final_norm_affine=False)
    second = te.model_copy(update={"d_model": 24, "max_tokens": 3})  # the second encoder (CLIP in Step-Video)
    cases.append(CalibrationCase("dit-stdit3-stepvideo-options", "dit_forward",
                                 ModelSpec(dit=dit, vae=vae, text_encoder=te, extra_text_encoders=(second,),
                                           text_tokens=6),
                                 VideoSpec(width=32, height=16, num_frames=5), batch=2))
    # Open-Sora-Plan v1.3: Skiparse sparse attention (k = 4) in the middle blocks; 30 tokens pad to 32
    dit = DiTSpec(depth=4, hidden_size=32, num_heads=4, patch_size=(1, 2, 2), in_channels=4,
                  conditioning="cross_attention", text_dim=32, modulation="shared", sparse_ratio=4,
                  sparse_blocks=(1, 3), rope="video")
    cases.append(CalibrationCase("dit-skiparse", "dit_forward", ModelSpec(dit=dit, vae=vae, text_encoder=te,
                                                                          text_tokens=6),
                                 VideoSpec(width=40, height=24, num_frames=5), batch=2))
    # SwiGLU MLPs and bias-free projections (Mochi / Llama-style blocks), in cross-attention and dual-stream blocks
    for cond in ("cross_attention", "dual_stream"):
        dit = DiTSpec(depth=2, hidden_size=32, num_heads=4, patch_size=(1, 2, 2), in_channels=4, conditioning=cond,
                      text_dim=32, mlp_act="swiglu", mlp_hidden_size=40, mlp_bias=False, qkv_bias=False,
                      qk_norm="per_head")
        cases.append(CalibrationCase(f"dit-swiglu-{cond}", "dit_forward",
                                     ModelSpec(dit=dit, vae=vae, text_encoder=te, text_tokens=6),
                                     VideoSpec(width=32, height=16, num_frames=5), batch=2))
    # LTX-Video-style VAE: pixel-unshuffle 2x2 before the encoder, pixel-shuffle after the decoder
    patched = vae.model_copy(update={"patch_size": 2, "spatial_compression": 8})
    model = ModelSpec(dit=DiTSpec(depth=1, hidden_size=8, num_heads=1, in_channels=4), vae=patched)
    for component in ("vae_encode", "vae_decode"):
        cases.append(CalibrationCase(f"{component.replace('_', '-')}-patchified", component, model,
                                     VideoSpec(width=32, height=16, num_frames=5)))
    # the published VAE families' own blocks (Wan2.1, CogVideoX, Mochi-1, LTX-Video), tiny widths, few frames
    for vae_family, video in _family_vaes():
        model = ModelSpec(dit=DiTSpec(depth=1, hidden_size=8, num_heads=1, in_channels=vae_family.latent_channels,
                                      patch_size=(1, 1, 1)), vae=vae_family)
        for component in ("vae_encode", "vae_decode"):
            cases.append(CalibrationCase(f"{component.replace('_', '-')}-{vae_family.family}", component, model, video))
    for gated in (True, False):
        t = te.model_copy(update={"gated_ffn": gated})
        dit = DiTSpec(depth=1, hidden_size=32, num_heads=4, in_channels=4, conditioning="cross_attention", text_dim=32)
        model = ModelSpec(dit=dit, vae=vae, text_encoder=t, text_tokens=9)
        cases.append(CalibrationCase(f"t5-{'gated' if gated else 'relu'}", "text_encode", model,
                                     VideoSpec(width=16, height=16, num_frames=1)))
    # decoder-only LLM encoders (HunyuanVideo's Llama): GQA with causal attention and rotary positions, SwiGLU;
    # and a hidden-state skip (the last layers and the final norm not run) with a head width != d / heads
    llama = text_encoder_spec(kind="llama", vocab_size=64, num_layers=3, d_model=32, num_heads=4, num_kv_heads=2,
                            d_ff=48, max_tokens=16)
    # Step-LLM layout: fused qkv and gate/up matmuls, no rotary embedding (ALiBi in-kernel), no final norm
    step = llama.model_copy(update={"fused_projections": True, "rotary": False, "final_norm": False})
    # CLIP text towers: biased LayerNorms and projections, causal attention; with and without text_projection
    clip = text_encoder_spec(kind="clip", vocab_size=64, num_layers=2, d_model=32, num_heads=4, d_ff=48, max_tokens=16)
    # BERT (Step-Video's Hunyuan-CLIP): post-norm, learned and token-type positions, bidirectional; +- pooler
    bert = text_encoder_spec(kind="bert", vocab_size=64, num_layers=2, d_model=32, num_heads=4, d_ff=48, max_tokens=9,
                           max_position_embeddings=16)
    for name, t in (("llama-gqa", llama),
                    ("llama-skip", llama.model_copy(update={"num_kv_heads": None, "d_kv": 6, "hidden_state_skip": 1})),
                    ("llama-fused-step", step),
                    ("clip", clip), ("clip-projection", clip.model_copy(update={"projection_dim": 24})),
                    ("bert", bert), ("bert-no-pooler", bert.model_copy(update={"pooler": False}))):
        dit = DiTSpec(depth=1, hidden_size=32, num_heads=4, in_channels=4, conditioning="cross_attention", text_dim=32)
        model = ModelSpec(dit=dit, vae=vae, text_encoder=t, text_tokens=9)
        cases.append(CalibrationCase(name, "text_encode", model, VideoSpec(width=16, height=16, num_frames=1), batch=2))
    return cases


# ------------------------------------------------------------------------------------------------
# Comparison
# ------------------------------------------------------------------------------------------------

def _rel_err(a: float, b: float) -> float:
    if a == b:
        return 0.0
    return abs(a - b) / max(abs(a), abs(b))


def containers(module: torch.nn.Module) -> set[str]:
    """Paths of ModuleList/ModuleDict containers: never called, so FlopCounterMode has no entry for them."""
    return {n for n, m in module.named_modules() if isinstance(m, (torch.nn.ModuleList, torch.nn.ModuleDict))}


def compare(case: CalibrationCase, fvcore: dict[str, int] | None = None,
            flop_counter: dict[str, int] | None = None, not_called: set[str] = frozenset()) -> pd.DataFrame:  # type: ignore[assignment]
    """Per-module table: analytic vs fvcore (fvcore convention) and vs FlopCounterMode (matmul-only).

    ``not_called``: container paths FlopCounterMode cannot report (NaN in its columns)."""
    analytic = case.analytic(FVCORE).module_macs()
    analytic_mm = case.analytic(MATMUL_ONLY).module_macs()
    paths = set(analytic)
    if fvcore is not None:
        paths |= {p for p, v in fvcore.items() if v}
    if flop_counter is not None:
        paths |= {p for p, v in flop_counter.items() if v}
    rows = []
    for p in sorted(paths, key=lambda s: (s.count("."), s)):
        row: dict[str, Any] = {"case": case.name, "component": case.component, "module": p or "(total)",
                               "analytic_macs": int(analytic.get(p, 0))}
        if fvcore is not None:
            row["fvcore_macs"] = fvcore.get(p, 0)
            row["fvcore_rel_err"] = _rel_err(row["analytic_macs"], row["fvcore_macs"])
        if flop_counter is not None:
            row["analytic_matmul_macs"] = int(analytic_mm.get(p, 0))
            if p in not_called:
                row["flopcounter_macs"], row["flopcounter_rel_err"] = float("nan"), float("nan")
            else:
                row["flopcounter_macs"] = flop_counter.get(p, 0)
                row["flopcounter_rel_err"] = _rel_err(row["analytic_matmul_macs"], row["flopcounter_macs"])
        rows.append(row)
    df = pd.DataFrame(rows)
    if "flopcounter_macs" in df:
        df["flopcounter_macs"] = df["flopcounter_macs"].astype("Int64")  # <NA> where FlopCounterMode has no entry
    return df


@dataclass
class CalibrationResult:
    table: pd.DataFrame
    unsupported_ops: dict[str, Counter[str]] = field(default_factory=dict)  # per case: ops fvcore skipped
    operators: dict[str, dict[str, int]] = field(default_factory=dict)  # per case: MACs per counted op

    def summary(self) -> pd.DataFrame:
        """Per case: totals and the worst per-module relative error against each profiler."""
        g = self.table.groupby("case", sort=False)
        totals = self.table[self.table["module"] == "(total)"].set_index("case")
        return pd.DataFrame({
            "component": totals["component"],
            "modules": g.size(),
            "analytic_macs": totals["analytic_macs"],
            "fvcore_macs": totals["fvcore_macs"],
            "worst_fvcore_rel_err": g["fvcore_rel_err"].max(),
            "flopcounter_macs": totals["flopcounter_macs"],
            "worst_flopcounter_rel_err": g["flopcounter_rel_err"].max(),
        }).reset_index()

    def unexpected_ops(self) -> dict[str, list[str]]:
        """Ops fvcore skipped that are neither handled nor elementwise-by-convention (should be empty)."""
        out = {}
        for case, ops in self.unsupported_ops.items():
            odd = sorted(set(ops) - ELEMENTWISE_NOT_COUNTED - set(EXTRA_HANDLES))
            if odd:
                out[case] = odd
        return out

    def record(self) -> dict[str, Any]:
        """Calibration record (JSON-serialisable), versioned with the libraries that produced it."""
        s = self.summary()
        return {
            "schema": 1,
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "versions": {"sora-compute": metadata.version("sora-compute"), "torch": torch.__version__,
                         "fvcore": metadata.version("fvcore"), "python": platform.python_version()},
            "units": "MACs (multiply-accumulates); FLOPs = 2 x MACs",
            "correction_factors": {},
            "conventions": {
                "fvcore": "analytic FVCORE convention: norms (LayerNorm/GroupNorm 5 per element with affine, 4 "
                          "without; RMSNorm 4 with weight) and nearest up-sampling (1 per output element) counted",
                "flopcounter": "analytic MATMUL_ONLY convention vs FlopCounterMode FLOPs / 2 on the meta device",
                "extra_fvcore_handles": {k: (v.__doc__ or "").strip() for k, v in EXTRA_HANDLES.items()},
                "not_counted": sorted(ELEMENTWISE_NOT_COUNTED),
            },
            "worst_rel_err": {"fvcore": float(s["worst_fvcore_rel_err"].max()),
                              "flopcounter": float(s["worst_flopcounter_rel_err"].max())},
            "cases": json.loads(s.to_json(orient="records")),
            "unexpected_unsupported_ops": self.unexpected_ops(),
            "fvcore_skipped_ops": {case: dict(ops) for case, ops in self.unsupported_ops.items()},
            "fvcore_macs_by_operator": self.operators,
        }


def calibrate(cases: Iterable[CalibrationCase] | None = None,
              progress: Callable[[str], None] | None = None) -> CalibrationResult:
    """Profile every case with fvcore (CPU) and FlopCounterMode (meta) and compare module by module."""
    tables, unsupported, operators = [], {}, {}
    for case in (default_cases() if cases is None else cases):
        if progress:
            progress(case.name)
        module, inputs = case.module_and_inputs("cpu")
        fv = fvcore_by_module(module, inputs)
        meta_module, meta_inputs = case.module_and_inputs("meta")
        fc = flop_counter_by_module(meta_module, meta_inputs)
        tables.append(compare(case, fv.by_module, fc, containers(module)))
        unsupported[case.name], operators[case.name] = fv.skipped, fv.by_operator
    return CalibrationResult(pd.concat(tables, ignore_index=True), unsupported, operators)


def write_outputs(result: CalibrationResult, out_dir: Path, record_path: Path | None = None) -> list[Path]:
    """Write the per-module table (CSV and markdown), the summary, and the JSON record."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, df in (("calibration_modules", result.table), ("calibration_summary", result.summary())):
        csv, md = out_dir / f"{name}.csv", out_dir / f"{name}.md"
        df.to_csv(csv, index=False)
        md.write_text(df.to_markdown(index=False, floatfmt=".3g") + "\n")
        written += [csv, md]
    record = json.dumps(result.record(), indent=2) + "\n"
    for path in filter(None, (out_dir / "calibration.json", record_path)):
        path.write_text(record)
        written.append(path)
    return written


def load_record() -> dict[str, Any]:
    """The calibration record shipped with the package."""
    return dict(json.loads(resources.files("sora_compute").joinpath(RECORD_PATH).read_text()))
