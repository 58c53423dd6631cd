"""CogVideoX as diffusers runs it (2024): the copies and elementwise steps of its code that the ledger prices, by
hand from diffusers' autoencoder_kl_cogvideox.py / cogvideox_transformer_3d.py (at 8336405e50), and the PyTorch
behaviours they rest on, measured with a TorchDispatchMode."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch.utils._python_dispatch import TorchDispatchMode

from sora_compute.evaluate.eager import eager_extra
from sora_compute.flops import dit_ops
from sora_compute.ledger.vae import vae_decoder_ledger
from sora_compute.presets import load_preset
from sora_compute.specs import CogVideoXVAE


class _Calls(TorchDispatchMode):
    def __init__(self) -> None:
        super().__init__()
        self.calls: list[str] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # type: ignore[no-untyped-def]
        self.calls.append(str(func))
        return func(*args, **(kwargs or {}))


def _decoder() -> dict:
    # two levels (64 -> 32 channels), one temporal: latent (3, 4, 6) -> (5, 8, 12); 4 latent channels
    spec = CogVideoXVAE(in_channels=3, latent_channels=4, spatial_compression=2, temporal_compression=2,
                        block_out_channels=(32, 64), layers_per_block=1, norm_groups=8)
    return {op.path: op for op in vae_decoder_ledger(spec, (3, 4, 6))}


def test_a_causal_conv_prices_its_cat_and_zero_pad():
    ops = _decoder()
    # conv_in on the latent, c = 4, (T, H, W) = (3, 4, 6): the cat writes 4 x (3 + 2) x 4 x 6 = 480 and the pad reads
    # them and writes 4 x 5 x 6 x 8 = 960
    pad = ops["conv_in.pad"]
    assert (pad.dims["read"], pad.dims["written"]) == (2 * 480, 480 + 960)
    # conv_out at the output grid (5, 8, 12), 32 channels: 32 x 7 x 96 framed, 32 x 7 x 10 x 14 padded
    pad = ops["conv_out.pad"]
    assert (pad.dims["read"], pad.dims["written"]) == (2 * 32 * 7 * 96, 32 * 7 * 96 + 32 * 7 * 140)
    # every 3x3x3 causal conv has one, the spatial norms' kernel-1 convs one each (conv_y, conv_b)
    k3 = [p for p, op in ops.items() if op.op == "conv3d" and op.dims["kernel"] == (3, 3, 3)]
    assert all(p.removesuffix(".conv") + ".pad" in ops for p in k3)
    unit = [p for p, op in ops.items() if p.endswith((".conv_y", ".conv_b"))]
    assert unit and all(p + ".pad" in ops for p in unit)


def test_spatial_norm_silu_residual_and_up_sampler_copies():
    ops = _decoder()
    n = 64 * 3 * 4 * 6  # the deepest level: 64 channels on the latent grid
    combine = ops["up.0.resnets.{i}.norm1.combine"]  # norm_f * conv_y(zq) + conv_b(zq): reads 3 n, writes n
    assert (combine.dims["read"], combine.dims["written"]) == (3 * n, n)
    assert eager_extra(combine, 2) == (1, 0, 2 * n)  # the product written and read again
    assert ops["up.0.resnets.{i}.norm2.silu"].elements == 2 * n
    assert ops["up.0.resnets.{i}.residual"].elements == 3 * n  # h + x
    # the kernel-1 convs' copies of the resized latent (4 channels): a clone and a pad by zeros, each read and written
    assert ops["up.0.resnets.{i}.norm1.conv_y.pad"].elements == 4 * 4 * 3 * 4 * 6
    # the temporal up-sampler at odd T = 3: the first frame and the rest concatenated (5 frames at 8 x 12), then
    # permuted and reshaped to frames: a copy each
    up = 64 * 5 * 8 * 12
    assert ops["up.0.resample.cat"].elements == ops["up.0.resample.to_frames"].elements == 2 * up
    # the next level reads the conv's permuted output: GroupNorm and the 64 -> 32 shortcut copy it contiguous
    assert ops["up.1.resnets.0.norm1.contiguous"].elements == ops["up.1.resnets.0.shortcut.contiguous"].elements \
        == 2 * up


def test_the_copies_rest_on_what_pytorch_dispatches():
    # a GroupNorm of a permuted tensor (the up-sampler's output) clones it first; F.pad by zeros returns a copy
    x, norm = torch.randn(1, 3, 32, 4, 5).permute(0, 2, 1, 3, 4), torch.nn.GroupNorm(8, 32)
    with _Calls() as calls:
        norm(x)
    assert calls.calls[:2] == ["aten.clone.default", "aten.native_group_norm.default"]
    y = torch.randn(1, 4, 3, 5, 6)
    assert F.pad(y, (0, 0, 0, 0)).data_ptr() != y.data_ptr()


def test_joint_blocks_price_two_concatenations_and_strided_qk_norm_inputs():
    model = load_preset("cogvideox-5b")
    ops = {op.path: op for op in dit_ops(model, batch=2)}
    rows, d = 2 * (17550 + 226), 3072  # CFG batch of 2: 13 x 30 x 45 video tokens and 226 text tokens per sample
    for name in ("attn", "mlp"):
        cat = ops[f"blocks.{{i}}.{name}.concat"]
        assert (cat.instances, cat.elements) == (42, 2 * rows * d)
    # nn.LayerNorm(head_dim) on q.transpose(1, 2): layer_norm copies its input contiguous first (written, read)
    for qk in ("q", "k"):
        assert eager_extra(ops[f"blocks.{{i}}.attn.norm_{qk}.norm"]) == (0, 0, 2 * rows * d)
    # models without joint blocks have neither
    wan = {op.path for op in dit_ops(load_preset("wan2.1-1.3b"))}
    assert "blocks.{i}.attn.concat" not in wan
