"""Reading the project's own TSV files (manifests, pseudo-labels): one header line, then rows."""

from __future__ import annotations

import os
from pathlib import Path

from avssl.errors import DataError


def read_tsv_lines(path: str | os.PathLike, header: str, what: str, remedy: str) -> list[str]:
    """The data lines of ``path`` after checking it exists, is UTF-8 and starts with ``header``.

    ``what`` names the kind of file in messages ("manifest"), ``remedy`` says how to regenerate it.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{what} {path} does not exist; {remedy}")
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as error:
        raise DataError(f"{what} {path} is not UTF-8 text ({error}); {remedy}") from None
    if not lines or lines[0] != header:
        found = lines[0] if lines else "an empty file"
        raise DataError(f"{path}:1: expected the header {header!r}, found {found!r}; {remedy}")
    return lines[1:]
