"""The video Diffusion Transformer: its options and its block schedule."""

from __future__ import annotations

import math
from typing import Literal

from pydantic import Field, field_validator, model_validator

from sora_compute.specs.base import _Spec

__all__ = ["DiTSpec"]


Conditioning = Literal["class", "cross_attention", "joint", "dual_stream", "asymmetric"]
AttentionLayout = Literal["full", "factorized"]
Modulation = Literal["per_block", "shared"]
QKNorm = Literal["none", "across_heads", "per_head", "per_head_layernorm"]
MlpAct = Literal["gelu_tanh", "swiglu"]
TextProj = Literal["mlp", "linear", "refiner"]
Rope = Literal["none", "video", "all", "temporal"]
RopeForm = Literal["diffusers", "rotary_embedding_torch"]


class DiTSpec(_Spec):
    """A video Diffusion Transformer over VAE latents (Peebles & Xie 2022, extended to video).

    Blocks are adaLN-Zero transformer blocks conditioned on the timestep embedding. ``conditioning``:

    - ``class``: class label embedding added to the timestep embedding (the DiT paper's model);
    - ``cross_attention``: text tokens projected to the hidden size and attended by a
      cross-attention after self-attention (PixArt-alpha / Open-Sora / Wan);
    - ``joint``: text tokens concatenated with video tokens into one self-attention and MLP
      with shared weights and separate ("expert") adaLN modulation for text (CogVideoX).
    - ``dual_stream``: MMDiT (SD3, FLUX, HunyuanVideo): ``depth`` dual-stream blocks with separate weights
      for text and video and one attention over both, then ``single_blocks`` single-stream blocks on the
      concatenated tokens (fused qkv + MLP input projection, parallel attention and MLP).
    - ``asymmetric``: Mochi 1's AsymmDiT: joint attention in every block like ``dual_stream``, with a narrower text
      stream (``text_hidden_size``, MLP ``text_mlp_hidden_size``) whose q/k/v are projected up to the video width,
      scale + tanh-gate modulation around parameter-free RMSNorms, the text pooled by attention
      (``text_pool_heads``) into the conditioning vector, learned RoPE frequencies, and a last block that does not
      update the text.

    ``attention_layout``: ``full`` attention over all spacetime tokens, or ``factorized``:
    even blocks attend within a frame (spatial), odd blocks across frames at one position
    (temporal), as in Latte / Open-Sora STDiT3.

    ``modulation``: ``per_block`` adaLN-Zero (a Linear(d, 6d) in every block, DiT) or ``shared``
    (adaLN-single: one Linear(d, 6d) on the timestep embedding for all blocks plus a learned 6 x d
    table per block; PixArt-alpha, Open-Sora, Wan2.1). ``qk_norm``: RMSNorm on queries and keys,
    over the whole width (Wan2.1) or per head (STDiT3, HunyuanVideo). ``cross_attn_norm``: an affine
    LayerNorm before cross-attention (Wan2.1). ``mlp_hidden_size`` overrides ``mlp_ratio``.
    CogVideoX-style options: ``cond_dim`` (width of the timestep embedding that drives adaLN, default
    ``hidden_size``), ``norm_affine`` (block and final LayerNorms with weight and bias),
    ``qk_norm="per_head_layernorm"`` (affine LayerNorm per head), ``text_proj="linear"`` (one Linear from
    the text encoder), ``final_prenorm`` (an affine LayerNorm over text and video tokens before the final adaLN).
    HunyuanVideo / FLUX-style options: ``text_proj="refiner"`` (a token refiner of ``refiner_depth`` bidirectional
    transformer blocks on the text tokens, gated by timestep + mean-pooled text), ``pooled_text_dim`` (a pooled
    text vector, e.g. CLIP's, through an MLP added to the timestep embedding), ``guidance_embed`` (the guidance
    scale embedded like the timestep, for guidance-distilled models). ``mlp_act="swiglu"``: a gated SiLU MLP
    (w1, w3: d -> m; w2: m -> d; Mochi, Llama-style blocks); ``mlp_bias``, ``qkv_bias``, ``out_bias``: biases of
    the MLP, of the q/k/v projections and of the attention output projections.
    Further options: ``cross_qk_norm`` (q/k norms in cross-attention too; STDiT3 has them in self-attention only),
    ``fps_embed`` (the frame rate embedded like the timestep; STDiT3), ``cond_channels`` (per-token conditioning
    latents through a Linear added to the video tokens; Open-Sora 2.0's image/video condition), ``extra_text_dim``
    and ``extra_text_tokens`` (a second encoder's tokens through a Linear, prepended to the cross-attention keys;
    Step-Video's CLIP), ``text_norm`` (a parameter-free LayerNorm on the text features before their projection) and
    ``final_norm_affine`` (default: ``norm_affine``). ``sparse_ratio`` k > 1: Skiparse sparse self-attention
    (Open-Sora-Plan v1.3) in blocks ``sparse_blocks`` = [start, stop): the tokens (padded to a multiple of k) are
    split into k interleaved sequences that attend within themselves, dividing the attention core's work by k.
    ``rope``: rotary position embedding of the self-attention's queries and keys (after the q/k norms), applied as
    diffusers' eager ``apply_rotary_emb`` (fp32 cos and sin tables over t/h/w, rotate-half by stack and negation,
    two products and a sum in fp32, cast back): ``video`` 3D RoPE on the video tokens (a joint sequence's text
    tokens are not rotated; CogVideoX-5B, HunyuanVideo, Wan, Step-Video, Mochi, LTX, Open-Sora-Plan), ``all`` on
    every token of a joint sequence (text at position 0: FLUX, Open-Sora 2.0), ``temporal`` 1D RoPE in the temporal
    blocks of a factorised layout (Open-Sora 1.2's STDiT3). ``rope_form="rotary_embedding_torch"``: the rotation
    as lucidrains' rotary-embedding-torch 0.5.3 ``rotate_queries_or_keys`` runs it (STDiT3): in the activation dtype,
    t cos x 1.0 + rotate_half(t) sin x 1.0 and a concatenation, no casts.
    How STDiT3's code runs (Open-Sora 1.2), each off by default: ``frame_mask`` (the sampler passes a temporal mask
    ``x_mask`` every step: each block normalises, modulates and gates twice, with the timestep's and timestep 0's
    tables, and picks per frame with ``torch.where``; timestep 0 is embedded and projected too, and so is the final
    layer's modulation), ``qk_norm_fp32`` (the q/k RMSNorm is LlamaRMSNorm: a composite in fp32, cast back, then
    weighted), ``short_attention_math`` (self-attention takes FlashAttention only when its sequence is longer than
    its number of sequences, ``N > B``; otherwise the math path: q scaled, scores materialised, cast to fp32,
    softmax, cast back, times v: the temporal blocks of a video).
    """

    depth: int = Field(gt=0, description="number of transformer blocks")
    hidden_size: int = Field(gt=0, description="token width d (channels)")
    num_heads: int = Field(gt=0, description="attention heads")
    mlp_ratio: float = Field(default=4.0, gt=0, description="MLP hidden width / hidden_size")
    patch_size: tuple[int, int, int] = Field(
        default=(1, 2, 2), description="latent patch (pt, ph, pw) per token"
    )
    in_channels: int = Field(default=4, gt=0, description="latent channels in")
    learn_sigma: bool = Field(default=True, description="also predict the variance (out = 2 x in)")
    conditioning: Conditioning = Field(default="class", description="class | cross_attention | joint")
    attention_layout: AttentionLayout = Field(default="full", description="full | factorized")
    num_classes: int = Field(default=1000, gt=0, description="class labels (class conditioning)")
    class_dropout_prob: float = Field(
        default=0.1, ge=0, lt=1, description="label dropout for CFG (> 0 adds a null-class row)"
    )
    text_dim: int = Field(default=4096, gt=0, description="text-encoder output width (text conditioning)")
    frequency_embedding_size: int = Field(
        default=256, gt=0, description="sinusoidal timestep features"
    )
    modulation: Modulation = Field(default="per_block", description="per_block (adaLN-Zero) | shared (adaLN-single)")
    qk_norm: QKNorm = Field(default="none", description="RMSNorm on q and k: none | across_heads | per_head")
    cross_attn_norm: bool = Field(default=False, description="affine LayerNorm before cross-attention")
    mlp_hidden_size: int | None = Field(default=None, gt=0, description="MLP width (default: hidden x mlp_ratio)")
    cond_dim: int | None = Field(default=None, gt=0, description="timestep-embedding width (default: hidden_size)")
    norm_affine: bool = Field(default=False, description="block and final LayerNorms with weight and bias")
    text_proj: TextProj = Field(default="mlp", description="text projection: mlp (PixArt) | linear | refiner (Hunyuan)")
    refiner_depth: int = Field(default=0, ge=0, description="token-refiner blocks (text_proj='refiner')")
    pooled_text_dim: int | None = Field(default=None, gt=0, description="pooled text vector width (vector_in MLP)")
    guidance_embed: bool = Field(default=False, description="embed the guidance scale like the timestep")
    mlp_act: MlpAct = Field(default="gelu_tanh", description="MLP: gelu_tanh (2 matrices) | swiglu (3 matrices)")
    mlp_bias: bool = Field(default=True, description="biases in the MLP linears")
    qkv_bias: bool = Field(default=True, description="biases in the attention q/k/v projections")
    out_bias: bool = Field(default=True, description="biases in the attention output projections")
    text_hidden_size: int | None = Field(default=None, gt=0, description="text-stream width (asymmetric)")
    text_mlp_hidden_size: int | None = Field(default=None, gt=0, description="text-stream MLP width (asymmetric)")
    text_pool_heads: int = Field(default=8, gt=0, description="heads of the text attention pooling (asymmetric)")
    cross_qk_norm: bool = Field(default=True, description="q/k norms in cross-attention too (when qk_norm is set)")
    fps_embed: bool = Field(default=False, description="embed the frame rate like the timestep (STDiT3)")
    cond_channels: int | None = Field(default=None, gt=0, description="per-token conditioning latent channels")
    extra_text_dim: int | None = Field(default=None, gt=0, description="second text encoder's width (cross-attn)")
    extra_text_tokens: int = Field(default=0, ge=0, description="second text encoder's tokens (cross-attn)")
    text_norm: bool = Field(default=False, description="parameter-free LayerNorm on the text before its projection")
    final_norm_affine: bool | None = Field(default=None, description="final LayerNorm affine (default norm_affine)")
    sparse_ratio: int = Field(default=1, gt=0, description="Skiparse sparse self-attention ratio k (1 = dense)")
    sparse_blocks: tuple[int, int] | None = Field(default=None, description="[start, stop) blocks with sparse "
                                                  "attention (default: all, when sparse_ratio > 1)")
    final_prenorm: bool = Field(default=False, description="affine LayerNorm over all tokens before the final adaLN")
    single_blocks: int = Field(default=0, ge=0, description="single-stream blocks after the dual-stream ones")
    rope: Rope = Field(default="none", description="rotary position embedding of q and k: none | video (3D, video "
                       "tokens) | all (3D, every token of a joint sequence) | temporal (1D, temporal blocks)")
    rope_form: RopeForm = Field(default="diffusers", description="how the rotation runs: diffusers (apply_rotary_emb, "
                                "fp32) | rotary_embedding_torch (rotate_queries_or_keys, activation dtype)")
    frame_mask: bool = Field(default=False, description="a temporal mask (x_mask) is passed: every block and the final "
                             "layer modulate and gate twice (timestep and timestep 0) and select per frame (STDiT3)")
    qk_norm_fp32: bool = Field(default=False, description="q/k RMSNorm as LlamaRMSNorm: composite in fp32, cast back, "
                               "weighted (STDiT3)")
    short_attention_math: bool = Field(default=False, description="self-attention runs the math path (scores "
                                       "materialised, fp32 softmax) unless its sequence is longer than its number of "
                                       "sequences (STDiT3: flash only when N > B)")

    @field_validator("patch_size")
    @classmethod
    def _positive_patch(cls, v: tuple[int, int, int]) -> tuple[int, int, int]:
        if any(p <= 0 for p in v):
            raise ValueError(f"patch sizes must be positive, got {v}")
        return v

    @field_validator("frequency_embedding_size")
    @classmethod
    def _even_freq(cls, v: int) -> int:
        if v % 2:
            raise ValueError(f"must be even, got {v}")
        return v

    @model_validator(mode="after")
    def _check(self) -> DiTSpec:
        if self.hidden_size % self.num_heads:
            raise ValueError(
                f"num_heads={self.num_heads} must divide hidden_size={self.hidden_size}"
            )
        if self.modulation == "shared" and self.cond != self.hidden_size:
            raise ValueError("modulation='shared' adds its projection to d-wide tables: cond_dim must equal "
                             "hidden_size")
        if self.cross_attn_norm and self.conditioning != "cross_attention":
            raise ValueError("cross_attn_norm needs conditioning='cross_attention'")
        if self.single_blocks and self.conditioning != "dual_stream":
            raise ValueError("single_blocks needs conditioning='dual_stream'")
        if self.conditioning in ("dual_stream", "asymmetric") and self.modulation == "shared":
            raise ValueError(f"conditioning={self.conditioning!r} uses per-block modulation (modulation='per_block')")
        if self.conditioning == "asymmetric":
            if self.text_proj != "linear" or self.final_prenorm or self.head_dim % 2:
                raise ValueError("conditioning='asymmetric' (Mochi) projects text with text_proj='linear', has no "
                                 "final_prenorm, and needs an even head width")
            if self.text_dim % self.text_pool_heads:
                raise ValueError(f"text_pool_heads={self.text_pool_heads} must divide text_dim={self.text_dim}")
        elif self.text_hidden_size is not None or self.text_mlp_hidden_size is not None:
            raise ValueError("text_hidden_size and text_mlp_hidden_size need conditioning='asymmetric'")
        if self.sparse_ratio > 1 and (self.attention_layout != "full"
                                      or self.conditioning not in ("class", "cross_attention")):
            raise ValueError("sparse_ratio > 1 (Skiparse) needs attention_layout='full' and class or cross_attention "
                             "conditioning (text tokens are not in the self-attention)")
        if self.sparse_blocks is not None:
            lo, hi = self.sparse_blocks
            if self.sparse_ratio == 1 or not 0 <= lo < hi <= self.depth:
                raise ValueError(f"sparse_blocks={self.sparse_blocks} needs sparse_ratio > 1 and 0 <= start < stop <= "
                                 f"depth={self.depth}")
        if (self.extra_text_dim is None) != (self.extra_text_tokens == 0):
            raise ValueError("extra_text_dim and extra_text_tokens > 0 go together")
        if self.extra_text_dim is not None and self.conditioning != "cross_attention":
            raise ValueError("extra_text_dim needs conditioning='cross_attention'")
        if (self.text_proj == "refiner") != (self.refiner_depth > 0):
            raise ValueError("text_proj='refiner' and refiner_depth > 0 go together")
        if not self.text_conditioned and (self.text_proj == "refiner" or self.pooled_text_dim is not None):
            raise ValueError("text_proj='refiner' and pooled_text_dim need text conditioning")
        if self.single_blocks and self.mlp_act != "gelu_tanh":
            raise ValueError("single-stream blocks fuse a GELU MLP: mlp_act must be 'gelu_tanh'")
        if self.rope != "none" and self.head_dim % 2:
            raise ValueError(f"rope needs an even head width, got {self.head_dim}")
        if (self.rope == "temporal") != (self.rope != "none" and self.attention_layout == "factorized"):
            raise ValueError("rope='temporal' goes with attention_layout='factorized' (a full layout takes 'video' or "
                             "'all')")
        if self.rope == "all" and self.conditioning not in ("joint", "dual_stream"):
            raise ValueError("rope='all' rotates the text tokens of a joint sequence: it needs conditioning 'joint' or "
                             "'dual_stream' (otherwise use 'video')")
        if self.rope_form == "rotary_embedding_torch" and self.rope != "temporal":
            raise ValueError("rope_form='rotary_embedding_torch' is STDiT3's 1D rotation: it needs rope='temporal'")
        if self.frame_mask and (self.modulation != "shared" or self.conditioning != "cross_attention"):
            raise ValueError("frame_mask is STDiT3's masked modulation: it needs modulation='shared' and "
                             "conditioning='cross_attention'")
        if self.qk_norm_fp32 and self.qk_norm not in ("across_heads", "per_head"):
            raise ValueError("qk_norm_fp32 is an RMSNorm form: it needs qk_norm 'across_heads' or 'per_head'")
        if self.short_attention_math and (self.sparse_ratio > 1 or self.conditioning not in ("class",
                                                                                             "cross_attention")):
            raise ValueError("short_attention_math is STDiT3's attention: it needs class or cross_attention "
                             "conditioning and no Skiparse (sparse_ratio 1)")
        if self.conditioning in ("joint", "dual_stream", "asymmetric") and self.attention_layout == "factorized":
            raise ValueError(
                f"conditioning={self.conditioning!r} attends text and video tokens together and needs "
                "attention_layout='full'"
            )
        return self

    # --- derived ----------------------------------------------------------------------------
    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_heads

    @property
    def mlp_hidden(self) -> int:
        """MLP hidden width: ``mlp_hidden_size`` if given, else int(hidden_size x mlp_ratio) as in DiT."""
        return self.mlp_hidden_size if self.mlp_hidden_size is not None else int(self.hidden_size * self.mlp_ratio)

    @property
    def cond(self) -> int:
        """Width of the conditioning (timestep) embedding."""
        return self.cond_dim if self.cond_dim is not None else self.hidden_size

    @property
    def sparse_range(self) -> range:
        """Blocks with Skiparse sparse attention (empty when dense)."""
        if self.sparse_ratio == 1:
            return range(0)
        return range(*self.sparse_blocks) if self.sparse_blocks is not None else range(self.depth)

    def block_schedule(self) -> tuple[tuple[str, range], ...]:
        """Which block type runs at which depth: runs of (mode, block indices), in order of their first block,
        covering 0 .. num_blocks - 1 once. Modes: ``full``, ``spatial`` and ``temporal`` (factorised: even blocks
        within a frame, odd ones across frames), ``sparse`` (Skiparse), ``dual`` and ``single`` (MMDiT),
        ``asymmetric`` and ``asymmetric_last`` (Mochi: the last block does not update the text). The one place
        the schedule is worked out: the reference model, the ledger and the memory model all read it."""
        d = self.depth
        if self.conditioning == "dual_stream":
            runs = [("dual", range(d)), ("single", range(d, d + self.single_blocks))]
        elif self.conditioning == "asymmetric":
            runs = [("asymmetric", range(d - 1)), ("asymmetric_last", range(d - 1, d))]
        elif self.attention_layout == "factorized":
            runs = [("spatial", range(0, d, 2)), ("temporal", range(1, d, 2))]
        else:
            s = self.sparse_range
            runs = [("full", range(0, s.start)), ("sparse", s), ("full", range(s.stop, d))] if len(s) else [
                ("full", range(d))]
        return tuple((mode, r) for mode, r in runs if len(r))

    def block_modes(self) -> tuple[str, ...]:
        """The mode of each block, by index (``block_schedule`` unrolled): what the reference model builds."""
        modes = [""] * self.num_blocks
        for mode, blocks in self.block_schedule():
            for i in blocks:
                modes[i] = mode
        return tuple(modes)

    @property
    def final_affine(self) -> bool:
        """Whether the final LayerNorm has weight and bias."""
        return self.norm_affine if self.final_norm_affine is None else self.final_norm_affine

    @property
    def cross_tokens_extra(self) -> int:
        """Tokens the cross-attention sees beyond the main text tokens (a second encoder's, prepended)."""
        return self.extra_text_tokens if self.extra_text_dim is not None else 0

    @property
    def out_channels(self) -> int:
        return self.in_channels * (2 if self.learn_sigma else 1)

    @property
    def patch_volume(self) -> int:
        return math.prod(self.patch_size)

    @property
    def text_conditioned(self) -> bool:
        return self.conditioning != "class"

    @property
    def num_blocks(self) -> int:
        """Transformer blocks of all kinds (dual- plus single-stream for MMDiT)."""
        return self.depth + self.single_blocks

    @property
    def modulation_chunks(self) -> int:
        """adaLN outputs per block: 6 (shift, scale, gate x attn, MLP), 12 with joint text, 4 asymmetric (no shift)."""
        return {"joint": 12, "asymmetric": 4}.get(self.conditioning, 6)

    @property
    def text_width(self) -> int:
        """Width of the text tokens in the blocks: ``text_hidden_size`` (asymmetric) or ``hidden_size``."""
        return self.text_hidden_size or self.hidden_size

    @property
    def text_mlp_hidden(self) -> int:
        """MLP width of the asymmetric text stream."""
        return self.text_mlp_hidden_size or int(self.text_width * self.mlp_ratio)
