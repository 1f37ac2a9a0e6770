"""Verification trial lists in the VoxCeleb1 format: one ``<1|0> <enrol path> <test path>`` per line.

Trials refer to utterances by KEY (the relative path without its extension, e.g.
``id10270/x6uYqmx31kE/00001``) so the same list scores embeddings extracted from .wav, .flac, .m4a
audio or .mp4 video alike.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from avssl.errors import DataError

AUDIO_VIDEO_EXTENSIONS = (".wav", ".flac", ".m4a", ".mp4")


def utterance_key(path: str) -> str:
    """The key of an utterance path: leading ``./`` and a known audio/video extension removed."""
    while path.startswith("./"):
        path = path[2:]
    stem, dot, extension = path.rpartition(".")
    if dot and "/" not in extension and f".{extension.lower()}" in AUDIO_VIDEO_EXTENSIONS:
        return stem
    return path


@dataclass
class TrialList:
    """A parsed trial list; ``labels[i]`` is 1 when ``enrol[i]`` and ``test[i]`` share a speaker."""

    name: str
    labels: np.ndarray
    enrol: list[str]
    test: list[str]

    def __len__(self) -> int:
        return int(self.labels.size)

    def keys(self) -> list[str]:
        """Sorted unique utterance keys: the embeddings this list needs."""
        return sorted(set(self.enrol) | set(self.test))


def read_trials(path: str | Path) -> TrialList:
    """Parse a VoxCeleb1-format trial file; malformed lines raise DataError naming file and line.

    Blank lines are skipped. The list is named after the file's stem (``veri_test2``).
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"trial list {path} not found: download it or fix the path in the eval config")
    labels: list[int] = []
    enrol: list[str] = []
    test: list[str] = []
    # Each utterance appears in many trials; sharing one key string per utterance keeps the 580k-trial
    # lists small in memory.
    shared: dict[str, str] = {}

    def key_of(raw: str) -> str:
        key = shared.get(raw)
        if key is None:
            key = shared[raw] = utterance_key(raw)
        return key

    with path.open(encoding="utf-8") as handle:
        for line_number, line in enumerate(handle, start=1):
            fields = line.split()
            if not fields:
                continue
            if len(fields) != 3:
                raise DataError(
                    f"{path}:{line_number}: expected 3 fields '<1|0> <enrol path> <test path>', "
                    f"got {len(fields)}: {line.strip()[:120]!r}"
                )
            label, first, second = fields
            if label not in ("0", "1"):
                raise DataError(f"{path}:{line_number}: label must be 1 (same speaker) or 0, got {label!r}")
            labels.append(int(label))
            enrol.append(key_of(first))
            test.append(key_of(second))
    if not labels:
        raise DataError(f"trial list {path} has no trials: is it the right file?")
    return TrialList(name=path.stem, labels=np.asarray(labels, dtype=np.int8), enrol=enrol, test=test)
