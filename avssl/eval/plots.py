"""Report figures from a run's own files (matplotlib, no display needed)."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path

import matplotlib
import numpy as np

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


def plot_loss_gate(
    losses: Sequence[float],
    threshold: float,
    means: Sequence[float],
    stds: Sequence[float],
    weights: Sequence[float],
    out_png: str | Path,
    label_right: Sequence[bool] | None = None,
    title: str = "",
) -> Path:
    """Histogram of per-sample log-losses with the fitted two-Gaussian mixture and the DLG threshold.

    ``label_right`` (diagnostic only, from the corpus's true speakers) splits the histogram into samples
    whose pseudo-label was right and wrong, which shows what the gate separates.
    """
    log_losses = np.log(np.maximum(np.asarray(losses, dtype=np.float64), 1e-12))
    bins = np.linspace(log_losses.min(), log_losses.max(), 60)
    fig, ax = plt.subplots(figsize=(8, 3.8))
    if label_right is not None:
        right = np.asarray(label_right, dtype=bool)
        ax.hist([log_losses[right], log_losses[~right]], bins=bins, stacked=True, density=True, alpha=0.6,
                color=["tab:green", "tab:red"],
                label=["pseudo-label right (diagnostic)", "pseudo-label wrong (diagnostic)"])
    else:
        ax.hist(log_losses, bins=bins, density=True, alpha=0.6, color="tab:blue", label="samples")
    grid = np.linspace(bins[0], bins[-1], 400)
    total = np.zeros_like(grid)
    for k, (mean, std, weight) in enumerate(zip(means, stds, weights, strict=True)):
        density = weight * np.exp(-0.5 * ((grid - mean) / std) ** 2) / (std * math.sqrt(2 * math.pi))
        total += density
        ax.plot(grid, density, linestyle="--", color="tab:purple" if k == 0 else "tab:brown",
                label=f"component {k + 1} (weight {weight:.2f})")
    if len(means):
        ax.plot(grid, total, color="black", linewidth=1, label="mixture")
    if math.isfinite(threshold):
        ax.axvline(math.log(threshold), color="black", linestyle=":", label=f"threshold (loss {threshold:.2f})")
    ax.set(xlabel="log per-sample loss", ylabel="density", title=title)
    ax.legend(fontsize=7, loc="upper left")
    fig.tight_layout()
    out_png = Path(out_png)
    out_png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out_png, dpi=120)
    plt.close(fig)
    return out_png
