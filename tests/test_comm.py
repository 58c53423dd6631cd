"""The communication model, every number derived by hand from the topology figures (evaluate/comm.py): bus bytes of
each collective, the link tier crossed (NVSwitch, PCIe, NICs pooled or not), latency, explicit overlap."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sora_compute.evaluate.comm import (
    COLLECTIVES,
    Group,
    bus_bytes,
    bus_factor,
    busbw_gbps,
    collective_seconds,
    latency_seconds,
    overlap,
    topology_of,
)
from sora_compute.hardware.profiles import Topology, load_profile

H100 = load_profile("h100-sxm")  # 8 GPUs/node, intra 460 GB/s, 10 us; 8 NICs x 46 GB/s; 15 us per node doubling
L40S = load_profile("l40s")  # 8 GPUs/node on PCIe, 20 GB/s, 40 us; 2 NICs x 23 GB/s


def test_h100_topology_figures():
    t = topology_of(H100)
    assert (t.gpus_per_node, t.intra_busbw_gbps, t.intra_latency_us, t.nics_per_node, t.nic_gbps,
            t.inter_latency_us) == (8, 460, 10, 8, 46, 15)
    assert t.nic_share_gbps == 46.0  # 8 x 46 / 8
    assert topology_of(L40S).intra_link == "pcie" and topology_of(L40S).nic_share_gbps == 5.75  # 2 x 23 / 8


def test_bus_factors_are_nccl_tests():
    assert bus_factor("all_reduce", 8) == pytest.approx(1.75)  # 2 x 7 / 8
    for kind in ("all_gather", "reduce_scatter", "all_to_all"):
        assert bus_factor(kind, 8) == pytest.approx(0.875)  # 7 / 8
    assert bus_factor("p2p", 2) == 1.0 and bus_factor("all_reduce", 1) == 0.0
    assert bus_bytes("all_reduce", 1000.0, 4) == pytest.approx(1500.0)  # 2 x 3 / 4 x 1000
    with pytest.raises(ValueError, match="collective"):
        bus_factor("broadcast_all", 8)


def test_all_reduce_in_one_h100_node():
    # 1 GiB on 8 GPUs: 10 us + 1.75 x 2^30 B / 460e9 B/s = 10e-6 + 4.084891e-3 s
    s = collective_seconds("all_reduce", 2**30, Group.in_node(8), H100)
    assert s == pytest.approx(10e-6 + 1.75 * 2**30 / 460e9)
    assert s == pytest.approx(4.094891e-3, rel=1e-6)


def test_ring_collective_across_nodes_pools_the_nodes_nics():
    # 16 ranks, 8 per node, 2 nodes: busbw = min(460, 8 x 46) = 368 GB/s; latency 10 + 15 x log2(2) = 25 us
    g = Group(16, 8)
    assert busbw_gbps("all_gather", g, H100) == 368.0
    assert latency_seconds(g, H100) == pytest.approx(25e-6)
    assert collective_seconds("all_gather", 1e9, g, H100) == pytest.approx(25e-6 + 15 / 16 * 1e9 / 368e9)
    # one rank per node (a DP group across 64 nodes): its own NIC, 46 GB/s; latency 10 + 15 x 6 = 100 us
    dp = Group(64, 1)
    assert busbw_gbps("reduce_scatter", dp, H100) == 46.0
    assert collective_seconds("reduce_scatter", 1e9, dp, H100) == pytest.approx(100e-6 + 63 / 64 * 1e9 / 46e9)


def test_all_to_all_across_nodes_cannot_pool_nics():
    # 16 ranks, 8 per node: each rank sends 8/16 of its buffer off-node over its own 46 GB/s and 7/16 inside the
    # node at 460 GB/s, both at once: 1e9 x 0.5 / 46e9 = 10.870 ms (> 7/16 / 460e9 x 1e9 = 0.951 ms) + 25 us
    g = Group(16, 8)
    s = collective_seconds("all_to_all", 1e9, g, H100)
    assert s == pytest.approx(25e-6 + 0.5e9 / 46e9)
    # busbw reported against the (n-1)/n factor: 15/16 / (0.5 / 46) = 86.25 GB/s, below the all-gather's 368
    assert busbw_gbps("all_to_all", g, H100) == pytest.approx(86.25)
    assert s > collective_seconds("all_gather", 1e9, g, H100)
    # inside a node it is the intra-node figure
    assert collective_seconds("all_to_all", 1e9, Group.in_node(8), H100) == pytest.approx(10e-6 + 0.875e9 / 460e9)


def test_pcie_gpus_use_the_pcie_tier():
    # 100 MB all-reduce on 8 L40S: 40 us + 1.75 x 1e8 / 20e9 = 8.79 ms, 19.6x the H100 node's time
    s = collective_seconds("all_reduce", 1e8, Group.in_node(8), L40S)
    assert s == pytest.approx(40e-6 + 1.75e8 / 20e9)
    assert s / collective_seconds("all_reduce", 1e8, Group.in_node(8), H100) > 19


def test_p2p_across_nodes_is_one_nic_share():
    # 1 GB between two nodes (a pipeline stage boundary): 25 us + 1e9 / 46e9
    assert collective_seconds("p2p", 1e9, Group(2, 1), H100) == pytest.approx(25e-6 + 1e9 / 46e9)
    assert collective_seconds("p2p", 1e9, Group.in_node(2), H100) == pytest.approx(10e-6 + 1e9 / 460e9)


def test_message_size_efficiency_is_half_at_latency_times_bandwidth():
    # achieved busbw = bus bytes / seconds = 460 / (1 + latency x 460e9 / bus bytes): half where bus bytes = 4.6e6
    nbytes = 10e-6 * 460e9 / 1.75
    s = collective_seconds("all_reduce", nbytes, Group.in_node(8), H100)
    assert 1.75 * nbytes / s / 1e9 == pytest.approx(230.0)
    small = collective_seconds("all_reduce", 8.0, Group.in_node(8), H100)
    assert small == pytest.approx(10e-6, rel=1e-4)  # latency bound


def test_group_of_one_and_no_bytes_cost_nothing():
    for kind in COLLECTIVES:
        assert collective_seconds(kind, 1e9, Group(1, 1), H100) == 0.0
        assert collective_seconds(kind, 0.0, Group.in_node(8), H100) == 0.0


def test_group_placement():
    assert Group.placed(64, 8, 8) == Group(64, 1)  # a DP group outside TP=8: one rank per node
    assert Group.placed(4, 2, 8) == Group(4, 4)  # a CP group of 4 inside TP=2: all in one node
    assert Group.placed(16, 2, 8) == Group(16, 4)  # 4 nodes of 4
    assert Group.placed(8, 1, 8) == Group(8, 8)
    with pytest.raises(ValueError, match="per_node"):
        Group(8, 3)


def test_bad_input_is_a_clear_error():
    with pytest.raises(ValueError, match="nbytes"):
        collective_seconds("all_reduce", float("nan"), Group.in_node(8), H100)
    with pytest.raises(ValueError, match="nbytes"):
        collective_seconds("all_reduce", -1.0, Group.in_node(8), H100)
    cpu = H100.model_copy(update={"topology": None, "key": "made-up"})
    with pytest.raises(ValueError, match="no topology"):
        collective_seconds("all_reduce", 1.0, Group.in_node(8), cpu)


def test_overlap_is_explicit():
    # compute 10 s with 4 s of comm behind it: compute slows by 0.1 x 4 -> 10.4 s, 0.4 s exposed
    assert overlap(10.0, 4.0) == pytest.approx((10.4, 0.4))
    # comm longer than compute: the comm sets the time, 3 s of it exposed
    assert overlap(2.0, 5.0) == pytest.approx((5.0, 3.0))
    assert overlap(3.0, 0.0) == (3.0, 0.0)


@settings(max_examples=40, deadline=None)
@given(kind=st.sampled_from(COLLECTIVES), nodes=st.sampled_from([1, 2, 4, 64]),
       per=st.sampled_from([1, 2, 4, 8]), nbytes=st.floats(0, 1e11))
def test_vectorised_equals_scalar_and_more_bytes_take_longer(kind, nodes, per, nbytes):
    g = Group(nodes * per, per)
    one = collective_seconds(kind, nbytes, g, H100)
    arr = collective_seconds(kind, np.array([nbytes, 2 * nbytes]), Group(np.array([nodes * per] * 2),
                                                                          np.array([per, per])), H100)
    assert arr[0] == pytest.approx(one) and arr[1] >= arr[0]
    assert np.isfinite(one) and one >= 0


def test_topology_schema_rejects_bad_values():
    good = topology_of(H100).model_dump()
    with pytest.raises(ValueError):
        Topology.model_validate({**good, "nic_gbps": float("inf")})
    with pytest.raises(ValueError):
        Topology.model_validate({**good, "gpus_per_node": 0})
