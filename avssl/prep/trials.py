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


# The official VoxCeleb1 lists, by file name: (name, number of trials), from the release notes. A list
# with another count is a truncated download or a different list; the report says so.
OFFICIAL_TRIAL_LISTS: dict[str, tuple[str, int]] = {
    "veri_test.txt": ("Vox1-O", 37_720),
    "veri_test2.txt": ("Vox1-O (cleaned)", 37_611),
    "list_test_all.txt": ("Vox1-E", 581_480),
    "list_test_all2.txt": ("Vox1-E (cleaned)", 579_818),
    "list_test_hard.txt": ("Vox1-H", 552_536),
    "list_test_hard2.txt": ("Vox1-H (cleaned)", 550_894),
}


@dataclass
class TrialCheck:
    """A trial list checked against the recordings at hand.

    A trial is dropped when one of its keys is absent: ``missing`` keys were never found on disk,
    ``skipped`` keys were found but left out as unusable (corrupt, wrong rate). The counts per list
    tell a partial download (many missing) from a few bad files.
    """

    kept: list[TrialLine]
    dropped_missing: int
    dropped_skipped: int
    missing_keys: set[str]
    skipped_keys: set[str]


def check_trials(trials: list[TrialLine], present: set[str], unusable: set[str]) -> TrialCheck:
    """Keep the trials whose two keys are in ``present``; count the others by why they are dropped."""
    check = TrialCheck([], 0, 0, set(), set())
    for trial in trials:
        absent = [key for key in (trial.enrol_key, trial.test_key) if key not in present]
        if not absent:
            check.kept.append(trial)
            continue
        for key in absent:
            (check.skipped_keys if key in unusable else check.missing_keys).add(key)
        if any(key in unusable for key in absent):
            check.dropped_skipped += 1
        else:
            check.dropped_missing += 1
    return check


def official_list(path: str | os.PathLike) -> tuple[str, int] | None:
    """(name, official trial count) for an official VoxCeleb1 list file name, else None."""
    return OFFICIAL_TRIAL_LISTS.get(Path(path).name)
