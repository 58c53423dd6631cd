"""The time model's components measured on this machine's PyTorch: the eager-op table (data/eager_ops.yaml) against
the ATen calls the reference DiT dispatches (counted by a TorchDispatchMode), and the CPU convolution algorithm rule
against the kernel torch's profiler sees."""

from __future__ import annotations

import collections
from functools import partial
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch.utils._python_dispatch import TorchDispatchMode

from sora_compute.calibration.microbench import _algorithm
from sora_compute.calibration.profile import CalibrationCase
from sora_compute.evaluate.eager import aten_calls, eager_extra
from sora_compute.evaluate.kernels import torch_cpu_conv_algorithm
from sora_compute.flops import dit_ops
from sora_compute.specs import DiTSpec, ModelSpec, VideoSpec, text_encoder_spec, vae_spec


class _Count(TorchDispatchMode):
    """ATen calls per module path (the innermost module running)."""

    def __init__(self) -> None:
        super().__init__()
        self.stack = ["<top>"]
        self.calls: collections.Counter[str] = collections.Counter()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # type: ignore[no-untyped-def]
        self.calls[self.stack[-1]] += 1
        return func(*args, **(kwargs or {}))


def _case(**dit_options: object) -> CalibrationCase:
    vae = vae_spec(latent_channels=4, block_out_channels=(32, 64, 64), spatial_compression=4, temporal_compression=2,
                   norm_groups=8, causal=True)
    te = text_encoder_spec(vocab_size=1000, num_layers=1, d_model=64, num_heads=2, d_kv=32, d_ff=128, max_tokens=16)
    dit = DiTSpec.model_validate({"depth": 2, "hidden_size": 64, "num_heads": 2, "patch_size": (1, 2, 2),
                                  "in_channels": 4, "conditioning": "cross_attention", "text_dim": 64, **dit_options})
    return CalibrationCase("dit", "dit_forward", ModelSpec(dit=dit, vae=vae, text_encoder=te, text_tokens=8),
                           VideoSpec(width=16, height=16, num_frames=5))


def _calls(case: CalibrationCase) -> tuple[collections.Counter[str], list]:
    """ATen calls of the case's reference forward per block (``blocks.{i}``) and top-level module, and its ledger."""
    module, inputs = case.module_and_inputs("cpu")
    count = _Count()
    for name, m in module.named_modules():
        top = name.split(".")[0] if not name.startswith("blocks.") else ".".join(name.split(".")[:2])
        m.register_forward_pre_hook(lambda mod, a, top=top: count.stack.append(top or "<top>"))
        m.register_forward_hook(lambda mod, a, o: (count.stack.pop(), None)[1])
    with torch.inference_mode(), count:
        module(*inputs)
    return count.calls, [op for op in dit_ops(case.model, case.video) if op.op != "parameter"]


def _counted(options: dict[str, object]) -> tuple[int, int, int, int]:
    """(measured, ledger) ATen calls of block 1 and of the whole forward."""
    calls, ops = _calls(_case(**options))
    block = sum(aten_calls(op) for op in ops
                if op.blocks is not None and 1 in op.blocks and op.path.startswith("blocks."))
    return calls["blocks.1"], block, sum(calls.values()), sum(aten_calls(op) * op.instances for op in ops)


@pytest.mark.parametrize("options,block,forward", [
    ({"rope": "video"}, 30, 98),  # 3D RoPE on q and k: 15 calls each per block; the tables, 38 calls per forward
    ({"rope": "all", "conditioning": "joint", "text_proj": "linear"}, 30, 100),  # the whole joint sequence; text rows
    ({"rope": "video", "conditioning": "joint", "text_proj": "linear"}, 36, 110),  # text spared: 2 slices, a cat
    ({"rope": "temporal", "attention_layout": "factorized"}, 30, 46),  # 1D tables (16 calls), temporal block 1 only
])
def test_eager_table_counts_the_aten_calls_of_rope(options, block, forward):
    """RoPE (diffusers' eager apply_rotary_emb in the reference): the ATen calls it adds to the forward, measured
    against the same model without it, are those its ledger ops and table entries account for; by hand: a rotation is
    reshape, unbind, neg, stack, flatten, 4 unsqueeze, 3 casts (no-ops in fp32, dispatched), 2 mul, add (15 calls),
    the 3D tables 38 calls (40 with text rows at position 0), the 1D tables 16."""
    with_rope, without = _counted(options), _counted({**options, "rope": "none"})
    measured_block, ledger_block, measured, ledger = (a - b for a, b in zip(with_rope, without, strict=True))
    assert measured_block == ledger_block == block
    assert measured == ledger == forward


