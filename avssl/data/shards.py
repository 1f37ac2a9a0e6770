"""Training shards: a manifest's audio packed into tar files read front to back, and their reader.

Why: a million small files read in random order is what starves GPUs in other toolkits (one seek and
one file open per utterance, hostile to network file systems). Packed into shards of about a thousand
utterances, an epoch becomes a few thousand sequential reads. Randomness comes from shuffling the
order of shards every epoch and a shuffle buffer over the utterances streaming out of them (the idea
of WeSpeaker's shard mode). ``avssl shards`` writes them (:mod:`avssl.prep.pack_shards`).

On disk, ``OUT/shards.tsv`` lists ``path`` (relative to the index) and ``utterances`` of every shard;
each shard is an uncompressed tar whose members are ``<key>.wav`` (or ``.flac``): the bytes of the
converted file, so nothing is re-encoded. Face crops keyed by the same utterance key can later be
added as further members (``<key>.<name>``) by the face-extraction step; the reader ignores members
that are not audio.

Partitioning (:meth:`ShardDataset.shards_for`): the epoch's shard order is a permutation drawn from
(seed, epoch); rank ``r`` of ``R`` takes positions r, r + R, ...; data-loader worker ``w`` of ``K``
takes every K-th shard of its rank's list. So within an epoch every utterance is read exactly once
over all ranks and workers, and a rank's share does not depend on its worker count. Ranks differ by
at most one shard: the trainer should run the same number of steps on every rank, e.g. the minimum of
:meth:`ShardDataset.utterances_for_rank` over ranks divided by the batch size, so no rank waits for
another at the end of an epoch. Usage::

    dataset = ShardDataset("shards/shards.tsv", seed=0, buffer_size=1000)  # rank from torch.distributed
    loader = DataLoader(dataset, batch_size=None, num_workers=4)  # persistent_workers must stay False
    for epoch in range(epochs):
        dataset.set_epoch(epoch)  # before the loop: workers receive a copy of the dataset per epoch
        for item in loader:  # {"key": "id00012/21Uxsk56VDQ/00001", "wave": float32 array}
            ...
"""

from __future__ import annotations

import io
import os
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import soundfile
import torch
from torch.utils.data import IterableDataset, get_worker_info

from avssl.errors import DataError
from avssl.utils.tsv import read_tsv_lines

INDEX_NAME = "shards.tsv"
INDEX_HEADER = "path\tutterances"
AUDIO_MEMBER_SUFFIXES = (".wav", ".flac")
_REMEDY = "run `avssl shards MANIFEST OUT` again to rewrite it"


def read_shard_index(path: str | os.PathLike) -> list[tuple[Path, int]]:
    """``(shard path, utterance count)`` rows of an index; relative paths are taken from its folder."""
    path = Path(path)
    rows = []
    for lineno, line in enumerate(read_tsv_lines(path, INDEX_HEADER, "shard index", _REMEDY), start=2):
        fields = line.split("\t")
        if len(fields) != 2 or not fields[1].isdigit():
            raise DataError(f"{path}:{lineno}: expected '<path>\\t<utterances>'; {_REMEDY}")
        rows.append((path.parent / fields[0], int(fields[1])))
    if not rows:
        raise DataError(f"shard index {path} lists no shard; {_REMEDY}")
    return rows


class ShardDataset(IterableDataset):
    """Utterances of a shard index as ``{"key", "wave"}`` dicts, shuffled per (seed, epoch).

    ``rank``/``world_size`` default to torch.distributed's when it is initialised (else 0 and 1).
    ``shuffle=False`` reads shards in index order without a buffer (for extraction or checks).
    """

    def __init__(
        self,
        index: str | os.PathLike,
        seed: int = 0,
        buffer_size: int = 1000,
        shuffle: bool = True,
        sample_rate: int = 16000,
        rank: int | None = None,
        world_size: int | None = None,
    ) -> None:
        super().__init__()
        rows = read_shard_index(index)
        self.paths = [path for path, _ in rows]
        self.counts = [count for _, count in rows]
        self.seed = seed
        self.buffer_size = max(1, buffer_size)
        self.shuffle = shuffle
        self.sample_rate = sample_rate
        self.rank, self.world_size = _rank_and_world(rank, world_size)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def shard_order(self) -> list[int]:
        """This epoch's order of shard numbers, the same in every process."""
        if not self.shuffle:
            return list(range(len(self.paths)))
        return np.random.default_rng([self.seed, self.epoch]).permutation(len(self.paths)).tolist()

    def shards_for(self, rank: int, world_size: int, worker: int = 0, num_workers: int = 1) -> list[int]:
        """Shard numbers read by one data-loader worker of one rank in this epoch."""
        return self.shard_order()[rank::world_size][worker::num_workers]

    def utterances_for_rank(self, rank: int | None = None) -> int:
        """Utterances rank ``rank`` (default: this one) reads in this epoch, to equalise steps per rank."""
        rank = self.rank if rank is None else rank
        return sum(self.counts[number] for number in self.shards_for(rank, self.world_size))

    def __iter__(self) -> Iterator[dict[str, Any]]:
        info = get_worker_info()
        worker, workers = (info.id, info.num_workers) if info is not None else (0, 1)
        numbers = self.shards_for(self.rank, self.world_size, worker, workers)
        samples = (sample for number in numbers for sample in self._read_shard(self.paths[number]))
        if not self.shuffle:
            yield from samples
            return
        yield from _buffer_shuffle(samples, self.buffer_size, np.random.default_rng([self.seed, self.epoch, self.rank, worker]))

    def _read_shard(self, path: Path) -> Iterator[dict[str, Any]]:
        """Stream a shard front to back, decoding each audio member."""
        try:
            with tarfile.open(path, mode="r|") as shard:
                for member in shard:
                    suffix = Path(member.name).suffix.lower()
                    if not member.isfile() or suffix not in AUDIO_MEMBER_SUFFIXES:
                        continue
                    data = shard.extractfile(member).read()  # type: ignore[union-attr]
                    yield {"key": member.name[: -len(suffix)], "wave": self._decode(path, member.name, data)}
        except (tarfile.TarError, OSError) as error:
            raise DataError(f"shard {path} cannot be read ({error}); {_REMEDY}") from None

    def _decode(self, path: Path, name: str, data: bytes) -> np.ndarray:
        wave, rate = soundfile.read(io.BytesIO(data), dtype="float32", always_2d=True)
        if rate != self.sample_rate:
            raise DataError(f"{path}: {name} is at {rate} Hz, expected {self.sample_rate} Hz; {_REMEDY}")
        return wave.mean(axis=1) if wave.shape[1] > 1 else wave[:, 0]


def _buffer_shuffle(
    samples: Iterator[dict[str, Any]], size: int, rng: np.random.Generator
) -> Iterator[dict[str, Any]]:
    """Keep ``size`` samples; each new one takes the place of a random one, which is yielded."""
    buffer: list[dict[str, Any]] = []
    for sample in samples:
        if len(buffer) < size:
            buffer.append(sample)
            continue
        index = int(rng.integers(size))
        yield buffer[index]
        buffer[index] = sample
    for index in rng.permutation(len(buffer)):
        yield buffer[index]


def _rank_and_world(rank: int | None, world_size: int | None) -> tuple[int, int]:
    distributed = torch.distributed.is_available() and torch.distributed.is_initialized()
    if rank is None:
        rank = torch.distributed.get_rank() if distributed else 0
    if world_size is None:
        world_size = torch.distributed.get_world_size() if distributed else 1
    if not 0 <= rank < world_size:
        raise ValueError(f"rank {rank} outside [0, {world_size})")
    return rank, world_size
