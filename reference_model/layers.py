"""The DiT's building blocks: modulation, position tables, attention (full, Skiparse, cross), embedders, MLPs.

Shapes: tokens are (B, N, D); attention heads (B, h, N, D / h).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint

from reference_model.config import DiTConfig


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


def rope_axis_dims(head_dim: int, axes: int) -> tuple[int, ...]:
    """Channels of the head dim per RoPE axis: all of it for 1D; for (t, h, w) a quarter (even) for time and the rest
    split between height and width (CogVideoX's 16/24/24 of 64; HunyuanVideo splits 128 as 16/56/56: the split
    sets the angles, not the cost)."""
    if axes == 1:
        return (head_dim,)
    t = head_dim // 4 // 2 * 2
    h = (head_dim - t) // 2 // 2 * 2
    return t, h, head_dim - t - h


def rope_tables(sizes: tuple[int, ...], head_dim: int, device: torch.device, text: int = 0
                ) -> tuple[torch.Tensor, torch.Tensor]:
    """cos and sin of the rotary angles, ((text +) prod(sizes), head_dim) fp32 each, as diffusers'
    get_3d_rotary_pos_embed / HunyuanVideo's get_nd_rotary_pos_embed(use_real=True) build them: per axis, position x
    theta^(-2i / dim) over that axis's channels, broadcast over the grid, concatenated, each angle repeated for its
    channel pair. ``text`` rows at position 0 (angle 0) come first (FLUX / Open-Sora 2.0 rotate a joint sequence's text
    tokens too). Not parameters: built once per forward."""
    parts = []
    for i, (n, dim) in enumerate(zip(sizes, rope_axis_dims(head_dim, len(sizes)), strict=True)):
        freqs = 1.0 / 10000 ** (torch.arange(0, dim, 2, dtype=torch.float32, device=device) / dim)
        angles = torch.arange(n, dtype=torch.float32, device=device)[:, None] * freqs[None]
        view = [1] * len(sizes)
        view[i] = n
        parts.append(angles.reshape(*view, dim // 2).expand(*sizes, dim // 2))
    angles = torch.cat(parts, dim=-1).reshape(-1, head_dim // 2).repeat_interleave(2, dim=1)
    if text:
        angles = torch.cat([angles.new_zeros(text, head_dim), angles])
    return angles.cos(), angles.sin()


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """x (B, h, S, dh) rotated by the (S, dh) tables, as diffusers' eager apply_rotary_emb(use_real=True,
    use_real_unbind_dim=-1) (models/embeddings.py; CogVideoX, HunyuanVideo, LTX): channel pairs (x0, x1) become
    (x0 cos - x1 sin, x1 cos + x0 sin) via rotate-half by negation and stack, two products and a sum in fp32, and a
    cast back (the casts run only when x is 16-bit)."""
    real, imag = x.reshape(*x.shape[:-1], -1, 2).unbind(-1)
    rotated = torch.stack([-imag, real], dim=-1).flatten(3)
    return (x.float() * cos[None, None] + rotated.float() * sin[None, None]).to(x.dtype)


def rotate_half_pairs(t: torch.Tensor) -> torch.Tensor:
    """rotary-embedding-torch's rotate_half: channel pairs (x1, x2) -> (-x2, x1), by unbind, neg and stack."""
    x1, x2 = t.reshape(*t.shape[:-1], -1, 2).unbind(-1)
    return torch.stack((-x2, x1), dim=-1).reshape(t.shape)


def rotate_queries_or_keys(t: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """t (B, h, S, dh) rotated as lucidrains' rotary-embedding-torch 0.5.3 apply_rotary_emb (STDiT3's
    ``rope=self.rope.rotate_queries_or_keys``, scale 1.0, start index 0): in t's dtype (the module's frequencies are
    a parameter, cast with the model), t cos x scale + rotate_half(t) sin x scale, then the concatenation of the
    (empty) unrotated channels around it. The tables are the model's, built once per forward here."""
    dh = cos.shape[-1]
    t_left, t_mid, t_right = t[..., :0], t[..., :dh], t[..., dh:]
    t_mid = (t_mid * cos * 1.0) + (rotate_half_pairs(t_mid) * sin * 1.0)
    return torch.cat((t_left, t_mid, t_right), dim=-1)


def rotate_qk(q: torch.Tensor, k: torch.Tensor, rope: tuple[torch.Tensor, torch.Tensor] | None, text: int = 0,
              form: str = "diffusers") -> tuple[torch.Tensor, torch.Tensor]:
    """q and k (B, h, S, dh) with RoPE applied (none when ``rope`` is None); the first ``text`` tokens are left as
    they are and put back in front (HunyuanVideo's single-stream blocks: ``torch.cat((img_qq, txt_q))``)."""
    if rope is None:
        return q, k
    if form == "rotary_embedding_torch":
        return rotate_queries_or_keys(q, *rope), rotate_queries_or_keys(k, *rope)
    if text:
        return (torch.cat([q[:, :, :text], apply_rope(q[:, :, text:], *rope)], dim=2),
                torch.cat([k[:, :, :text], apply_rope(k[:, :, text:], *rope)], dim=2))
    return apply_rope(q, *rope), apply_rope(k, *rope)


def rope_for(cfg: DiTConfig, grid: tuple[int, int, int], text: int, device: torch.device
             ) -> tuple[torch.Tensor, torch.Tensor] | None:
    """The model's RoPE tables for a (T, H, W) token grid and ``text`` tokens: (T, dh) for temporal RoPE, (N, dh) for
    3D RoPE on the video tokens, (L + N, dh) on a whole joint sequence; None without RoPE."""
    dh = cfg.hidden_size // cfg.num_heads
    if cfg.rope == "none":
        return None
    if cfg.rope == "temporal":
        return rope_tables(grid[:1], dh, device)
    return rope_tables(grid, dh, device, text if cfg.rope == "all" else 0)


def block_rope(cfg: DiTConfig, grid: tuple[int, int, int], text: int, device: torch.device,
               cos: torch.Tensor | None, sin: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor] | None:
    """The tables a block was given, or (a block run alone) its own from the grid; None without RoPE."""
    if cos is not None and sin is not None:
        return cos, sin
    return rope_for(cfg, grid, text, device)


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


class LlamaRMSNorm(nn.Module):
    """RMSNorm as Open-Sora's blocks.py LlamaRMSNorm (STDiT3's q/k norm): in fp32, step by step, cast back, weighted:
    w * (x.float() * rsqrt(mean(x.float()^2) + eps)).to(x.dtype)."""

    def __init__(self, width: int, eps: float = 1e-6):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(width))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        dtype = x.dtype
        x = x.to(torch.float32)
        variance = x.pow(2).mean(-1, keepdim=True)
        x = x * torch.rsqrt(variance + self.eps)
        return self.weight * x.to(dtype)


