"""Rotary position embedding: the reference's eager rotation, its ledger ops (no MACs, the bytes of the eager steps,
what it keeps for backward) against hand-derived values and the profilers."""

import pytest
import torch
from fvcore.nn import FlopCountAnalysis
from pydantic import ValidationError
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from reference_model.layers import apply_rope, rope_tables
from sora_compute import MATMUL_ONLY
from sora_compute.evaluate.saved import ActivationDtypes, dit_saved
from sora_compute.evaluate.time import op_times
from sora_compute.ledger import DiTShape, dit_ledger
from sora_compute.ledger.formulas import FVCORE
from sora_compute.ledger.ops import counted_macs
from sora_compute.specs import DiTSpec

SPEC = DiTSpec(depth=2, hidden_size=64, num_heads=4, patch_size=(1, 1, 1), in_channels=4,
               conditioning="cross_attention", text_dim=16, rope="video")


def test_rotation_is_the_complex_product_by_the_angles():
    """Channel pairs (x0, x1) times exp(i theta): the rotate-half form equals the complex multiplication."""
    x = torch.randn(2, 3, 24, 16)
    cos, sin = rope_tables((2, 3, 4), 16, torch.device("cpu"))
    angles = torch.atan2(sin, cos)[:, ::2]  # one angle per pair
    z = torch.view_as_complex(x.reshape(2, 3, 24, 8, 2)) * torch.polar(torch.ones_like(angles), angles)
    assert torch.allclose(apply_rope(x, cos, sin), torch.view_as_real(z).flatten(3), atol=1e-5)


class _Rope(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return apply_rope(x, *rope_tables((2, 3, 4), 16, x.device))


def test_profilers_count_no_macs_in_rope():
    x = torch.randn(1, 2, 24, 16)
    fv = FlopCountAnalysis(_Rope(), (x,))
    fv.unsupported_ops_warnings(False)
    assert fv.total() == 0
    with FlopCounterMode(display=False) as fc:
        _Rope()(x)
    assert fc.get_total_flops() == 0


def _rope_ops(spec: DiTSpec, B: int = 1, grid: tuple[int, int, int] = (2, 3, 4)) -> dict[str, object]:
    return {op.path: op for op in dit_ledger(spec, DiTShape(B, *grid, 5)) if "rope" in op.path}


def test_ledger_rope_ops_by_hand():
    ops = _rope_ops(SPEC)
    N, d, dh = 24, 64, 16
    assert set(ops) == {"rope_table", "blocks.{i}.attn.rope_q", "blocks.{i}.attn.rope_k"}
    q = ops["blocks.{i}.attn.rope_q"]
    # q read with the cos and sin tables (N x dh each), q written; no MACs under either convention
    assert q.elements == N * d + 2 * N * dh + N * d
    assert counted_macs(q, FVCORE) == counted_macs(q, MATMUL_ONLY) == 0
    assert ops["rope_table"].elements == 2 * N * dh and ops["rope_table"].instances == 1
    # text tokens spared (CogVideoX): the rotated video rows, then a concatenation of all rows
    joint = _rope_ops(SPEC.model_copy(update={"conditioning": "joint", "text_proj": "linear"}))
    assert joint["blocks.{i}.attn.rope_q"].dims["written"] == N * d
    assert joint["blocks.{i}.attn.rope_q.cat"].elements == 2 * (N + 5) * d
    # temporal RoPE: tables of T rows, temporal blocks only
    temporal = _rope_ops(SPEC.model_copy(update={"attention_layout": "factorized", "rope": "temporal"}))
    assert temporal["rope_table"].elements == 2 * 2 * dh
    assert temporal["blocks.{i}.attn.rope_q"].blocks == range(1, 2, 2)


@pytest.mark.parametrize("dtype,bytes_per_element", [("bf16", 52), ("fp32", 40)])
def test_eager_rope_bytes_per_element(dtype, bytes_per_element):
    """Per q element, by hand from apply_rope: fp32 activations: neg 1 (n/2 read, n/2 written), stack 2, two products
    2 each, the sum 3: 10 elements x 4 B = 40 B; bf16: neg 1, stack 2, two casts up 3 each (2 B read, 4 B written), two
    fp32 products 4 each, the fp32 sum 6, the cast back 3: 26 x 2 B = 52 B. Plus the tables (N x dh, twice)."""
    q = _rope_ops(SPEC)["blocks.{i}.attn.rope_q"]
    row = op_times([q], "h100-sxm", dtype).iloc[0]
    n, tables = 24 * 64, 2 * 24 * 16
    bpe = 2 if dtype == "bf16" else 4
    assert row["bytes"] == pytest.approx(q.instances * (bytes_per_element * n + tables * bpe))


def test_saved_bytes_by_hand():
    """Without q/k norms a fused core keeps the rotated q and k (2 B N d per block) instead of views of qkv, and the
    products keep the fp32 tables once (2 N dh x 4 B)."""
    dt = ActivationDtypes(act_bytes=2, stat_bytes=4)
    B, grid, L = 2, (2, 3, 4), 5
    with_rope = dit_saved(SPEC, grid, L, B, "none", "fused", dt).total_bytes
    without = dit_saved(SPEC.model_copy(update={"rope": "none"}), grid, L, B, "none", "fused", dt).total_bytes
    assert with_rope - without == 2 * (2 * B * 24 * 64 * 2) + 2 * 24 * 16 * 4


@pytest.mark.parametrize("options", [
    {"rope": "temporal"},  # needs a factorised layout
    {"rope": "video", "attention_layout": "factorized"},  # needs a full layout
    {"rope": "all"},  # needs a joint sequence
    {"rope": "video", "hidden_size": 60, "num_heads": 4},  # odd head width
])
def test_bad_rope_options_are_refused(options):
    with pytest.raises(ValidationError, match="rope"):
        DiTSpec.model_validate({**SPEC.model_dump(), **options})
