"""The epoch sampler: equal shares, disjoint and covering across ranks, deterministic by seed."""

from __future__ import annotations

import numpy as np

from avssl.data.samplers import EpochShardSampler


def shares(size: int, per_rank: int, ranks: int, seed: int = 0, epoch: int = 0) -> list[list[int]]:
    out = []
    for rank in range(ranks):
        sampler = EpochShardSampler(size, per_rank, ranks, rank, seed)
        sampler.set_epoch(epoch)
        out.append(list(sampler))
    return out


def test_ranks_are_disjoint_and_cover_one_pass() -> None:
    parts = shares(size=10, per_rank=5, ranks=2)
    assert all(len(p) == 5 for p in parts)
    assert sorted(parts[0] + parts[1]) == list(range(10))


def test_uneven_data_still_gives_equal_steps() -> None:
    parts = shares(size=7, per_rank=3, ranks=2)  # 6 of 7 samples used: equal length on both ranks
    assert [len(p) for p in parts] == [3, 3]
    assert len(set(parts[0]) & set(parts[1])) == 0


def test_more_samples_than_data_uses_several_permutations() -> None:
    (part,) = shares(size=4, per_rank=10, ranks=1)
    assert len(part) == 10
    assert sorted(part[:4]) == list(range(4)) and sorted(part[4:8]) == list(range(4))


def test_order_depends_only_on_seed_and_epoch() -> None:
    assert shares(50, 25, 2, seed=3, epoch=1) == shares(50, 25, 2, seed=3, epoch=1)
    assert shares(50, 25, 2, seed=3, epoch=1) != shares(50, 25, 2, seed=3, epoch=2)
    assert shares(50, 25, 2, seed=3) != shares(50, 25, 2, seed=4)
    assert not np.array_equal(shares(50, 50, 1)[0], np.arange(50))
