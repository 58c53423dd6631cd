"""The parameter evaluator: parameter elements are a sum over a ledger (every weight belongs to one op).

Weights do not depend on the video shape, so the DiT's and the text encoders' ledgers are read at a one-token shape.
"""

from __future__ import annotations

from collections.abc import Iterable

from sora_compute.ledger.dit import DiTShape, dit_ledger
from sora_compute.ledger.formulas import Number
from sora_compute.ledger.ops import Op
from sora_compute.ledger.text_encoder import text_encoder_ledger
from sora_compute.ledger.vae import vae_decoder_ledger, vae_encoder_ledger
from sora_compute.specs import DiTSpec, ModelSpec, TextEncoderSpec, VAESpec

__all__ = ["param_count", "params_by_kind", "block_params", "dit_params", "dit_block_params", "text_encoder_params",
           "vae_params",
           "model_params"]


def param_count(ops: Iterable[Op]) -> Number:
    """Parameters (weights and biases, in elements) of the ops: sum of weights x instances."""
    total: Number = 0
    for op in ops:
        total = total + op.weights * op.instances
    return total


def params_by_kind(ops: Iterable[Op]) -> dict[str, Number]:
    """Parameters per module kind (attention_proj, mlp, adaln, norm, ...), kinds without weights left out."""
    out: dict[str, Number] = {}
    for op in ops:
        if op.weights:
            out[op.kind] = out.get(op.kind, 0) + op.weights * op.instances
    return out


def block_params(ops: Iterable[Op], prefix: str = "blocks.{i}.") -> dict[range, Number]:
    """Parameters of one block of each run of repeated blocks: the ops under ``prefix`` that share a ``blocks``
    range."""
    out: dict[range, Number] = {}
    for op in ops:
        if op.blocks is not None and op.path.startswith(prefix):
            out[op.blocks] = out.get(op.blocks, 0) + op.weights
    return out


def _unit_ledger(spec: DiTSpec) -> list[Op]:
    return dit_ledger(spec, DiTShape(1, 1, 1, 1, 1))


def dit_params(spec: DiTSpec) -> int:
    """Trainable parameters of the DiT (exact).

    The fixed sin-cos position embedding is computed on the fly and is not a parameter; facebookresearch/DiT
    stores it as a frozen ``nn.Parameter`` of (tokens x d) and counts it in the parameters its training script
    prints (``params + tokens * hidden_size``)."""
    return int(param_count(_unit_ledger(spec)))


def dit_block_params(spec: DiTSpec) -> int:
    """Parameters of the DiT's largest transformer block (what FSDP gathers at once). The token refiner's blocks
    (text side) are not transformer blocks of the DiT and are left out."""
    runs = block_params(_unit_ledger(spec))
    return int(max(runs[r] for _, r in spec.block_schedule()))


def text_encoder_params(spec: TextEncoderSpec) -> int:
    """Parameters of a text encoder (exact): every table, norm and projection it loads, the layers an early exit
    does not run included (read from its ledger at one token)."""
    return int(param_count(text_encoder_ledger(spec, 1)))


def vae_params(spec: VAESpec) -> tuple[int, int]:
    """(encoder, decoder) parameters of the VAE (exact): sums over its ledgers, read at a one-frame, one-pixel shape
    (a module run more than once, such as a chunked encoder, owns its weights in its first run)."""
    return (int(param_count(vae_encoder_ledger(spec, (1, 1, 1)))),
            int(param_count(vae_decoder_ledger(spec, (1, 1, 1)))))


def model_params(model: ModelSpec) -> dict[str, int]:
    """Parameters per component (exact ints): dit, vae_encoder, vae_decoder, text_encoder, total."""
    encoder, decoder = vae_params(model.vae)
    counts = {
        "dit": dit_params(model.dit),
        "vae_encoder": encoder,
        "vae_decoder": decoder,
        "text_encoder": sum(text_encoder_params(e) for e in model.text_encoders),
    }
    counts["total"] = sum(counts.values())
    return counts
