"""Hypothesis strategies for small, valid specs and video shapes that fit them."""

from __future__ import annotations

import torch
from hypothesis import strategies as st

from sora_compute.specs import DiTSpec, GenericVAE, ModelSpec, TextEncoderSpec, VAESpec, VideoSpec, text_encoder_spec


@st.composite
def dit_specs(draw: st.DrawFn, in_channels: int | None = None, text_dim: int | None = None) -> DiTSpec:
    heads = draw(st.integers(1, 4))
    head_dim = draw(st.sampled_from([4, 8, 16]))
    conditioning = draw(st.sampled_from(["class", "cross_attention", "joint", "dual_stream"]))
    layout = "full" if conditioning in ("joint", "dual_stream") else draw(st.sampled_from(["full", "factorized"]))
    modulation = "per_block" if conditioning == "dual_stream" else draw(st.sampled_from(["per_block", "shared"]))
    singles = draw(st.integers(0, 2)) if conditioning == "dual_stream" else 0
    refiner = conditioning != "class" and draw(st.booleans())
    cross = conditioning == "cross_attention"
    extra = draw(st.sampled_from([None, 8])) if cross else None
    sparse = layout == "full" and conditioning in ("class", "cross_attention") and draw(st.booleans())
    return DiTSpec(
        sparse_ratio=draw(st.sampled_from([2, 3])) if sparse else 1,
        cross_qk_norm=draw(st.booleans()),
        fps_embed=draw(st.booleans()),
        cond_channels=draw(st.sampled_from([None, 3])),
        extra_text_dim=extra,
        extra_text_tokens=draw(st.integers(1, 3)) if extra else 0,
        text_norm=draw(st.booleans()),
        final_norm_affine=draw(st.sampled_from([None, True, False])),
        mlp_act="gelu_tanh" if singles else draw(st.sampled_from(["gelu_tanh", "swiglu"])),
        mlp_bias=draw(st.booleans()),
        qkv_bias=draw(st.booleans()),
        refiner_depth=draw(st.integers(1, 2)) if refiner else 0,
        pooled_text_dim=draw(st.sampled_from([None, 8])) if conditioning != "class" else None,
        guidance_embed=draw(st.booleans()),
        modulation=modulation,
        qk_norm=draw(st.sampled_from(["none", "across_heads", "per_head", "per_head_layernorm"])),
        cond_dim=None if modulation == "shared" else draw(st.sampled_from([None, 12])),
        norm_affine=draw(st.booleans()),
        text_proj="refiner" if refiner else draw(st.sampled_from(["mlp", "linear"])),
        final_prenorm=draw(st.booleans()),
        single_blocks=singles,
        cross_attn_norm=conditioning == "cross_attention" and draw(st.booleans()),
        mlp_hidden_size=draw(st.sampled_from([None, 24])),
        depth=draw(st.integers(1, 3)),
        hidden_size=heads * head_dim,
        num_heads=heads,
        mlp_ratio=draw(st.sampled_from([1.0, 2.0, 4.0, 8 / 3])),
        patch_size=(draw(st.integers(1, 2)), draw(st.integers(1, 2)), draw(st.integers(1, 2))),
        in_channels=in_channels if in_channels is not None else draw(st.integers(1, 8)),
        learn_sigma=draw(st.booleans()),
        conditioning=conditioning,
        attention_layout=layout,
        num_classes=draw(st.integers(1, 20)),
        class_dropout_prob=draw(st.sampled_from([0.0, 0.1])),
        text_dim=text_dim if text_dim is not None else draw(st.sampled_from([8, 24])),
        frequency_embedding_size=draw(st.sampled_from([16, 256])),
    )


@st.composite
def vae_specs(draw: st.DrawFn) -> VAESpec:
    groups = draw(st.sampled_from([1, 2, 4]))
    levels = draw(st.integers(1, 3))
    chans = tuple(groups * draw(st.integers(1, 4)) for _ in range(levels))
    ns = draw(st.integers(0, levels - 1))
    nt = draw(st.integers(0, ns))
    kt = draw(st.sampled_from([1, 3])) if nt == 0 else 3
    patch = draw(st.sampled_from([1, 2]))
    return GenericVAE(
        patch_size=patch,
        in_channels=draw(st.integers(1, 3)),
        latent_channels=draw(st.integers(1, 4)),
        spatial_compression=2**ns * patch,
        temporal_compression=2**nt,
        causal=draw(st.booleans()),
        block_out_channels=chans,
        layers_per_block=draw(st.integers(1, 2)),
        norm_groups=groups,
        mid_attention=draw(st.booleans()),
        double_z=draw(st.booleans()),
        quant_convs=draw(st.booleans()),
        temporal_kernel=kt,
    )


