"""The op ledger: one block schedule, one registry, evaluators that read the ledger (FLOPs, parameters, traffic)."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sora_compute import count_dit, load_preset
from sora_compute.calibration.build import build_dit
from sora_compute.evaluate.flops import count_ops
from sora_compute.evaluate.traffic import traffic_by_op, traffic_bytes
from sora_compute.ledger import DiTShape, dit_ledger
from sora_compute.ledger.formulas import FVCORE, MATMUL_ONLY
from sora_compute.ledger.ops import attention_op, elementwise_op, linear_op
from sora_compute.ledger.registry import lookup, register, registered
from sora_compute.specs import DiTSpec

from .strategies import dit_specs

BLOCK_CLASSES = {"full": "DiTBlock", "spatial": "DiTBlock", "temporal": "DiTBlock", "sparse": "DiTBlock",
                 "dual": "DualStreamBlock", "single": "SingleStreamBlock", "asymmetric": "AsymmetricJointBlock",
                 "asymmetric_last": "AsymmetricJointBlock"}


@given(dit_specs())
def test_block_schedule_covers_every_block_once_and_drives_the_reference(spec: DiTSpec):
    schedule = spec.block_schedule()
    indices = sorted(i for _, blocks in schedule for i in blocks)
    assert indices == list(range(spec.num_blocks))
    model = build_dit(spec, "meta")
    for mode, blocks in schedule:
        for i in blocks:
            block = model.blocks[i]
            assert type(block).__name__ == BLOCK_CLASSES[mode]
            if mode in ("spatial", "temporal", "sparse"):
                assert block.mode == mode


@pytest.mark.parametrize("name, expected", [
    ("open-sora-plan", (("full", range(0, 2)), ("sparse", range(2, 30)), ("full", range(30, 32)))),
    ("hunyuanvideo", (("dual", range(0, 20)), ("single", range(20, 60)))),
    ("mochi-1", (("asymmetric", range(0, 47)), ("asymmetric_last", range(47, 48)))),
    ("latte", (("spatial", range(0, 28, 2)), ("temporal", range(1, 28, 2)))),
])
def test_block_schedules_of_presets(name, expected):
    """Open-Sora-Plan v1.3: Skiparse in blocks 2-29 of 32; HunyuanVideo 20 dual + 40 single; Mochi's last block
    does not update the text; Latte alternates spatial and temporal blocks."""
    assert load_preset(name).model.dit.block_schedule() == expected


def test_registry_refuses_a_second_builder_and_names_close_ones():
    assert {"full", "spatial", "temporal", "sparse", "dual", "single"} <= set(registered("dit_block"))
    with pytest.raises(ValueError, match="registered twice"):
        register("dit_block", "full")(lambda *a: [])
    with pytest.raises(KeyError, match="did you mean sparse"):
        lookup("dit_block", "sparce")


def test_elementwise_work_is_in_the_ledger_but_not_in_the_flop_count():
    spec = DiTSpec(depth=2, hidden_size=32, num_heads=4, mlp_ratio=2.0, in_channels=4, patch_size=(1, 2, 2))
    ops = dit_ledger(spec, DiTShape(B=3, T=2, H=3, W=5))
    kinds = {op.op for op in ops}
    assert {"elementwise", "embedding"} <= kinds
    count = count_ops("dit_forward", ops, FVCORE)
    assert all(t.op not in ("elementwise", "embedding") for t in count.terms)
    assert count.macs == count_dit_macs(spec, 3, 30)


def count_dit_macs(spec: DiTSpec, B: int, N: int) -> int:
    """Hand-derived MACs of a class-conditioned adaLN-Zero DiT (d = 32, m = 64, 4 heads, p = 4, C = 4, f = 256)."""
    d, m, p, C, f, depth = 32, 64, 4, 4, 256, 2
    block = (6 * d * d * B  # adaLN
             + 2 * 4 * B * N * d  # two LayerNorms without affine: 4 per element
             + 3 * d * d * B * N + 2 * B * N * N * d + d * d * B * N  # qkv, core, proj
             + 2 * d * m * B * N)  # MLP
    embed = C * d * p * B * N + (f * d + d * d) * B
    final = 2 * d * d * B + 4 * B * N * d + d * p * 2 * C * B * N
    return embed + depth * block + final


def test_traffic_counts_elementwise_bytes_by_hand():
    """One class-conditioned block at B = 1, N tokens, d wide, m MLP: the elementwise ops move SiLU(c) 2d,
    two modulations 2 (2 N d + 2 d), two gated residuals 2 (3 N d + d), and GELU 2 N m elements."""
    d, m, N = 32, 64, 30
    spec = DiTSpec(depth=1, hidden_size=d, num_heads=4, mlp_ratio=2.0)
    ops = [op for op in dit_ledger(spec, DiTShape(B=1, T=2, H=3, W=5)) if op.blocks is not None]
    elementwise = [op for op in ops if op.op == "elementwise"]
    assert traffic_bytes(elementwise, 2) == 2 * (2 * d + 2 * (2 * N * d + 2 * d) + 2 * (3 * N * d + d) + 2 * N * m)
    # everything else: the counted ops' minimum traffic, as the FLOP count's terms carry it
    counted = count_ops("block", ops, MATMUL_ONLY)
    assert traffic_bytes(ops, 2) == traffic_bytes(elementwise, 2) + 2 * counted.elements
    by_op = traffic_by_op(ops)
    assert sum(by_op["bytes"]) == traffic_bytes(ops, 2)
    assert by_op["share"].sum() == pytest.approx(1.0)


def test_ledger_is_vectorised_like_the_counts():
    """The ledger takes numpy shapes too: the sweep path is the same code, equal to the exact count."""
    import numpy as np
    p = load_preset("sora")
    grid = p.model.latent_shape(p.video)
    T = np.array([grid.tokens_t, 2 * grid.tokens_t], dtype=np.float64)
    ops = dit_ledger(p.model.dit, DiTShape(1, T, grid.tokens_h, grid.tokens_w, p.model.num_text_tokens))
    macs = count_ops("dit", ops, FVCORE).macs
    assert macs[0] == pytest.approx(count_dit("sora").macs, rel=1e-12)
    assert macs[1] > 2 * macs[0]  # attention is quadratic in tokens


def test_saved_activations_of_one_block_by_hand():
    """A class-conditioned adaLN block at B = 1 on N tokens, d wide, m MLP, h heads, bf16 with fp32 statistics:
    no checkpointing keeps 12 N d + 2 N m activations (input, norm1 out, modulated, qkv 3, attention out, projection
    out, residual, norm2 out, modulated, MLP out; fc1 and GELU outputs), SiLU(c) d + modulation 6 d + 2 (1 + scale) d
    per sample, four statistics per row and the fused core's log-sum-exp (h N); selective drops the log-sum-exp;
    full keeps the block input N d only."""
    from sora_compute.evaluate.saved import ActivationDtypes, dit_block_saved

    d, m, h, N = 32, 64, 4, 30
    spec = DiTSpec(depth=2, hidden_size=d, num_heads=h, mlp_ratio=2.0)
    dt = ActivationDtypes(2, 4)
    none = sum(dit_block_saved(spec, (2, 3, 5), 0, 1, "full", "none", "fused", dt).values())
    assert none == (12 * N * d + 2 * N * m + 9 * d) * 2 + 4 * N * 4 + h * N * 4
    selective = sum(dit_block_saved(spec, (2, 3, 5), 0, 1, "full", "selective", "fused", dt).values())
    assert none - selective == h * N * 4
    assert dit_block_saved(spec, (2, 3, 5), 0, 1, "full", "full", "fused", dt) == {
        "block input (kept for recomputation)": N * d * 2}
    materialized = sum(dit_block_saved(spec, (2, 3, 5), 0, 1, "full", "none", "materialized", dt).values())
    assert materialized - selective == h * N * N * 2  # probabilities instead of the log-sum-exp


@given(st.integers(1, 3), st.integers(1, 40), st.sampled_from([8, 16, 48]), st.sampled_from([4, 32, 96]),
       st.sampled_from(["gelu_tanh", "swiglu"]))
def test_mlp_peak_from_the_ledger_dataflow_equals_measurement(B, N, d, m, act):
    """The liveness evaluator over the MLP's dataflow equals the live-tensor tracker on the reference module, byte
    for byte (fp32, no gradients): GELU's input is freed after GELU; SwiGLU holds SiLU(w1 x), w3 x and the product."""
    import torch

    from reference_model.layers import Mlp, SwiGLU
    from sora_compute.calibration.measure import peak_live_bytes
    from sora_compute.evaluate.liveness import Segment, segment_peak
    from sora_compute.ledger.dit import mlp

    spec = DiTSpec(depth=1, hidden_size=d, num_heads=1, mlp_hidden_size=m, mlp_act=act)
    module = SwiGLU(d, m) if act == "swiglu" else Mlp(d, m)
    x = torch.randn(B, N, d)
    with torch.no_grad():
        measured, _ = peak_live_bytes(lambda: module(x))
    ops = mlp(spec, "blocks.0", B * N, d, m)
    predicted = segment_peak(Segment(ops, {"mlp_in": B * N * d}), act_bytes=4) - B * N * d * 4  # input made before
    assert predicted == measured


