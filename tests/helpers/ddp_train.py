"""Run by `accelerate launch` in tests: train DINO, then each rank saves the weights it ended with."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import torch

from avssl.config import DinoTrainConfig, load_config
from avssl.train.stage_dino import train_dino


def main() -> None:
    config = load_config(DinoTrainConfig, None, sys.argv[1:])
    result = train_dino(config)
    rank = int(os.environ.get("RANK", "0"))  # set by the launcher; the process group is gone by now
    state = {"student": result.student.state_dict(), "teacher": result.teacher.state_dict()}
    torch.save(state, Path(config.run.output_dir) / f"rank{rank}_weights.pt")


if __name__ == "__main__":
    main()
