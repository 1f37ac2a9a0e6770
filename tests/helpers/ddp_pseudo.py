"""Run by `accelerate launch` in tests: stage II, then each rank saves the thresholds it used."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from avssl.config import PseudoTrainConfig, load_config
from avssl.train.stage_pseudo import train_pseudo_labels


def main() -> None:
    config = load_config(PseudoTrainConfig, None, sys.argv[1:])
    result = train_pseudo_labels(config)
    rank = int(os.environ.get("RANK", "0"))
    thresholds = [[e["threshold"] for e in summary["epochs"]] for summary in result.rounds]
    (Path(config.run.output_dir) / f"rank{rank}_thresholds.json").write_text(json.dumps(thresholds))


if __name__ == "__main__":
    main()