def test_liveness_views_keep_their_base_and_scratch_is_transient():
    """qkv (3 n) with q, k, v as views: the base lives until the last view is read; a core with scratch s."""
    from sora_compute.evaluate.liveness import Segment, segment_peak
    from sora_compute.ledger.ops import flow

    n, s = 10, 7
    qkv = flow(linear_op("qkv", "attention_proj", 1, 1, 1), "x", "qkv", 3 * n)
    q = flow(elementwise_op("q", "view", 0, 0), "qkv", "q", view_of="qkv")
    core = flow(attention_op("core", "attention", 1, 1, 1, 1, 1), "q", "o", n, scratch=s)
    proj = flow(linear_op("proj", "attention_proj", 1, 1, 1), "o", "y", n)
    seg = Segment([qkv, q, core, proj], {"x": n}, released=frozenset({"x"}))
    # x + qkv (4 n); core: qkv + o + scratch (x freed after qkv); proj: o + y (qkv freed after the core)
    assert segment_peak(seg, act_bytes=1) == max(4 * n, 3 * n + n + s, 2 * n)


def test_ledger_peak_holds_a_runs_inputs_to_its_end_and_frees_the_rest():
    """A tensor made before a run of repeated blocks and read inside it (the layer input; a position table) lives to
    the run's end; a name made again is a new tensor; scratch lives only during its op; views share storage."""
    from sora_compute.evaluate.liveness import ledger_peak
    from sora_compute.ledger.ops import flow

    n, t, s = 10, 3, 7
    run = range(4)
    ops = [flow(elementwise_op("embed", "e", 0, n), (), "x", n),
           flow(elementwise_op("table", "e", 0, t), (), "table", t),
           flow(elementwise_op("l.{i}.a", "e", n, n, run), ("x", "table"), "a", n),
           flow(elementwise_op("l.{i}.v", "e", 0, 0, run), "a", "av", view_of="a"),
           flow(elementwise_op("l.{i}.b", "e", n, n, run), "av", "b", n, scratch=s),
           flow(elementwise_op("l.{i}.out", "e", n, n, run), "b", "x", n),
           flow(elementwise_op("final", "e", n, n), "x", "y", n)]
    # in the run: x and the table held; at b: a (its view is read by b), b and the scratch; at out: b and the new x
    assert ledger_peak(ops, act_bytes=1) == max(n + t + 2 * n + s, n + t + 2 * n)
    # a tensor nobody reads is freed once made: x and y at the final op
    assert ledger_peak(ops[:2] + ops[-1:], act_bytes=1) == 2 * n


