"""Joint-attention blocks: MMDiT dual- and single-stream blocks (SD3, FLUX, HunyuanVideo) with HunyuanVideo's token
refiner, and Mochi 1's asymmetric blocks with the attention pooling of the text."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from reference_model.config import DiTConfig
from reference_model.layers import (
    AttentionCore,
    CaptionProjection,
    Mlp,
    QKNorm,
    SwiGLU,
    TimestepEmbedder,
    apply_rope,
    block_rope,
    make_mlp,
    modulate,
    rotate_qk,
)


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
        d, self.num_heads, self.cfg = cfg.hidden_size, cfg.num_heads, cfg
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

    def forward(self, x: torch.Tensor, c: torch.Tensor, grid: tuple[int, int, int], y: torch.Tensor | None = None,
                cos: torch.Tensor | None = None, sin: torch.Tensor | None = None) -> torch.Tensor:
        assert y is not None
        B, N, D = x.shape
        L = y.shape[1]
        rope = block_rope(self.cfg, grid, L, x.device, cos, sin)
        im = self.img_mod(c).chunk(6, dim=1)
        tm = self.txt_mod(c).chunk(6, dim=1)
        qi, ki, vi = self._heads("img", modulate(self.img_norm1(x), im[0], im[1]))
        qt, kt, vt = self._heads("txt", modulate(self.txt_norm1(y), tm[0], tm[1]))
        if rope is not None:  # each stream before the concatenation (HunyuanVideo: the video's q and k only)
            video = rope if self.cfg.rope == "video" else (rope[0][L:], rope[1][L:])
            qi, ki = rotate_qk(qi, ki, video)
            if self.cfg.rope == "all":  # the text rows of the table (position 0)
                qt, kt = apply_rope(qt, rope[0][:L], rope[1][:L]), apply_rope(kt, rope[0][:L], rope[1][:L])
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
        self.num_heads, self.mlp_hidden, self.cfg = cfg.num_heads, m, cfg
        self.modulation = nn.Sequential(nn.SiLU(), nn.Linear(cfg.cond, 3 * d))
        self.pre_norm = nn.LayerNorm(d, elementwise_affine=cfg.norm_affine, eps=1e-6)
        self.linear1 = nn.Linear(d, 3 * d + m)
        self.norm_q = QKNorm(d, cfg.num_heads, cfg.qk_norm) if cfg.qk_norm != "none" else None
        self.norm_k = QKNorm(d, cfg.num_heads, cfg.qk_norm) if cfg.qk_norm != "none" else None
        self.core = AttentionCore()
        self.act = nn.GELU(approximate="tanh")
        self.linear2 = nn.Linear(d + m, d)

    def forward(self, x: torch.Tensor, c: torch.Tensor, grid: tuple[int, int, int], y: torch.Tensor | None = None,
                cos: torch.Tensor | None = None, sin: torch.Tensor | None = None) -> torch.Tensor:
        assert y is not None
        L = y.shape[1]
        rope = block_rope(self.cfg, grid, L, x.device, cos, sin)
        xy = torch.cat([y, x], dim=1)
        B, S, D = xy.shape
        shift, scale, gate = self.modulation(c).chunk(3, dim=1)
        qkv, hidden = torch.split(self.linear1(modulate(self.pre_norm(xy), shift, scale)), [3 * D, self.mlp_hidden],
                                  dim=-1)
        qkv = qkv.reshape(B, S, 3, self.num_heads, D // self.num_heads)
        q, k, v = qkv[:, :, 0], qkv[:, :, 1], qkv[:, :, 2]
        if self.norm_q is not None and self.norm_k is not None:
            q, k = self.norm_q(q), self.norm_k(k)
        q, k = rotate_qk(q.transpose(1, 2), k.transpose(1, 2), rope, L if self.cfg.rope == "video" else 0)
        attn = self.core(q, k, v.transpose(1, 2)).transpose(1, 2).reshape(B, S, D)
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
        self.num_heads, self.update_y, self.cfg = cfg.num_heads, update_y, cfg
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

    def forward(self, x: torch.Tensor, c: torch.Tensor, grid: tuple[int, int, int], y: torch.Tensor | None = None,
                cos: torch.Tensor | None = None, sin: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        assert y is not None
        B, N, D = x.shape
        rope = block_rope(self.cfg, grid, 0, x.device, cos, sin)
        c = F.silu(c)
        scale_msa_x, gate_msa_x, scale_mlp_x, gate_mlp_x = (m.unsqueeze(1) for m in self.mod_x(c).chunk(4, dim=1))
        mod_y = self.mod_y(c).unsqueeze(1)
        qx, kx, vx = self._heads("x", self.x_norm1(x) * (1 + scale_msa_x))
        qx, kx = rotate_qk(qx, kx, rope)  # Mochi: the video's q and k only
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
