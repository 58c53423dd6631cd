"""Text encoders: T5 (encoder-only), a Llama decoder used as an encoder, and CLIP's text tower.

- ``T5Encoder`` (Raffel et al. 2020; the v1.1 gated-GELU variant used by PixArt, CogVideoX, Wan): pre-norm
  layers with RMSNorm (T5LayerNorm: x / rms(x) * weight), bias-free projections, unscaled attention logits
  plus a learned relative-position bias (bucketed, computed in the first layer and shared by all layers), and
  a gated-GELU (or ReLU) feed-forward.
- ``LlamaEncoder`` (Llama 3; HunyuanVideo's llava-llama-3-8b text model): RMSNorm, bias-free projections,
  grouped-query attention (fewer key/value heads, repeated to the query heads), rotary position embedding (no
  parameters), causal attention, SwiGLU MLP; no LM head. ``hidden_state_skip`` = k returns the hidden state k
  layers before the last (HunyuanVideo: 2, without the final norm) and does not run the layers after it.
- ``CLIPTextEncoder`` (Radford et al. 2021; openai/clip-vit-large-patch14's text tower): learned absolute
  positions, pre-norm layers with biased LayerNorms and projections, causal attention, quick-GELU MLP, a final
  LayerNorm; returns the token states and the pooled vector (the end-of-text token's state, through the
  optional bias-free ``text_projection``).
- ``BertEncoder`` (Devlin et al. 2019; Step-Video's / HunyuanDiT's bilingual "Hunyuan-CLIP" text tower is a
  BertModel): learned absolute and token-type embeddings with an embedding LayerNorm, post-norm layers with
  biased projections and erf-GELU MLP, bidirectional attention, no final norm, optional tanh pooler.

``LlamaEncoder`` also covers Step-Video's Step-LLM: ``fused_projections`` (one qkv and one gate/up matmul),
``rotary=False`` (its ALiBi biases live inside a fused attention kernel: parameter-free, no MACs, nothing
materialized, so the reference leaves them out) and ``final_norm=False``.
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


# ------------------------------------------------------------------------------------------------
# Llama (decoder-only LLM as a text encoder)
# ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LlamaEncoderConfig:
    vocab_size: int = 128256
    num_layers: int = 32
    d_model: int = 4096
    num_heads: int = 32
    num_kv_heads: int = 8
    d_kv: int = 128
    d_ff: int = 14336
    max_tokens: int = 256
    hidden_state_skip: int = 0  # return the hidden state this many layers before the last (no final norm then)
    final_norm: bool = True  # False: no final RMSNorm at all (Step-LLM)
    rotary: bool = True  # False: no rotary embedding (Step-LLM: ALiBi inside its fused attention kernel, left out)
    fused_projections: bool = False  # one qkv_proj and one gate_up_proj matmul (Step-LLM's wqkv and w1)
    rope_theta: float = 500000.0
    norm_eps: float = 1e-5


def rope_cos_sin(length: int, head_dim: int, theta: float, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """cos and sin of the rotary angles, (L, head_dim): position x theta^(-2i / head_dim), each half repeated."""
    inv_freq = 1.0 / theta ** (torch.arange(0, head_dim, 2, device=device, dtype=torch.float32) / head_dim)
    angles = torch.arange(length, device=device, dtype=torch.float32)[:, None] * inv_freq[None, :]
    angles = torch.cat([angles, angles], dim=-1)
    return angles.cos(), angles.sin()


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate pairs (x_i, x_{i + d/2}) by the position's angles (Llama's rotate-half layout)."""
    x1, x2 = x.chunk(2, dim=-1)
    return x * cos + torch.cat([-x2, x1], dim=-1) * sin


def repeat_kv(x: torch.Tensor, groups: int) -> torch.Tensor:
    """(B, kv_heads, L, d) -> (B, kv_heads x groups, L, d): each key/value head serves ``groups`` query heads."""
    if groups == 1:
        return x
    B, kv, L, d = x.shape
    return x[:, :, None].expand(B, kv, groups, L, d).reshape(B, kv * groups, L, d)


