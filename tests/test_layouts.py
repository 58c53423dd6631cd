"""The training layout search (planning/layouts.py): the enumeration's rules, a layout that does not fit is never
recommended, the ranking does not depend on the enumeration order, pins, strong scaling that bends."""

from __future__ import annotations

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import sora_compute.planning.layouts as lm
from sora_compute.planning.layouts import enumerate_layouts, search_training_layouts, strong_scaling
from sora_compute.presets import load_preset
from sora_compute.specs import Workload

DIT = load_preset("dit-xl-2")  # 16 heads, 28 blocks: small enough to search in tests
W = Workload.of(DIT.model, DIT.video)
HUNYUAN = load_preset("hunyuanvideo")


def test_enumeration_rules():
    df = enumerate_layouts(16, 32, heads=6, blocks=12, gpus_per_node=8, micro_batches=(1, 2), zero_stages=(0, 3),
                           checkpointing=("full",), kernels=("fa2",))
    assert len(df) and (df["tp"] * df["cp_ulysses"] * df["cp_ring"] * df["pp"] * df["dp"] == 16).all()
    assert set(df["tp"]) <= {1, 2, 3, 6} and (6 % (df["tp"] * df["cp_ulysses"]) == 0).all()  # heads divide
    assert not ((df["pp"] > 1) & (df["zero"] >= 2)).any()  # no ZeRO-2/3 with PP
    assert (32 % (df["dp"] * df["micro_batch"]) == 0).all()  # whole micro-batches
    inter = df[df["vpp"] > 1]
    assert len(inter) and (12 % (2 * inter["pp"]) == 0).all()
    assert ((32 // (inter["dp"] * inter["micro_batch"])) % inter["pp"] == 0).all()


def test_hunyuanvideo_on_four_h100_needs_sharding_over_cp():
    s = search_training_layouts(HUNYUAN.model, HUNYUAN.video, "h100-sxm", 4, 4, checkpointing=("full",),
                                kernels=("fa2",))
    best = s.best
    assert best is not None and best["fits"] and best["zero"] == 3 and best["cp"] == 4
    assert s.table.iloc[0]["why_not_best"] == "best"
    assert (s.table.loc[~s.table["fits"], "why_not_best"] == "does not fit").all()


@settings(max_examples=12, deadline=None)
@given(gpus=st.sampled_from([1, 2, 8, 16, 64]), per_gpu=st.sampled_from([1, 2, 4]),
       gpu=st.sampled_from(["h100-sxm", "a100-40gb", "l40s", "rtx-4090"]))
def test_a_layout_that_does_not_fit_is_never_recommended(gpus, per_gpu, gpu):
    s = search_training_layouts(W, None, gpu, gpus, gpus * per_gpu, checkpointing=("none", "full"),
                                kernels=("fa2",), max_pp=4)
    if s.best is not None:
        assert s.best["fits"] and s.best["peak_GiB"] <= s.best["capacity_GiB"]
        assert s.top(5)["fits"].all()
        assert s.best["step_s"] == s.fitting["step_s"].min()
    else:
        assert not s.table["fits"].any()


def test_ranking_is_invariant_to_enumeration_order(monkeypatch):
    args = (W, None, "h100-sxm", 32, 64)
    kw = {"checkpointing": ("none", "full"), "kernels": ("fa2",)}
    base = search_training_layouts(*args, **kw).table
    original = lm.enumerate_layouts

    def shuffled(*a: object, **k: object) -> pd.DataFrame:
        return original(*a, **k).sample(frac=1.0, random_state=7).reset_index(drop=True)  # type: ignore[arg-type]

    monkeypatch.setattr(lm, "enumerate_layouts", shuffled)
    again = search_training_layouts(*args, **kw).table
    pd.testing.assert_frame_equal(base, again)


def test_equal_step_times_go_to_the_smaller_peak():
    """ZeRO-1 and ZeRO-2 move the same bytes, so their step times tie exactly; ZeRO-2 shards the gradients too, so
    the tie goes to it (the smaller peak), not to the smaller ZeRO number."""
    s = search_training_layouts(W, None, "h100-sxm", 16, 32, pin={"tp": 1, "pp": 1, "cp_ulysses": 1, "cp_ring": 1},
                                checkpointing=("full",), kernels=("fa2",))
    t = s.table[s.table["fits"] & (s.table["micro_batch"] == 1)]
    z1, z2 = (t[t["zero"] == z].iloc[0] for z in (1, 2))
    assert z1["step_s"] == z2["step_s"] and z2["peak_GiB"] < z1["peak_GiB"]
    assert t.index[t["zero"] == 2][0] < t.index[t["zero"] == 1][0]
    ties = s.table.groupby(["fits", "step_s"], sort=False)["peak_GiB"]
    assert ties.apply(lambda p: p.is_monotonic_increasing).all()


def test_pinned_fields_and_bad_pins():
    s = search_training_layouts(W, None, "h100-sxm", 16, 32, pin={"tp": 2, "zero": 1}, kernels=("fa2",))
    assert len(s.table) and (s.table["tp"] == 2).all() and (s.table["zero"] == 1).all()
    with pytest.raises(ValueError, match="pin: unknown layout field 'tensor'"):
        search_training_layouts(W, None, "h100-sxm", 16, 32, pin={"tensor": 2})
    with pytest.raises(ValueError, match="gpus"):
        search_training_layouts(W, None, "h100-sxm", 0)


def test_strong_scaling_bends():
    df = strong_scaling(HUNYUAN.model, HUNYUAN.video, "h100-sxm", [8, 64, 512], 64, checkpointing=("full",),
                        kernels=("fa2",), zero_stages=(1, 3))
    assert df["step_s"].is_monotonic_decreasing  # more GPUs, faster ...
    assert df["efficiency"].iloc[0] == pytest.approx(1.0)
    assert df["efficiency"].iloc[-1] < 1.0  # ... but not linearly (batch 64 on 512 GPUs: CP and comm)


def test_plan_layouts_cli():
    import json

    from tests.clirun import assert_one_line_error
    from tests.clirun import main as cli_run

    r = cli_run("plan", "sora", "--gpus", "64", "--layout", "zero=3", "--format", "json")
    assert r.code == 0, r.err
    doc = json.loads(r.out)
    assert doc["layouts_considered"] >= doc["layouts_fitting"] > 0
    best = doc["layout_best"]
    assert best["fits"] and best["zero"] == 3 and all(row["zero"] == 3 for row in doc["layouts"])
    assert doc["layouts"][0]["layout"] == best["layout"]
    t = cli_run("plan", "sora", "--gpus", "64", "--layout", "zero=3")
    assert t.code == 0 and f"best: {best['layout']}" in t.out
    assert_one_line_error(cli_run("plan", "sora", "--layout", "tensor=2"), "unknown field 'tensor'")


def test_validate_times_a_training_entry_with_the_layout_search(tmp_path):
    from sora_compute.planning.validate import validate
    from sora_compute.planning.validation import load_validation

    entry = {"entries": [{
        "id": "t", "model": "dit-xl-2", "kind": "training", "scope": "training_step", "gpu": "h100-sxm",
        "gpu_as_published": "H100", "gpus": 8, "resolution": [256, 256], "frames": 1, "tokens_per_second": 16384.0,
        "settings": {"global_batch": 64, "data_parallel": 8, "zero_stage": 1, "micro_batch": 8,
                     "checkpointing": "none"},
        "source": "made up for the test", "quote": "made up"}]}
    import yaml

    p = tmp_path / "v.yaml"
    p.write_text(yaml.safe_dump(entry))
    row = validate(load_validation(str(p))).table.iloc[0]
    # published: 64 samples x 256 tokens (256x256 / 8x8 VAE / 2x2 patch) / 16,384 tokens/s = 1.0 s per step
    assert row["status"] == "compared" and row["published_s"] == pytest.approx(1.0)
    s = search_training_layouts(W, None, "h100-sxm", 8, 64, kernels=("fa2",),
                                pin={"dp": 8, "zero": 1, "micro_batch": 8, "checkpointing": "none"})
    assert len(s.fitting) == 1 and row["predicted_s"] == pytest.approx(s.best["step_s"])
    assert row["error"] == pytest.approx(row["predicted_s"] - 1.0)
    assert "TP1 CP1u1r PP1 DP8 ZeRO-1 mb8 none fa2" in row["note"]


def test_plan_layouts_with_no_valid_layout_says_so():
    # 2^53 GPUs: any data-parallel size is at least 2^53 / (8 x 256 x 16) = 2^38, which cannot divide sora's
    # global batch, so the search has no row; the CLI says why (no traceback, no "more GPUs" advice)
    from tests.clirun import main
    r = main("plan", "sora", "--gpus", str(2**53), "--layouts")
    assert r.code == 0 and "0 layouts, 0 fit" in r.out and "no valid layout" in r.out
    assert "more GPUs" not in r.out
