"""Running a preparation step over many files: on all cores, in slices for array jobs, with progress.

Every heavy VoxCeleb step (extracting, converting, chunking, packing shards) has the same needs: spread
the files over the cores of one machine, split them across the jobs of a cluster array
(``--shard i/n``), and show progress to a person watching, or log it when nobody is (tqdm may be missing
in a minimal batch environment). Keeping those in one place means every step behaves alike.
"""

from __future__ import annotations

import logging
import os
import re
import time
import zlib
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from typing import TypeVar

from avssl.errors import ConfigError

log = logging.getLogger(__name__)

Item = TypeVar("Item")
Result = TypeVar("Result")


@dataclass(frozen=True)
class WorkShard:
    """Slice ``index`` of ``count`` (0-based, as SLURM array task ids usually are).

    A file belongs to one slice by a hash of its key, not by its position in a listing, so jobs that list
    the corpus at slightly different moments (a file added in between) still never both take one file.
    """

    index: int = 0
    count: int = 1

    def owns(self, key: str) -> bool:
        return self.count == 1 or zlib.crc32(key.encode("utf-8")) % self.count == self.index

    def owns_number(self, number: int) -> bool:
        """For numbered outputs (shard files): slice ``i`` takes numbers i, i + n, i + 2n, ..."""
        return number % self.count == self.index

    @property
    def suffix(self) -> str:
        """A file-name part that keeps the reports of concurrent slices apart ('' for the whole job)."""
        return "" if self.count == 1 else f".shard-{self.index}-of-{self.count}"

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


def parse_shard(text: str) -> WorkShard:
    """Parse ``i/n`` (``0 <= i < n``) from the command line."""
    match = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", text)
    if not match:
        raise ConfigError(f"--shard {text!r}: expected i/n such as 0/4 (slice i of n, counted from 0)")
    index, count = int(match.group(1)), int(match.group(2))
    if count < 1 or index >= count:
        raise ConfigError(f"--shard {text!r}: need n >= 1 and 0 <= i < n (slices are counted from 0)")
    return WorkShard(index, count)


def default_workers(workers: int | None) -> int:
    """None means every core this process may use (respecting a cluster's CPU affinity mask)."""
    if workers is not None:
        return max(1, workers)
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def parallel_map(
    function: Callable[[Item], Result],
    items: Iterable[Item],
    workers: int | None = None,
    desc: str = "",
    progress: bool = False,
) -> Iterator[Result]:
    """``map(function, items)`` in order over ``workers`` processes (1: in this process).

    ``function`` must be picklable (a module-level function or a ``functools.partial`` of one). One
    worker runs in-process so tests and small jobs pay no process start-up.
    """
    items = list(items)
    workers = min(default_workers(workers), max(1, len(items)))
    with Progress(len(items), desc, progress) as bar:
        if workers <= 1:
            for result in map(function, items):
                bar.update()
                yield result
            return
        chunksize = max(1, min(32, len(items) // (workers * 8)))
        with ProcessPoolExecutor(max_workers=workers) as pool:
            for result in pool.map(function, items, chunksize=chunksize):
                bar.update()
                yield result


class Progress:
    """A tqdm bar when tqdm is installed and ``show`` is true; otherwise a log line every 10 %.

    Batch jobs write logs, not terminals, so the fallback logs at INFO rather than printing nothing.
    """

    def __init__(self, total: int | None, desc: str, show: bool) -> None:
        """``total`` None: unknown in advance (a tarball read in order); the fallback logs every 1000."""
        self.total, self.desc, self.done = total, desc, 0
        self._bar = None
        self._step = max(1, total // 10) if total is not None else 1000
        self._next_log = self._step
        self._started = time.perf_counter()
        if show:
            try:
                from tqdm import tqdm
            except ImportError:
                log.info("%s: %s item(s) (install tqdm for a progress bar)", desc, total or "?")
            else:
                self._bar = tqdm(total=total, desc=desc, unit="file")

    def update(self, count: int = 1) -> None:
        self.done += count
        if self._bar is not None:
            self._bar.update(count)
        elif self.done >= self._next_log or self.done == self.total:
            rate = self.done / max(time.perf_counter() - self._started, 1e-9)
            log.info("%s: %d/%s (%.1f/s)", self.desc, self.done, self.total or "?", rate)
            self._next_log = self.done + self._step

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.close()
