"""Length-bucketed batches for full-utterance embedding, and their split over processes.

Embedding one utterance at a time leaves a GPU (or the CPU's vector units) mostly idle, and padding
utterances of different lengths into one batch would change what statistics pooling sees. Sorting by
length and batching only utterances whose lengths agree within a tolerance lets each batch be cropped
to its shortest member while no utterance loses more than that fraction of its samples. Tolerance 0
batches only utterances of exactly equal length, which reproduces one-at-a-time extraction.

The plan depends on the lengths alone, never on the number of processes: every process computes the
same batches and takes a disjoint share of them, so 1 or N processes embed exactly the same batches.
"""

from __future__ import annotations

import heapq
from collections.abc import Sequence

from avssl.errors import ConfigError


def check_bucketing(tolerance: float, max_samples: int) -> None:
    """Reject settings that cannot make a batch, naming the command-line option to fix."""
    if not 0.0 <= tolerance < 1.0:
        raise ConfigError(f"--bucket-tolerance must be a fraction in [0, 1), got {tolerance}")
    if max_samples < 1:
        raise ConfigError(f"--max-batch-seconds must be positive, got a cap of {max_samples} samples")


def plan_batches(lengths: Sequence[int], tolerance: float, max_samples: int) -> list[list[int]]:
    """Batches of indices into ``lengths``, longest utterances first (a memory problem shows at once).

    In every batch the shortest member is at least ``(1 - tolerance)`` times the longest, and the
    batch size times the shortest length (the samples the cropped batch holds) is at most
    ``max_samples``; an utterance longer than ``max_samples`` forms a batch of its own. Members are
    listed longest first; equal lengths keep their input order.
    """
    check_bucketing(tolerance, max_samples)
    order = sorted(range(len(lengths)), key=lambda i: (-lengths[i], i))
    batches: list[list[int]] = []
    current: list[int] = []
    for index in order:
        if current:
            close_enough = lengths[index] >= (1.0 - tolerance) * lengths[current[0]]
            fits = (len(current) + 1) * lengths[index] <= max_samples
            if close_enough and fits:
                current.append(index)
                continue
            batches.append(current)
        current = [index]
    if current:
        batches.append(current)
    return batches


def share_batches(batches: Sequence[Sequence[int]], lengths: Sequence[int], world_size: int) -> list[list[int]]:
    """Batch indices for each of ``world_size`` processes, disjoint and together covering every batch.

    Greedy balancing: batches in decreasing cost (cropped samples) each go to the least loaded process
    so far (ties to the lowest rank), so processes finish at about the same time. Deterministic.
    """
    if world_size < 1:
        raise ConfigError(f"the number of processes must be at least 1, got {world_size}")
    costs = [len(batch) * min(lengths[i] for i in batch) for batch in batches]
    loads = [(0, rank) for rank in range(world_size)]
    shares: list[list[int]] = [[] for _ in range(world_size)]
    for batch_index in sorted(range(len(batches)), key=lambda b: (-costs[b], b)):
        load, rank = heapq.heappop(loads)
        shares[rank].append(batch_index)
        heapq.heappush(loads, (load + costs[batch_index], rank))
    return [sorted(share) for share in shares]
