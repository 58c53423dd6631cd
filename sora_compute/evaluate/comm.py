"""The communication model: seconds of one collective on a process group placed on a cluster of one GPU kind.

    seconds = latency(group) + bus_factor(kind, n) x nbytes / busbw(kind, group)

API (the whole of it):

- ``Group(size, per_node)``: ``size`` ranks, ``per_node`` of them in each node (``size`` when the group fits in one
  node; 1 when every rank is on its own node). ``Group.placed(size, stride, gpus_per_node)`` places a group whose
  ranks are ``stride`` apart in the global rank order (Megatron's order: TP innermost, then CP, DP, PP): a TP group
  has stride 1, a CP group stride TP, a DP group stride TP x CP, a PP group stride TP x CP x DP.
- ``collective_seconds(kind, nbytes, group, topology)`` with ``kind`` one of ``all_reduce``, ``all_gather``,
  ``reduce_scatter``, ``all_to_all``, ``p2p``. ``nbytes`` follows nccl-tests' "size" column: the whole buffer of one
  rank (all-reduce: the tensor; all-gather: the gathered OUTPUT; reduce-scatter: the unreduced INPUT; all-to-all:
  a rank's whole send buffer; p2p: the message). ``topology`` is a ``HardwareProfile`` or its ``Topology``.
- ``bus_bytes(kind, nbytes, n)``: the bytes each rank puts on the wire (nccl-tests' bus bandwidth factors):
  all-reduce 2 (n-1)/n x nbytes, all-gather / reduce-scatter / all-to-all (n-1)/n x nbytes, p2p nbytes.
- ``overlap(compute_s, comm_s)``: a step part where communication runs behind compute (explicit overlap).

Every function takes Python numbers or numpy arrays (elementwise, for the layout search) and returns the same.

Link tiers (``hardware/profiles/*.yaml`` ``topology``):

- a group inside one node: the intra-node bus bandwidth (NVSwitch / NVLink / xGMI / ICI, or PCIe on PCIe-only
  GPUs such as L40, L40S, L20, RTX 4090) and the intra-node latency;
- a ring collective (all-reduce, all-gather, reduce-scatter) across nodes: hierarchical rings cross each node
  boundary once per channel, so a node's ``per_node`` ranks pool their NIC shares:
  busbw = min(intra busbw, per_node x nic_share), nic_share = nics_per_node x nic_gbps / gpus_per_node;
- an all-to-all across nodes cannot pool NICs: each rank sends (n - per_node)/n of its buffer off-node over its own
  NIC share and (per_node - 1)/n inside the node, both at once:
  seconds = latency + max(nbytes (n - per_node)/n / nic_share, nbytes (per_node - 1)/n / intra busbw);
- p2p across nodes: one rank's NIC share.

Latency = intra_latency_us + inter_latency_us x log2(nodes) (a tree over nodes); it is the message-size dependent
efficiency: the achieved bus bandwidth at ``nbytes`` is busbw / (1 + latency x busbw / bus_bytes), half the peak
where bus_bytes = latency x busbw.

Units: bytes, seconds, GB/s (1e9 B/s) in the topology, microseconds for its latencies.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, TypeVar, get_args

import numpy as np

from sora_compute.hardware.profiles import HardwareProfile, Topology

__all__ = [
    "CollectiveKind",
    "COLLECTIVES",
    "Group",
    "bus_factor",
    "bus_bytes",
    "collective_seconds",
    "busbw_gbps",
    "latency_seconds",
    "overlap",
    "topology_of",
    "COMM_COMPUTE_SLOWDOWN",
]

CollectiveKind = Literal["all_reduce", "all_gather", "reduce_scatter", "all_to_all", "p2p"]
COLLECTIVES: tuple[str, ...] = get_args(CollectiveKind)
#: Fraction by which compute slows while a collective runs beside it (NCCL kernels take SMs and memory bandwidth).
#: ASSUMED 0.1: no kernel-level measurement with a citable source was found.
COMM_COMPUTE_SLOWDOWN = 0.1

N = TypeVar("N", float, np.ndarray)


def topology_of(profile: HardwareProfile | Topology) -> Topology:
    """The cluster topology of a profile (or the topology itself); a clear error when the profile has none."""
    if isinstance(profile, Topology):
        return profile
    if profile.topology is None:
        raise ValueError(f"gpu {profile.key}: no topology in its profile; multi-GPU timing needs one "
                         "(gpus_per_node, links, NICs: hardware/profiles/README.md)")
    return profile.topology


@dataclass(frozen=True)
class Group:
    """A process group: ``size`` ranks, ``per_node`` of them in each node it spans (ints or arrays of ints)."""

    size: int | np.ndarray
    per_node: int | np.ndarray

    def __post_init__(self) -> None:
        size, per = np.asarray(self.size), np.asarray(self.per_node)
        if np.any(size < 1) or np.any(per < 1) or np.any(per > size) or np.any(size % per):
            raise ValueError(f"group: per_node ({self.per_node}) must be in 1..size and divide size ({self.size})")

    @property
    def nodes(self) -> int | np.ndarray:
        return self.size // self.per_node

    @classmethod
    def placed(cls, size: int | np.ndarray, stride: int | np.ndarray, gpus_per_node: int) -> Group:
        """A group of ``size`` ranks ``stride`` apart in the global order, nodes of ``gpus_per_node`` GPUs:
        per_node = clip(gpus_per_node // stride, 1, size) (ranks of the group that share a node)."""
        per = np.clip(np.asarray(gpus_per_node) // np.maximum(np.asarray(stride), 1), 1, np.asarray(size))
        per = np.gcd(per, np.asarray(size))  # a node holds whole runs of the group only
        if np.ndim(per) == 0:
            return cls(int(size), int(per))
        return cls(np.asarray(size), per)

    @classmethod
    def in_node(cls, size: int) -> Group:
        """A group inside one node."""
        return cls(size, size)


def bus_factor(kind: str, n: N) -> N:
    """nccl-tests' bus bandwidth factor: all-reduce 2 (n-1)/n; all-gather, reduce-scatter, all-to-all (n-1)/n;
    p2p 1 (0 for a group of one: nothing moves)."""
    n_ = np.asarray(n, dtype=float)
    if kind == "all_reduce":
        f = 2 * (n_ - 1) / n_
    elif kind in ("all_gather", "reduce_scatter", "all_to_all"):
        f = (n_ - 1) / n_
    elif kind == "p2p":
        f = np.where(n_ > 1, 1.0, 0.0)
    else:
        raise ValueError(f"collective: expected one of {', '.join(COLLECTIVES)}, got {kind!r}")
    return f if np.ndim(f) else float(f)  # type: ignore[return-value]


def bus_bytes(kind: str, nbytes: N, n: N) -> N:
    """Bytes each rank moves: bus_factor(kind, n) x nbytes."""
    out = bus_factor(kind, n) * np.asarray(nbytes, dtype=float)
    return out if np.ndim(out) else float(out)  # type: ignore[return-value]


def latency_seconds(group: Group, topology: HardwareProfile | Topology) -> float | np.ndarray:
    """intra_latency_us + inter_latency_us x log2(nodes), in seconds (0 for a group of one)."""
    t = topology_of(topology)
    nodes = np.asarray(group.nodes, dtype=float)
    lat = (t.intra_latency_us + t.inter_latency_us * np.log2(nodes)) * 1e-6
    out = np.where(np.asarray(group.size) > 1, lat, 0.0)
    return out if np.ndim(out) else float(out)


def busbw_gbps(kind: str, group: Group, topology: HardwareProfile | Topology) -> float | np.ndarray:
    """Large-message bus bandwidth of ``kind`` on ``group``, GB/s: the intra-node figure inside a node; across
    nodes min(intra, per_node x nic_share) for ring collectives, and for all-to-all the bus bytes over the slower
    of the off-node (own NIC share) and on-node parts."""
    t = topology_of(topology)
    if kind not in COLLECTIVES:
        raise ValueError(f"collective: expected one of {', '.join(COLLECTIVES)}, got {kind!r}")
    n = np.asarray(group.size, dtype=float)
    k = np.asarray(group.per_node, dtype=float)
    multi = n > k
    share = t.nic_share_gbps
    if kind == "all_to_all":
        # seconds per byte of the buffer: max(off-node share / nic, on-node share / intra); busbw = (n-1)/n / that
        off = (n - k) / n / share
        on = (k - 1) / n / t.intra_busbw_gbps
        per_byte = np.maximum(off, on)
        cross = np.divide((n - 1) / n, per_byte, out=np.full_like(n, t.intra_busbw_gbps), where=per_byte > 0)
        bw = np.where(multi, cross, t.intra_busbw_gbps)
    elif kind == "p2p":
        bw = np.where(multi, min(share, t.intra_busbw_gbps), t.intra_busbw_gbps)
    else:
        bw = np.where(multi, np.minimum(t.intra_busbw_gbps, k * share), t.intra_busbw_gbps)
    return bw if np.ndim(bw) else float(bw)


def collective_seconds(kind: str, nbytes: N, group: Group, topology: HardwareProfile | Topology) -> N:
    """Seconds of one ``kind`` collective of ``nbytes`` per rank (nccl-tests' size) on ``group``:
    latency + bus_factor x nbytes / busbw (0 for a group of one or no bytes)."""
    nb = np.asarray(nbytes, dtype=float)
    if np.any(nb < 0) or not np.all(np.isfinite(nb)):
        raise ValueError(f"nbytes: expected finite bytes >= 0, got {nbytes!r}")
    moved = bus_bytes(kind, nb, np.asarray(group.size, dtype=float))
    bw = np.asarray(busbw_gbps(kind, group, topology)) * 1e9
    lat = latency_seconds(group, topology)
    out = np.where(np.asarray(moved) > 0, lat + np.asarray(moved) / bw, 0.0)
    return out if np.ndim(out) else float(out)  # type: ignore[return-value]


def overlap(compute_s: N, comm_s: N, slowdown: float = COMM_COMPUTE_SLOWDOWN) -> tuple[N, N]:
    """Compute and communication issued together, the communication behind the compute: (seconds of the part,
    exposed communication seconds). Compute slows by ``slowdown`` while both run:
    part = max(compute + slowdown x min(compute, comm), comm); exposed = part - compute."""
    c, m = np.asarray(compute_s, dtype=float), np.asarray(comm_s, dtype=float)
    part = np.maximum(c + slowdown * np.minimum(c, m), m)
    exposed = part - c
    if np.ndim(part) == 0:
        return float(part), float(exposed)  # type: ignore[return-value]
    return part, exposed
