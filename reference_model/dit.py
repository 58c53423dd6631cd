"""A video Diffusion Transformer, readable against the papers.

With one frame, patch (1, p, p) and class conditioning this is exactly the image DiT of
Peebles & Xie 2022 ("Scalable Diffusion Models with Transformers", facebookresearch/DiT):
same modules, same parameter counts (less the frozen sin-cos table, computed on the fly here).
Extensions for video, each as in the model named:

- 3D patch embedding: Conv3d with kernel = stride = (pt, ph, pw)            (Latte, Open-Sora)
- factorised attention: even blocks spatial, odd blocks temporal              (Latte, STDiT3)
- text cross-attention after self-attention, no norm                          (PixArt-alpha)
- joint text+video attention with expert adaLN for the text tokens            (CogVideoX)
- shared adaLN ("adaLN-single"): one projection + a per-block table           (PixArt-alpha, Wan2.1)
- RMSNorm on queries and keys (across heads or per head), LayerNorm before
  cross-attention, explicit MLP width                                           (Wan2.1, STDiT3)
- a narrower timestep embedding driving adaLN, affine norms, per-head q/k
  LayerNorm, a linear text projection, a pre-norm over all tokens               (CogVideoX)
- MMDiT: dual-stream blocks (text and video weights apart, one attention),
  then single-stream blocks (parallel attention and MLP)                        (SD3, FLUX, HunyuanVideo)
- a token refiner on the text, a pooled-text vector and an embedded guidance
  scale added to the timestep embedding                                         (HunyuanVideo, FLUX)
- SwiGLU MLPs and bias-free projections                                         (Mochi, Llama-style blocks)
- Skiparse sparse self-attention: k interleaved sequences                       (Open-Sora-Plan v1.3)
- asymmetric joint blocks: a narrower text stream, scale-and-tanh-gate
  modulation with parameter-free RMSNorms, text pooled by attention             (Mochi 1 AsymmDiT)

Shapes: video latents x are (B, C, T, H, W); tokens are (B, N, D) with N = T/pt * H/ph * W/pw.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint


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
    # The mode of each block (full | spatial | temporal | sparse | dual | single | asymmetric | asymmetric_last):
    # sora_compute's DiTSpec.block_modes() works the schedule out; the model builds what it is given.
    block_modes: tuple[str, ...] = ()

    @property
    def cond(self) -> int:
        return self.cond_dim if self.cond_dim is not None else self.hidden_size

    @property
    def mlp_hidden(self) -> int:
        return self.mlp_hidden_size if self.mlp_hidden_size is not None else int(self.hidden_size * self.mlp_ratio)


def modulate(x: torch.Tensor, shift: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """adaLN: x * (1 + scale) + shift, with per-sample shift/scale broadcast over tokens."""
    return x * (1 + scale.unsqueeze(1)) + shift.unsqueeze(1)


def sincos_1d(positions: torch.Tensor, dim: int) -> torch.Tensor:
    """Fixed sin-cos features of ``positions`` (N,), width ``dim`` (even): (N, dim)."""
    omega = 1.0 / 10000 ** (torch.arange(dim // 2, dtype=torch.float32, device=positions.device) / (dim / 2))
    angles = positions.float()[:, None] * omega[None]
    return torch.cat([torch.sin(angles), torch.cos(angles)], dim=1)


def sincos_3d(t: int, h: int, w: int, dim: int, device: torch.device) -> torch.Tensor:
    """Fixed 3D sin-cos position embedding (t*h*w, dim): a quarter of the width for time, the rest
    split between height and width as in DiT's 2D table. Not a parameter."""
    dim_t = dim // 4 // 2 * 2
    dim_h = (dim - dim_t) // 2 // 2 * 2
    dim_w = dim - dim_t - dim_h
    grid_t, grid_h, grid_w = torch.meshgrid(
        torch.arange(t, device=device), torch.arange(h, device=device), torch.arange(w, device=device), indexing="ij"
    )
    parts = [
        sincos_1d(grid_w.flatten(), dim_w - dim_w % 2),
        sincos_1d(grid_h.flatten(), dim_h),
        sincos_1d(grid_t.flatten(), dim_t),
    ]
    emb = torch.cat(parts, dim=1)
    return F.pad(emb, (0, dim - emb.shape[1]))


def attention_core(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, impl: str = "sdpa") -> torch.Tensor:
    """softmax(q k^T / sqrt(d)) v. "sdpa": fused kernel (flash-style, scores never stored);
    "math": scores materialised as a (..., Lq, Lk) tensor, as without a fused kernel."""
    if impl == "math":
        return (q @ k.transpose(-2, -1) * q.shape[-1] ** -0.5).softmax(dim=-1) @ v
    return F.scaled_dot_product_attention(q, k, v)


