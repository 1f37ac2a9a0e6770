"""Label correction (LC): give samples rejected by the loss gate a second chance instead of dropping them.

A sample above the gate probably carries a wrong pseudo-label, but it is still useful data. If the
model's own prediction for it is confident, the sample is trained with the predicted class; only the
unconfident ones are dropped. The prediction is a sharpened posterior ``softmax(logits / temperature)``
of the clean, un-augmented copy of the segment, so augmentation noise does not decide the new label.

Stage II passes the margin-free cosines (:meth:`avssl.models.aam.AamSoftmax.cosine`) as ``logits``: with
temperature 0.1 that is a softmax at scale 10. Passing the AAM logits (``30 * cos``) would sharpen to
scale 300, where almost every sample clears a 0.5 confidence (measured on the demo corpus, round 1:
100 % of samples vs 35 % on cosines), so the rule would relabel everything above the gate.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from avssl.errors import ConfigError, DataError


@dataclass(frozen=True)
class CorrectionResult:
    """Training targets after the gate and label correction, one entry per sample.

    ``labels`` is the target to train with (the pseudo-label when the sample passed the gate, the
    predicted class when it was corrected; the pseudo-label is left in place for dropped samples, which
    ``use`` excludes). ``corrected`` marks samples above the gate with a confident prediction, which may
    coincide with their pseudo-label. ``kept``, ``corrected`` and ``dropped`` partition the batch, so the
    three fractions add up to 1.
    """

    labels: torch.Tensor  # (N,) int64
    use: torch.Tensor  # (N,) bool: passed the gate or corrected
    corrected: torch.Tensor  # (N,) bool
    dropped: torch.Tensor  # (N,) bool
    fraction_kept: float
    fraction_corrected: float
    fraction_dropped: float


def correct_labels(
    logits_clean: torch.Tensor,
    pseudo_labels: torch.Tensor,
    gate_mask: torch.Tensor,
    temperature: float = 0.1,
    confidence: float = 0.5,
) -> CorrectionResult:
    """Apply LC to a batch: keep gated-in labels, relabel confident gated-out samples, drop the rest.

    ``logits_clean`` is ``(N, n_classes)``, ``pseudo_labels`` ``(N,)`` integers and ``gate_mask`` ``(N,)``
    booleans (True = passed the gate). No gradient flows through the correction.
    """
    if not temperature > 0.0:
        raise ConfigError(
            f"label-correction temperature must be positive, got {temperature}; the method uses 0.1"
        )
    if not 0.0 <= confidence < 1.0:
        raise ConfigError(
            f"label-correction confidence must be in [0, 1), got {confidence}; the method uses 0.5"
        )
    if logits_clean.dim() != 2:
        raise DataError(f"logits_clean must be (batch, n_classes), got shape {tuple(logits_clean.shape)}")
    n = logits_clean.shape[0]
    if pseudo_labels.shape != (n,) or gate_mask.shape != (n,):
        raise DataError(
            f"expected pseudo_labels and gate_mask of shape ({n},) to match logits_clean, got "
            f"{tuple(pseudo_labels.shape)} and {tuple(gate_mask.shape)}"
        )
    if gate_mask.dtype != torch.bool:
        raise DataError(f"gate_mask must be a bool tensor, got {gate_mask.dtype}")
    with torch.no_grad():
        posterior = torch.softmax(logits_clean.float() / temperature, dim=1)
        top_prob, predicted = posterior.max(dim=1)
    above = ~gate_mask
    corrected = above & (top_prob > confidence)
    dropped = above & ~corrected
    labels = torch.where(corrected, predicted, pseudo_labels.long())
    total = max(n, 1)
    return CorrectionResult(
        labels=labels,
        use=gate_mask | corrected,
        corrected=corrected,
        dropped=dropped,
        fraction_kept=int(gate_mask.sum()) / total,
        fraction_corrected=int(corrected.sum()) / total,
        fraction_dropped=int(dropped.sum()) / total,
    )


def masked_mean_loss(per_sample_loss: torch.Tensor, use: torch.Tensor) -> torch.Tensor:
    """Mean of ``per_sample_loss`` over the samples in ``use``; 0 (still differentiable) when none is used.

    Returning a zero that is connected to the graph lets a batch where every sample was dropped go
    through ``backward`` and the optimiser step like any other, instead of needing a special case.
    Unused entries are selected away, so a NaN or inf in a dropped sample's loss cannot leak in.
    """
    if per_sample_loss.shape != use.shape or use.dtype != torch.bool:
        raise DataError(
            f"use must be a bool mask shaped like the losses {tuple(per_sample_loss.shape)}, "
            f"got {use.dtype} {tuple(use.shape)}"
        )
    masked = torch.where(use, per_sample_loss, torch.zeros_like(per_sample_loss))
    return masked.sum() / use.sum().clamp(min=1).to(per_sample_loss.dtype)
