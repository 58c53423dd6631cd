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

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint

from reference_model.config import DiTConfig
from reference_model.layers import (
    Attention,
    AttentionCore,
    CaptionProjection,
    CrossAttention,
    LabelEmbedder,
    PatchEmbed3D,
    TimestepEmbedder,
    make_mlp,
    modulate,
    rope_for,
    sincos_3d,
)
from reference_model.mmdit import AsymmetricJointBlock, AttentionPool, DualStreamBlock, SingleStreamBlock, TokenRefiner

__all__ = ["DiT", "DiTBlock", "DiTConfig", "FinalLayer"]


class DiTBlock(nn.Module):
    """adaLN-Zero block. ``grid`` = (T, H, W) in tokens says how to group tokens for attention:
    ``mode`` "full" attends all N tokens, "spatial" within each frame, "temporal" across frames."""

    def __init__(self, cfg: DiTConfig, mode: str = "full"):
        super().__init__()
        d = cfg.hidden_size
        self.mode = mode
        self.joint = cfg.conditioning == "joint"
        self.cfg = cfg
        self.rope = cfg.rope != "none" and (cfg.rope != "temporal" or mode == "temporal")  # STDiT3: temporal only
        self.norm1 = nn.LayerNorm(d, elementwise_affine=cfg.norm_affine, eps=1e-6)
        self.attn = Attention(d, cfg.num_heads, cfg.qk_norm, cfg.qkv_bias, cfg.out_bias, cfg.qk_norm_fp32,
                              cfg.short_attention_math, cfg.rope_form)
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

    def _self_attention(self, x: torch.Tensor, grid: tuple[int, int, int],
                        rope: tuple[torch.Tensor, torch.Tensor] | None) -> torch.Tensor:
        B, N, D = x.shape
        T, H, W = grid
        if self.mode == "spatial":  # (B*T, H*W, D)
            return self.attn(x.reshape(B * T, H * W, D), rope).reshape(B, N, D)
        if self.mode == "temporal":  # (B*H*W, T, D)
            xt = x.reshape(B, T, H * W, D).transpose(1, 2).reshape(B * H * W, T, D)
            return self.attn(xt, rope).reshape(B, H * W, T, D).transpose(1, 2).reshape(B, N, D)
        return self.attn(x, rope)

    def forward(
        self, x: torch.Tensor, c: torch.Tensor, grid: tuple[int, int, int], y: torch.Tensor | None = None,
        cos: torch.Tensor | None = None, sin: torch.Tensor | None = None, x_mask: torch.Tensor | None = None,
        c0: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """``cos``, ``sin``: the model's RoPE tables (built here from the grid when not given). ``x_mask`` (B, T) and
        ``c0`` (timestep 0's shared projection): STDiT3's masked path (``masked_forward``)."""
        rope = None
        if self.rope:
            L = y.shape[1] if self.joint and y is not None else 0
            rope = (cos, sin) if cos is not None and sin is not None else rope_for(self.cfg, grid, L, x.device)
        if self.adaLN_modulation is None:  # c is the shared projection (B, chunks * d)
            mods = (c.reshape(c.shape[0], self.chunks, -1) + self.scale_shift_table).unbind(1)
        else:
            mods = self.adaLN_modulation(c).chunk(self.chunks, dim=1)
        shift_msa, scale_msa, gate_msa, shift_mlp, scale_mlp, gate_mlp = mods[:6]
        if x_mask is not None and c0 is not None:
            return self.masked_forward(x, mods, c0, x_mask, grid, y, rope)
        if self.joint:  # text tokens y ride along in the same attention and MLP (CogVideoX)
            assert y is not None
            t_shift_msa, t_scale_msa, t_gate_msa, t_shift_mlp, t_scale_mlp, t_gate_mlp = mods[6:]
            L = y.shape[1]
            h = torch.cat([modulate(self.norm1(y), t_shift_msa, t_scale_msa),
                           modulate(self.norm1(x), shift_msa, scale_msa)], dim=1)
            h = self.attn(h, rope, L if self.cfg.rope == "video" else 0)  # CogVideoX: video tokens only
            y = y + t_gate_msa.unsqueeze(1) * h[:, :L]
            x = x + gate_msa.unsqueeze(1) * h[:, L:]
            h = torch.cat([modulate(self.norm2(y), t_shift_mlp, t_scale_mlp),
                           modulate(self.norm2(x), shift_mlp, scale_mlp)], dim=1)
            h = self.mlp(h)
            y = y + t_gate_mlp.unsqueeze(1) * h[:, :L]
            x = x + gate_mlp.unsqueeze(1) * h[:, L:]
            return torch.cat([y, x], dim=1)
        x = x + gate_msa.unsqueeze(1) * self._self_attention(modulate(self.norm1(x), shift_msa, scale_msa), grid,
                                                             rope)
        if self.cross_attn is not None:
            assert y is not None
            x = x + self.cross_attn(self.norm3(x) if self.norm3 is not None else x, y)
        x = x + gate_mlp.unsqueeze(1) * self.mlp(modulate(self.norm2(x), shift_mlp, scale_mlp))
        return x


    def masked_forward(self, x: torch.Tensor, mods: tuple[torch.Tensor, ...], c0: torch.Tensor,
                       x_mask: torch.Tensor, grid: tuple[int, int, int], y: torch.Tensor | None,
                       rope: tuple[torch.Tensor, torch.Tensor] | None) -> torch.Tensor:
        """STDiT3Block.forward given x_mask (opensora/models/stdit/stdit3.py at 8d132d7a): each modulation and gate
        computed with the timestep's table and timestep 0's, picked per frame (``t_mask_select``)."""
        shift_msa, scale_msa, gate_msa, shift_mlp, scale_mlp, gate_mlp = mods
        assert self.scale_shift_table is not None
        zero = (c0.reshape(c0.shape[0], self.chunks, -1) + self.scale_shift_table).unbind(1)
        shift_msa_zero, scale_msa_zero, gate_msa_zero, shift_mlp_zero, scale_mlp_zero, gate_mlp_zero = zero
        x_m = modulate(self.norm1(x), shift_msa, scale_msa)
        x_m_zero = modulate(self.norm1(x), shift_msa_zero, scale_msa_zero)
        x_m = t_mask_select(x_mask, x_m, x_m_zero, grid)
        x_m = self._self_attention(x_m, grid, rope)
        x_m_s = gate_msa.unsqueeze(1) * x_m
        x_m_s_zero = gate_msa_zero.unsqueeze(1) * x_m
        x_m_s = t_mask_select(x_mask, x_m_s, x_m_s_zero, grid)
        x = x + x_m_s
        if self.cross_attn is not None:
            assert y is not None
            x = x + self.cross_attn(self.norm3(x) if self.norm3 is not None else x, y)
        x_m = modulate(self.norm2(x), shift_mlp, scale_mlp)
        x_m_zero = modulate(self.norm2(x), shift_mlp_zero, scale_mlp_zero)
        x_m = t_mask_select(x_mask, x_m, x_m_zero, grid)
        x_m = self.mlp(x_m)
        x_m_s = gate_mlp.unsqueeze(1) * x_m
        x_m_s_zero = gate_mlp_zero.unsqueeze(1) * x_m
        x_m_s = t_mask_select(x_mask, x_m_s, x_m_s_zero, grid)
        return x + x_m_s


def t_mask_select(x_mask: torch.Tensor, x: torch.Tensor, masked_x: torch.Tensor, grid: tuple[int, int, int]
                  ) -> torch.Tensor:
    """STDiT3's t_mask_select: per frame, x where the mask is set, else masked_x (tokens (B, T*S, D))."""
    B, N, D = x.shape
    T = grid[0]
    x = torch.where(x_mask[:, :, None, None], x.reshape(B, T, N // T, D), masked_x.reshape(B, T, N // T, D))
    return x.reshape(B, N, D)


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

    def forward(self, x: torch.Tensor, c: torch.Tensor, x_mask: torch.Tensor | None = None,
                c0: torch.Tensor | None = None, grid: tuple[int, int, int] = (1, 1, 1)) -> torch.Tensor:
        """``x_mask``, ``c0``: T2IFinalLayer's masked path (timestep 0's modulation too, picked per frame)."""
        if self.adaLN_modulation is None:
            shift, scale = (c[:, None] + self.scale_shift_table).unbind(1)
        else:
            shift, scale = self.adaLN_modulation(c).chunk(2, dim=1)
        out = modulate(self.norm_final(x), shift, scale)
        if x_mask is not None and c0 is not None:
            shift_zero, scale_zero = (c0[:, None] + self.scale_shift_table).unbind(1)
            out = t_mask_select(x_mask, out, modulate(self.norm_final(x), shift_zero, scale_zero), grid)
        return self.linear(out)


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
            # Mochi's learned RoPE frequencies (3 axes x heads x head_dim / 2); the rotations (rope: video) use the
            # fixed tables of rope_tables, which cost the same
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
        fps_emb = None
        if self.fps_embedder is not None:
            assert fps is not None, "this DiT takes the frame rate"
            fps_emb = self.fps_embedder(fps).to(x.dtype)
            c = c + fps_emb
        if self.vector_in is not None:
            assert pooled is not None, "this DiT takes a pooled text vector"
            c = c + self.vector_in(pooled)
        if self.guidance_in is not None:
            assert guidance is not None, "this DiT takes the guidance scale"
            c = c + self.guidance_in(guidance).to(x.dtype)
        c_blocks = self.t_block(c) if self.t_block is not None else c  # shared adaLN projection, once
        x_mask = c0 = c0_blocks = None
        if self.cfg.frame_mask:  # STDiT3 given x_mask (all frames set, as Open-Sora 1.2's sampler passes it): timestep
            # 0 embedded, plus fps, and projected too
            assert self.t_block is not None
            x_mask = torch.ones(x.shape[0], grid[0], dtype=torch.bool, device=x.device)
            c0 = self.t_embedder(torch.zeros_like(t)).to(x.dtype)
            c0 = c0 + fps_emb if fps_emb is not None else c0
            c0_blocks = self.t_block(c0)
        # RoPE tables, once per forward (as diffusers' pipelines and HunyuanVideo build them), passed to every block
        rope = rope_for(self.cfg, grid, y.shape[1] if y is not None else 0, x.device) or ()
        extra = (*(rope or (None, None)), x_mask, c0_blocks) if x_mask is not None else rope
        for block in self.blocks:
            if self.checkpointing == "full" and torch.is_grad_enabled():  # keep block inputs, recompute the rest
                out = checkpoint(block, x, c_blocks, grid, y, *extra, use_reentrant=True)
            else:
                out = block(x, c_blocks, grid, y, *extra)
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
        x = self.final_layer(x, c, x_mask, c0, grid)
        return self.unpatchify(x, grid)