class AttentionCore(nn.Module):
    """The attention core, with the memory knobs of training: kernel choice and selective recomputation
    (recompute the core in backward instead of keeping what it saves; Korthikanti et al. 2022)."""

    def __init__(self) -> None:
        super().__init__()
        self.impl, self.recompute = "sdpa", False

    def forward(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        if self.recompute and torch.is_grad_enabled():
            return checkpoint(attention_core, q, k, v, self.impl, use_reentrant=True)
        return attention_core(q, k, v, self.impl)


class TimestepEmbedder(nn.Module):
    """Diffusion timestep -> sinusoidal features (256) -> MLP -> hidden size."""

    def __init__(self, hidden_size: int, frequency_embedding_size: int = 256):
        super().__init__()
        self.frequency_embedding_size = frequency_embedding_size
        self.mlp = nn.Sequential(
            nn.Linear(frequency_embedding_size, hidden_size), nn.SiLU(), nn.Linear(hidden_size, hidden_size)
        )

    @staticmethod
    def timestep_embedding(t: torch.Tensor, dim: int, max_period: float = 10000.0) -> torch.Tensor:
        half = dim // 2
        freqs = torch.exp(-math.log(max_period) * torch.arange(half, dtype=torch.float32, device=t.device) / half)
        args = t[:, None].float() * freqs[None]
        return torch.cat([torch.cos(args), torch.sin(args)], dim=-1)

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        return self.mlp(self.timestep_embedding(t, self.frequency_embedding_size))


class LabelEmbedder(nn.Module):
    """Class label -> embedding; one extra row is the null label for classifier-free guidance."""

    def __init__(self, num_classes: int, hidden_size: int, dropout_prob: float):
        super().__init__()
        self.embedding_table = nn.Embedding(num_classes + int(dropout_prob > 0), hidden_size)

    def forward(self, labels: torch.Tensor) -> torch.Tensor:
        return self.embedding_table(labels)


class CaptionProjection(nn.Module):
    """Text-encoder features (text_dim) -> hidden size: Linear, GELU(tanh), Linear (PixArt-alpha); with SiLU, the
    pooled-vector MLP of FLUX / HunyuanVideo."""

    def __init__(self, text_dim: int, hidden_size: int, act: str = "gelu_tanh"):
        super().__init__()
        self.fc1 = nn.Linear(text_dim, hidden_size)
        self.act: nn.Module = nn.SiLU() if act == "silu" else nn.GELU(approximate="tanh")
        self.fc2 = nn.Linear(hidden_size, hidden_size)

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(y)))


class PatchEmbed3D(nn.Module):
    """(B, C, T, H, W) -> (B, N, D) by a Conv3d with kernel = stride = patch."""

    def __init__(self, patch_size: tuple[int, int, int], in_channels: int, hidden_size: int):
        super().__init__()
        self.proj = nn.Conv3d(in_channels, hidden_size, kernel_size=patch_size, stride=patch_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x).flatten(2).transpose(1, 2)


class QKNorm(nn.Module):
    """RMSNorm of queries or keys (B, L, h, dh): over the whole width ("across_heads", Wan2.1) or within
    each head ("per_head", STDiT3 / HunyuanVideo)."""

    def __init__(self, dim: int, num_heads: int, mode: str):
        super().__init__()
        self.mode = mode
        width = dim if mode == "across_heads" else dim // num_heads
        self.norm: nn.Module = (nn.LayerNorm(width, eps=1e-6) if mode == "per_head_layernorm"
                                else nn.RMSNorm(width, eps=1e-6))

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        if self.mode == "across_heads":
            B, L, h, dh = t.shape
            return self.norm(t.reshape(B, L, h * dh)).reshape(B, L, h, dh)
        return self.norm(t)