@pytest.mark.parametrize("released", [False, True])
def test_a_segment_is_a_ledger_run_on_held_inputs(released):
    """One walk: a segment's inputs are tensors made before a run (held to its end, or dropped by their holder and
    freed after their last read), so ``segment_peak`` and ``ledger_peak`` agree; both count a materialised core's
    scratch. q and out: 2 heads x 3 rows x 2 = 12 elements, qkv 36; the core's scores 2 x 3 x 3 = 18 beside the
    contiguous q and k copies 2 x 6 x 2 = 24: scratch 18 + 24 - 12 (the output, counted already) = 30."""
    from sora_compute.evaluate.liveness import Segment, ledger_peak, segment_peak
    from sora_compute.ledger.ops import flow, revise

    n, run = 12, range(2)
    qkv = flow(linear_op("b.{i}.qkv", "attention_proj", 3, 4, 12, run), "x", "qkv", 3 * n)
    if released:
        qkv = revise(qkv, flow=qkv.flow._replace(drops=("x",)))
    q = flow(elementwise_op("b.{i}.q", "view", 0, 0, run), "qkv", "q", view_of="qkv")
    core = flow(attention_op("b.{i}.core", "attention", 1, 2, 3, 3, 2, run), "q", "o", n)
    proj = flow(linear_op("b.{i}.proj", "attention_proj", 3, 4, 4, run), "o", "y", n)
    block = [qkv, q, core, proj]
    seg = Segment(block, {"x": n}, frozenset({"x"}) if released else frozenset())
    ledger = [flow(elementwise_op("embed", "e", 0, n), (), "x", n), *block]
    x = 0 if released else n  # x at the core: held, or freed after qkv read it
    for kernel, scratch in (("fused", 0), ("materialized", 30)):
        expected = max(n + 3 * n, x + 3 * n + n + scratch)  # at qkv: x and qkv; at the core: qkv, o and scratch
        assert segment_peak(seg, act_bytes=1, kernel=kernel) == expected
        assert ledger_peak(ledger, act_bytes=1, kernel=kernel) == expected
