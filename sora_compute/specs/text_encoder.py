"""Text encoders: T5 / umT5, a Llama decoder used as an encoder, CLIP's text tower, BERT."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from sora_compute.specs.base import _Spec, linear_params

__all__ = ["TextEncoderSpec", "TextEncoderKind"]


TextEncoderKind = Literal["t5", "llama", "clip", "bert"]

#: Fields that only one kind uses: another kind must leave them at their defaults (which it ignores).
_TEXT_KIND_FIELDS: dict[str, tuple[str, ...]] = {
    "t5": ("gated_ffn", "relative_attention_num_buckets", "relative_attention_max_distance", "shared_relative_bias"),
    "llama": ("num_kv_heads", "hidden_state_skip", "final_norm", "rotary", "fused_projections"),
    "clip": ("projection_dim",),
    "bert": ("max_position_embeddings", "type_vocab_size", "pooler"),
}
#: Sizes a llama, clip or bert encoder must give explicitly (the defaults describe T5-XXL).
_TEXT_SIZE_FIELDS = ("vocab_size", "num_layers", "d_model", "num_heads", "d_ff", "max_tokens")


class TextEncoderSpec(_Spec):
    """A text encoder; ``kind`` picks the architecture (the reference modules in reference_model/text_encoder.py).

    - ``t5`` (default): a T5 encoder (Raffel et al. 2020; v1.1 gated-GELU FFN): RMSNorm, bias-free projections,
      relative position buckets in the first layer's attention (in every layer for umT5).
    - ``llama``: a decoder-only LLM used as encoder (HunyuanVideo's llava-llama-3-8b): RMSNorm, bias-free
      projections, grouped-query attention with ``num_kv_heads`` key/value heads (default ``num_heads``), rotary
      positions (no parameters), causal attention, SwiGLU MLP (``d_ff`` wide), no LM head.
      ``hidden_state_skip`` = k takes the hidden state k layers before the last, without the final norm
      (HunyuanVideo: 2). Parameters count all ``num_layers`` (the checkpoint is loaded whole); MACs and
      activations count the ``layers_run`` = num_layers - k layers actually needed (the reference stops there;
      HunyuanVideo's own code runs the k extra layers through transformers and discards them: k / num_layers
      more text-encoder MACs). Step-Video's Step-LLM is a llama with ``final_norm: false`` (no final RMSNorm),
      ``fused_projections: true`` (one qkv and one gate/up matmul: the same parameters and MACs, a larger
      activation peak) and ``rotary: false`` (its ALiBi attention biases are computed inside StepFun's fused
      attention kernel: no parameters, no MACs counted, nothing materialized).
    - ``clip``: CLIP's text tower (openai/clip-vit-large-patch14): ``max_tokens`` learned positions, biased
      LayerNorms and projections, causal attention, quick-GELU MLP, final LayerNorm. ``projection_dim``: the
      bias-free ``text_projection`` of the pooled vector (CLIPTextModelWithProjection); None (default) leaves it
      out, as HunyuanVideo and Open-Sora 2.0, which take CLIPTextModel's pooled output (width ``d_model``).
    - ``bert``: a BertModel (Step-Video's "Hunyuan-CLIP" text tower, from HunyuanDiT): word, learned position
      (``max_position_embeddings`` rows, default ``max_tokens``) and token-type (``type_vocab_size``) embeddings
      with an embedding LayerNorm; post-norm layers with biased q, k, v, output projections and an erf-GELU MLP,
      bidirectional attention, no final norm. ``pooler`` (default true, as BertModel's add_pooling_layer and
      Step-Video's checkpoint): tanh(Linear(d, d)) of the first token, counted in parameters (its weights are
      loaded) and in MACs (BertModel's forward runs it, one row per prompt) even where, as in Step-Video, only
      the token states are used. ``max_tokens``: the tokens a prompt is encoded to (Step-Video: 77).

    ``d_model`` is the width of the token states the DiT receives (``dit.text_dim`` must equal it). ``d_kv`` is
    the width per head (for llama, clip and bert it defaults to d_model / num_heads). A field of another kind must keep
    its default (it is ignored); llama, clip and bert must give their sizes explicitly.
    """

    kind: TextEncoderKind = Field(default="t5", description="architecture: t5 | llama | clip | bert")
    vocab_size: int = Field(default=32128, gt=0, description="token vocabulary")
    num_layers: int = Field(default=24, gt=0, description="encoder layers")
    d_model: int = Field(default=4096, gt=0, description="model width (channels); the token states' width")
    num_heads: int = Field(default=64, gt=0, description="attention (query) heads")
    d_kv: int = Field(default=64, gt=0, description="width per head")
    d_ff: int = Field(default=10240, gt=0, description="feed-forward width")
    gated_ffn: bool = Field(default=True, description="t5: gated-GELU FFN (T5 v1.1, umT5)")
    max_tokens: int = Field(default=512, gt=0, description="maximum text length in tokens (clip: learned positions)")
    relative_attention_num_buckets: int = Field(default=32, gt=0, description="t5: relative-position buckets")
    relative_attention_max_distance: int = Field(default=128, gt=0, description="t5: relative-position range")
    shared_relative_bias: bool = Field(default=True,
                                       description="t5: one position-bias table (T5) or one per layer (umT5)")
    num_kv_heads: int | None = Field(default=None, gt=0, description="llama: key/value heads (GQA; default num_heads)")
    hidden_state_skip: int = Field(default=0, ge=0,
                                   description="llama: output the hidden state this many layers before the last")
    final_norm: bool = Field(default=True, description="llama: final RMSNorm (Step-LLM has none)")
    rotary: bool = Field(default=True, description="llama: rotary position embedding (Step-LLM: ALiBi in-kernel)")
    fused_projections: bool = Field(default=False,
                                    description="llama: one qkv and one gate/up matmul (Step-LLM's wqkv, w1)")
    projection_dim: int | None = Field(default=None, gt=0, description="clip: pooled-vector projection width")
    max_position_embeddings: int | None = Field(default=None, gt=0,
                                                description="bert: learned positions (default max_tokens)")
    type_vocab_size: int = Field(default=2, gt=0, description="bert: token-type (segment) embeddings")
    pooler: bool = Field(default=True, description="bert: tanh(Linear(d, d)) pooler of the first token")

    @model_validator(mode="before")
    @classmethod
    def _kind_sizes(cls, data: object) -> object:
        if not isinstance(data, dict) or data.get("kind") not in ("llama", "clip", "bert"):
            return data
        missing = [f for f in _TEXT_SIZE_FIELDS if f not in data]
        if missing:
            raise ValueError(f"kind={data['kind']!r} needs explicit {', '.join(missing)} "
                             "(the defaults describe T5-XXL)")
        if "d_kv" not in data:
            d, h = data["d_model"], data["num_heads"]
            if isinstance(d, int) and isinstance(h, int) and h > 0 and d % h:
                raise ValueError(f"d_model={d} is not divisible by num_heads={h}: give d_kv")
            if isinstance(d, int) and isinstance(h, int) and h > 0:
                data = {**data, "d_kv": d // h}
        return data

    @model_validator(mode="after")
    def _check_kind(self) -> TextEncoderSpec:
        foreign = [f for kind, fields in _TEXT_KIND_FIELDS.items() if kind != self.kind for f in fields
                   if getattr(self, f) != type(self).model_fields[f].default]
        if foreign:
            owners = {f: k for k, fields in _TEXT_KIND_FIELDS.items() for f in fields}
            detail = ", ".join(f"{f} (kind={owners[f]!r})" for f in foreign)
            raise ValueError(f"kind={self.kind!r} does not use {detail}: remove it or change kind")
        if self.num_heads % self.kv_heads:
            raise ValueError(f"num_heads={self.num_heads} must be a multiple of num_kv_heads={self.kv_heads}")
        if self.hidden_state_skip >= self.num_layers:
            raise ValueError(f"hidden_state_skip={self.hidden_state_skip} must be less than num_layers="
                             f"{self.num_layers}")
        if self.kind == "llama" and self.rotary and self.d_kv % 2:
            raise ValueError(f"rotary embedding needs an even d_kv, got {self.d_kv}")
        if self.kind == "bert" and self.max_tokens > self.positions:
            raise ValueError(f"max_tokens={self.max_tokens} exceeds max_position_embeddings={self.positions}")
        return self

    @property
    def positions(self) -> int:
        """Learned position rows of bert: max_position_embeddings, default max_tokens."""
        return self.max_position_embeddings if self.max_position_embeddings is not None else self.max_tokens

    @property
    def inner_dim(self) -> int:
        """Query (and output-projection) width: num_heads x d_kv."""
        return self.num_heads * self.d_kv

    @property
    def kv_heads(self) -> int:
        """Key/value heads: num_kv_heads (llama GQA), else num_heads."""
        return self.num_kv_heads if self.num_kv_heads is not None else self.num_heads

    @property
    def kv_dim(self) -> int:
        """Width of the key and of the value projection: kv_heads x d_kv."""
        return self.kv_heads * self.d_kv

    @property
    def layers_run(self) -> int:
        """Layers one forward runs: num_layers less llama's hidden_state_skip."""
        return self.num_layers - self.hidden_state_skip

    @property
    def pooled_dim(self) -> int | None:
        """Width of the pooled vector (clip: projection_dim or d_model; bert with pooler: d_model); None for kinds
        without one."""
        if self.kind == "bert":
            return self.d_model if self.pooler else None
        if self.kind != "clip":
            return None
        return self.projection_dim if self.projection_dim is not None else self.d_model

    @property
    def bias_tables(self) -> int:
        """Relative position-bias tables: one (T5) or one per layer (umT5); none for the other kinds."""
        if self.kind != "t5":
            return 0
        return 1 if self.shared_relative_bias else self.num_layers

    @property
    def params(self) -> int:
        """All parameters (exact): t5 embedding + layers + relative position bias + final RMSNorm; llama
        embedding + layers (GQA attention, SwiGLU) + optional final RMSNorm; clip token and position embeddings +
        layers (biased) + final LayerNorm + optional text projection; bert word, position and token-type
        embeddings + embedding LayerNorm + layers (biased, two LayerNorms each) + optional pooler."""
        d, inner, ff, kv = self.d_model, self.inner_dim, self.d_ff, self.kv_dim
        if self.kind == "llama":  # fused projections: the same weights in one matrix
            attn = d + d * inner + 2 * d * kv + inner * d  # RMSNorm + q, k, v (narrower with GQA), o
            mlp = d + 3 * d * ff  # RMSNorm + gate, up, down
            return self.vocab_size * d + self.num_layers * (attn + mlp) + (d if self.final_norm else 0)
        if self.kind == "bert":
            attn = 3 * linear_params(d, inner) + linear_params(inner, d) + 2 * d  # q, k, v, output + LayerNorm
            mlp = linear_params(d, ff) + linear_params(ff, d) + 2 * d  # intermediate, output + LayerNorm
            embed = (self.vocab_size + self.positions + self.type_vocab_size) * d + 2 * d
            return embed + self.num_layers * (attn + mlp) + (linear_params(d, d) if self.pooler else 0)
        if self.kind == "clip":
            attn = 2 * d + 3 * linear_params(d, inner) + linear_params(inner, d)  # LayerNorm + q, k, v, out
            mlp = 2 * d + linear_params(d, ff) + linear_params(ff, d)  # LayerNorm + fc1, fc2
            proj = d * self.projection_dim if self.projection_dim is not None else 0
            return (self.vocab_size + self.max_tokens) * d + self.num_layers * (attn + mlp) + 2 * d + proj
        attn = d + 4 * d * inner  # RMSNorm + q, k, v, o (no bias)
        ffn = d + (2 if self.gated_ffn else 1) * d * ff + ff * d
        return (
            self.vocab_size * d
            + self.num_layers * (attn + ffn)
            + self.relative_attention_num_buckets * self.num_heads * self.bias_tables
            + d
        )
