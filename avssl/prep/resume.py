"""What an interrupted step left behind: finished outputs, and temporary files to clear away.

Every output of the preparation steps is written by :func:`avssl.utils.atomic.atomic_write`, which
writes ``.<name>.<random>.tmp`` beside the target and renames it into place. So after a crash an
output either exists complete or not at all, and the only debris is those hidden temporary files. A
re-run therefore redoes exactly the outputs that do not exist, after deleting the temporary files of
the outputs it owns (concurrent array jobs own disjoint outputs and must not touch each other's).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from pathlib import Path

TEMP_NAME = re.compile(r"^\.(?P<target>.+)\.[A-Za-z0-9_]+\.tmp$")


def scan_outputs(folder: Path) -> tuple[set[str], list[Path]]:
    """Paths (as strings) of the finished files below ``folder``, and the temporary files there."""
    existing: set[str] = set()
    partial: list[Path] = []
    for dirpath, _, filenames in os.walk(folder):
        for name in filenames:
            if TEMP_NAME.match(name):
                partial.append(Path(dirpath) / name)
            else:
                existing.add(os.path.join(dirpath, name))
    return existing, partial


def remove_partials(partial: list[Path], owned: Callable[[Path], bool]) -> int:
    """Delete the temporary files whose target ``owned`` accepts; return how many were deleted."""
    removed = 0
    for path in partial:
        match = TEMP_NAME.match(path.name)
        if match and owned(path.parent / match.group("target")):
            path.unlink(missing_ok=True)
            removed += 1
    return removed
