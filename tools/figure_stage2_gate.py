"""Docs figure: a stage-II run's per-sample losses, the DLG mixture fitted on them and its threshold.

    python tools/figure_stage2_gate.py runs/demo/stage2/dlglc docs/img/stage2_gate.png [ROUND]
"""

from __future__ import annotations

import sys
from pathlib import Path

from avssl.demo import plot_gate_figure

if __name__ == "__main__":
    plot_gate_figure(Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3]) - 1 if len(sys.argv) > 3 else 0)
    print(f"wrote {sys.argv[2]}")