class Attention(nn.Module):
    """Multi-head self-attention: fused qkv projection, optional q/k RMSNorm, SDPA, output projection."""

    def __init__(self, dim: int, num_heads: int, qk_norm: str = "none", bias: bool = True, out_bias: bool = True):
        super().__init__()
        self.num_heads = num_heads
        self.qkv = nn.Linear(dim, 3 * dim, bias=bias)
        self.norm_q = QKNorm(dim, num_heads, qk_norm) if qk_norm != "none" else None
        self.norm_k = QKNorm(dim, num_heads, qk_norm) if qk_norm != "none" else None
        self.core = AttentionCore()
        self.proj = nn.Linear(dim, dim, bias=out_bias)
        self.sparse = 1  # Skiparse ratio k, set per block

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, N, D = x.shape
        qkv = self.qkv(x).reshape(B, N, 3, self.num_heads, D // self.num_heads)
        if self.norm_q is not None and self.norm_k is not None:
            q, k, v = (t.transpose(1, 2) for t in (self.norm_q(qkv[:, :, 0]), self.norm_k(qkv[:, :, 1]),
                                                     qkv[:, :, 2]))
        else:
            q, k, v = qkv.permute(2, 0, 3, 1, 4)
        out = skiparse_attention(self.core, q, k, v, self.sparse) if self.sparse > 1 else self.core(q, k, v)
        return self.proj(out.transpose(1, 2).reshape(B, N, D))


def skiparse_attention(core: nn.Module, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, ratio: int
                       ) -> torch.Tensor:
    """Skiparse (Open-Sora-Plan v1.3, single-skip form): pad the N tokens to a multiple of k, split them into k
    interleaved sequences (token i goes to sequence i mod k) that attend within themselves, and put them back.
    (B, h, N, dh) in and out; the core sees (B k, h, ceil(N / k), dh)."""
    B, h, N, dh = q.shape
    pad = -N % ratio
    n = (N + pad) // ratio

    def split(t: torch.Tensor) -> torch.Tensor:
        return F.pad(t, (0, 0, 0, pad)).reshape(B, h, n, ratio, dh).permute(0, 3, 1, 2, 4).reshape(B * ratio, h, n, dh)

    out = core(split(q), split(k), split(v))
    return out.reshape(B, ratio, h, n, dh).permute(0, 2, 3, 1, 4).reshape(B, h, n * ratio, dh)[:, :, :N]


class CrossAttention(nn.Module):
    """Video tokens (queries) attend to text tokens (keys/values), as in PixArt-alpha (q/k RMSNorm as Wan2.1)."""

    def __init__(self, dim: int, num_heads: int, qk_norm: str = "none", bias: bool = True, out_bias: bool = True):
        super().__init__()
        self.num_heads = num_heads
        self.q = nn.Linear(dim, dim, bias=bias)
        self.kv = nn.Linear(dim, 2 * dim, bias=bias)
        self.norm_q = QKNorm(dim, num_heads, qk_norm) if qk_norm != "none" else None
        self.norm_k = QKNorm(dim, num_heads, qk_norm) if qk_norm != "none" else None
        self.core = AttentionCore()
        self.proj = nn.Linear(dim, dim, bias=out_bias)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        B, N, D = x.shape
        L, h = y.shape[1], self.num_heads
        q, kv = self.q(x).reshape(B, N, h, D // h), self.kv(y).reshape(B, L, 2, h, D // h)
        if self.norm_q is not None and self.norm_k is not None:
            q, k, v = (t.transpose(1, 2) for t in (self.norm_q(q), self.norm_k(kv[:, :, 0]), kv[:, :, 1]))
        else:
            q = q.transpose(1, 2)
            k, v = kv.permute(2, 0, 3, 1, 4)
        out = self.core(q, k, v)
        return self.proj(out.transpose(1, 2).reshape(B, N, D))


class Mlp(nn.Module):
    """Linear -> GELU(tanh) (or SiLU) -> Linear."""

    def __init__(self, dim: int, hidden: int, bias: bool = True, act: str = "gelu_tanh"):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden, bias=bias)
        self.act: nn.Module = nn.SiLU() if act == "silu" else nn.GELU(approximate="tanh")
        self.fc2 = nn.Linear(hidden, dim, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


class SwiGLU(nn.Module):
    """w2(silu(w1 x) * w3 x): the gated MLP of Llama-style blocks (Shazeer 2020; Mochi, Movie Gen)."""

    def __init__(self, dim: int, hidden: int, bias: bool = False):
        super().__init__()
        self.w1 = nn.Linear(dim, hidden, bias=bias)
        self.w3 = nn.Linear(dim, hidden, bias=bias)
        self.w2 = nn.Linear(hidden, dim, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.w2(F.silu(self.w1(x)) * self.w3(x))


def make_mlp(cfg: DiTConfig) -> nn.Module:
    """The block MLP the config asks for."""
    if cfg.mlp_act == "swiglu":
        return SwiGLU(cfg.hidden_size, cfg.mlp_hidden, cfg.mlp_bias)
    return Mlp(cfg.hidden_size, cfg.mlp_hidden, cfg.mlp_bias)


class DiTBlock(nn.Module):
    """adaLN-Zero block. ``grid`` = (T, H, W) in tokens says how to group tokens for attention:
    ``mode`` "full" attends all N tokens, "spatial" within each frame, "temporal" across frames."""

    def __init__(self, cfg: DiTConfig, mode: str = "full"):
        super().__init__()
        d = cfg.hidden_size
        self.mode = mode
        self.joint = cfg.conditioning == "joint"
        self.norm1 = nn.LayerNorm(d, elementwise_affine=cfg.norm_affine, eps=1e-6)
        self.attn = Attention(d, cfg.num_heads, cfg.qk_norm, cfg.qkv_bias, cfg.out_bias)
        cross = cfg.conditioning == "cross_attention"
        self.norm3 = nn.LayerNorm(d, eps=1e-6) if cross and cfg.cross_attn_norm else None
        self.cross_attn = CrossAttention(d, cfg.num_heads, cfg.qk_norm if cfg.cross_qk_norm else "none", cfg.qkv_bias,
                                         cfg.out_bias) if cross else None
        self.norm2 = nn.LayerNorm(d, elementwise_affine=cfg.norm_affine, eps=1e-6)
        self.mlp = make_mlp(cfg)
        self.chunks = 12 if self.joint else 6
        if cfg.modulation == "shared":  # adaLN-single: the block adds its table to the shared projection
            self.scale_shift_table = nn.Parameter(torch.randn(self.chunks, d) / d**0.5)
            self.adaLN_modulation: nn.Module | None = None
        else:
            self.adaLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(cfg.cond, self.chunks * d))

    def _self_attention(self, x: torch.Tensor, grid: tuple[int, int, int]) -> torch.Tensor:
        B, N, D = x.shape
        T, H, W = grid
        if self.mode == "spatial":  # (B*T, H*W, D)
            return self.attn(x.reshape(B * T, H * W, D)).reshape(B, N, D)
        if self.mode == "temporal":  # (B*H*W, T, D)
            xt = x.reshape(B, T, H * W, D).transpose(1, 2).reshape(B * H * W, T, D)
            return self.attn(xt).reshape(B, H * W, T, D).transpose(1, 2).reshape(B, N, D)
        return self.attn(x)

    def forward(
        self, x: torch.Tensor, c: torch.Tensor, grid: tuple[int, int, int], y: torch.Tensor | None = None
    ) -> torch.Tensor:
        if self.adaLN_modulation is None:  # c is the shared projection (B, chunks * d)
            mods = (c.reshape(c.shape[0], self.chunks, -1) + self.scale_shift_table).unbind(1)
        else:
            mods = self.adaLN_modulation(c).chunk(self.chunks, dim=1)
        shift_msa, scale_msa, gate_msa, shift_mlp, scale_mlp, gate_mlp = mods[:6]
        if self.joint:  # text tokens y ride along in the same attention and MLP (CogVideoX)
            assert y is not None
            t_shift_msa, t_scale_msa, t_gate_msa, t_shift_mlp, t_scale_mlp, t_gate_mlp = mods[6:]
            L = y.shape[1]
            h = torch.cat([modulate(self.norm1(y), t_shift_msa, t_scale_msa),
                           modulate(self.norm1(x), shift_msa, scale_msa)], dim=1)
            h = self.attn(h)
            y = y + t_gate_msa.unsqueeze(1) * h[:, :L]
            x = x + gate_msa.unsqueeze(1) * h[:, L:]
            h = torch.cat([modulate(self.norm2(y), t_shift_mlp, t_scale_mlp),
                           modulate(self.norm2(x), shift_mlp, scale_mlp)], dim=1)
            h = self.mlp(h)
            y = y + t_gate_mlp.unsqueeze(1) * h[:, :L]
            x = x + gate_mlp.unsqueeze(1) * h[:, L:]
            return torch.cat([y, x], dim=1)
        x = x + gate_msa.unsqueeze(1) * self._self_attention(modulate(self.norm1(x), shift_msa, scale_msa), grid)
        if self.cross_attn is not None:
            assert y is not None
            x = x + self.cross_attn(self.norm3(x) if self.norm3 is not None else x, y)
        x = x + gate_mlp.unsqueeze(1) * self.mlp(modulate(self.norm2(x), shift_mlp, scale_mlp))
        return x


class DualStreamBlock(nn.Module):
    """MMDiT block: video and text keep their own norms, modulation, projections and MLP; one attention runs
    over [video; text]. Takes (x, c, grid, y), returns [text; video] like the joint block."""

    mode = "dual"
    img_mod: nn.Module
    txt_mod: nn.Module
    img_norm1: nn.Module
    txt_norm1: nn.Module
    img_attn_proj: nn.Module
    txt_attn_proj: nn.Module
    img_norm2: nn.Module
    txt_norm2: nn.Module
    img_mlp: nn.Module
    txt_mlp: nn.Module

    def __init__(self, cfg: DiTConfig):
        super().__init__()
        d, self.num_heads = cfg.hidden_size, cfg.num_heads
        self.core = AttentionCore()
        for s in ("img", "txt"):  # flat per-stream modules, named as in HunyuanVideo
            setattr(self, f"{s}_mod", nn.Sequential(nn.SiLU(), nn.Linear(cfg.cond, 6 * d)))
            setattr(self, f"{s}_norm1", nn.LayerNorm(d, elementwise_affine=cfg.norm_affine, eps=1e-6))
            setattr(self, f"{s}_attn_qkv", nn.Linear(d, 3 * d, bias=cfg.qkv_bias))
            if cfg.qk_norm != "none":
                setattr(self, f"{s}_attn_norm_q", QKNorm(d, cfg.num_heads, cfg.qk_norm))
                setattr(self, f"{s}_attn_norm_k", QKNorm(d, cfg.num_heads, cfg.qk_norm))
            setattr(self, f"{s}_attn_proj", nn.Linear(d, d, bias=cfg.out_bias))
            setattr(self, f"{s}_norm2", nn.LayerNorm(d, elementwise_affine=cfg.norm_affine, eps=1e-6))
            setattr(self, f"{s}_mlp", make_mlp(cfg))

    def _heads(self, stream: str, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(B, L, D) -> q, k, v of shape (B, h, L, D/h) with this stream's projection and q/k norms."""
        B, L, D = x.shape
        module = self.get_submodule  # the per-stream modules, by name
        qkv = module(f"{stream}_attn_qkv")(x).reshape(B, L, 3, self.num_heads, D // self.num_heads)
        q, k, v = qkv[:, :, 0], qkv[:, :, 1], qkv[:, :, 2]
        if hasattr(self, f"{stream}_attn_norm_q"):
            q, k = module(f"{stream}_attn_norm_q")(q), module(f"{stream}_attn_norm_k")(k)
        return q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)

    def forward(self, x: torch.Tensor, c: torch.Tensor, grid: tuple[int, int, int], y: torch.Tensor | None = None
                ) -> torch.Tensor:
        assert y is not None
        B, N, D = x.shape
        im = self.img_mod(c).chunk(6, dim=1)
        tm = self.txt_mod(c).chunk(6, dim=1)
        qi, ki, vi = self._heads("img", modulate(self.img_norm1(x), im[0], im[1]))
        qt, kt, vt = self._heads("txt", modulate(self.txt_norm1(y), tm[0], tm[1]))
        out = self.core(torch.cat([qi, qt], dim=2), torch.cat([ki, kt], dim=2), torch.cat([vi, vt], dim=2))
        out = out.transpose(1, 2).reshape(B, -1, D)
        x = x + im[2].unsqueeze(1) * self.img_attn_proj(out[:, :N])
        y = y + tm[2].unsqueeze(1) * self.txt_attn_proj(out[:, N:])
        x = x + im[5].unsqueeze(1) * self.img_mlp(modulate(self.img_norm2(x), im[3], im[4]))
        y = y + tm[5].unsqueeze(1) * self.txt_mlp(modulate(self.txt_norm2(y), tm[3], tm[4]))
        return torch.cat([y, x], dim=1)


class SingleStreamBlock(nn.Module):
    """FLUX / HunyuanVideo single-stream block on [text; video]: one Linear gives qkv and the MLP input, the
    attention output and the activated MLP hidden are projected back together (parallel attention + MLP)."""

    mode = "single"

    def __init__(self, cfg: DiTConfig):
        super().__init__()
        d, m = cfg.hidden_size, cfg.mlp_hidden
        self.num_heads, self.mlp_hidden = cfg.num_heads, m
        self.modulation = nn.Sequential(nn.SiLU(), nn.Linear(cfg.cond, 3 * d))
        self.pre_norm = nn.LayerNorm(d, elementwise_affine=cfg.norm_affine, eps=1e-6)
        self.linear1 = nn.Linear(d, 3 * d + m)
        self.norm_q = QKNorm(d, cfg.num_heads, cfg.qk_norm) if cfg.qk_norm != "none" else None
        self.norm_k = QKNorm(d, cfg.num_heads, cfg.qk_norm) if cfg.qk_norm != "none" else None
        self.core = AttentionCore()
        self.act = nn.GELU(approximate="tanh")
        self.linear2 = nn.Linear(d + m, d)

    def forward(self, x: torch.Tensor, c: torch.Tensor, grid: tuple[int, int, int], y: torch.Tensor | None = None
                ) -> torch.Tensor:
        assert y is not None
        xy = torch.cat([y, x], dim=1)
        B, S, D = xy.shape
        shift, scale, gate = self.modulation(c).chunk(3, dim=1)
        qkv, hidden = torch.split(self.linear1(modulate(self.pre_norm(xy), shift, scale)), [3 * D, self.mlp_hidden],
                                  dim=-1)
        qkv = qkv.reshape(B, S, 3, self.num_heads, D // self.num_heads)
        q, k, v = qkv[:, :, 0], qkv[:, :, 1], qkv[:, :, 2]
        if self.norm_q is not None and self.norm_k is not None:
            q, k = self.norm_q(q), self.norm_k(k)
        attn = self.core(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)).transpose(1, 2).reshape(B, S, D)
        return xy + gate.unsqueeze(1) * self.linear2(torch.cat([attn, self.act(hidden)], dim=-1))


class AsymmetricJointBlock(nn.Module):
    """Mochi's AsymmDiT block. Video (width d) and text (width dy < d) keep their own weights; the text's q, k, v are
    projected up to d ("non-square" projections) and one attention runs over [video; text]. Modulation from the
    conditioning gives a scale for the pre-norm and a tanh gate for the post-norm of the attention and of the
    SwiGLU MLP (no shift); all norms are RMSNorms without weights. The last block does not update the text
    (``update_y=False``: only the scale for its attention input)."""

    x_norm1: nn.Module
    x_norm2: nn.Module
    x_norm3: nn.Module
    x_norm4: nn.Module
    y_norm1: nn.Module
    y_norm2: nn.Module
    y_norm3: nn.Module
    y_norm4: nn.Module

    def __init__(self, cfg: DiTConfig, update_y: bool = True):
        super().__init__()
        d = cfg.hidden_size
        dy = cfg.text_hidden_size or d
        self.num_heads, self.update_y = cfg.num_heads, update_y
        self.mode = "asymmetric" if update_y else "asymmetric_last"
        self.mod_x = nn.Linear(cfg.cond, 4 * d)
        self.mod_y = nn.Linear(cfg.cond, 4 * dy if update_y else dy)
        for s, width in (("x", d), ("y", dy)):
            for i in (1, 2, 3, 4) if (s == "x" or update_y) else (1,):  # pre/post attention, pre/post MLP
                setattr(self, f"{s}_norm{i}", nn.RMSNorm(width, eps=1e-6, elementwise_affine=False))
            setattr(self, f"qkv_{s}", nn.Linear(width, 3 * d, bias=cfg.qkv_bias))
            if cfg.qk_norm != "none":
                setattr(self, f"norm_q_{s}", QKNorm(d, cfg.num_heads, cfg.qk_norm))
                setattr(self, f"norm_k_{s}", QKNorm(d, cfg.num_heads, cfg.qk_norm))
        self.core = AttentionCore()
        self.proj_x = nn.Linear(d, d, bias=cfg.out_bias)
        self.mlp_x = make_mlp(cfg)
        if update_y:
            self.proj_y = nn.Linear(d, dy, bias=cfg.out_bias)
            self.mlp_y = SwiGLU(dy, cfg.text_mlp_hidden_size or int(dy * cfg.mlp_ratio), cfg.mlp_bias) \
                if cfg.mlp_act == "swiglu" else Mlp(dy, cfg.text_mlp_hidden_size or int(dy * cfg.mlp_ratio),
                                                    cfg.mlp_bias)

    def _heads(self, s: str, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        B, L, _ = x.shape
        module = self.get_submodule
        qkv = module(f"qkv_{s}")(x).reshape(B, L, 3, self.num_heads, -1)
        q, k, v = qkv[:, :, 0], qkv[:, :, 1], qkv[:, :, 2]
        if hasattr(self, f"norm_q_{s}"):
            q, k = module(f"norm_q_{s}")(q), module(f"norm_k_{s}")(k)
        return q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)

    def forward(self, x: torch.Tensor, c: torch.Tensor, grid: tuple[int, int, int], y: torch.Tensor | None = None
                ) -> tuple[torch.Tensor, torch.Tensor]:
        assert y is not None
        B, N, D = x.shape
        c = F.silu(c)
        scale_msa_x, gate_msa_x, scale_mlp_x, gate_mlp_x = (m.unsqueeze(1) for m in self.mod_x(c).chunk(4, dim=1))
        mod_y = self.mod_y(c).unsqueeze(1)
        qx, kx, vx = self._heads("x", self.x_norm1(x) * (1 + scale_msa_x))
        qy, ky, vy = self._heads("y", self.y_norm1(y) * (1 + (mod_y.chunk(4, dim=2)[0] if self.update_y else mod_y)))
        out = self.core(torch.cat([qx, qy], dim=2), torch.cat([kx, ky], dim=2), torch.cat([vx, vy], dim=2))
        out = out.transpose(1, 2).reshape(B, -1, D)
        x = x + torch.tanh(gate_msa_x) * self.x_norm2(self.proj_x(out[:, :N]))
        x = x + torch.tanh(gate_mlp_x) * self.x_norm4(self.mlp_x(self.x_norm3(x) * (1 + scale_mlp_x)))
        if self.update_y:
            _, gate_msa_y, scale_mlp_y, gate_mlp_y = mod_y.chunk(4, dim=2)
            y = y + torch.tanh(gate_msa_y) * self.y_norm2(self.proj_y(out[:, N:]))
            y = y + torch.tanh(gate_mlp_y) * self.y_norm4(self.mlp_y(self.y_norm3(y) * (1 + scale_mlp_y)))
        return x, y


class AttentionPool(nn.Module):
    """Mochi's text pooling: the masked mean of the text tokens, prepended as a query token, attends over
    [mean; tokens] with ``num_heads`` heads; the result is projected to the conditioning width."""

    def __init__(self, dim: int, num_heads: int, out_dim: int):
        super().__init__()
        self.num_heads = num_heads
        self.to_kv = nn.Linear(dim, 2 * dim)
        self.to_q = nn.Linear(dim, dim)
        self.core = AttentionCore()
        self.to_out = nn.Linear(dim, out_dim)

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        B, L, D = y.shape
        h = self.num_heads
        y = torch.cat([y.mean(dim=1, keepdim=True), y], dim=1)  # (B, 1 + L, D)
        k, v = self.to_kv(y).reshape(B, L + 1, 2, h, D // h).permute(2, 0, 3, 1, 4)
        q = self.to_q(y[:, 0]).reshape(B, h, 1, D // h)
        return self.to_out(self.core(q, k, v).reshape(B, D))


class RefinerBlock(nn.Module):
    """HunyuanVideo's token-refiner block: bidirectional attention and a SiLU MLP over the text tokens, each
    gated by adaLN from the refiner's conditioning (no shift or scale), with affine LayerNorms."""

    def __init__(self, d: int, num_heads: int):
        super().__init__()
        self.num_heads = num_heads
        self.norm1 = nn.LayerNorm(d, eps=1e-6)
        self.self_attn_qkv = nn.Linear(d, 3 * d)
        self.core = AttentionCore()
        self.self_attn_proj = nn.Linear(d, d)
        self.norm2 = nn.LayerNorm(d, eps=1e-6)
        self.mlp = Mlp(d, 4 * d, act="silu")
        self.adaLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(d, 2 * d))

    def forward(self, y: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        B, L, D = y.shape
        gate_msa, gate_mlp = self.adaLN_modulation(c).chunk(2, dim=1)
        q, k, v = self.self_attn_qkv(self.norm1(y)).reshape(B, L, 3, self.num_heads, D // self.num_heads).permute(
            2, 0, 3, 1, 4)
        attn = self.core(q, k, v).transpose(1, 2).reshape(B, L, D)
        y = y + gate_msa.unsqueeze(1) * self.self_attn_proj(attn)
        return y + gate_mlp.unsqueeze(1) * self.mlp(self.norm2(y))


class TokenRefiner(nn.Module):
    """HunyuanVideo's text input (SingleTokenRefiner): project the text tokens to d, and refine them with blocks
    conditioned on the timestep plus the mean of the text features."""

    def __init__(self, text_dim: int, d: int, num_heads: int, depth: int, frequency_embedding_size: int = 256):
        super().__init__()
        self.input_embedder = nn.Linear(text_dim, d)
        self.t_embedder = TimestepEmbedder(d, frequency_embedding_size)
        self.c_embedder = CaptionProjection(text_dim, d, act="silu")
        self.blocks = nn.ModuleList([RefinerBlock(d, num_heads) for _ in range(depth)])

    def forward(self, y: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        c = self.t_embedder(t).to(y.dtype) + self.c_embedder(y.mean(dim=1))
        y = self.input_embedder(y)
        for block in self.blocks:
            y = block(y, c)
        return y


class FinalLayer(nn.Module):
    """adaLN-modulated LayerNorm, then Linear to patch_volume * out_channels per token."""

    def __init__(self, hidden_size: int, patch_volume: int, out_channels: int, shared: bool = False,
                 cond_dim: int | None = None, affine: bool = False):
        super().__init__()
        self.norm_final = nn.LayerNorm(hidden_size, elementwise_affine=affine, eps=1e-6)
        self.linear = nn.Linear(hidden_size, patch_volume * out_channels)
        if shared:  # adaLN-single: a learned 2 x d table added to the timestep embedding
            self.scale_shift_table = nn.Parameter(torch.randn(2, hidden_size) / hidden_size**0.5)
            self.adaLN_modulation: nn.Module | None = None
        else:
            self.adaLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(cond_dim or hidden_size, 2 * hidden_size))

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        if self.adaLN_modulation is None:
            shift, scale = (c[:, None] + self.scale_shift_table).unbind(1)
        else:
            shift, scale = self.adaLN_modulation(c).chunk(2, dim=1)
        return self.linear(modulate(self.norm_final(x), shift, scale))


class DiT(nn.Module):
    """Video DiT. forward(x (B,C,T,H,W), t (B,), cond) -> (B, out_channels, T, H, W), where cond
    is class labels (B,) or text features (B, L, text_dim)."""

    def __init__(self, cfg: DiTConfig):
        super().__init__()
        self.cfg = cfg
        d = cfg.hidden_size
        self.out_channels = cfg.in_channels * (2 if cfg.learn_sigma else 1)
        self.x_embedder = PatchEmbed3D(cfg.patch_size, cfg.in_channels, d)
        self.t_embedder = TimestepEmbedder(cfg.cond, cfg.frequency_embedding_size)
        if cfg.conditioning == "class":
            self.y_embedder: nn.Module = LabelEmbedder(cfg.num_classes, cfg.cond, cfg.class_dropout_prob)
        elif cfg.conditioning == "asymmetric":  # text tokens to the text-stream width; pooled text into c
            self.y_embedder = nn.Linear(cfg.text_dim, cfg.text_hidden_size or d)
            self.text_pool = AttentionPool(cfg.text_dim, cfg.text_pool_heads, cfg.cond)
            # Mochi's learned RoPE frequencies (3 axes x heads x head_dim / 2); rotations are elementwise, not applied
            self.pos_frequencies = nn.Parameter(torch.zeros(3, cfg.num_heads, d // cfg.num_heads // 2))
        elif cfg.text_proj == "linear":
            self.y_embedder = nn.Linear(cfg.text_dim, d)
        elif cfg.text_proj == "refiner":
            self.y_embedder = TokenRefiner(cfg.text_dim, d, cfg.num_heads, cfg.refiner_depth,
                                           cfg.frequency_embedding_size)
        else:
            self.y_embedder = CaptionProjection(cfg.text_dim, d)
        self.vector_in = (CaptionProjection(cfg.pooled_text_dim, cfg.cond, act="silu")
                          if cfg.pooled_text_dim is not None else None)
        self.guidance_in = TimestepEmbedder(cfg.cond, cfg.frequency_embedding_size) if cfg.guidance_embed else None
        self.fps_embedder = TimestepEmbedder(cfg.cond, cfg.frequency_embedding_size) if cfg.fps_embed else None
        self.cond_in = nn.Linear(cfg.cond_channels, d) if cfg.cond_channels is not None else None
        self.extra_text_proj = nn.Linear(cfg.extra_text_dim, d) if cfg.extra_text_dim is not None else None
        self.text_norm = nn.LayerNorm(cfg.text_dim, elementwise_affine=False, eps=1e-6) if cfg.text_norm else None
        if not cfg.block_modes:
            raise ValueError("DiTConfig.block_modes is empty: give the mode of each block (DiTSpec.block_modes())")
        self.blocks = nn.ModuleList(self._block(cfg, mode) for mode in cfg.block_modes)
        shared = cfg.modulation == "shared"
        chunks = 12 if cfg.conditioning == "joint" else 6
        self.t_block = nn.Sequential(nn.SiLU(), nn.Linear(d, chunks * d)) if shared else None
        self.final_prenorm = nn.LayerNorm(d, eps=1e-6) if cfg.final_prenorm else None
        self.final_layer = FinalLayer(d, math.prod(cfg.patch_size), self.out_channels, shared, cfg.cond,
                                      cfg.norm_affine if cfg.final_norm_affine is None else cfg.final_norm_affine)
        self.checkpointing = "none"

    @staticmethod
    def _block(cfg: DiTConfig, mode: str) -> nn.Module:
        """One block of the given mode."""
        if mode == "dual":
            return DualStreamBlock(cfg)
        if mode == "single":
            return SingleStreamBlock(cfg)
        if mode in ("asymmetric", "asymmetric_last"):
            return AsymmetricJointBlock(cfg, update_y=mode == "asymmetric")
        block = DiTBlock(cfg, mode)
        if mode == "sparse":
            block.attn.sparse = cfg.sparse_ratio
        return block

    def configure_memory(self, checkpointing: str = "none", attention: str = "sdpa") -> DiT:
        """Training-memory knobs: activation checkpointing "none" | "selective" (attention cores) | "full"
        (whole blocks), and the attention kernel "sdpa" (fused) | "math" (materialised scores)."""
        if checkpointing not in ("none", "selective", "full") or attention not in ("sdpa", "math"):
            raise ValueError(f"unknown memory mode {checkpointing!r}, {attention!r}")
        self.checkpointing = checkpointing
        for core in self.modules():
            if isinstance(core, AttentionCore):
                core.impl, core.recompute = attention, checkpointing == "selective"
        return self

    def unpatchify(self, x: torch.Tensor, grid: tuple[int, int, int]) -> torch.Tensor:
        """(B, N, pt*ph*pw*C) -> (B, C, T*pt, H*ph, W*pw)."""
        (T, H, W), (pt, ph, pw), C = grid, self.cfg.patch_size, self.out_channels
        x = x.reshape(x.shape[0], T, H, W, pt, ph, pw, C)
        x = x.permute(0, 7, 1, 4, 2, 5, 3, 6)  # (B, C, T, pt, H, ph, W, pw)
        return x.reshape(x.shape[0], C, T * pt, H * ph, W * pw)

    def forward(self, x: torch.Tensor, t: torch.Tensor, cond: torch.Tensor, pooled: torch.Tensor | None = None,
                guidance: torch.Tensor | None = None, fps: torch.Tensor | None = None,
                cond_latents: torch.Tensor | None = None, extra_text: torch.Tensor | None = None) -> torch.Tensor:
        """Optional inputs, when the config uses them: ``pooled`` (B, pooled_text_dim), ``guidance`` and ``fps``
        (B,), ``cond_latents`` (B, tokens, cond_channels), ``extra_text`` (B, extra_text_tokens, extra_text_dim)."""
        pt, ph, pw = self.cfg.patch_size
        grid = (x.shape[2] // pt, x.shape[3] // ph, x.shape[4] // pw)
        x = self.x_embedder(x)
        if self.cond_in is not None:
            assert cond_latents is not None, "this DiT takes per-token conditioning latents"
            x = x + self.cond_in(cond_latents)
        x = x + sincos_3d(*grid, self.cfg.hidden_size, x.device).to(x.dtype)
        c = self.t_embedder(t).to(x.dtype)
        y = None
        if self.cfg.conditioning != "class" and self.text_norm is not None:
            cond = self.text_norm(cond)
        if self.cfg.conditioning == "class":
            c = c + self.y_embedder(cond)
        elif self.cfg.text_proj == "refiner":
            y = self.y_embedder(cond, t)
        elif self.cfg.conditioning == "asymmetric":
            c = c + self.text_pool(cond)
            y = self.y_embedder(cond)
        else:
            y = self.y_embedder(cond)
        if self.extra_text_proj is not None:  # the second encoder's tokens, prepended
            assert extra_text is not None and y is not None, "this DiT takes a second encoder's tokens"
            y = torch.cat([self.extra_text_proj(extra_text), y], dim=1)
        if self.fps_embedder is not None:
            assert fps is not None, "this DiT takes the frame rate"
            c = c + self.fps_embedder(fps).to(x.dtype)
        if self.vector_in is not None:
            assert pooled is not None, "this DiT takes a pooled text vector"
            c = c + self.vector_in(pooled)
        if self.guidance_in is not None:
            assert guidance is not None, "this DiT takes the guidance scale"
            c = c + self.guidance_in(guidance).to(x.dtype)
        c_blocks = self.t_block(c) if self.t_block is not None else c  # shared adaLN projection, once
        for block in self.blocks:
            if self.checkpointing == "full" and torch.is_grad_enabled():  # keep block inputs, recompute the rest
                out = checkpoint(block, x, c_blocks, grid, y, use_reentrant=True)
            else:
                out = block(x, c_blocks, grid, y)
            if self.cfg.conditioning == "asymmetric":  # blocks return (video, text)
                x, y = out
            elif self.cfg.conditioning in ("joint", "dual_stream"):  # blocks return [text; video]
                y, x = out[:, : cond.shape[1]], out[:, cond.shape[1]:]
            else:
                x = out
        if self.final_prenorm is not None:  # over text and video tokens alike (CogVideoX), then keep the video
            if y is not None and self.cfg.conditioning in ("joint", "dual_stream"):
                x = self.final_prenorm(torch.cat([y, x], dim=1))[:, y.shape[1]:]
            else:
                x = self.final_prenorm(x)
        x = self.final_layer(x, c)
        return self.unpatchify(x, grid)
