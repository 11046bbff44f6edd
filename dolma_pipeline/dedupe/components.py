"""Distributed connected components over partitioned edge files (large-star / small-star).

Kiveris et al., "Connected Components in MapReduce and Beyond" (SoCC 2014): alternate
  large-star(u): m = min(u, N(u)); link every neighbour v > u to m,
  small-star(u): m = min(N(u)) over neighbours v < u; link u and every such v != m to m,
until the edge set stops changing; then every component is a star centred on its smallest vertex.
Each step is one reduce over vertex partitions: a reducer reads its segment of every input file (the
edges whose key vertex hashes to it), so no process ever holds more than one partition of the graph.
Vertices are document refs, so the centre of each component is its first document in (path, line)
order: the copy that is kept.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from dolma_pipeline.dedupe.minhash import mix64
from dolma_pipeline.dedupe.partfile import read_segment_from_all, write_partitioned
from dolma_pipeline.dedupe.plan import LINE_BITS, ReduceShard, counts_cpu

EDGE = np.dtype([("u", "<u8"), ("v", "<u8")])
CLUSTER = np.dtype([("ref", "<u8"), ("cluster", "<u8"), ("size", "<u8")])
_DIGEST_MUL = np.uint64(0xD6E8FEB86659FD93)


def vertex_partition(vertices: np.ndarray, partitions: int) -> np.ndarray:
    return (mix64(vertices.astype(np.uint64)) % np.uint64(partitions)).astype(np.int64)


def edges(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    out = np.empty(len(u), dtype=EDGE)
    out["u"], out["v"] = u, v
    return out


def both_directions(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    return edges(np.concatenate([u, v]), np.concatenate([v, u]))


def write_keyed(path: str, records: np.ndarray, partitions: int) -> dict[str, int]:
    """Write edges partitioned by their key vertex `u`, sorted within each partition."""
    return write_partitioned(path, records, vertex_partition(records["u"], partitions), partitions,
                             sort_order=("u", "v"))


def load_unique(paths: list[str], partition: int) -> np.ndarray:
    """This reducer's edges, deduplicated and sorted by (u, v)."""
    records = read_segment_from_all(paths, partition, EDGE)
    return np.unique(records)  # structured arrays sort by fields in order: (u, v)


def group_starts(keys: np.ndarray) -> np.ndarray:
    """Index of the first record of the group each (sorted) record belongs to."""
    if len(keys) == 0:
        return np.empty(0, dtype=np.int64)
    is_start = np.ones(len(keys), dtype=bool)
    is_start[1:] = keys[1:] != keys[:-1]
    return np.maximum.accumulate(np.where(is_start, np.arange(len(keys)), 0))


def edge_digest(records: np.ndarray) -> int:
    """An order-independent digest of an edge set (to tell when the iteration has converged)."""
    if len(records) == 0:
        return 0
    hashed = mix64(records["u"] * _DIGEST_MUL ^ records["v"])
    # 52 bits, so the executor can sum the digests of thousands of partitions within a JSON integer
    return int(np.add.reduce(hashed, dtype=np.uint64)) >> 12


@counts_cpu
def large_star(shard: ReduceShard) -> dict[str, Any]:
    """Input: edges in both directions keyed by u. Output: (v, m(u)) for v > u, keyed by v (for small-star)."""
    e = load_unique(shard.inputs, shard.partition)
    u, v = e["u"], e["v"]
    first = group_starts(u)
    m = np.minimum(u, v[first])  # v sorted within each u: the group's first v is its smallest neighbour
    keep = v > u
    written = write_keyed(shard.output, edges(v[keep], m[keep]), shard.outputs)
    return {"edges_in": len(e), "digest_in": edge_digest(e), "intermediate_bytes": written["bytes"]}


@counts_cpu
def small_star(shard: ReduceShard) -> dict[str, Any]:
    """Input: (u, w) with w < u keyed by u. Output: every x in N(u) + {u}, x != m, linked to m = min N(u),
    in both directions (large-star's input)."""
    e = load_unique(shard.inputs, shard.partition)
    u, w = e["u"], e["v"]
    first = group_starts(u)
    m = w[first]
    starts = np.unique(first)
    members = np.concatenate([w[w != m], u[starts]])
    centres = np.concatenate([m[w != m], m[starts]])
    written = write_keyed(shard.output, both_directions(members, centres), shard.outputs)
    return {"edges_out": 2 * len(members), "intermediate_bytes": written["bytes"]}


@counts_cpu
def emit_clusters(shard: ReduceShard) -> dict[str, Any]:
    """On the converged stars: each centre (smaller than all its neighbours) lists its members and the
    cluster size, partitioned by the members' input file for the attribute writers."""
    e = load_unique(shard.inputs, shard.partition)
    u, v = e["u"], e["v"]
    first = group_starts(u)
    is_centre_edge = u < v[first]
    cu, cv = u[is_centre_edge], v[is_centre_edge]
    starts = np.unique(group_starts(cu)) if len(cu) else np.empty(0, dtype=np.int64)
    sizes = np.diff(np.append(starts, len(cu))) + 1  # neighbours plus the centre
    records = np.empty(len(cu) + len(starts), dtype=CLUSTER)
    size_of_edge = np.repeat(sizes, sizes - 1)
    records["ref"] = np.concatenate([cv, cu[starts]])
    records["cluster"] = np.concatenate([cu, cu[starts]])
    records["size"] = np.concatenate([size_of_edge, sizes]).astype(np.uint64)
    file_of = (records["ref"] >> np.uint64(LINE_BITS)).astype(np.int64)
    written = write_partitioned(shard.output, records, file_of, shard.outputs, sort_order=("ref",))
    return {"clusters": len(starts), "documents_in_clusters": len(records), "intermediate_bytes": written["bytes"]}
