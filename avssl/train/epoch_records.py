"""Per-sample records of one training epoch, kept on each process and gathered once at its end.

The gate of stage II needs every process's per-sample losses and decisions, but only when the epoch
is over. Keeping the tensors locally and gathering each field once per epoch costs one collective per
field instead of one per field and step (which would sit on the training step's critical path). Every
rank runs the same number of equal batches, so the per-rank tensors have equal lengths, as a gather
requires.
"""

from __future__ import annotations

import numpy as np
import torch
from accelerate import Accelerator


class StepRecords:
    """Named per-sample tensors appended step by step; :meth:`gather` returns them from all processes."""

    def __init__(self, *fields: str) -> None:
        self._steps: dict[str, list[torch.Tensor]] = {name: [] for name in fields}

    def append(self, **values: torch.Tensor) -> None:
        for name, value in values.items():
            self._steps[name].append(value.detach())

    def gather(self, accelerator: Accelerator) -> dict[str, np.ndarray]:
        """Every field from every process (a collective: all ranks must call it), as numpy arrays."""
        out: dict[str, np.ndarray] = {}
        for name, steps in self._steps.items():
            local = torch.cat(steps)
            # Booleans travel as bytes: not every collective backend (gloo) gathers bool tensors.
            wire = local.to(torch.uint8) if local.dtype == torch.bool else local
            gathered = accelerator.gather(wire.contiguous()).cpu()
            out[name] = (gathered.bool() if local.dtype == torch.bool else gathered).numpy()
        return out
