"""Text encoders: T5 / umT5, a Llama decoder used as an encoder, CLIP's text tower, BERT.

``TextEncoderSpec`` is a discriminated union on ``kind`` (``t5``, the default when ``kind`` is absent; ``llama``;
``clip``; ``bert``): each kind is its own spec type with only its own fields, so a field of another kind is an
unknown field. Build one from data with ``text_encoder_spec(data, **fields)`` (or let ``ModelSpec`` do it). The
parameters are counted from the ledger (``evaluate/params.py`` ``text_encoder_params``).

``inference_dtype`` is the dtype the official inference pipeline runs an encoder in when that differs from the run's
dtype (None: the run's dtype): ``fp32`` (fp32 tensors, full-precision matmuls: PyTorch's default,
``torch.backends.cuda.matmul.allow_tf32 = False``), ``tf32`` (fp32 tensors, matmuls on TF32 tensor cores: the pipeline
sets ``allow_tf32 = True``), ``bf16``, ``fp16``. It prices the encoder's weights and activations at inference (4 bytes
per element for fp32 and tf32) and its time there (that dtype's peak). Training runs the encoders in the run's dtype
(Open-Sora 1.2's scripts/train.py builds its T5 with dtype=bf16, its inference script in fp32); the parameter count
does not depend on it.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, get_args

from pydantic import Discriminator, Field, Tag, TypeAdapter, model_validator

from sora_compute.specs.base import _Spec

__all__ = ["TextEncoderSpec", "TextEncoderKind", "TextEncoderDtype", "TEXT_ENCODER_DTYPES", "T5EncoderSpec",
           "LlamaEncoderSpec", "CLIPTextSpec",
           "BertEncoderSpec", "text_encoder_spec"]


TextEncoderKind = Literal["t5", "llama", "clip", "bert"]
TextEncoderDtype = Literal["fp32", "tf32", "bf16", "fp16"]
TEXT_ENCODER_DTYPES: tuple[str, ...] = get_args(TextEncoderDtype)


class _TextEncoderBase(_Spec):
    """What every kind has: vocabulary, depth, widths, heads and the tokens a prompt is encoded to."""

    vocab_size: int = Field(gt=0, description="token vocabulary")
    num_layers: int = Field(gt=0, description="encoder layers")
    d_model: int = Field(gt=0, description="model width (channels); the token states' width")
    num_heads: int = Field(gt=0, description="attention (query) heads")
    d_kv: int = Field(gt=0, description="width per head (llama, clip, bert: default d_model / num_heads)")
    d_ff: int = Field(gt=0, description="feed-forward width")
    max_tokens: int = Field(gt=0, description="maximum text length in tokens (clip: learned positions)")
    inference_dtype: TextEncoderDtype | None = Field(
        default=None, description="dtype the inference pipeline runs this encoder in (fp32, tf32 = fp32 tensors "
                                  "with TF32 matmuls, bf16, fp16); None: the run's dtype")

    @model_validator(mode="before")
    @classmethod
    def _default_head_width(cls, data: object) -> object:
        """d_kv defaults to d_model / num_heads (llama, clip, bert; T5 gives its own default)."""
        if not isinstance(data, dict) or "d_kv" in data or not cls.model_fields["d_kv"].is_required():
            return data
        d, h = data.get("d_model"), data.get("num_heads")
        if isinstance(d, int) and isinstance(h, int) and h > 0:
            if d % h:
                raise ValueError(f"d_model={d} is not divisible by num_heads={h}: give d_kv")
            return {**data, "d_kv": d // h}
        return data

    @property
    def inner_dim(self) -> int:
        """Query (and output-projection) width: num_heads x d_kv."""
        return self.num_heads * self.d_kv

    @property
    def kv_heads(self) -> int:
        """Key/value heads: num_heads (llama: num_kv_heads with grouped-query attention)."""
        return self.num_heads

    @property
    def kv_dim(self) -> int:
        """Width of the key and of the value projection: kv_heads x d_kv."""
        return self.kv_heads * self.d_kv

    @property
    def layers_run(self) -> int:
        """Layers one forward runs (llama: num_layers less hidden_state_skip)."""
        return self.num_layers

    def dtype_or(self, run: str) -> str:
        """The dtype this encoder runs in at inference: its ``inference_dtype``, else ``run`` (the run's dtype)."""
        return self.inference_dtype if self.inference_dtype is not None else run

    @property
    def pooled_dim(self) -> int | None:
        """Width of the pooled vector (clip: projection_dim or d_model; bert with pooler: d_model); None for kinds
        without one."""
        return None


class T5EncoderSpec(_TextEncoderBase):
    """A T5 encoder (Raffel et al. 2020; v1.1 gated-GELU FFN): RMSNorm, bias-free projections, relative position
    buckets in the first layer's attention (in every layer for umT5). The defaults describe T5-XXL's encoder."""

    kind: Literal["t5"] = "t5"
    vocab_size: int = Field(default=32128, gt=0, description="token vocabulary")
    num_layers: int = Field(default=24, gt=0, description="encoder layers")
    d_model: int = Field(default=4096, gt=0, description="model width (channels); the token states' width")
    num_heads: int = Field(default=64, gt=0, description="attention (query) heads")
    d_kv: int = Field(default=64, gt=0, description="width per head")
    d_ff: int = Field(default=10240, gt=0, description="feed-forward width")
    max_tokens: int = Field(default=512, gt=0, description="maximum text length in tokens")
    gated_ffn: bool = Field(default=True, description="gated-GELU FFN (T5 v1.1, umT5); false: ReLU")
    relative_attention_num_buckets: int = Field(default=32, gt=0, description="relative-position buckets")
    relative_attention_max_distance: int = Field(default=128, gt=0, description="relative-position range")
    shared_relative_bias: bool = Field(default=True, description="one position-bias table (T5) or one per layer "
                                                                 "(umT5)")

    @property
    def bias_tables(self) -> int:
        """Relative position-bias tables: one (T5) or one per layer (umT5)."""
        return 1 if self.shared_relative_bias else self.num_layers


class LlamaEncoderSpec(_TextEncoderBase):
    """A decoder-only LLM used as encoder (HunyuanVideo's llava-llama-3-8b): RMSNorm, bias-free projections,
    grouped-query attention with ``num_kv_heads`` key/value heads (default ``num_heads``), rotary positions (no
    parameters), causal attention, SwiGLU MLP (``d_ff`` wide), no LM head.

    ``hidden_state_skip`` = k takes the hidden state k layers before the last, without the final norm (HunyuanVideo:
    2). Parameters count all ``num_layers`` (the checkpoint is loaded whole); MACs and activations count the
    ``layers_run`` = num_layers - k layers actually needed (the reference stops there; HunyuanVideo's own code runs
    the k extra layers through transformers and discards them: k / num_layers more text-encoder MACs). Step-Video's
    Step-LLM is a llama with ``final_norm: false`` (no final RMSNorm), ``fused_projections: true`` (one qkv and one
    gate/up matmul: the same parameters and MACs, a larger activation peak) and ``rotary: false`` (its ALiBi
    attention biases are computed inside StepFun's fused attention kernel: no parameters, no MACs counted, nothing
    materialized)."""

    kind: Literal["llama"]
    num_kv_heads: int | None = Field(default=None, gt=0, description="key/value heads (GQA; default num_heads)")
    hidden_state_skip: int = Field(default=0, ge=0, description="output the hidden state this many layers before "
                                                                "the last")
    final_norm: bool = Field(default=True, description="final RMSNorm (Step-LLM has none)")
    rotary: bool = Field(default=True, description="rotary position embedding (Step-LLM: ALiBi in-kernel)")
    fused_projections: bool = Field(default=False, description="one qkv and one gate/up matmul (Step-LLM's wqkv, w1)")

    @model_validator(mode="after")
    def _check(self) -> LlamaEncoderSpec:
        if self.num_heads % self.kv_heads:
            raise ValueError(f"num_heads={self.num_heads} must be a multiple of num_kv_heads={self.kv_heads}")
        if self.hidden_state_skip >= self.num_layers:
            raise ValueError(f"hidden_state_skip={self.hidden_state_skip} must be less than num_layers="
                             f"{self.num_layers}")
        if self.rotary and self.d_kv % 2:
            raise ValueError(f"rotary embedding needs an even d_kv, got {self.d_kv}")
        return self

    @property
    def kv_heads(self) -> int:
        return self.num_kv_heads if self.num_kv_heads is not None else self.num_heads

    @property
    def layers_run(self) -> int:
        return self.num_layers - self.hidden_state_skip


class CLIPTextSpec(_TextEncoderBase):
    """CLIP's text tower (openai/clip-vit-large-patch14): ``max_tokens`` learned positions, biased LayerNorms and
    projections, causal attention, quick-GELU MLP, final LayerNorm. ``projection_dim``: the bias-free
    ``text_projection`` of the pooled vector (CLIPTextModelWithProjection); None (default) leaves it out, as
    HunyuanVideo and Open-Sora 2.0, which take CLIPTextModel's pooled output (width ``d_model``)."""

    kind: Literal["clip"]
    projection_dim: int | None = Field(default=None, gt=0, description="pooled-vector projection width")

    @property
    def pooled_dim(self) -> int | None:
        return self.projection_dim if self.projection_dim is not None else self.d_model


class BertEncoderSpec(_TextEncoderBase):
    """A BertModel (Step-Video's "Hunyuan-CLIP" text tower, from HunyuanDiT): word, learned position
    (``max_position_embeddings`` rows, default ``max_tokens``) and token-type (``type_vocab_size``) embeddings with
    an embedding LayerNorm; post-norm layers with biased q, k, v, output projections and an erf-GELU MLP,
    bidirectional attention, no final norm. ``pooler`` (default true, as BertModel's add_pooling_layer and
    Step-Video's checkpoint): tanh(Linear(d, d)) of the first token, counted in parameters (its weights are loaded)
    and in MACs (BertModel's forward runs it, one row per prompt) even where, as in Step-Video, only the token
    states are used. ``max_tokens``: the tokens a prompt is encoded to (Step-Video: 77)."""

    kind: Literal["bert"]
    max_position_embeddings: int | None = Field(default=None, gt=0, description="learned positions (default "
                                                                                "max_tokens)")
    type_vocab_size: int = Field(default=2, gt=0, description="token-type (segment) embeddings")
    pooler: bool = Field(default=True, description="tanh(Linear(d, d)) pooler of the first token")

    @model_validator(mode="after")
    def _check(self) -> BertEncoderSpec:
        if self.max_tokens > self.positions:
            raise ValueError(f"max_tokens={self.max_tokens} exceeds max_position_embeddings={self.positions}")
        return self

    @property
    def positions(self) -> int:
        """Learned position rows: max_position_embeddings, default max_tokens."""
        return self.max_position_embeddings if self.max_position_embeddings is not None else self.max_tokens

    @property
    def pooled_dim(self) -> int | None:
        return self.d_model if self.pooler else None


def _kind(data: Any) -> str:
    """The union's tag: ``kind`` of a dict (absent: t5) or of a spec."""
    if isinstance(data, dict):
        return data.get("kind", "t5")
    return getattr(data, "kind", "t5")


#: A text encoder of any kind; ``kind`` picks the architecture (the reference modules in
#: reference_model/text_encoder.py). ``d_model`` is the width of the token states the DiT receives.
TextEncoderSpec = Annotated[
    Annotated[T5EncoderSpec, Tag("t5")] | Annotated[LlamaEncoderSpec, Tag("llama")]
    | Annotated[CLIPTextSpec, Tag("clip")] | Annotated[BertEncoderSpec, Tag("bert")],
    Discriminator(_kind, custom_error_type="text_encoder_kind",
                  custom_error_message="kind should be one of 't5', 'llama', 'clip', 'bert'"),
]

_ADAPTER: TypeAdapter[TextEncoderSpec] = TypeAdapter(TextEncoderSpec)


def text_encoder_spec(data: Any = None, /, **fields: Any) -> TextEncoderSpec:
    """A validated text-encoder spec of ``data``'s kind (a dict, a spec, or None), with ``fields`` on top:
    ``text_encoder_spec(kind="clip", vocab_size=49408, ...)``, ``text_encoder_spec(yaml_block, max_tokens=300)``."""
    if data is None:
        data = {}
    elif not isinstance(data, dict):
        data = data.model_dump() if hasattr(data, "model_dump") else data
    return _ADAPTER.validate_python({**data, **fields})
