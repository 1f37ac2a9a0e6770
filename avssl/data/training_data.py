"""Where the training stages' batches come from: the manifest's files, or shards (``data.shards``).

Both stages ask two things of their data, whatever its source: the views of the training audio
(:func:`audio_views`) and, per epoch, a fixed number of batches that is the same on every rank
(:func:`epoch_batches`, which also fixes the steps per epoch the schedules are laid out on).

* **Manifest files** (map-style dataset): :class:`avssl.data.samplers.EpochShardSampler` deals every
  rank exactly ``steps * batch_size`` indices; this path is what it was before shards existed.
* **Shards** (iterable dataset): each rank streams its own shards, whose utterance counts differ a
  little between ranks and epochs; every rank runs the fewest full batches any rank can assemble
  (:meth:`ShardMultiCropDataset.guaranteed_batches`), so no rank waits at the end of an epoch.
  Capping rather than topping up because topping up would mean reading utterances twice from a
  stream that cannot seek, and what the cap leaves out (one to two shards per rank) changes
  from epoch to epoch.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Protocol

from torch.utils.data import DataLoader, Dataset

from avssl.config import CropConfig, DataConfig
from avssl.data.manifest import Utterance
from avssl.data.samplers import EpochShardSampler
from avssl.data.shard_views import ShardMultiCropDataset
from avssl.data.views import AudioMultiCropDataset
from avssl.errors import ConfigError

log = logging.getLogger(__name__)


class _EpochKeyed(Protocol):
    def set_epoch(self, epoch: int) -> None: ...


def audio_views(
    data: DataConfig, utterances: Sequence[Utterance], crops: CropConfig, seed: int, rank: int, world_size: int
) -> AudioMultiCropDataset | ShardMultiCropDataset:
    """The multi-crop views of ``utterances``, read from their files or, with ``data.shards``, from shards."""
    if data.shards:
        return ShardMultiCropDataset(data.shards, utterances, crops, data.sample_rate, seed, data.shard_buffer,
                                     rank, world_size)
    return AudioMultiCropDataset(utterances, crops, data.sample_rate, seed, data.cache_audio)


class EpochBatches:
    """One epoch's batches, ``steps_per_epoch`` of them on every rank; :meth:`set_epoch` before each pass."""

    def __init__(self, loader: DataLoader, steps_per_epoch: int, epoch_keyed: Sequence[_EpochKeyed]) -> None:
        self.loader = loader
        self.steps_per_epoch = steps_per_epoch
        self.epoch_keyed = list(epoch_keyed)

    def set_epoch(self, epoch: int) -> None:
        for part in self.epoch_keyed:
            part.set_epoch(epoch)

    def __len__(self) -> int:
        return self.steps_per_epoch

    def __iter__(self) -> Iterator[Any]:
        # The manifest path yields exactly this many; a shard stream may have a few batches more.
        return itertools.islice(self.loader, self.steps_per_epoch)


def epoch_batches(
    dataset: Dataset | ShardMultiCropDataset,
    batch_size: int,
    steps_per_epoch: int | None,
    num_workers: int,
    collate_fn: Callable[[list[dict]], Any] | None,
    seed: int,
    rank: int,
    world_size: int,
    epochs: int,
) -> EpochBatches:
    """Batches of ``batch_size`` per rank; ``steps_per_epoch`` None: one pass over the data per epoch.

    ``epochs`` is the number of epochs the run counts (shards: the steps must fit every one of them).
    """
    if isinstance(dataset, ShardMultiCropDataset):
        steps = _shard_steps(dataset, batch_size, steps_per_epoch, num_workers, epochs)
        # Workers are re-forked every epoch (persistent_workers=False) so that they see the new epoch.
        loader = DataLoader(dataset, batch_size=batch_size, num_workers=num_workers, collate_fn=collate_fn,
                            drop_last=True, persistent_workers=False)
        return EpochBatches(loader, steps, [dataset])
    steps = steps_per_epoch or max(len(dataset) // (batch_size * world_size), 1)  # type: ignore[arg-type]
    sampler = EpochShardSampler(len(dataset), steps * batch_size, world_size, rank, seed)  # type: ignore[arg-type]
    loader = DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=sampler,
        num_workers=num_workers,
        collate_fn=collate_fn,
        drop_last=True,
        # Workers are re-forked every epoch so that they see the dataset's new epoch (new crops).
        persistent_workers=False,
    )
    return EpochBatches(loader, steps, [dataset, sampler])  # type: ignore[list-item]


def _shard_steps(
    dataset: ShardMultiCropDataset, batch_size: int, requested: int | None, num_workers: int, epochs: int
) -> int:
    """The steps per epoch every rank can run from its shards in every epoch; ``requested`` if it fits."""
    available = dataset.guaranteed_batches(batch_size, num_workers, range(epochs))
    world_size, utterances = dataset.shards.world_size, sum(dataset.shards.counts)
    if available == 0:
        raise ConfigError(
            f"config key 'data.shards': some rank assembles no full batch of optim.batch_size={batch_size} in some "
            f"epoch ({utterances} utterances in {len(dataset.shards.counts)} shards over {world_size} process(es) "
            f"x {max(num_workers, 1)} loader stream(s)); lower optim.batch_size or data.num_workers, or pack "
            "smaller shards (avssl shards --utterances-per-shard)"
        )
    if requested is not None and requested > available:
        raise ConfigError(
            f"config key 'optim.steps_per_epoch' asks for {requested} steps, but from data.shards every rank can "
            f"run only {available} full batches per epoch (a stream of shards is read once per epoch); "
            f"set it to at most {available}, or to null"
        )
    steps = requested or available
    log.info(
        "training from %d shards: %d steps per epoch of %d per process x %d process(es) (%d of %d utterances; "
        "the rest of each epoch is left out so that every rank runs the same steps)",
        len(dataset.shards.counts), steps, batch_size, world_size, steps * batch_size * world_size, utterances,
    )
    return steps
