"""DINO mechanics against hand computations: loss, centring, EMA, schedules, head, entropy."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from avssl.config import DinoConfig
from avssl.models.dino_head import DinoHead
from avssl.ssl.dino import (
    DinoLoss,
    cosine_schedule,
    ema_update,
    entropy,
    teacher_temperature_schedule,
)


def reference_dino_loss(student, teacher, center, n_global, n_crops, t_temp, s_temp):
    """The DINO objective written out sample by sample with plain Python loops."""
    batch = teacher.shape[0] // n_global
    total, pairs = 0.0, 0
    for t in range(n_global):
        for s in range(n_crops):
            if s == t:
                continue
            for b in range(batch):
                logits_t = (teacher[t * batch + b] - center) / t_temp
                p_t = np.exp(logits_t - logits_t.max())
                p_t /= p_t.sum()
                logits_s = student[s * batch + b] / s_temp
                log_p_s = logits_s - logits_s.max() - np.log(np.exp(logits_s - logits_s.max()).sum())
                total += -(p_t * log_p_s).sum() / batch
            pairs += 1
    return total / pairs


def test_loss_matches_hand_computation_and_centre_updates() -> None:
    rng = np.random.default_rng(0)
    n_global, n_local, batch, dim = 2, 3, 4, 7
    n_crops = n_global + n_local
    student = rng.normal(size=(n_crops * batch, dim))
    teacher = rng.normal(size=(n_global * batch, dim))
    temps = np.array([0.04, 0.07])
    loss_fn = DinoLoss(dim, n_global, n_crops, temps, student_temp=0.1, center_momentum=0.9)
    center0 = np.full(dim, 0.3)
    loss_fn.center.fill_(0.3)
    loss, stats = loss_fn(torch.tensor(student), torch.tensor(teacher), epoch=1)
    expected = reference_dino_loss(student, teacher, center0, n_global, n_crops, 0.07, 0.1)
    assert loss.item() == pytest.approx(expected, rel=1e-6)
    assert stats["teacher_temp"] == pytest.approx(0.07)
    new_center = 0.9 * center0 + 0.1 * teacher.mean(axis=0)
    np.testing.assert_allclose(loss_fn.center.numpy()[0], new_center, rtol=1e-6)


def test_loss_never_pairs_a_crop_with_itself() -> None:
    # Identical crops: if crop i were compared with itself, the loss would include H(p, p) terms.
    n_global, batch, dim = 2, 3, 5
    out = torch.randn(n_global * batch, dim)
    loss_fn = DinoLoss(dim, n_global, n_global, np.array([1.0]), student_temp=1.0)
    loss, _ = loss_fn(out, out.clone(), epoch=0)
    crossed = reference_dino_loss(out.numpy(), out.numpy(), np.zeros(dim), n_global, n_global, 1.0, 1.0)
    assert loss.item() == pytest.approx(crossed, rel=1e-6)


def test_entropy_extremes() -> None:
    k = 16
    uniform = torch.full((3, k), 1.0 / k)
    one_hot = torch.eye(k)[:3]
    assert entropy(uniform).item() == pytest.approx(math.log(k), rel=1e-6)
    assert entropy(one_hot).item() == pytest.approx(0.0, abs=1e-6)


def test_ema_update_is_the_weighted_average() -> None:
    student, teacher = torch.nn.Linear(3, 2), torch.nn.Linear(3, 2)
    before = [p.clone() for p in teacher.parameters()]
    ema_update(student, teacher, 0.9)
    for p_t, p_s, p_0 in zip(teacher.parameters(), student.parameters(), before, strict=True):
        torch.testing.assert_close(p_t, 0.9 * p_0 + 0.1 * p_s)


def test_cosine_schedule_values_at_known_steps() -> None:
    values = cosine_schedule(1.0, 0.0, epochs=4, steps_per_epoch=10, warmup_epochs=1, warmup_start=0.0)
    assert len(values) == 40
    assert values[0] == 0.0
    assert values[5] == pytest.approx(0.5)  # half-way up the linear warm-up
    assert values[10] == pytest.approx(1.0)  # cosine starts at the base value
    assert values[25] == pytest.approx(0.5)  # cosine midpoint of the 30 decay steps
    assert values[-1] == pytest.approx(0.0 + 0.5 * (1 + math.cos(math.pi * 29 / 30)))
    momentum = cosine_schedule(0.996, 1.0, epochs=2, steps_per_epoch=5)
    assert momentum[0] == pytest.approx(0.996) and np.all(np.diff(momentum) >= 0)


def test_teacher_temperature_warms_up_then_holds() -> None:
    temps = teacher_temperature_schedule(0.04, 0.07, warmup_epochs=0.2, epochs=10)
    np.testing.assert_allclose(temps, [0.04, 0.07] + [0.07] * 8)
    temps = teacher_temperature_schedule(0.04, 0.07, warmup_epochs=4, epochs=10)
    np.testing.assert_allclose(temps[:4], np.linspace(0.04, 0.07, 4))


def test_head_shapes_and_fixed_last_layer_norm() -> None:
    config = DinoConfig(out_dim=64, hidden_dim=32, bottleneck_dim=16, head_layers=3)
    head = DinoHead(24, config)
    out = head(torch.randn(5, 24))
    assert out.shape == (5, 64)
    # Weight-normalised rows with norm fixed to 1 and an L2-normalised input bound the logits by 1.
    assert out.abs().max() <= 1.0 + 1e-5
    magnitude = head.last_layer.parametrizations.weight.original0
    assert not magnitude.requires_grad
    assert head.last_layer_parameters() == [head.last_layer.parametrizations.weight.original1]
