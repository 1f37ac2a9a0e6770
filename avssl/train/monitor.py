"""Training scalars: TensorBoard, a JSON-lines log, and the DINO collapse watch.

Only the main process writes. The JSON-lines file makes training curves plottable without
TensorBoard (the docs' figures come from it) and survives a resume (it is appended to).
"""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path

log = logging.getLogger(__name__)


class ScalarLog:
    """Write scalars of a step to TensorBoard and to ``train_log.jsonl``."""

    def __init__(self, folder: str | Path, enabled: bool) -> None:
        self.enabled = enabled
        self.writer = None
        self.jsonl = None
        if enabled:
            from torch.utils.tensorboard import SummaryWriter

            folder = Path(folder)
            self.writer = SummaryWriter(str(folder / "tensorboard"))
            self.jsonl = (folder / "train_log.jsonl").open("a")

    def write(self, step: int, scalars: dict[str, float]) -> None:
        if not self.enabled:
            return
        for name, value in scalars.items():
            self.writer.add_scalar(name, value, step)
        self.jsonl.write(json.dumps({"step": step, **scalars}) + "\n")
        self.jsonl.flush()

    def close(self) -> None:
        if self.enabled:
            self.writer.close()
            self.jsonl.close()


class CollapseWatch:
    """Warn when the teacher's entropy sits near ln(K) (uniform) or near 0 (one-hot) for a while.

    Either extreme means the teacher has stopped carrying information about its input; DINO's
    centring and sharpening are supposed to keep it between the two.
    """

    def __init__(self, out_dim: int, patience: int = 50, margin: float = 0.02) -> None:
        self.ln_k = math.log(out_dim)
        self.patience = patience
        self.margin = margin
        self.uniform_steps = 0
        self.onehot_steps = 0
        self.warned = False

    def update(self, teacher_entropy: float, step: int) -> None:
        self.uniform_steps = self.uniform_steps + 1 if teacher_entropy > (1 - self.margin) * self.ln_k else 0
        self.onehot_steps = self.onehot_steps + 1 if teacher_entropy < self.margin * self.ln_k else 0
        if self.warned:
            return
        if self.uniform_steps >= self.patience:
            log.warning(
                "step %d: teacher entropy %.3f has stayed near ln(K)=%.3f for %d steps: uniform collapse? "
                "(lower dino.teacher_temp or raise dino.center_momentum)",
                step, teacher_entropy, self.ln_k, self.patience,
            )
            self.warned = True
        elif self.onehot_steps >= self.patience:
            log.warning(
                "step %d: teacher entropy %.3f has stayed near 0 for %d steps: one-hot collapse? "
                "(raise dino.teacher_temp or lower the learning rate)",
                step, teacher_entropy, self.patience,
            )
            self.warned = True
