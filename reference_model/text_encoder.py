"""A T5 encoder (Raffel et al. 2020; the v1.1 gated-GELU variant used by PixArt, CogVideoX, Wan).

Pre-norm layers with RMSNorm (T5LayerNorm: x / rms(x) * weight), bias-free projections, unscaled attention
logits plus a learned relative-position bias (bucketed, computed in the first layer and shared
by all layers), and a gated-GELU (or ReLU) feed-forward.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass(frozen=True)
class TextEncoderConfig:
    vocab_size: int = 32128
    num_layers: int = 24
    d_model: int = 4096
    num_heads: int = 64
    d_kv: int = 64
    d_ff: int = 10240
    gated_ffn: bool = True
    max_tokens: int = 512
    relative_attention_num_buckets: int = 32
    relative_attention_max_distance: int = 128
    shared_relative_bias: bool = True  # False: every layer has its own bias table (umT5, Chung et al. 2023)


def relative_position_bucket(relative_position: torch.Tensor, num_buckets: int, max_distance: int) -> torch.Tensor:
    """T5's bidirectional buckets: half for each sign; exact below num_buckets/4, log-spaced above."""
    num_buckets //= 2
    buckets = (relative_position > 0).long() * num_buckets
    n = relative_position.abs()
    max_exact = num_buckets // 2
    is_small = n < max_exact
    large = max_exact + (
        torch.log(n.float().clamp(min=1) / max_exact) / math.log(max_distance / max_exact) * (num_buckets - max_exact)
    ).long()
    large = large.clamp(max=num_buckets - 1)
    return buckets + torch.where(is_small, n, large)


class T5Attention(nn.Module):
    def __init__(self, cfg: TextEncoderConfig, has_relative_bias: bool):
        super().__init__()
        inner = cfg.num_heads * cfg.d_kv
        self.cfg = cfg
        self.q = nn.Linear(cfg.d_model, inner, bias=False)
        self.k = nn.Linear(cfg.d_model, inner, bias=False)
        self.v = nn.Linear(cfg.d_model, inner, bias=False)
        self.o = nn.Linear(inner, cfg.d_model, bias=False)
        self.relative_attention_bias = (
            nn.Embedding(cfg.relative_attention_num_buckets, cfg.num_heads) if has_relative_bias else None
        )

    def position_bias(self, length: int, device: torch.device) -> torch.Tensor:
        assert self.relative_attention_bias is not None
        pos = torch.arange(length, device=device)
        rel = pos[None, :] - pos[:, None]
        buckets = relative_position_bucket(
            rel, self.cfg.relative_attention_num_buckets, self.cfg.relative_attention_max_distance
        )
        return self.relative_attention_bias(buckets).permute(2, 0, 1)[None]  # (1, heads, L, L)

    def forward(self, x: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        B, L, _ = x.shape
        h, dk = self.cfg.num_heads, self.cfg.d_kv
        q, k, v = (proj(x).reshape(B, L, h, dk).transpose(1, 2) for proj in (self.q, self.k, self.v))
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=bias.to(q.dtype), scale=1.0)
        return self.o(out.transpose(1, 2).reshape(B, L, h * dk))


class T5FeedForward(nn.Module):
    """Gated: wo(gelu_tanh(wi_0 x) * wi_1 x); plain: wo(relu(wi x))."""

    def __init__(self, cfg: TextEncoderConfig):
        super().__init__()
        self.gated = cfg.gated_ffn
        if self.gated:
            self.wi_0 = nn.Linear(cfg.d_model, cfg.d_ff, bias=False)
            self.wi_1 = nn.Linear(cfg.d_model, cfg.d_ff, bias=False)
        else:
            self.wi = nn.Linear(cfg.d_model, cfg.d_ff, bias=False)
        self.wo = nn.Linear(cfg.d_ff, cfg.d_model, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.gated:
            return self.wo(F.gelu(self.wi_0(x), approximate="tanh") * self.wi_1(x))
        return self.wo(F.relu(self.wi(x)))


class T5Layer(nn.Module):
    def __init__(self, cfg: TextEncoderConfig, has_relative_bias: bool):
        super().__init__()
        self.attn_norm = nn.RMSNorm(cfg.d_model, eps=1e-6)
        self.attn = T5Attention(cfg, has_relative_bias)
        self.ff_norm = nn.RMSNorm(cfg.d_model, eps=1e-6)
        self.ff = T5FeedForward(cfg)

    def forward(self, x: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
        if bias is None:  # unshared (umT5): this layer's own table
            bias = self.attn.position_bias(x.shape[1], x.device)
        x = x + self.attn(self.attn_norm(x), bias)
        return x + self.ff(self.ff_norm(x))


class T5Encoder(nn.Module):
    """token ids (B, L) -> features (B, L, d_model)."""

    def __init__(self, cfg: TextEncoderConfig):
        super().__init__()
        self.cfg = cfg
        self.embed_tokens = nn.Embedding(cfg.vocab_size, cfg.d_model)
        layers = [T5Layer(cfg, has_relative_bias=(i == 0 or not cfg.shared_relative_bias))
                  for i in range(cfg.num_layers)]
        self.position_bias = layers[0].attn.position_bias  # the first layer's bias, shared by all layers (T5)
        self.layers = nn.ModuleList(layers)
        self.final_norm = nn.RMSNorm(cfg.d_model, eps=1e-6)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        x = self.embed_tokens(ids)
        bias = self.position_bias(ids.shape[1], ids.device) if self.cfg.shared_relative_bias else None
        for layer in self.layers:
            x = layer(x, bias)
        return self.final_norm(x)
