"""Strict reading of VoxCeleb-format trial lists for data preparation.

A trial line is ``<label> <enrol path> <test path>`` with label 1 (same speaker) or 0, and paths relative
to the test split's ``wav/`` folder. Preparation must reject a malformed line outright, naming the file
and line, because a silently skipped trial changes the EER that everyone compares against. It is stricter
than scoring's reader (``avssl.eval.trials``): it also checks each path's ``speaker/session/utt`` shape
and keeps the paths as written, so the validated copy reads exactly like the original. Keys come from
the same ``utterance_key`` that scoring uses, so a trial kept here is always found there.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from avssl.errors import DataError
from avssl.eval.trials import utterance_key

KEY_DEPTH = 3  # speaker / session / utterance


@dataclass(frozen=True)
class TrialLine:
    """One parsed trial: the paths as written (kept verbatim in the copy) and the keys they name."""

    lineno: int
    label: int
    enrol: str
    test: str

    @property
    def enrol_key(self) -> str:
        return utterance_key(self.enrol)

    @property
    def test_key(self) -> str:
        return utterance_key(self.test)

    def text(self) -> str:
        """The line in canonical form: single spaces, no trailing whitespace."""
        return f"{self.label} {self.enrol} {self.test}"


def read_trial_lines(path: str | os.PathLike) -> list[TrialLine]:
    """Parse every non-blank line of a trial list; the first malformed line raises DataError."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise DataError(f"trial list {path} cannot be read ({error}); replace it with a text file") from None
    trials = [
        _parse(path, lineno, line) for lineno, line in enumerate(text.splitlines(), start=1) if line.strip()
    ]
    if not trials:
        raise DataError(f"trial list {path} holds no trials; remove it or restore its content")
    return trials


def _parse(path: Path, lineno: int, line: str) -> TrialLine:
    fields = line.split()
    expected = "expected '<0|1> <speaker>/<session>/<utt>.wav <speaker>/<session>/<utt>.wav'"
    if len(fields) != 3:
        raise DataError(f"{path}:{lineno}: {len(fields)} fields in {line.strip()!r}; {expected}")
    label, enrol, test = fields
    if label not in ("0", "1"):
        raise DataError(f"{path}:{lineno}: label {label!r} is not 0 or 1; {expected}")
    for utt in (enrol, test):
        parts = PurePosixPath(utt).parts
        if len(parts) != KEY_DEPTH or utt.startswith("/") or ".." in parts:
            raise DataError(f"{path}:{lineno}: path {utt!r} is not relative speaker/session/utt; {expected}")
    return TrialLine(lineno=lineno, label=int(label), enrol=enrol, test=test)
