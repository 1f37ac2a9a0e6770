"""The cross-modal gate of one audio-visual stage-II epoch: the counterpart of :mod:`avssl.pseudo.epoch_gate`.

The schedule is the audio-only one (``gate.mode``, ``gate.warmup_epochs``, ``correction.start_epoch``);
only the rule changes: a DLG epoch fits :func:`avssl.pseudo.cross_modal.fit_cross_modal_gate` in the
``cross_modal.gate`` mode to the previous epoch's audio and face losses, gathered from every process.
Kept apart from the loop for the same reason as the audio gate: testable on hand-made losses.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from avssl.config import PseudoTrainConfig
from avssl.pseudo.cross_modal import GATE_MODES, CrossModalGate, fit_cross_modal_gate, open_cross_modal_gate
from avssl.pseudo.gate import GateFit


@dataclass(frozen=True)
class EpochLosses:
    """One epoch's per-sample losses in sample order; ``face`` is NaN where ``has_face`` is False."""

    audio: np.ndarray
    face: np.ndarray
    has_face: np.ndarray


@dataclass(frozen=True)
class CrossModalEpochGate:
    """What one audio-visual epoch trains with; reads like :class:`~avssl.pseudo.epoch_gate.EpochGate`.

    ``threshold`` and ``fit`` are the headline ones (the joint gate, or the audio gate in ``and`` /
    ``or`` modes) so that the epoch log and gate record keep their audio-only shape; ``gate`` has all.
    """

    gate: CrossModalGate
    correct: bool
    note: str

    @property
    def threshold(self) -> float:
        return self.gate.thresholds[GATE_MODES[self.gate.mode][0]]

    @property
    def fit(self) -> GateFit | None:
        return self.gate.fits.get(GATE_MODES[self.gate.mode][0])

    def thresholds(self) -> dict[str, float | None]:
        """Every threshold, None where the gate abstains (+inf), for the JSON summaries."""
        return {name: (t if math.isfinite(t) else None) for name, t in self.gate.thresholds.items()}


def cross_modal_gate_for_epoch(
    epoch: int,
    config: PseudoTrainConfig,
    previous_losses: EpochLosses | None,
    previous_gate: CrossModalGate | None,
    seed: int,
) -> CrossModalEpochGate:
    """Decide epoch ``epoch``'s (0-based, within a round) cross-modal gate and whether LC applies.

    ``previous_gate`` is the gate the last epoch used (None at the start of a round); a degenerate
    fit keeps its thresholds, per modality.
    """
    mode, gate = config.cross_modal.gate, config.gate
    if gate.mode == "none":
        return CrossModalEpochGate(open_cross_modal_gate(mode), False, "no gate")
    if epoch < gate.warmup_epochs:
        return CrossModalEpochGate(
            open_cross_modal_gate(mode), False, f"warm-up epoch {epoch + 1}/{gate.warmup_epochs}: no gate"
        )
    correct = config.correction.enabled and epoch >= config.correction.start_epoch
    if gate.mode == "fixed":
        fixed = CrossModalGate(mode, {name: gate.fixed_threshold for name in GATE_MODES[mode]})
        return CrossModalEpochGate(fixed, correct, f"fixed threshold {gate.fixed_threshold:g} per gate")
    if previous_losses is None:
        return CrossModalEpochGate(
            previous_gate or open_cross_modal_gate(mode), correct, "no losses from a previous epoch yet"
        )
    fitted = fit_cross_modal_gate(
        previous_losses.audio, previous_losses.face, previous_losses.has_face, mode, previous_gate,
        gate.use_log_loss, seed, gate.min_samples, gate.min_separation,
        gate.min_reliable_weight,
    )
    if fitted.degenerate:
        return CrossModalEpochGate(fitted, correct, f"degenerate fit ({fitted.reason}); previous threshold kept")
    return CrossModalEpochGate(fitted, correct, f"{mode} gate fitted on the previous epoch's losses")
