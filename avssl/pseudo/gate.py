"""Loss gates for Stage II: which pseudo-labelled samples are trusted enough to train on.

A sample whose pseudo-label is wrong tends to keep a high classification loss, so a gate on the
per-sample loss separates reliable from unreliable labels. Loss-Gated Learning (LGL) uses a fixed,
hand-tuned threshold (:func:`fixed_gate`). The dynamic loss gate (DLG, :func:`fit_dynamic_gate`) instead
fits a two-component 1-D Gaussian mixture to the previous epoch's losses (log-losses by default, where
the two populations are closer to Gaussian), takes the low-mean component as the reliable one, and sets
the threshold where the two weighted component densities cross between the means. Refitting every epoch
lets the threshold follow the losses as training progresses, without a threshold to tune.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from sklearn.mixture import GaussianMixture

from avssl.errors import ConfigError, DataError

# Below this weight a mixture component describes a handful of outliers, not a population.
MIN_COMPONENT_WEIGHT = 0.01
# Losses that are exactly zero (a saturated softmax) are floored here before taking the log.
LOG_FLOOR = 1e-12

Losses = torch.Tensor | np.ndarray


@dataclass(frozen=True)
class GateFit:
    """One fit of the dynamic gate.

    ``threshold`` is in loss units (also when the fit was on log-losses); a sample is kept when its loss
    is at most the threshold. ``means``, ``stds`` and ``weights`` describe the mixture in the space it
    was fitted in (log-loss when ``use_log``), reliable (low-mean) component first; they are empty when
    no mixture was fitted. ``degenerate`` says the fit was not usable and ``threshold`` is the previous
    one (or +inf, which keeps every sample); ``reason`` says why, and is empty otherwise.
    """

    threshold: float
    means: tuple[float, ...]
    stds: tuple[float, ...]
    weights: tuple[float, ...]
    degenerate: bool
    reason: str


def gate_mask(losses: Losses, threshold: float) -> Losses:
    """Boolean mask of the samples kept by the gate (``loss <= threshold``), same type as ``losses``.

    ``threshold`` may be +inf (keep everything, the state before the first usable fit). A NaN loss
    compares false and is therefore never kept.
    """
    if math.isnan(threshold):
        raise ConfigError("loss-gate threshold is NaN; pass a number, or +inf to keep every sample")
    return losses <= threshold


def fixed_gate(losses: Losses, threshold: float) -> Losses:
    """The LGL baseline: keep samples whose loss is at most a fixed, configured ``threshold``."""
    if not (math.isfinite(threshold) and threshold > 0.0):
        raise ConfigError(f"fixed loss-gate threshold must be a positive finite number, got {threshold}")
    return gate_mask(losses, threshold)


def fit_dynamic_gate(
    losses: Losses,
    use_log: bool = True,
    previous: float | None = None,
    seed: int = 0,
    min_samples: int = 50,
    min_separation: float = 2.0,
    min_reliable_weight: float = 0.5,
) -> GateFit:
    """Fit the DLG threshold to per-sample ``losses`` (any shape; flattened).

    The mixture is fitted to ``log(loss)`` when ``use_log`` (zero losses floored at ``LOG_FLOOR``),
    to the raw losses otherwise. The threshold solves ``w1 N(x; m1, s1) = w2 N(x; m2, s2)`` (a quadratic
    in x after taking logs) for the root between the two means, and is mapped back to loss units.

    Degenerate cases keep ``previous`` (or +inf when there is none), with ``degenerate=True`` and the
    cause in ``reason``:

    - fewer than ``min_samples`` losses: too few to fit two components reliably;
    - all losses (nearly) equal: there is only one population, nothing to separate;
    - one component's weight below ``MIN_COMPONENT_WEIGHT`` (1%): the mixture collapsed onto one mode;
    - means too close: Ashman's D = sqrt(2) |m2 - m1| / sqrt(s1^2 + s2^2) is below ``min_separation``.
      A mixture fitted to a single Gaussian population splits it into two overlapping halves with
      D around 1.5; D = 2 is where an equal-weight, equal-variance mixture stops being bimodal;
    - no crossing between the means: one component does not dominate at its own mean, so there is no
      single boundary between them;
    - the low-loss component holds less than ``min_reliable_weight`` of the samples. DLG's premise is
      that most pseudo-labels are right and fit early; a low mode that is a minority is something else
      (e.g. easy segments), and gating on it would drop most of the data, right labels included.

    Raises:
        DataError: a loss is NaN or infinite (training diverged; fix that before gating), or a loss is
            negative while ``use_log`` (these are not cross-entropies).
        ConfigError: ``min_samples`` < 2, ``min_separation`` negative, ``min_reliable_weight`` outside
            [0, 1), or ``previous`` is NaN or not positive.
    """
    if min_samples < 2:
        raise ConfigError(f"min_samples must be at least 2 to fit a two-component mixture, got {min_samples}")
    if not min_separation >= 0.0:
        raise ConfigError(f"min_separation (Ashman's D) must be non-negative, got {min_separation}")
    if not 0.0 <= min_reliable_weight < 1.0:
        raise ConfigError(f"min_reliable_weight must be in [0, 1), got {min_reliable_weight}")
    if previous is not None and not previous > 0.0:
        raise ConfigError(f"previous loss-gate threshold must be positive (or None), got {previous}")
    fallback = math.inf if previous is None else float(previous)
    values = _as_float64(losses)
    if not np.isfinite(values).all():
        raise DataError(
            f"{int((~np.isfinite(values)).sum())} of {values.size} per-sample losses are NaN or infinite; "
            "training has diverged - lower the learning rate or check the inputs before gating"
        )
    if use_log:
        if (values < 0).any():
            raise DataError(
                "per-sample losses must be non-negative to gate on log-losses; pass cross-entropies"
            )
        values = np.log(np.maximum(values, LOG_FLOOR))

    def degenerate(reason: str, fit: tuple[tuple[float, ...], ...] = ((), (), ())) -> GateFit:
        return GateFit(fallback, *fit, degenerate=True, reason=reason)

    if values.size < min_samples:
        return degenerate(f"only {values.size} losses, fewer than min_samples={min_samples}")
    if np.ptp(values) <= 1e-6 * max(1.0, float(np.abs(values).max())):
        return degenerate("all losses are (nearly) equal; there is only one population")

    mixture = GaussianMixture(n_components=2, covariance_type="full", random_state=seed)
    mixture.fit(values.reshape(-1, 1))
    order = np.argsort(mixture.means_.ravel())
    means = tuple(float(m) for m in mixture.means_.ravel()[order])
    stds = tuple(float(s) for s in np.sqrt(mixture.covariances_.ravel()[order]))
    weights = tuple(float(w) for w in mixture.weights_[order])
    fit = (means, stds, weights)
    if min(weights) < MIN_COMPONENT_WEIGHT:
        return degenerate(
            f"one component collapsed (weight {min(weights):.4f} < {MIN_COMPONENT_WEIGHT})", fit
        )
    separation = math.sqrt(2.0) * (means[1] - means[0]) / math.hypot(*stds)
    if separation < min_separation:
        return degenerate(
            f"means too close: Ashman's D = {separation:.2f} < min_separation={min_separation}; "
            "the losses look like one population",
            fit,
        )
    if weights[0] < min_reliable_weight:
        return degenerate(
            f"the low-loss component holds only {weights[0]:.2f} of the samples (< min_reliable_weight="
            f"{min_reliable_weight}); most labels are not in it, so it is not the reliable population",
            fit,
        )
    crossing = _crossing_between_means(means, stds, weights)
    if crossing is None:
        return degenerate("the weighted densities do not cross once between the means", fit)
    threshold = math.exp(crossing) if use_log else crossing
    return GateFit(threshold, means, stds, weights, degenerate=False, reason="")


def _as_float64(losses: Losses) -> np.ndarray:
    """Flatten losses to a float64 numpy vector (detached, on the CPU)."""
    if isinstance(losses, torch.Tensor):
        losses = losses.detach().cpu().numpy()
    return np.asarray(losses, dtype=np.float64).ravel()


def _log_weighted_density(x: float, mean: float, std: float, weight: float) -> float:
    """``log(weight * N(x; mean, std))`` up to the shared ``-0.5 log(2 pi)``."""
    return math.log(weight) - math.log(std) - 0.5 * ((x - mean) / std) ** 2


def _crossing_between_means(
    means: tuple[float, ...], stds: tuple[float, ...], weights: tuple[float, ...]
) -> float | None:
    """The x strictly between the means where the two weighted densities are equal, if it is unique.

    ``f(x) = log(w1 N1) - log(w2 N2)`` is quadratic in x. When each component dominates at its own mean
    (``f(m1) > 0 > f(m2)``) exactly one root lies between the means; otherwise there is none or two,
    and no sensible boundary.
    """
    (m1, m2), (s1, s2), (w1, w2) = means, stds, weights
    if not m1 < m2:
        return None

    def f(x: float) -> float:
        return _log_weighted_density(x, m1, s1, w1) - _log_weighted_density(x, m2, s2, w2)

    if not f(m1) > 0.0 > f(m2):
        return None
    a = 0.5 / s2**2 - 0.5 / s1**2
    b = m1 / s1**2 - m2 / s2**2
    c = 0.5 * m2**2 / s2**2 - 0.5 * m1**2 / s1**2 + math.log(w1 / s1) - math.log(w2 / s2)
    # Cancellation-free roots q / a and c / q; with equal stds (a = 0) only c / q is left.
    q = -0.5 * (b + math.copysign(math.sqrt(max(b * b - 4.0 * a * c, 0.0)), b))
    roots = ([c / q] if q != 0.0 else []) + ([q / a] if a != 0.0 else [])
    between = [r for r in roots if m1 < r < m2]
    return between[0] if between else None
