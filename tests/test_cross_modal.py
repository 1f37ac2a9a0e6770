"""Cross-modal DLG-LC: the joint / AND / OR gates on hand-made losses, and the fused label correction."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from avssl.errors import ConfigError, DataError
from avssl.pseudo.correction import correct_labels
from avssl.pseudo.cross_modal import (
    correct_labels_cross_modal,
    cross_modal_mask,
    fit_cross_modal_gate,
    joint_losses,
    open_cross_modal_gate,
)
from avssl.pseudo.gate import fit_dynamic_gate


def epoch_losses(n: int = 2000, right: float = 0.7, with_face: float = 0.8, seed: int = 0):
    """Per-sample losses of one epoch whose labels are right for a fraction ``right`` of the samples.

    Whether a label is right is shared by both modalities; each modality sees it through its own noise:
    log-losses N(-3, 1) when right, N(0.5, 1) when wrong, drawn independently per modality. The face
    losses of samples without a face are NaN, which nothing may read.
    """
    rng = np.random.default_rng(seed)
    is_right = rng.random(n) < right
    centre = np.where(is_right, -3.0, 0.5)
    audio = np.exp(centre + rng.standard_normal(n))
    face = np.exp(centre + rng.standard_normal(n))
    has_face = rng.random(n) < with_face
    face[~has_face] = np.nan
    return torch.from_numpy(audio), torch.from_numpy(face), torch.from_numpy(has_face), is_right


def ashman_d(means: tuple[float, ...], stds: tuple[float, ...]) -> float:
    return math.sqrt(2.0) * (means[1] - means[0]) / math.hypot(*stds)


@pytest.fixture(scope="module")
def losses():
    return epoch_losses()


# --- gates -------------------------------------------------------------------------------------------


def test_joint_gate_is_a_dlg_fit_on_the_combined_losses(losses) -> None:
    audio, face, has_face, _ = losses
    combined = joint_losses(audio, face, has_face)
    torch.testing.assert_close(
        combined[has_face], torch.sqrt(audio[has_face] * face[has_face]), rtol=1e-12, atol=0
    )
    assert torch.equal(combined[~has_face], audio[~has_face])
    gate = fit_cross_modal_gate(audio, face, has_face, "joint", seed=3)
    reference = fit_dynamic_gate(combined, seed=3)
    assert gate.thresholds == {"joint": reference.threshold} and not gate.degenerate
    assert (
        cross_modal_mask(gate, audio, face, has_face).tolist() == (combined <= reference.threshold).tolist()
    )
    # Averaging two noisy looks at one truth separates the two populations more than either look alone.
    audio_fit = fit_dynamic_gate(audio)
    assert ashman_d(reference.means, reference.stds) > ashman_d(audio_fit.means, audio_fit.stds) + 0.5


def test_and_is_stricter_than_or_and_faceless_samples_use_the_audio_gate(losses) -> None:
    audio, face, has_face, is_right = losses
    strict = fit_cross_modal_gate(audio, face, has_face, "and")
    loose = fit_cross_modal_gate(audio.numpy(), face.numpy(), has_face.numpy(), "or")  # numpy works too
    assert strict.thresholds == loose.thresholds
    assert strict.thresholds["audio"] == fit_dynamic_gate(audio).threshold
    assert strict.thresholds["face"] == fit_dynamic_gate(face[has_face]).threshold
    kept_and = cross_modal_mask(strict, audio, face, has_face)
    kept_or = cross_modal_mask(loose, audio, face, has_face)
    audio_alone = audio <= strict.thresholds["audio"]
    assert (kept_and <= audio_alone).all() and (audio_alone <= kept_or).all()
    assert kept_and.sum() < audio_alone.sum() < kept_or.sum()
    assert torch.equal(kept_and[~has_face], audio_alone[~has_face])
    assert torch.equal(kept_or[~has_face], audio_alone[~has_face])
    # On these losses AND keeps the purest set, OR the largest.
    right = torch.from_numpy(is_right)
    assert right[kept_and].float().mean() > right[kept_or].float().mean()


def test_degenerate_fits_keep_their_own_previous_threshold() -> None:
    n = 200
    audio = torch.full((n,), 0.7)
    face = torch.exp(torch.linspace(-3.0, 1.0, n))
    has_face = torch.zeros(n, dtype=torch.bool)
    has_face[:10] = True  # 10 face losses: fewer than min_samples
    previous = fit_cross_modal_gate(*epoch_losses()[:3], "and")
    gate = fit_cross_modal_gate(audio, face, has_face, "and", previous=previous)
    assert gate.degenerate and gate.thresholds == previous.thresholds
    assert "audio: all losses are (nearly) equal" in gate.reason and "face: only 10 losses" in gate.reason
    first = fit_cross_modal_gate(audio[:20], face[:20], has_face[:20], "joint")  # no previous gate: +inf
    assert (
        first.degenerate
        and first.thresholds == {"joint": math.inf}
        and first.reason.startswith("joint: only 20")
    )


def test_a_gate_without_a_threshold_abstains(losses) -> None:
    audio, face, has_face, _ = losses
    for mode in ("joint", "and", "or"):
        assert cross_modal_mask(open_cross_modal_gate(mode), audio, face, has_face).all()
    # Too few faces to fit a face gate: in OR mode it must not wave every sample with a face through.
    few_faces = has_face & (torch.arange(len(has_face)) < 60)
    gate = fit_cross_modal_gate(audio, face, few_faces, "or")
    assert gate.thresholds["face"] == math.inf and math.isfinite(gate.thresholds["audio"])
    assert torch.equal(cross_modal_mask(gate, audio, face, few_faces), audio <= gate.thresholds["audio"])


def test_gate_rejects_bad_input(losses) -> None:
    audio, face, has_face, _ = losses
    with pytest.raises(ConfigError, match="mode"):
        fit_cross_modal_gate(audio, face, has_face, "both")
    with pytest.raises(ConfigError, match="previous"):
        fit_cross_modal_gate(audio, face, has_face, "or", previous=open_cross_modal_gate("joint"))
    with pytest.raises(DataError, match="has_face"):
        fit_cross_modal_gate(audio, face, has_face.int(), "and")
    with pytest.raises(DataError, match="same length"):
        fit_cross_modal_gate(audio, face[:-1], has_face, "and")
    broken = face.clone()
    broken[torch.nonzero(has_face)[0, 0]] = math.nan
    with pytest.raises(DataError, match="previous_face_losses: 1 of"):
        fit_cross_modal_gate(audio, broken, has_face, "and")
    with pytest.raises(DataError, match="same length"):
        cross_modal_mask(open_cross_modal_gate("and"), audio, face[:-1], has_face)


# --- label correction --------------------------------------------------------------------------------


def test_a_confident_face_corrects_an_unsure_voice() -> None:
    audio = torch.tensor(
        [
            [1.0, 1.0, 1.0],  # unsure: 1/3 each
            [5.0, 0.0, 0.0],  # confident in class 0
            [1.0, 1.0, 1.0],  # unsure, and no face to help
        ]
    )
    face = torch.tensor(
        [
            [0.0, 0.0, 5.0],  # confident in class 2: fused (1/6, 1/6, 2/3)
            [0.0, 0.0, 5.0],  # confident in class 2: the modalities disagree, fused (1/2, 0, 1/2)
            [math.nan] * 3,  # no face: never read
        ]
    )
    has_face = torch.tensor([True, True, False])
    labels = torch.tensor([1, 1, 1])
    above = torch.zeros(3, dtype=torch.bool)
    alone = correct_labels(audio, labels, above)
    assert alone.corrected.tolist() == [False, True, False]
    fused = correct_labels_cross_modal(audio, face, has_face, labels, above)
    assert fused.corrected.tolist() == [True, False, False]
    assert fused.labels[0].item() == 2
    assert fused.dropped.tolist() == [False, True, True]
    assert fused.fraction_corrected == pytest.approx(1 / 3)


def test_fused_posterior_is_exact_at_the_confidence_boundary() -> None:
    # Audio: half on class 0, half on class 1. Face: p_face(0) = q. Fused p(0) = 0.25 + q / 2, so the
    # sample is confident exactly when q > 0.5; logits T log p reproduce any chosen posterior p.
    temperature = 0.1
    audio = torch.tensor([[0.0, 0.0, -100.0]] * 2, dtype=torch.float64)
    face_posterior = torch.tensor([[0.51, 0.0, 0.49], [0.49, 0.0, 0.51]], dtype=torch.float64)
    face = temperature * face_posterior.clamp_min(1e-300).log()
    result = correct_labels_cross_modal(
        audio,
        face,
        torch.tensor([True, True]),
        torch.tensor([2, 0]),
        torch.tensor([False, False]),
        temperature,
    )
    assert result.corrected.tolist() == [True, False] and result.labels[0].item() == 0


def test_faceless_samples_behave_exactly_like_correct_labels() -> None:
    generator = torch.Generator().manual_seed(0)
    n, classes = 64, 10
    audio = 0.3 * torch.randn(n, classes, generator=generator)
    face = 0.3 * torch.randn(n, classes, generator=generator)
    labels = torch.randint(0, classes, (n,), generator=generator)
    passed = torch.rand(n, generator=generator) < 0.5
    has_face = torch.rand(n, generator=generator) < 0.5
    reference = correct_labels(audio, labels, passed)
    result = correct_labels_cross_modal(audio, face, has_face, labels, passed)
    for name in ("labels", "use", "corrected", "dropped"):
        assert torch.equal(getattr(result, name)[~has_face], getattr(reference, name)[~has_face]), name
    nobody = correct_labels_cross_modal(audio, face, torch.zeros(n, dtype=torch.bool), labels, passed)
    for name, value in vars(reference).items():
        assert (
            torch.equal(getattr(nobody, name), value)
            if torch.is_tensor(value)
            else getattr(nobody, name) == value
        )
    face_ignored = correct_labels_cross_modal(audio, face, has_face, labels, passed, face_weight=0.0)
    assert torch.equal(face_ignored.labels, reference.labels) and torch.equal(face_ignored.use, reference.use)
    assert 0 < int(result.corrected.sum()) and not torch.equal(result.corrected, reference.corrected)


def test_correction_rejects_bad_input() -> None:
    logits = torch.zeros(2, 3)
    args = (torch.tensor([True, False]), torch.tensor([0, 1]), torch.tensor([False, False]))
    with pytest.raises(ConfigError, match="face_weight"):
        correct_labels_cross_modal(logits, logits, *args, face_weight=1.5)
    with pytest.raises(ConfigError, match="temperature"):
        correct_labels_cross_modal(logits, logits, *args, temperature=0.0)
    with pytest.raises(DataError, match="face_logits_clean"):
        correct_labels_cross_modal(logits, torch.zeros(2, 4), *args)
    with pytest.raises(DataError, match="has_face"):
        correct_labels_cross_modal(logits, logits, torch.tensor([1, 0]), *args[1:])
