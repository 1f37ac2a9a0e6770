"""The gate of one stage-II epoch: which threshold applies, whether label correction is on, and why.

The threshold of epoch ``e`` depends only on what was known when it started: the configured mode, the
warm-up length, and (for DLG) the per-sample losses of epoch ``e - 1`` gathered from every process.
Keeping that decision here, away from the training loop, makes it testable on hand-made losses and
makes the loop read as "ask the gate, train, hand the gate this epoch's losses".
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import numpy as np

from avssl.config import CorrectionConfig, GateConfig
from avssl.pseudo.gate import GateFit, fit_dynamic_gate

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EpochGate:
    """What one epoch trains with. ``threshold`` +inf keeps every sample."""

    threshold: float
    correct: bool  # label correction applies to samples above the threshold
    fit: GateFit | None  # the DLG fit the threshold came from (None: no fit this epoch)
    note: str  # why this threshold (warm-up, fixed, fitted, degenerate -> previous)


def gate_for_epoch(
    epoch: int,
    gate: GateConfig,
    correction: CorrectionConfig,
    previous_losses: np.ndarray | None,
    previous_threshold: float,
    seed: int,
) -> EpochGate:
    """Decide epoch ``epoch``'s (0-based, within a round) threshold and correction.

    ``previous_losses`` are the last epoch's per-sample losses from all processes (None in the first
    epoch of a round); ``previous_threshold`` is the threshold the last epoch used (+inf if none), kept
    when a DLG fit is degenerate.
    """
    if gate.mode == "none":
        return EpochGate(math.inf, False, None, "no gate")
    if epoch < gate.warmup_epochs:
        return EpochGate(math.inf, False, None, f"warm-up epoch {epoch + 1}/{gate.warmup_epochs}: no gate")
    correct = correction.enabled and epoch >= correction.start_epoch
    if gate.mode == "fixed":
        return EpochGate(gate.fixed_threshold, correct, None, f"fixed threshold {gate.fixed_threshold:g}")
    if previous_losses is None:
        return EpochGate(previous_threshold, correct, None, "no losses from a previous epoch yet")
    previous = previous_threshold if math.isfinite(previous_threshold) else None
    fit = fit_dynamic_gate(
        previous_losses, gate.use_log_loss, previous, seed, gate.min_samples, gate.min_separation,
        gate.min_reliable_weight,
    )
    if fit.degenerate:
        log.warning("DLG fit at epoch %d is degenerate (%s): keeping threshold %.4g", epoch + 1, fit.reason, fit.threshold)
        return EpochGate(fit.threshold, correct, fit, f"degenerate fit ({fit.reason}); previous threshold kept")
    return EpochGate(fit.threshold, correct, fit, "fitted on the previous epoch's losses")