def test_eager_table_counts_the_aten_calls_of_the_reference_dit():
    calls, ops = _calls(_case())
    per_block = sum(aten_calls(op) for op in ops if op.path.startswith("blocks."))  # one record per op for all blocks
    # each block dispatches the same calls: 19 ledger ops, 44 ATen calls (by hand from reference_model/dit.py and
    # layers.py: modulation 5 each, gated residual 3 each, self-attention core 6, cross-attention core 8, adaLN linear
    # and chunk 2, the other 12 ops one each)
    assert calls["blocks.0"] == calls["blocks.1"] == per_block == 44
    whole = sum(aten_calls(op) * op.instances for op in ops)
    # the whole forward: 169 ATen calls, each accounted for by a ledger op or a table entry
    assert sum(calls.values()) == whole == 169


def test_eager_extras_move_the_intermediates():
    ops = {op.path: op for op in dit_ops(_case().model, _case().video)}
    mod = ops["blocks.{i}.modulate_attn"]
    # x * (1 + scale) + shift: the product (rows x d = 12 x 64) written and read again
    assert eager_extra(mod) == (2, 2, 2 * 12 * 64)
    core = ops["blocks.{i}.attn.core"]
    # the transposed output copied contiguous: groups x heads x q_len x head_dim = 1 x 2 x 12 x 32, written and read
    assert eager_extra(core) == (1, 5, 2 * 2 * 12 * 32)


@pytest.mark.parametrize("shape,c_out,kernel,stride", [
    ((1, 64, 7, 32, 32), 64, (3, 3, 3), 1),  # 1 x 64 x 7 x 32 = 14336 <= 20480: native
    ((1, 64, 7, 64, 64), 64, (3, 3, 3), 1),  # 28672: oneDNN
    ((2, 32, 7, 8, 8), 32, (3, 3, 3), 1),  # batch 2: oneDNN
    ((1, 64, 5, 64, 64), 32, (1, 1, 1), 1),  # 1x1 kernel, one thread, stride 1: native
    ((1, 16, 4, 16, 16), 64, (1, 2, 2), (1, 2, 2)),  # strided patchify, small: native
])
def test_cpu_conv_algorithm_rule_matches_the_kernel_torch_runs(shape, c_out, kernel, stride):
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        x, w = torch.randn(*shape), torch.randn(c_out, shape[1], *kernel)
        ran = _algorithm(partial(F.conv3d, x, w, stride=stride))
    finally:
        torch.set_num_threads(threads)
    strided = stride != 1
    assert ran == torch_cpu_conv_algorithm(shape[0], shape[1], shape[2], shape[3], kernel, strided, 1)


def test_the_grid_model_picks_the_same_conv_algorithm_as_the_per_call_model():
    """A VAE decode whose convs run both algorithms on this machine's measured profile (oneDNN at 64 channels and
    7 x 64 x 64, native below): the vectorised model equals the per-call one, and both use each family's points
    (warm ones: its weights fit in the last-level cache)."""
    from sora_compute.evaluate.time import op_times, predict_seconds
    from sora_compute.evaluate.time_grid import forward_seconds
    from sora_compute.flops import count_vae_decode
    from sora_compute.hardware.profiles import load_profile

    folder = Path(__file__).resolve().parents[1] / "sora_compute" / "hardware" / "measured"
    measured = sorted(folder.glob("cpu-*.yaml"))
    prof = load_profile(str(measured[-1]))
    vae = vae_spec(latent_channels=4, block_out_channels=(32, 64, 64), spatial_compression=4, temporal_compression=2,
                   norm_groups=8, causal=True)
    model = ModelSpec(dit=DiTSpec(depth=1, hidden_size=8, num_heads=1, in_channels=4), vae=vae)
    ops = list(count_vae_decode(model, VideoSpec(width=64, height=64, num_frames=5)).terms)
    one = predict_seconds(ops, prof, dtype="fp32", attention_kernel="flash_cpu")
    assert forward_seconds(ops, prof, "fp32", "flash_cpu")[0] == pytest.approx(one, rel=1e-12)
    basis = set(op_times(ops, prof, dtype="fp32", attention_kernel="flash_cpu")["basis"])
    # its weights (0.5 MiB in fp32) fit in the 32 MiB last-level cache: the warm-weight points
    assert {"conv table (mkldnn points, by dims) (weights warm)",
            "conv table (native points, by dims) (weights warm)"} <= basis
