"""Stage II DLG-LC pieces: AAM-softmax, the fixed and dynamic loss gates, and label correction."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from avssl.errors import ConfigError, DataError
from avssl.models.aam import AamSoftmax
from avssl.pseudo.correction import correct_labels, masked_mean_loss
from avssl.pseudo.gate import _crossing_between_means, fit_dynamic_gate, fixed_gate, gate_mask

# --- AAM-softmax -------------------------------------------------------------------------------------


def _aam_by_hand(embeddings: torch.Tensor, weight: torch.Tensor, labels: torch.Tensor, m: float, s: float):
    """Per-sample ArcFace loss written out element by element, with the theta + m > pi fallback."""
    losses = []
    for x, y in zip(embeddings.tolist(), labels.tolist(), strict=True):
        x_norm = math.sqrt(sum(v * v for v in x))
        logits = []
        for j, w in enumerate(weight.tolist()):
            w_norm = math.sqrt(sum(v * v for v in w))
            cos = max(-1.0, min(1.0, sum(a * b for a, b in zip(x, w, strict=True)) / (x_norm * w_norm)))
            if j == y:
                theta = math.acos(cos)
                cos = math.cos(theta + m) if theta + m <= math.pi else cos - m * math.sin(m)
            logits.append(s * cos)
        top = max(logits)
        log_sum = top + math.log(sum(math.exp(v - top) for v in logits))
        losses.append(log_sum - logits[y])
    return torch.tensor(losses, dtype=torch.float64)


def test_aam_matches_direct_computation_including_fallback() -> None:
    torch.manual_seed(0)
    head = AamSoftmax(embedding_dim=8, n_classes=5, margin=0.2, scale=30.0).double()
    embeddings = torch.randn(6, 8, dtype=torch.float64)
    # The last sample points opposite its target class: theta = pi, so theta + m > pi takes the fallback.
    embeddings[-1] = -3.0 * head.weight.detach()[2]
    labels = torch.tensor([0, 1, 2, 3, 4, 2])
    expected = _aam_by_hand(embeddings, head.weight.detach(), labels, 0.2, 30.0)
    loss = head(embeddings, labels)
    assert loss.shape == (6,)
    torch.testing.assert_close(loss.detach(), expected, rtol=1e-6, atol=1e-6)
    loss.sum().backward()
    assert torch.isfinite(head.weight.grad).all()


def test_aam_logits_have_no_margin() -> None:
    torch.manual_seed(1)
    head = AamSoftmax(embedding_dim=4, n_classes=3, margin=0.3, scale=10.0)
    embeddings = torch.randn(5, 4)
    cos = (
        torch.nn.functional.normalize(embeddings, dim=1) @ torch.nn.functional.normalize(head.weight, dim=1).T
    )
    torch.testing.assert_close(head.logits(embeddings), 10.0 * cos)
    labels = torch.zeros(5, dtype=torch.long)
    no_margin = torch.nn.functional.cross_entropy(head.logits(embeddings), labels, reduction="none")
    assert (head(embeddings, labels) > no_margin).all()  # the margin only ever makes the target harder


def test_aam_rejects_bad_input() -> None:
    head = AamSoftmax(embedding_dim=4, n_classes=3)
    with pytest.raises(DataError, match="n_classes"):
        head(torch.randn(2, 4), torch.tensor([0, 3]))
    with pytest.raises(DataError, match="embedding_dim"):
        head(torch.randn(2, 5), torch.tensor([0, 1]))
    with pytest.raises(ConfigError, match="margin"):
        AamSoftmax(4, 3, margin=-0.1)


# --- gates -------------------------------------------------------------------------------------------


def test_fixed_gate_keeps_losses_at_or_below_threshold() -> None:
    losses = torch.tensor([0.5, 1.0, 1.5, 3.0])
    assert fixed_gate(losses, 1.0).tolist() == [True, True, False, False]
    assert gate_mask(np.array([0.5, 2.0]), math.inf).tolist() == [True, True]
    with pytest.raises(ConfigError):
        fixed_gate(losses, 0.0)


def _true_crossing(means, stds, weights) -> float:
    """Bisection on the difference of the true weighted log-densities between the means."""

    def diff(x: float) -> float:
        return (
            math.log(weights[0] / stds[0])
            - 0.5 * ((x - means[0]) / stds[0]) ** 2
            - math.log(weights[1] / stds[1])
            + 0.5 * ((x - means[1]) / stds[1]) ** 2
        )

    lo, hi = means
    for _ in range(100):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if diff(mid) > 0 else (lo, mid)
    return 0.5 * (lo + hi)


def test_dynamic_gate_recovers_crossing_of_lognormal_mixture() -> None:
    means, stds, weights = (-1.5, 1.0), (0.5, 0.6), (0.6, 0.4)
    rng = np.random.default_rng(0)
    n = 20000
    component = rng.random(n) < weights[1]
    log_losses = np.where(component, rng.normal(means[1], stds[1], n), rng.normal(means[0], stds[0], n))
    fit = fit_dynamic_gate(torch.from_numpy(np.exp(log_losses)))
    assert not fit.degenerate and fit.reason == ""
    assert fit.means[0] < fit.means[1]
    np.testing.assert_allclose(fit.means, means, atol=0.05)
    np.testing.assert_allclose(fit.weights, weights, atol=0.02)
    assert math.log(fit.threshold) == pytest.approx(_true_crossing(means, stds, weights), abs=0.05)


def test_dynamic_gate_on_raw_losses_returns_crossing_in_loss_units() -> None:
    rng = np.random.default_rng(1)
    losses = np.concatenate([rng.normal(1.0, 0.2, 600), rng.normal(4.0, 0.4, 400)])
    fit = fit_dynamic_gate(losses, use_log=False)
    assert not fit.degenerate
    assert fit.threshold == pytest.approx(_true_crossing((1.0, 4.0), (0.2, 0.4), (0.6, 0.4)), abs=0.1)


def test_dynamic_gate_degenerate_cases_keep_previous() -> None:
    rng = np.random.default_rng(2)
    few = fit_dynamic_gate(np.exp(rng.normal(0, 1, 10)), previous=2.5)
    assert few.degenerate and few.threshold == 2.5 and "min_samples" in few.reason
    equal = fit_dynamic_gate(np.full(200, 0.7))
    assert equal.degenerate and equal.threshold == math.inf and "equal" in equal.reason
    one_mode = fit_dynamic_gate(np.exp(rng.normal(0.0, 0.5, 2000)), previous=1.3)
    assert one_mode.degenerate and one_mode.threshold == 1.3 and "too close" in one_mode.reason
    collapsed = np.concatenate([np.exp(rng.normal(0.0, 0.3, 2000)), [1e4]])
    collapsed_fit = fit_dynamic_gate(collapsed, previous=1.3)
    assert collapsed_fit.degenerate and collapsed_fit.threshold == 1.3 and "collapsed" in collapsed_fit.reason


def test_a_minority_low_loss_mode_is_not_taken_for_the_reliable_labels() -> None:
    """DLG assumes most labels are right: a low mode holding 20 % of the samples would gate away 80 %."""
    rng = np.random.default_rng(3)
    losses = np.concatenate([rng.normal(1.0, 0.2, 200), rng.normal(4.0, 0.4, 800)])
    fit = fit_dynamic_gate(losses, use_log=False, previous=3.0)
    assert fit.degenerate and fit.threshold == 3.0 and "min_reliable_weight" in fit.reason
    assert fit.weights == pytest.approx((0.2, 0.8), abs=0.02)  # the mixture itself is reported
    allowed = fit_dynamic_gate(losses, use_log=False, min_reliable_weight=0.0)
    assert not allowed.degenerate
    assert allowed.threshold == pytest.approx(_true_crossing((1.0, 4.0), (0.2, 0.4), (0.2, 0.8)), abs=0.1)
    with pytest.raises(ConfigError, match="min_reliable_weight"):
        fit_dynamic_gate(losses, min_reliable_weight=1.0)


def test_crossing_needs_each_component_to_dominate_at_its_mean() -> None:
    assert _crossing_between_means((0.0, 3.0), (0.5, 0.5), (0.5, 0.5)) == pytest.approx(1.5)
    # A light, narrow low component swamped by its neighbour even at its own mean: no boundary.
    assert _crossing_between_means((0.0, 1.0), (0.1, 0.5), (0.02, 0.98)) is None


def test_dynamic_gate_rejects_non_finite_losses() -> None:
    losses = np.ones(100)
    losses[3] = np.nan
    with pytest.raises(DataError, match="NaN"):
        fit_dynamic_gate(losses)


# --- label correction --------------------------------------------------------------------------------


def test_label_correction_rule() -> None:
    logits = torch.tensor(
        [
            [3.0, 0.0, 0.0],  # passes the gate: keeps its label 1 whatever the prediction
            [0.0, 0.0, 2.0],  # above the gate, confident in class 2: corrected from 0 to 2
            [1.0, 1.0, 0.9],  # above the gate, top probability about 0.42: unconfident, dropped
            [0.0, 0.0, 0.0],  # passes the gate
        ]
    )
    labels = torch.tensor([1, 0, 0, 2])
    passed = torch.tensor([True, False, False, True])
    result = correct_labels(logits, labels, passed, temperature=0.1, confidence=0.5)
    assert result.labels[[0, 1, 3]].tolist() == [1, 2, 2]
    assert result.use.tolist() == [True, True, False, True]
    assert result.corrected.tolist() == [False, True, False, False]
    assert result.dropped.tolist() == [False, False, True, False]
    assert (result.fraction_kept, result.fraction_corrected, result.fraction_dropped) == (0.5, 0.25, 0.25)
    assert result.fraction_kept + result.fraction_corrected + result.fraction_dropped == pytest.approx(1.0)


def test_masked_mean_loss() -> None:
    loss = torch.tensor([1.0, 2.0, float("nan")], requires_grad=True)
    value = masked_mean_loss(loss, torch.tensor([True, True, False]))
    assert value.item() == pytest.approx(1.5)
    none_used = masked_mean_loss(loss, torch.zeros(3, dtype=torch.bool))
    assert none_used.item() == 0.0
    none_used.backward()
    assert loss.grad is not None and loss.grad.tolist() == [0.0, 0.0, 0.0]