class LlamaAttention(nn.Module):
    def __init__(self, cfg: LlamaEncoderConfig):
        super().__init__()
        self.cfg = cfg
        inner, kv = cfg.num_heads * cfg.d_kv, cfg.num_kv_heads * cfg.d_kv
        if cfg.fused_projections:
            self.qkv_proj = nn.Linear(cfg.d_model, inner + 2 * kv, bias=False)
        else:
            self.q_proj = nn.Linear(cfg.d_model, inner, bias=False)
            self.k_proj = nn.Linear(cfg.d_model, kv, bias=False)
            self.v_proj = nn.Linear(cfg.d_model, kv, bias=False)
        self.o_proj = nn.Linear(cfg.num_heads * cfg.d_kv, cfg.d_model, bias=False)

    def forward(self, x: torch.Tensor, cos: torch.Tensor | None, sin: torch.Tensor | None) -> torch.Tensor:
        B, L, _ = x.shape
        h, kv, dk = self.cfg.num_heads, self.cfg.num_kv_heads, self.cfg.d_kv
        if self.cfg.fused_projections:  # views into one matmul's output
            q, k, v = self.qkv_proj(x).split([h * dk, kv * dk, kv * dk], dim=-1)
        else:
            q, k, v = self.q_proj(x), self.k_proj(x), self.v_proj(x)
        q = q.reshape(B, L, h, dk).transpose(1, 2)
        k = k.reshape(B, L, kv, dk).transpose(1, 2)
        v = v.reshape(B, L, kv, dk).transpose(1, 2)
        if cos is not None and sin is not None:
            q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
        k, v = repeat_kv(k, h // kv), repeat_kv(v, h // kv)
        out = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        return self.o_proj(out.transpose(1, 2).reshape(B, L, h * dk))


class LlamaMLP(nn.Module):
    """SwiGLU: down(silu(gate x) * up x); fused: gate and up are the halves of one gate_up_proj output."""

    def __init__(self, cfg: LlamaEncoderConfig):
        super().__init__()
        self.fused = cfg.fused_projections
        if self.fused:
            self.gate_up_proj = nn.Linear(cfg.d_model, 2 * cfg.d_ff, bias=False)
        else:
            self.gate_proj = nn.Linear(cfg.d_model, cfg.d_ff, bias=False)
            self.up_proj = nn.Linear(cfg.d_model, cfg.d_ff, bias=False)
        self.down_proj = nn.Linear(cfg.d_ff, cfg.d_model, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.fused:
            gate, up = self.gate_up_proj(x).chunk(2, dim=-1)
            return self.down_proj(F.silu(gate) * up)
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class LlamaLayer(nn.Module):
    def __init__(self, cfg: LlamaEncoderConfig):
        super().__init__()
        self.input_layernorm = nn.RMSNorm(cfg.d_model, eps=cfg.norm_eps)
        self.self_attn = LlamaAttention(cfg)
        self.post_attention_layernorm = nn.RMSNorm(cfg.d_model, eps=cfg.norm_eps)
        self.mlp = LlamaMLP(cfg)

    def forward(self, x: torch.Tensor, cos: torch.Tensor | None, sin: torch.Tensor | None) -> torch.Tensor:
        x = x + self.self_attn(self.input_layernorm(x), cos, sin)
        return x + self.mlp(self.post_attention_layernorm(x))


class LlamaEncoder(nn.Module):
    """token ids (B, L) -> hidden states (B, L, d_model): the last layer's through the final norm, or with
    ``hidden_state_skip`` = k the raw output of layer num_layers - k (the later layers and the norm are not run).
    ``final_norm=False``: no final norm (Step-LLM); ``rotary=False``: no rotary embedding."""

    def __init__(self, cfg: LlamaEncoderConfig):
        super().__init__()
        self.cfg = cfg
        self.embed_tokens = nn.Embedding(cfg.vocab_size, cfg.d_model)
        self.layers = nn.ModuleList(LlamaLayer(cfg) for _ in range(cfg.num_layers))
        self.norm = nn.RMSNorm(cfg.d_model, eps=cfg.norm_eps) if cfg.final_norm else None

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        x = self.embed_tokens(ids)
        cos: torch.Tensor | None = None
        sin: torch.Tensor | None = None
        if self.cfg.rotary:
            cos, sin = rope_cos_sin(ids.shape[1], self.cfg.d_kv, self.cfg.rope_theta, ids.device)
            cos, sin = cos.to(x.dtype), sin.to(x.dtype)
        for layer in self.layers[: self.cfg.num_layers - self.cfg.hidden_state_skip]:
            x = layer(x, cos, sin)
        return self.norm(x) if self.norm is not None and self.cfg.hidden_state_skip == 0 else x


# ------------------------------------------------------------------------------------------------
# CLIP text tower
# ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CLIPTextEncoderConfig:
    vocab_size: int = 49408
    num_layers: int = 12
    d_model: int = 768
    num_heads: int = 12
    d_kv: int = 64
    d_ff: int = 3072
    max_tokens: int = 77  # learned positions
    projection_dim: int | None = None  # text_projection of the pooled vector (CLIPTextModelWithProjection)
    norm_eps: float = 1e-5


def quick_gelu(x: torch.Tensor) -> torch.Tensor:
    """OpenAI CLIP's GELU approximation x * sigmoid(1.702 x)."""
    return x * torch.sigmoid(1.702 * x)


class BiasedSelfAttention(nn.Module):
    """Multi-head self-attention with biased q, k, v and output projections (CLIP, BERT), the projections named as
    the checkpoints name them so their state dicts load; ``causal`` masks future tokens (CLIP)."""

    def __init__(self, d_model: int, num_heads: int, d_kv: int, causal: bool, names: tuple[str, str, str, str]):
        super().__init__()
        self.num_heads, self.d_kv, self.causal, self.names = num_heads, d_kv, causal, names
        for n in names[:3]:
            setattr(self, n, nn.Linear(d_model, num_heads * d_kv))
        setattr(self, names[3], nn.Linear(num_heads * d_kv, d_model))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, L, _ = x.shape
        h, dk = self.num_heads, self.d_kv
        q, k, v = (self.get_submodule(n)(x).reshape(B, L, h, dk).transpose(1, 2) for n in self.names[:3])
        out = F.scaled_dot_product_attention(q, k, v, is_causal=self.causal)
        return self.get_submodule(self.names[3])(out.transpose(1, 2).reshape(B, L, h * dk))


class CLIPMLP(nn.Module):
    def __init__(self, cfg: CLIPTextEncoderConfig):
        super().__init__()
        self.fc1 = nn.Linear(cfg.d_model, cfg.d_ff)
        self.fc2 = nn.Linear(cfg.d_ff, cfg.d_model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(quick_gelu(self.fc1(x)))


class CLIPLayer(nn.Module):
    def __init__(self, cfg: CLIPTextEncoderConfig):
        super().__init__()
        self.layer_norm1 = nn.LayerNorm(cfg.d_model, eps=cfg.norm_eps)
        self.self_attn = BiasedSelfAttention(cfg.d_model, cfg.num_heads, cfg.d_kv, True,
                                             ("q_proj", "k_proj", "v_proj", "out_proj"))
        self.layer_norm2 = nn.LayerNorm(cfg.d_model, eps=cfg.norm_eps)
        self.mlp = CLIPMLP(cfg)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.self_attn(self.layer_norm1(x))
        return x + self.mlp(self.layer_norm2(x))


class CLIPTextEncoder(nn.Module):
    """token ids (B, L <= max_tokens) -> (token states (B, L, d_model), pooled (B, projection_dim or d_model)).

    The pooled vector is the final-normed state of the end-of-text token, the largest id in CLIP's vocabulary
    (``ids.argmax``, as the original CLIP)."""

    def __init__(self, cfg: CLIPTextEncoderConfig):
        super().__init__()
        self.cfg = cfg
        self.token_embedding = nn.Embedding(cfg.vocab_size, cfg.d_model)
        self.position_embedding = nn.Embedding(cfg.max_tokens, cfg.d_model)
        self.layers = nn.ModuleList(CLIPLayer(cfg) for _ in range(cfg.num_layers))
        self.final_layer_norm = nn.LayerNorm(cfg.d_model, eps=cfg.norm_eps)
        self.text_projection = (
            nn.Linear(cfg.d_model, cfg.projection_dim, bias=False) if cfg.projection_dim is not None else None
        )

    def forward(self, ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        B, L = ids.shape
        if ids.shape[1] > self.cfg.max_tokens:
            raise ValueError(f"{ids.shape[1]} tokens exceed the {self.cfg.max_tokens} learned positions")
        x = self.token_embedding(ids) + self.position_embedding(torch.arange(L, device=ids.device))
        for layer in self.layers:
            x = layer(x)
        x = self.final_layer_norm(x)
        pooled = x[torch.arange(B, device=ids.device), ids.argmax(dim=-1)]
        if self.text_projection is not None:
            pooled = self.text_projection(pooled)
        return x, pooled


# ------------------------------------------------------------------------------------------------
# BERT
# ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BertEncoderConfig:
    vocab_size: int = 30522
    num_layers: int = 12
    d_model: int = 768
    num_heads: int = 12
    d_kv: int = 64
    d_ff: int = 3072
    max_tokens: int = 512  # tokens per prompt (at most max_position_embeddings)
    max_position_embeddings: int = 512  # learned positions
    type_vocab_size: int = 2  # token-type (segment) embeddings
    pooler: bool = True  # BertPooler: tanh(Linear(d, d)) of the first token
    norm_eps: float = 1e-12


class BertLayer(nn.Module):
    """Post-norm: x = LN(x + attn(x)); x = LN(x + output(gelu(intermediate(x))))."""

    def __init__(self, cfg: BertEncoderConfig):
        super().__init__()
        self.attention = BiasedSelfAttention(cfg.d_model, cfg.num_heads, cfg.d_kv, False,
                                             ("query", "key", "value", "output"))  # bidirectional
        self.attention_norm = nn.LayerNorm(cfg.d_model, eps=cfg.norm_eps)
        self.intermediate = nn.Linear(cfg.d_model, cfg.d_ff)
        self.output = nn.Linear(cfg.d_ff, cfg.d_model)
        self.output_norm = nn.LayerNorm(cfg.d_model, eps=cfg.norm_eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.attention_norm(x + self.attention(x))
        return self.output_norm(x + self.output(F.gelu(self.intermediate(x))))


class BertEncoder(nn.Module):
    """token ids (B, L <= max_position_embeddings) -> (token states (B, L, d_model), pooled (B, d_model) or None).

    BertModel (Devlin et al. 2019) with token_type_ids = 0 and no padding mask: word + position + token-type
    embeddings, LayerNorm, post-norm layers (biased projections, erf GELU), no final norm; the optional pooler is
    tanh(Linear(d, d)) of the first token's state (BertModel's default add_pooling_layer=True)."""

    def __init__(self, cfg: BertEncoderConfig):
        super().__init__()
        self.cfg = cfg
        self.word_embeddings = nn.Embedding(cfg.vocab_size, cfg.d_model)
        self.position_embeddings = nn.Embedding(cfg.max_position_embeddings, cfg.d_model)
        self.token_type_embeddings = nn.Embedding(cfg.type_vocab_size, cfg.d_model)
        self.embedding_norm = nn.LayerNorm(cfg.d_model, eps=cfg.norm_eps)
        self.layers = nn.ModuleList(BertLayer(cfg) for _ in range(cfg.num_layers))
        self.pooler = nn.Linear(cfg.d_model, cfg.d_model) if cfg.pooler else None

    def forward(self, ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        n = ids.shape[1]
        if n > self.cfg.max_position_embeddings:
            raise ValueError(f"{n} tokens exceed the {self.cfg.max_position_embeddings} learned positions")
        x = (self.word_embeddings(ids) + self.position_embeddings(torch.arange(n, device=ids.device))
             + self.token_type_embeddings(torch.zeros(n, dtype=torch.long, device=ids.device)))
        x = self.embedding_norm(x)
        for layer in self.layers:
            x = layer(x)
        pooled = torch.tanh(self.pooler(x[:, 0])) if self.pooler is not None else None
        return x, pooled
