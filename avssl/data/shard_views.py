"""Multi-crop views of training audio streamed from shards (``data.shards``) instead of single files.

:class:`ShardMultiCropDataset` reads the utterances of a shard index front to back through
:class:`avssl.data.shards.ShardDataset` (this rank's shards, shuffled per epoch, through a shuffle
buffer) and cuts each one with :meth:`AudioMultiCropDataset.views_of`, so an item is exactly the
map-style dataset's item: the same crops, keyed by (seed, epoch, index), and ``index`` the utterance's
position in the training manifest. Stage II's label lookup, the gate's per-sample bookkeeping and the
keyed augmentation therefore work unchanged; only the order of the items differs.

Cluster-aware DINO is not served: its partner crops need another utterance of the cluster at random,
which a stream of shards cannot give (the config refuses the combination).

An iterable dataset cannot be told how many items to give, so the number of steps per epoch is
settled up front (:meth:`ShardMultiCropDataset.guaranteed_batches`): the fewest full batches any rank
assembles in any epoch. Every rank stops there, so none waits for another in a collective at the end
of an epoch; the utterances beyond it (one to two shards per rank) are left out of that epoch, and
others in the next, as the shard order changes.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

import torch
from torch.utils.data import IterableDataset

from avssl.config import CropConfig
from avssl.data.manifest import Utterance
from avssl.data.shards import ShardDataset
from avssl.data.views import AudioMultiCropDataset
from avssl.errors import DataError

_REPACK = "pack the training manifest itself with `avssl shards MANIFEST OUT` and set data.shards=OUT/shards.tsv"


class ShardMultiCropDataset(IterableDataset):
    """This rank's share of the shards as ``{"global", "local", "index", "partner"}`` items, one per utterance."""

    def __init__(
        self,
        index: str | os.PathLike,
        utterances: Sequence[Utterance],
        crops: CropConfig,
        sample_rate: int,
        seed: int,
        buffer_size: int,
        rank: int,
        world_size: int,
    ) -> None:
        super().__init__()
        if not Path(index).is_file():
            raise DataError(
                f"data.shards: {index} does not exist; write it with `avssl shards MANIFEST OUT` (it is "
                "OUT/shards.tsv), or set data.shards=null to read the manifest's files"
            )
        # Reads no audio (no cache): it only cuts the views of the waveforms the shards deliver.
        self.views = AudioMultiCropDataset(utterances, crops, sample_rate, seed, cache_audio=False)
        self.shards = ShardDataset(index, seed, buffer_size, True, sample_rate, rank, world_size)
        self.positions = {utterance.key: position for position, utterance in enumerate(self.views.utterances)}
        packed = sum(self.shards.counts)
        if packed != len(self.positions):
            raise DataError(
                f"data.shards: {index} holds {packed} utterances but data.train_manifest lists "
                f"{len(self.positions)}; the shards were packed from another manifest: {_REPACK}"
            )

    @property
    def epoch(self) -> int:
        """The epoch the crops are keyed by (read by :class:`avssl.data.featurise.FeaturiseInWorkers`)."""
        return self.views.epoch

    @property
    def utterances(self) -> list[Utterance]:
        return self.views.utterances

    def set_epoch(self, epoch: int) -> None:
        """New shard order, buffer draws and crops; call before iterating (workers copy the dataset)."""
        self.views.set_epoch(epoch)
        self.shards.set_epoch(epoch)

    def guaranteed_batches(self, batch_size: int, num_workers: int, epochs: Iterable[int]) -> int:
        """The fewest full batches of ``batch_size`` that any rank assembles in any of ``epochs``.

        A data loader batches each worker's stream on its own and drops each worker's short last
        batch, so a rank's count is the sum over its workers (``num_workers`` 0 is one stream).
        """
        workers = max(num_workers, 1)
        shards, current = self.shards, self.shards.epoch
        try:
            counts = []
            for epoch in epochs:
                shards.set_epoch(epoch)
                for rank in range(shards.world_size):
                    counts.append(sum(
                        sum(shards.counts[number] for number in shards.shards_for(rank, shards.world_size, worker, workers))
                        // batch_size
                        for worker in range(workers)
                    ))
        finally:
            shards.set_epoch(current)
        return min(counts)

    def __iter__(self) -> Iterator[dict[str, torch.Tensor | int]]:
        for sample in self.shards:
            position = self.positions.get(sample["key"])
            if position is None:
                raise DataError(f"data.shards: the shards hold {sample['key']}, which data.train_manifest does not list; {_REPACK}")
            yield self.views.views_of(position, sample["wave"])
