"""The DiT's configuration: the numbers a video DiT is built from (sora_compute's DiTSpec fills it)."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["DiTConfig"]


@dataclass(frozen=True)
class DiTConfig:
    depth: int = 28
    hidden_size: int = 1152
    num_heads: int = 16
    mlp_ratio: float = 4.0
    patch_size: tuple[int, int, int] = (1, 2, 2)
    in_channels: int = 4
    learn_sigma: bool = True
    conditioning: str = "class"  # "class" | "cross_attention" | "joint"
    attention_layout: str = "full"  # "full" | "factorized"
    num_classes: int = 1000
    class_dropout_prob: float = 0.1
    text_dim: int = 4096
    frequency_embedding_size: int = 256
    modulation: str = "per_block"  # "per_block" (adaLN-Zero) | "shared" (adaLN-single)
    qk_norm: str = "none"  # "none" | "across_heads" | "per_head"
    cross_attn_norm: bool = False
    mlp_hidden_size: int | None = None
    cond_dim: int | None = None  # timestep-embedding width (CogVideoX: 512); default hidden_size
    norm_affine: bool = False  # LayerNorms with weight and bias (CogVideoX)
    text_proj: str = "mlp"  # "mlp" (PixArt) | "linear" (CogVideoX)
    final_prenorm: bool = False  # LayerNorm over all tokens before the final adaLN (CogVideoX)
    single_blocks: int = 0  # single-stream blocks after the dual-stream ones (conditioning "dual_stream")
    refiner_depth: int = 0  # token-refiner blocks (text_proj "refiner", HunyuanVideo)
    pooled_text_dim: int | None = None  # pooled text vector (CLIP) -> MLP added to the timestep embedding
    guidance_embed: bool = False  # guidance scale embedded like the timestep (guidance-distilled models)
    mlp_act: str = "gelu_tanh"  # "gelu_tanh" | "swiglu"
    mlp_bias: bool = True
    qkv_bias: bool = True
    out_bias: bool = True  # bias of the attention output projections
    text_hidden_size: int | None = None  # text-stream width of asymmetric blocks (Mochi: 1536)
    text_mlp_hidden_size: int | None = None  # text-stream MLP width of asymmetric blocks
    text_pool_heads: int = 8  # heads of the attention pooling of the text (asymmetric, Mochi)
    cross_qk_norm: bool = True  # q/k norms in cross-attention too (STDiT3: self-attention only)
    fps_embed: bool = False  # frame rate embedded like the timestep (STDiT3)
    cond_channels: int | None = None  # per-token conditioning latents -> Linear added to the tokens (Open-Sora 2.0)
    extra_text_dim: int | None = None  # second encoder's tokens -> Linear, prepended to cross-attn keys (Step-Video)
    extra_text_tokens: int = 0
    text_norm: bool = False  # parameter-free LayerNorm on the text before its projection (Step-Video)
    final_norm_affine: bool | None = None  # default: norm_affine
    sparse_ratio: int = 1  # Skiparse sparse self-attention (Open-Sora-Plan v1.3)
    sparse_blocks: tuple[int, int] | None = None  # [start, stop) blocks that use it (default all)
    rope: str = "none"  # rotary q/k: "none" | "video" (3D, video tokens) | "all" (joint sequence) | "temporal" (1D)
    rope_form: str = "diffusers"  # "diffusers" (apply_rotary_emb, fp32) | "rotary_embedding_torch" (STDiT3)
    frame_mask: bool = False  # STDiT3 given x_mask: modulate and gate twice (t and t0), select per frame
    qk_norm_fp32: bool = False  # q/k RMSNorm as LlamaRMSNorm (fp32 composite, STDiT3)
    short_attention_math: bool = False  # STDiT3 Attention: flash only when N > B, else math with fp32 softmax
    # The mode of each block (full | spatial | temporal | sparse | dual | single | asymmetric | asymmetric_last):
    # sora_compute's DiTSpec.block_modes() works the schedule out; the model builds what it is given.
    block_modes: tuple[str, ...] = ()

    @property
    def cond(self) -> int:
        return self.cond_dim if self.cond_dim is not None else self.hidden_size

    @property
    def mlp_hidden(self) -> int:
        return self.mlp_hidden_size if self.mlp_hidden_size is not None else int(self.hidden_size * self.mlp_ratio)
