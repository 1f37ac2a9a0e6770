"""Which sample indices each process sees in each epoch.

One rule for every process count: draw the epoch's global order from (seed, epoch), deal it to the
ranks round-robin. Every rank gets exactly the same number of samples (no hang at the end of an
epoch under DDP), the ranks' shares are disjoint within one pass over the data and together cover
it, and the order does not depend on anything but the seed and the epoch (exact resume).
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
from torch.utils.data import Sampler


class EpochShardSampler(Sampler[int]):
    """Shuffled, rank-sharded indices; ``samples_per_rank`` may exceed one pass (more permutations)."""

    def __init__(
        self,
        dataset_size: int,
        samples_per_rank: int,
        num_replicas: int = 1,
        rank: int = 0,
        seed: int = 0,
        shuffle: bool = True,
    ) -> None:
        if dataset_size <= 0:
            raise ValueError("cannot sample from an empty dataset")
        if not 0 <= rank < num_replicas:
            raise ValueError(f"rank {rank} outside [0, {num_replicas})")
        self.dataset_size = dataset_size
        self.samples_per_rank = samples_per_rank
        self.num_replicas = num_replicas
        self.rank = rank
        self.seed = seed
        self.shuffle = shuffle
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def global_order(self) -> np.ndarray:
        """The epoch's indices for all ranks together (rank r takes positions r, r + R, ...)."""
        needed = self.samples_per_rank * self.num_replicas
        passes = -(-needed // self.dataset_size)
        orders = []
        for k in range(passes):
            if self.shuffle:
                orders.append(np.random.default_rng([self.seed, self.epoch, k]).permutation(self.dataset_size))
            else:
                orders.append(np.arange(self.dataset_size))
        return np.concatenate(orders)[:needed]

    def __iter__(self) -> Iterator[int]:
        return iter(self.global_order()[self.rank :: self.num_replicas].tolist())

    def __len__(self) -> int:
        return self.samples_per_rank