class QKNorm(nn.Module):
    """RMSNorm of queries or keys (B, L, h, dh): over the whole width ("across_heads", Wan2.1) or within
    each head ("per_head", STDiT3 / HunyuanVideo); ``fp32``: as LlamaRMSNorm (STDiT3)."""

    def __init__(self, dim: int, num_heads: int, mode: str, fp32: bool = False):
        super().__init__()
        self.mode = mode
        width = dim if mode == "across_heads" else dim // num_heads
        self.norm: nn.Module = (nn.LayerNorm(width, eps=1e-6) if mode == "per_head_layernorm"
                                else LlamaRMSNorm(width) if fp32 else nn.RMSNorm(width, eps=1e-6))

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        if self.mode == "across_heads":
            B, L, h, dh = t.shape
            return self.norm(t.reshape(B, L, h * dh)).reshape(B, L, h, dh)
        return self.norm(t)


class Attention(nn.Module):
    """Multi-head self-attention: fused qkv projection, optional q/k RMSNorm, SDPA, output projection."""

    def __init__(self, dim: int, num_heads: int, qk_norm: str = "none", bias: bool = True, out_bias: bool = True,
                 qk_norm_fp32: bool = False, short_math: bool = False, rope_form: str = "diffusers"):
        super().__init__()
        self.num_heads = num_heads
        self.qkv = nn.Linear(dim, 3 * dim, bias=bias)
        self.norm_q = QKNorm(dim, num_heads, qk_norm, qk_norm_fp32) if qk_norm != "none" else None
        self.norm_k = QKNorm(dim, num_heads, qk_norm, qk_norm_fp32) if qk_norm != "none" else None
        self.core = AttentionCore()
        self.proj = nn.Linear(dim, dim, bias=out_bias)
        self.sparse = 1  # Skiparse ratio k, set per block
        self.short_math = short_math  # STDiT3: the fused kernel only when N > B, else the math path
        self.rope_form = rope_form

    def forward(self, x: torch.Tensor, rope: tuple[torch.Tensor, torch.Tensor] | None = None, text: int = 0
                ) -> torch.Tensor:
        """``rope``: cos and sin tables applied to q and k after their norms, sparing the first ``text`` tokens."""
        B, N, D = x.shape
        qkv = self.qkv(x).reshape(B, N, 3, self.num_heads, D // self.num_heads)
        if self.norm_q is not None and self.norm_k is not None:
            q, k, v = (t.transpose(1, 2) for t in (self.norm_q(qkv[:, :, 0]), self.norm_k(qkv[:, :, 1]),
                                                     qkv[:, :, 2]))
        else:
            q, k, v = qkv.permute(2, 0, 3, 1, 4)
        q, k = rotate_qk(q, k, rope, text, self.rope_form)
        if self.short_math and N <= B:
            out = math_attention(q, k, v)
        else:
            out = skiparse_attention(self.core, q, k, v, self.sparse) if self.sparse > 1 else self.core(q, k, v)
        return self.proj(out.transpose(1, 2).reshape(B, N, D))


def math_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Open-Sora's Attention.forward without flash (blocks.py, taken when N <= B): q scaled, scores materialised,
    cast to fp32 for the softmax and back, times v."""
    dtype = q.dtype
    q = q * q.shape[-1] ** -0.5
    attn = q @ k.transpose(-2, -1)
    attn = attn.to(torch.float32)
    attn = attn.softmax(dim=-1)
    attn = attn.to(dtype)
    return attn @ v


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
