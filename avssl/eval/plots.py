"""Report figures from a run's own files (matplotlib, no display needed)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def plot_dino_training(train_log: str | Path, out_png: str | Path) -> Path:
    """Loss and teacher/student entropies (against ln K) over steps, from ``train_log.jsonl``.

    The entropies are the collapse monitor: a healthy teacher falls below ln K and stays above 0.
    """
    rows = [json.loads(line) for line in Path(train_log).read_text().splitlines() if line.strip()]
    steps = [r["step"] for r in rows]
    fig, (ax_loss, ax_ent) = plt.subplots(1, 2, figsize=(10, 3.6))
    ax_loss.plot(steps, [r["loss"] for r in rows], color="tab:blue")
    ax_loss.set(xlabel="step", ylabel="DINO loss", title="loss")
    ax_ent.plot(steps, [r["teacher_entropy"] for r in rows], label="teacher", color="tab:orange")
    ax_ent.plot(steps, [r["student_entropy"] for r in rows], label="student", color="tab:green")
    ln_k = rows[0]["ln_k"] if rows else math.nan
    ax_ent.axhline(ln_k, color="grey", linestyle="--", label="ln K (uniform)")
    ax_ent.set(xlabel="step", ylabel="entropy (nats)", title="entropies", ylim=(0, ln_k * 1.05))
    ax_ent.legend(loc="lower left")
    fig.tight_layout()
    out_png = Path(out_png)
    out_png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out_png, dpi=110)
    plt.close(fig)
    return out_png
