"""Token files -> instances in OLMo's order, per-rank slicing, resume position, eval split."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from train_helpers import write_tokens

from training.config import DataFormatError, SourceConfig
from training.data import EvalLoader, TokenDataset, TrainLoader, global_order


def dataset(tmp_path: Path, sizes: list[int], seq: int = 10, dtype: str = "uint16", vocab: int = 70000):
    start = 0
    paths = []
    for i, n in enumerate(sizes):
        paths.append(str(write_tokens(tmp_path / f"part-{i:05d}.npy", np.arange(start, start + n) % 60000, dtype)))
        start += n
    return TokenDataset([SourceConfig("a", paths)], seq, dtype, vocab)


def test_instances_per_file_with_remainders_dropped(tmp_path: Path) -> None:
    ds = dataset(tmp_path, [35, 20, 9])  # 3 + 2 + 0 instances of 10
    assert len(ds) == 5
    assert ds.instance(0).tokens.tolist() == list(range(0, 10))
    assert ds.instance(2).tokens.tolist() == list(range(20, 30))
    assert ds.instance(3).tokens.tolist() == list(range(35, 45))  # second file starts fresh
    assert ds.instance(4).tokens.dtype == np.int64


def test_uint32_files_and_labels(tmp_path: Path) -> None:
    p1 = write_tokens(tmp_path / "a" / "part-0.npy", np.full(20, 70_000), "uint32")
    p2 = write_tokens(tmp_path / "b" / "part-0.npy", np.full(10, 5), "uint32")
    ds = TokenDataset([SourceConfig("web", [str(p1)]), SourceConfig("code", [str(tmp_path / "b" / "*.npy")])],
                      10, "uint32", 100_000)
    tokens, sources = ds.batch(np.array([0, 1, 2]))
    assert tokens[:, 0].tolist() == [70_000, 70_000, 5]
    assert [ds.labels[s] for s in sources] == ["web", "web", "code"]
    assert p2.stat().st_size == 40


def test_global_order_is_olmos_pcg64() -> None:
    expected = np.arange(100, dtype=np.uint32)
    np.random.Generator(np.random.PCG64(7 + 3)).shuffle(expected)
    assert np.array_equal(global_order(100, 7, 3), expected)
    assert not np.array_equal(global_order(100, 7, 3), global_order(100, 7, 4))


def test_ranks_partition_the_global_batch_independently_of_world_size(tmp_path: Path) -> None:
    ds = dataset(tmp_path, [1000])  # 100 instances
    one = TrainLoader(ds, global_batch_size=8, micro_batch_size=4, seed=1, prefetch=False)
    for step in (0, 5, 12, 13):  # 12 steps per epoch: 12 and 13 are in epoch 1
        order = global_order(100, 1, step // 12)
        b = step % 12
        assert np.array_equal(one.indices(step), order[b * 8 : (b + 1) * 8])
        ranks = [TrainLoader(ds, 8, 2, 1, rank=r, world_size=2, prefetch=False).indices(step) for r in range(2)]
        # rank r takes positions b*G + r + j*W
        assert np.array_equal(ranks[0], order[b * 8 : (b + 1) * 8 : 2])
        assert np.array_equal(ranks[1], order[b * 8 + 1 : (b + 1) * 8 : 2])
    assert one.epoch_of(12) == 1 and one.instances_seen(13) == 104


def test_micro_batches_and_prefetch_give_the_same_batches(tmp_path: Path) -> None:
    ds = dataset(tmp_path, [400])
    plain = TrainLoader(ds, 8, 4, seed=3, prefetch=False)
    pre = TrainLoader(ds, 8, 4, seed=3, prefetch=True)
    for step in [0, 1, 2, 7, 3]:
        a, b = plain.batch(step), pre.batch(step)
        assert len(a) == 2 and a[0][0].shape == (4, 10)
        for (ta, sa), (tb, sb) in zip(a, b, strict=True):
            assert np.array_equal(ta, tb) and np.array_equal(sa, sb)
    pre.close()


def test_bad_inputs_fail_with_the_file_named(tmp_path: Path) -> None:
    odd = tmp_path / "odd.npy"
    odd.write_bytes(b"\x00" * 7)
    with pytest.raises(DataFormatError, match="odd.npy"):
        TokenDataset([SourceConfig("x", [str(odd)])], 2, "uint16", 100)
    with pytest.raises(DataFormatError, match="no token files match"):
        TokenDataset([SourceConfig("x", [str(tmp_path / "nothing-*.npy")])], 2, "uint16", 100)
    big = write_tokens(tmp_path / "big.npy", np.array([1, 2, 500, 3]))
    ds = TokenDataset([SourceConfig("x", [str(big)])], 2, "uint16", 100)
    with pytest.raises(DataFormatError, match="big.npy.*500"):
        ds.instance(1)
    with pytest.raises(DataFormatError, match="global batch"):
        TrainLoader(ds, 8, 8, 0, prefetch=False)


def test_eval_loader_splits_evenly_in_file_order(tmp_path: Path) -> None:
    ds = dataset(tmp_path, [105])  # 10 instances
    parts = [list(EvalLoader(ds, 2, rank=r, world_size=3)) for r in range(3)]
    assert [len(p) for p in parts] == [2, 2, 2]  # 9 of 10 instances, 3 per rank
    firsts = sorted(int(b[0]) for p in parts for batch in p for b in batch)
    assert firsts == [i * 10 for i in range(9)]
    assert len(list(EvalLoader(ds, 2, max_batches=1))) == 1


@pytest.fixture
def s3_bucket(s3_client):
    s3_client.create_bucket(Bucket="tokens")
    return s3_client


def test_remote_token_files_read_like_local_ones(tmp_path: Path, s3_bucket) -> None:
    local = dataset(tmp_path, [35, 20])
    for i, f in enumerate(local.files):
        s3_bucket.put_object(Bucket="tokens", Key=f"run/part-{i:05d}.npy", Body=Path(f.path).read_bytes())
    s3_bucket.put_object(Bucket="tokens", Key="run/other.txt", Body=b"x")
    remote = TokenDataset([SourceConfig("a", ["s3://tokens/run/part-*.npy"])], 10, "uint16", 70000)
    assert [f.path for f in remote.files] == ["s3://tokens/run/part-00000.npy", "s3://tokens/run/part-00001.npy"]
    assert len(remote) == len(local) == 5
    tokens_r, _ = remote.batch(np.arange(5))
    tokens_l, _ = local.batch(np.arange(5))
    assert np.array_equal(tokens_r, tokens_l)
