"""MinHash signatures match datasketch; normalisation; distributed connected components vs union-find."""

from __future__ import annotations

import numpy as np
from datasketch import MinHash

from dolma_pipeline.dedupe import components
from dolma_pipeline.dedupe.config import MinHashConfig
from dolma_pipeline.dedupe.minhash import MinHasher, jaccard
from dolma_pipeline.dedupe.minhash_stages import bucket_pairs
from dolma_pipeline.dedupe.plan import ReduceShard
from dolma_pipeline.executor import run_shards

TEXT = "The quick brown fox jumps over the lazy dog. " * 3 + "A different ending, with punctuation!"


def test_signature_equals_datasketch_affine32_with_the_same_shingle_hashes():
    cfg = MinHashConfig(bands=8, rows=4, seed=3)
    hasher = MinHasher(cfg, chunk=7)  # a small chunk exercises the chunked minimum
    hashes = hasher.shingle_hashes(TEXT)
    reference = MinHash(num_perm=32, seed=3, scheme="affine32", hashfunc=lambda x: x)
    reference.update_batch(hashes.tolist())
    assert np.array_equal(hasher.signature(hashes), reference.hashvalues)


def test_normalisation_folds_case_punctuation_and_whitespace():
    hasher = MinHasher(MinHashConfig())
    a = hasher.shingle_hashes("Hello,   World!\nThis is  a TEST of the system.")
    b = hasher.shingle_hashes("hello world this is a test of the system")
    assert np.array_equal(a, b)
    strict = MinHasher(MinHashConfig(lowercase=False, strip_punctuation=False))
    assert not np.array_equal(strict.shingle_hashes("Hello, World! x y z"), strict.shingle_hashes("hello world x y z"))


def test_shingles_are_word_ngrams():
    hasher = MinHasher(MinHashConfig(ngram=3))
    assert len(hasher.shingle_hashes("a b c d e")) == 3
    assert len(hasher.shingle_hashes("a b")) == 1  # shorter than n: the whole text is one shingle
    assert len(hasher.shingle_hashes(" ... ")) == 0


def test_signature_agreement_tracks_jaccard():
    hasher = MinHasher(MinHashConfig(bands=64, rows=4))
    words = [f"w{i}" for i in range(400)]
    edited = words[:360] + [f"x{i}" for i in range(40)]
    ha, hb = hasher.shingle_hashes(" ".join(words)), hasher.shingle_hashes(" ".join(edited))
    true_j = jaccard(np.unique(ha), np.unique(hb))
    estimate = float(np.mean(hasher.signature(ha) == hasher.signature(hb)))
    assert 0.7 < true_j < 0.9
    assert abs(estimate - true_j) < 0.12


def test_bucket_pairs_link_every_member():
    keys = np.array([1, 1, 1, 2, 3, 3], dtype=np.uint64)
    refs = np.array([10, 11, 12, 13, 14, 15], dtype=np.uint64)
    a, b = bucket_pairs(keys, refs, all_pairs=True, max_pairs=64)
    assert sorted(zip(a.tolist(), b.tolist())) == [(10, 11), (10, 12), (11, 12), (14, 15)]
    a, b = bucket_pairs(keys, refs, all_pairs=True, max_pairs=2)  # big bucket: star + chain
    assert sorted(zip(a.tolist(), b.tolist())) == [(10, 11), (10, 12), (11, 12), (14, 15)]
    a, b = bucket_pairs(keys, refs, all_pairs=False, max_pairs=64)
    assert sorted(zip(a.tolist(), b.tolist())) == [(10, 11), (10, 12), (11, 12), (14, 15)]


def _union_find_min(edges: list[tuple[int, int]]) -> dict[int, int]:
    parent: dict[int, int] = {}

    def find(x: int) -> int:
        parent.setdefault(x, x)
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for a, b in edges:
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    return {x: find(x) for x in parent}


def test_large_small_star_components_match_union_find(tmp_path):
    rng = np.random.default_rng(5)
    vertices = rng.permutation(np.unique(rng.integers(1, 2**32 - 1, 500, dtype=np.uint64)))[:400]
    # long chains (worst case for label propagation) plus random edges
    chain = [(int(vertices[i]), int(vertices[i + 1])) for i in range(0, 120)]
    extra = [(int(vertices[i]), int(vertices[j])) for i, j in rng.integers(120, 400, (150, 2)) if i != j]
    edges = chain + extra
    P = 3
    e = np.array(edges, dtype=np.uint64)
    current = [str(tmp_path / "in.bin")]
    components.write_keyed(current[0], components.both_directions(e[:, 0], e[:, 1]), P)
    previous = None
    for r in range(30):
        large = [str(tmp_path / f"l{r}-{p}.bin") for p in range(P)]
        summary = run_shards(components.large_star, [
            ReduceShard(input=f"p{p}", output=large[p], fingerprint="x", partition=p, inputs=current,
                                 outputs=P) for p in range(P)], debug=True)
        state = (summary.extra["edges_in"], summary.extra["digest_in"])
        if state == previous:
            break
        previous = state
        small = [str(tmp_path / f"s{r}-{p}.bin") for p in range(P)]
        run_shards(components.small_star, [
            ReduceShard(input=f"p{p}", output=small[p], fingerprint="x", partition=p, inputs=large,
                                 outputs=P) for p in range(P)], debug=True)
        current = small
    else:
        raise AssertionError("did not converge")
    clusters = [str(tmp_path / f"c{p}.bin") for p in range(P)]
    # file index = ref >> 32 is 0 for every vertex here: one output segment
    run_shards(components.emit_clusters, [
        ReduceShard(input=f"p{p}", output=clusters[p], fingerprint="x", partition=p, inputs=current,
                                outputs=1) for p in range(P)], debug=True)
    from dolma_pipeline.dedupe.partfile import read_segment_from_all

    got = read_segment_from_all(clusters, 0, components.CLUSTER)
    expected = _union_find_min(edges)
    assert {int(r): int(c) for r, c in zip(got["ref"], got["cluster"])} == expected
    sizes = {}
    for root in expected.values():
        sizes[root] = sizes.get(root, 0) + 1
    assert all(int(s) == sizes[int(c)] for c, s in zip(got["cluster"], got["size"]))
