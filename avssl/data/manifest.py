"""The utterance manifest: the one table every stage after preparation reads.

A manifest is a TSV with one row per utterance, keyed by ``idXXXXX/<session>/NNNNN``. Training treats the
key as an opaque id, so the table deliberately has no speaker column: self-supervised stages must not be
able to peek at identities. Reading validates every line, because a manifest edited by hand or truncated
by a crash would otherwise fail much later, deep inside a data loader, with no hint of the file at fault.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from avssl.errors import DataError
from avssl.utils.atomic import atomic_write_text
from avssl.utils.tsv import read_tsv_lines

HEADER = ("key", "audio", "video", "duration", "sample_rate")
HEADER_LINE = "\t".join(HEADER)
_REMEDY = "run `avssl prepare ROOT OUT` again to regenerate it"


@dataclass(frozen=True)
class Utterance:
    """One utterance: its key, absolute media paths (``video`` None without a face track), audio info."""

    key: str
    audio: str
    video: str | None
    duration: float
    sample_rate: int


def write_manifest(path: str | os.PathLike, utterances: Iterable[Utterance]) -> Path:
    """Write ``utterances`` sorted by key, atomically, so the same input always gives the same bytes."""
    rows = sorted(utterances, key=lambda utt: utt.key)
    lines = [HEADER_LINE]
    seen: set[str] = set()
    for utt in rows:
        if utt.key in seen:
            raise DataError(f"{path}: duplicate utterance key {utt.key!r}; each key may appear only once")
        seen.add(utt.key)
        fields = (utt.key, utt.audio, utt.video or "", repr(float(utt.duration)), str(int(utt.sample_rate)))
        for field in fields:
            if "\t" in field or "\n" in field or "\r" in field:
                raise DataError(
                    f"{path}: field {field!r} of {utt.key!r} contains a tab or newline; rename the file"
                )
        lines.append("\t".join(fields))
    return atomic_write_text(path, "\n".join(lines) + "\n")


def read_manifest(path: str | os.PathLike) -> list[Utterance]:
    """Read and validate a manifest; any malformed line raises DataError naming the file and line."""
    path = Path(path)
    lines = read_tsv_lines(path, HEADER_LINE, "manifest", _REMEDY)
    utterances = []
    seen: dict[str, int] = {}
    for lineno, line in enumerate(lines, start=2):
        utt = _parse_line(path, lineno, line)
        if utt.key in seen:
            raise DataError(
                f"{path}:{lineno}: duplicate key {utt.key!r} (first on line {seen[utt.key]}); {_REMEDY}"
            )
        seen[utt.key] = lineno
        utterances.append(utt)
    return utterances


def _parse_line(path: Path, lineno: int, line: str) -> Utterance:
    """Turn one TSV row into an Utterance, or say exactly what is wrong with it."""
    fields = line.split("\t")
    if len(fields) != len(HEADER):
        raise DataError(
            f"{path}:{lineno}: expected {len(HEADER)} tab-separated fields, found {len(fields)}; {_REMEDY}"
        )
    key, audio, video, duration_text, rate_text = fields
    if not key or not audio:
        raise DataError(f"{path}:{lineno}: the key and audio fields must not be empty; {_REMEDY}")
    try:
        duration = float(duration_text)
    except ValueError:
        raise DataError(f"{path}:{lineno}: duration {duration_text!r} is not a number; {_REMEDY}") from None
    if not math.isfinite(duration) or duration <= 0:
        raise DataError(f"{path}:{lineno}: duration {duration_text!r} must be a positive number; {_REMEDY}")
    try:
        sample_rate = int(rate_text)
    except ValueError:
        raise DataError(f"{path}:{lineno}: sample_rate {rate_text!r} is not an integer; {_REMEDY}") from None
    if sample_rate <= 0:
        raise DataError(f"{path}:{lineno}: sample_rate {rate_text!r} must be positive; {_REMEDY}")
    return Utterance(key=key, audio=audio, video=video or None, duration=duration, sample_rate=sample_rate)
