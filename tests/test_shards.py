"""Training shards: packing a manifest into tar shards, and reading them per rank and worker."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import soundfile
from torch.utils.data import DataLoader

from avssl.data.manifest import Utterance, write_manifest
from avssl.data.shards import ShardDataset, read_shard_index
from avssl.errors import DataError
from avssl.prep.pack_shards import pack_shards
from avssl.prep.parallel import WorkShard

RATE = 16000
COUNT = 23  # not a multiple of the shard size: the last shard is short
PER_SHARD = 3  # 8 shards


def make_manifest(folder: Path, count: int = COUNT, suffix: str = ".wav") -> Path:
    """``count`` short recordings of 4 speakers, each filled with its own index so reads can be checked."""
    utterances = []
    for index in range(count):
        key = f"id{index % 4:05d}/sess{index % 3}/{index:05d}"
        path = folder / "audio" / f"{key}{suffix}"
        path.parent.mkdir(parents=True, exist_ok=True)
        if suffix == ".m4a":
            path.write_bytes(b"not decoded here")
        else:
            soundfile.write(path, np.full(800 + index, index / 100, np.float32), RATE, subtype="PCM_16")
        utterances.append(Utterance(key, str(path), None, (800 + index) / RATE, RATE))
    return write_manifest(folder / "dev.tsv", utterances)


@pytest.fixture(scope="module")
def shards(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("shards")
    pack_shards(make_manifest(folder), folder / "shards", utterances_per_shard=PER_SHARD, workers=1)
    return folder / "shards" / "shards.tsv"


def epoch_keys(index: Path, epoch: int, seed: int = 0, ranks: int = 2, workers: int = 2) -> list[list[str]]:
    """Keys in the order each rank receives them through a DataLoader with ``workers`` processes."""
    orders = []
    for rank in range(ranks):
        dataset = ShardDataset(index, seed=seed, buffer_size=4, rank=rank, world_size=ranks)
        dataset.set_epoch(epoch)
        loader = DataLoader(dataset, batch_size=None, num_workers=workers)
        orders.append([item["key"] for item in loader])
    return orders


def test_every_utterance_once_per_epoch_over_ranks_and_workers(shards: Path) -> None:
    all_keys = sorted(f"id{i % 4:05d}/sess{i % 3}/{i:05d}" for i in range(COUNT))
    epochs = [epoch_keys(shards, epoch) for epoch in range(2)]
    for ranks in epochs:
        seen = Counter(key for rank in ranks for key in rank)
        assert sorted(seen) == all_keys and set(seen.values()) == {1}
        assert abs(len(ranks[0]) - len(ranks[1])) <= PER_SHARD  # ranks differ by at most one shard
    assert epochs[0] != epochs[1]  # a new order every epoch
    assert epoch_keys(shards, 1) == epochs[1]  # the same seed and epoch give the same order
    assert epoch_keys(shards, 1, seed=1) != epochs[1]


def test_share_per_rank_does_not_depend_on_workers(shards: Path) -> None:
    dataset = ShardDataset(shards, seed=3, rank=0, world_size=2)
    dataset.set_epoch(5)
    rank_share = dataset.shards_for(0, 2)
    assert sorted(dataset.shards_for(0, 2, 0, 3) + dataset.shards_for(0, 2, 1, 3) + dataset.shards_for(0, 2, 2, 3)) == sorted(rank_share)
    assert dataset.utterances_for_rank(0) + dataset.utterances_for_rank(1) == COUNT
    assert dataset.utterances_for_rank(0) == len(epoch_keys(shards, 5, seed=3, workers=1)[0])


def test_reader_returns_the_packed_audio(shards: Path) -> None:
    items = list(ShardDataset(shards, shuffle=False))
    assert len(items) == COUNT
    for item in items:
        index = int(item["key"].rsplit("/", 1)[1])
        assert item["wave"].dtype == np.float32 and item["wave"].shape == (800 + index,)
        assert np.allclose(item["wave"], index / 100, atol=1e-4)


def test_packing_resumes_and_is_idempotent(tmp_path: Path) -> None:
    manifest, out = make_manifest(tmp_path), tmp_path / "shards"
    pack_shards(manifest, out, PER_SHARD, workers=2)
    first = {path.name: path.read_bytes() for path in sorted(out.glob("shard-*.tar"))}
    assert len(first) == 8 and [count for _, count in read_shard_index(out / "shards.tsv")] == [3] * 7 + [2]
    (out / "shard-000004.tar").unlink()
    (out / ".shard-000004.tar.a1b2c3_d.tmp").write_bytes(b"half a shard")  # a killed run's leftover
    report = pack_shards(manifest, out, PER_SHARD, workers=1)
    assert (report["written"], report["already_done"], report["partial_removed"]) == (1, 7, 1)
    assert {path.name: path.read_bytes() for path in sorted(out.glob("shard-*.tar"))} == first
    assert not list(out.glob(".*.tmp"))


def test_slices_write_disjoint_shards_and_the_last_writes_the_index(tmp_path: Path) -> None:
    manifest, out = make_manifest(tmp_path), tmp_path / "shards"
    first = pack_shards(manifest, out, PER_SHARD, workers=1, shard=WorkShard(0, 2))
    assert first["written"] == 4 and first["index"].startswith("not written") and not (out / "shards.tsv").exists()
    second = pack_shards(manifest, out, PER_SHARD, workers=1, shard=WorkShard(1, 2))
    assert second["written"] == 4 and (out / "shards.tsv").is_file()
    assert json.loads((out / "pack_report.shard-1-of-2.json").read_text())["written"] == 4


def test_packing_refuses_another_plan_and_undecoded_audio(tmp_path: Path) -> None:
    manifest, out = make_manifest(tmp_path), tmp_path / "shards"
    pack_shards(manifest, out, PER_SHARD, workers=1)
    with pytest.raises(DataError, match=r"holds shards of another plan .* 3 per shard, seed 0"):
        pack_shards(manifest, out, PER_SHARD + 1, workers=1)
    m4a = make_manifest(tmp_path / "aac", count=2, suffix=".m4a")
    with pytest.raises(DataError, match=r"2 utterance\(s\) are not wav/flac .* convert them first"):
        pack_shards(m4a, tmp_path / "other", workers=1)


def test_bad_index_names_the_file(tmp_path: Path) -> None:
    index = tmp_path / "shards.tsv"
    index.write_text("path\tutterances\nshard-000000.tar\tmany\n")
    with pytest.raises(DataError, match=r"shards\.tsv:2: expected '<path>\\t<utterances>'"):
        ShardDataset(index)
