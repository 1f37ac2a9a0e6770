"""Full-state checkpoints written atomically and read without unpickling arbitrary objects.

A checkpoint holds everything needed to continue exactly: student, teacher, optimiser, loss state
(the DINO centre), the number of finished epochs and the global step. Randomness in avssl is keyed
by (seed, epoch, step), so no RNG state needs saving for an exact resume at an epoch boundary.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from avssl.errors import DataError
from avssl.utils.atomic import atomic_write


def save_checkpoint(path: str | Path, state: dict[str, Any]) -> Path:
    """Write ``state`` (tensors, numbers, strings, nested dicts/lists) atomically."""
    return atomic_write(path, lambda handle: torch.save(state, handle))


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a checkpoint with ``weights_only=True``: plain data only, never arbitrary code."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"checkpoint not found: {path}")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # torch raises several types for truncated or foreign files
        raise DataError(f"cannot read checkpoint {path}: {err}") from err