@st.composite
def text_encoder_specs(draw: st.DrawFn, kinds: tuple[str, ...] = ("t5", "llama", "clip", "bert")) -> TextEncoderSpec:
    kind = draw(st.sampled_from(kinds))
    heads, layers = draw(st.integers(1, 4)), draw(st.integers(1, 3))
    sizes = {
        "vocab_size": draw(st.integers(8, 64)),
        "num_layers": layers,
        "d_model": draw(st.sampled_from([8, 16, 24])),
        "num_heads": heads,
        "d_kv": draw(st.sampled_from([4, 8])),
        "d_ff": draw(st.sampled_from([8, 32])),
    }
    if kind == "llama":
        return text_encoder_spec(kind="llama", **sizes, max_tokens=draw(st.integers(1, 16)),
                               num_kv_heads=draw(st.sampled_from([k for k in range(1, heads + 1) if heads % k == 0])),
                               hidden_state_skip=draw(st.integers(0, layers - 1)), final_norm=draw(st.booleans()),
                               rotary=draw(st.booleans()), fused_projections=draw(st.booleans()))
    if kind == "bert":  # at least the 6 text tokens models_and_videos may draw; more learned positions than tokens
        max_tokens = draw(st.integers(6, 16))
        return text_encoder_spec(kind="bert", **sizes, max_tokens=max_tokens,
                               max_position_embeddings=draw(st.sampled_from([None, max_tokens + 3])),
                               type_vocab_size=draw(st.integers(1, 3)), pooler=draw(st.booleans()))
    if kind == "clip":  # at least the 6 text tokens models_and_videos may draw: positions are learned
        return text_encoder_spec(kind="clip", **sizes, max_tokens=draw(st.integers(6, 16)),
                               projection_dim=draw(st.sampled_from([None, 8])))
    return text_encoder_spec(
        **sizes,
        gated_ffn=draw(st.booleans()),
        max_tokens=draw(st.integers(1, 16)),
        relative_attention_num_buckets=draw(st.sampled_from([8, 32])),
        relative_attention_max_distance=draw(st.sampled_from([16, 128])),
        shared_relative_bias=draw(st.booleans()),
    )


@st.composite
def models_and_videos(draw: st.DrawFn) -> tuple[ModelSpec, VideoSpec]:
    """A small model and a video shape that fits it (images included)."""
    vae = draw(vae_specs())
    te = draw(text_encoder_specs())
    dit = draw(dit_specs(in_channels=vae.latent_channels, text_dim=te.d_model))
    extras = []
    if dit.text_conditioned and dit.pooled_text_dim is not None:  # a CLIP-like encoder of the pooled vector
        extras.append(text_encoder_spec(kind="clip", vocab_size=16, num_layers=1, d_model=dit.pooled_text_dim,
                                      num_heads=2, d_ff=16, max_tokens=8))
    if dit.text_conditioned and dit.extra_text_dim is not None:  # a second encoder whose tokens the DiT attends
        extras.append(text_encoder_spec(kind="clip", vocab_size=16, num_layers=1, d_model=dit.extra_text_dim,
                                      num_heads=2, d_ff=16, max_tokens=dit.extra_text_tokens))
    model = ModelSpec(dit=dit, vae=vae, text_encoder=te if dit.text_conditioned else None,
                      extra_text_encoders=tuple(extras) if dit.text_conditioned else (),
                      text_tokens=draw(st.integers(1, 6)))
    pt, ph, pw = dit.patch_size
    s, t = vae.spatial_compression, vae.temporal_compression
    lat_t = pt * draw(st.integers(1, 3))
    frames = 1 + (lat_t - 1) * t if vae.causal else lat_t * t
    return model, VideoSpec(
        width=s * pw * draw(st.integers(1, 3)), height=s * ph * draw(st.integers(1, 3)), num_frames=frames
    )


def dit_inputs(spec: DiTSpec, x: torch.Tensor, L: int) -> tuple[torch.Tensor | None, ...]:
    """Inputs of the reference DiT for latents ``x`` (B, C, T, H, W) and ``L`` text tokens, with every optional
    conditioning the spec asks for."""
    B = x.shape[0]
    pt, ph, pw = spec.patch_size
    n = x.shape[2] // pt * (x.shape[3] // ph) * (x.shape[4] // pw)
    cond = (torch.randint(0, spec.num_classes, (B,)) if spec.conditioning == "class"
            else torch.randn(B, L, spec.text_dim))
    return (x, torch.rand(B) * 1000, cond,
            torch.randn(B, spec.pooled_text_dim) if spec.pooled_text_dim is not None else None,
            torch.full((B,), 6.0) if spec.guidance_embed else None,
            torch.full((B,), 24.0) if spec.fps_embed else None,
            torch.randn(B, n, spec.cond_channels) if spec.cond_channels is not None else None,
            torch.randn(B, spec.extra_text_tokens, spec.extra_text_dim) if spec.extra_text_dim is not None else None)
