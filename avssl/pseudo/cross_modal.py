"""Cross-modal DLG-LC: the loss gate and the label correction of one batch, from both modalities.

With fused pseudo-labels (:mod:`avssl.pseudo.fusion`) the audio and the face encoder train on the same
label per utterance, so each sample has two per-sample losses and two clean-copy predictions. Whether
a label is right is a property of the label, shared by both modalities; two losses and two predictions
are two looks at it. The method leaves the exact rule open, so it is a choice (``mode``):

- ``"joint"``: one DLG mixture on one combined loss per sample, the geometric mean
  ``sqrt(audio_loss * face_loss)`` where the sample has a face, the audio loss otherwise
  (:func:`joint_losses`). Its log is the mean of the two log-losses, the space DLG fits in: if each
  modality's log-loss is a reliable/unreliable Gaussian pair with independent noise around a shared
  truth, their mean is again such a pair with less noise, so the two components separate more. It
  stays in loss units, so audio-only samples (one opinion) share one mixture and one threshold with the
  rest, and a very low loss in one modality can make up for a moderately high one in the other.
- ``"and"`` (strict): a DLG gate per modality, each fitted on its own losses (the face gate only on
  samples with a face); a sample is reliable when every gate that has a say passes.
- ``"or"`` (loose): reliable when any gate that has a say passes.

A gate "has a say" on a sample when the sample has that modality and the gate has a finite threshold.
Before the first usable fit a threshold is +inf (as in the audio-only trainer); an +inf gate abstains
rather than passing everything, so that in ``"or"`` mode a face gate that could not be fitted yet does
not let every sample with a face through. A sample on which no gate has a say is kept, which is the
state before any fit. Samples without a face are therefore always judged by the audio gate alone.

Label correction (:func:`correct_labels_cross_modal`) averages the two sharpened posteriors of the
clean copies, so a confident modality can correct a sample on which the other is unsure, and two
confident modalities that disagree cancel out and the sample is dropped.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

from avssl.errors import ConfigError, DataError
from avssl.pseudo.correction import CorrectionResult, correct_labels
from avssl.pseudo.gate import GateFit, Losses, fit_dynamic_gate

# Which thresholds each mode keeps, by name.
GATE_MODES: dict[str, tuple[str, ...]] = {
    "joint": ("joint",),
    "and": ("audio", "face"),
    "or": ("audio", "face"),
}


@dataclass(frozen=True)
class CrossModalGate:
    """The cross-modal gate of one epoch.

    ``thresholds`` maps each name of ``GATE_MODES[mode]`` to a loss threshold (+inf: no usable fit
    yet, the gate abstains); ``fits`` holds the DLG fits they came from (empty before the first fit). A
    degenerate fit keeps its own previous threshold, independently per modality.
    """

    mode: str
    thresholds: dict[str, float]
    fits: dict[str, GateFit] = field(default_factory=dict)

    @property
    def degenerate(self) -> bool:
        return any(fit.degenerate for fit in self.fits.values())

    @property
    def reason(self) -> str:
        """Why any fit was degenerate, per modality ("" when none was)."""
        return "; ".join(f"{name}: {fit.reason}" for name, fit in self.fits.items() if fit.degenerate)


def open_cross_modal_gate(mode: str) -> CrossModalGate:
    """The gate before any fit (warm-up, first epoch): every threshold +inf, so every sample is kept."""
    return CrossModalGate(_check_mode(mode), {name: math.inf for name in GATE_MODES[mode]})


def joint_losses(
    audio_losses: torch.Tensor, face_losses: torch.Tensor, has_face: torch.Tensor
) -> torch.Tensor:
    """The "joint" mode's combined loss: ``sqrt(audio * face)`` with a face, the audio loss without.

    Written as ``sqrt(a) * sqrt(f)`` so that two tiny losses do not underflow to zero. The face losses
    of samples without a face are never used and may hold anything.
    """
    face_or_one = torch.where(has_face, face_losses, torch.ones_like(face_losses))
    return torch.where(has_face, audio_losses.sqrt() * face_or_one.sqrt(), audio_losses)


def fit_cross_modal_gate(
    previous_audio_losses: Losses,
    previous_face_losses: Losses,
    has_face: Losses,
    mode: str,
    previous: CrossModalGate | None = None,
    use_log: bool = True,
    seed: int = 0,
    min_samples: int = 50,
    min_separation: float = 2.0,
    min_reliable_weight: float = 0.5,
) -> CrossModalGate:
    """Fit the ``mode`` gate to the previous epoch's per-sample losses, as :func:`fit_dynamic_gate` does.

    The three vectors have one entry per sample; the face losses of samples with ``has_face`` False are
    ignored. ``previous`` is the gate the previous epoch used (same mode); a degenerate fit keeps its
    threshold (+inf when there is none), and the fit's ``reason`` says why. ``use_log``, ``seed``,
    ``min_samples``, ``min_separation`` and ``min_reliable_weight`` are passed to every fit.

    Raises:
        ConfigError: unknown ``mode``, or ``previous`` was made for another mode.
        DataError: lengths differ, ``has_face`` is not boolean, or a used loss is negative, NaN or inf.
    """
    _check_mode(mode)
    if previous is not None and previous.mode != mode:
        raise ConfigError(
            f"previous gate was fitted in mode {previous.mode!r}, not {mode!r}; start from None"
        )
    audio, face, has = _as_tensors(previous_audio_losses, previous_face_losses, has_face)
    _check_losses("previous_audio_losses", audio)
    _check_losses("previous_face_losses", face[has], " of samples with has_face=True")
    if mode == "joint":
        samples = {"joint": joint_losses(audio, face, has)}
    else:
        samples = {"audio": audio, "face": face[has]}
    fits = {}
    for name, losses in samples.items():
        before = previous.thresholds[name] if previous is not None else math.inf
        fits[name] = fit_dynamic_gate(
            losses, use_log, before if math.isfinite(before) else None, seed, min_samples, min_separation,
            min_reliable_weight,
        )
    return CrossModalGate(mode, {name: fit.threshold for name, fit in fits.items()}, fits)


def cross_modal_mask(
    gate: CrossModalGate, audio_losses: torch.Tensor, face_losses: torch.Tensor, has_face: torch.Tensor
) -> torch.Tensor:
    """Per sample: is its pseudo-label reliable under ``gate``? A bool tensor shaped like the losses.

    A NaN loss never passes its gate (as in :func:`avssl.pseudo.gate.gate_mask`).
    """
    _check_batch(audio_losses, face_losses, has_face)
    if gate.mode == "joint":
        return joint_losses(audio_losses, face_losses, has_face) <= gate.thresholds["joint"]
    audio_say = torch.full_like(has_face, math.isfinite(gate.thresholds["audio"]))
    face_say = has_face & math.isfinite(gate.thresholds["face"])
    audio_pass = audio_losses <= gate.thresholds["audio"]
    face_pass = face_losses <= gate.thresholds["face"]
    if gate.mode == "and":
        return (~audio_say | audio_pass) & (~face_say | face_pass)
    return (audio_say & audio_pass) | (face_say & face_pass) | (~audio_say & ~face_say)


def correct_labels_cross_modal(
    audio_logits_clean: torch.Tensor,
    face_logits_clean: torch.Tensor,
    has_face: torch.Tensor,
    pseudo_labels: torch.Tensor,
    gate_mask: torch.Tensor,
    temperature: float = 0.1,
    confidence: float = 0.5,
    face_weight: float = 0.5,
) -> CorrectionResult:
    """Label correction on the fused posterior ``(1 - fw) softmax(a / T) + fw softmax(f / T)``.

    Both logit matrices are ``(N, n_classes)`` over the same pseudo-classes; samples without a face use
    the audio posterior alone, so for them the result is exactly :func:`correct_labels` on the audio
    logits. The fused posterior ``p`` is handed to :func:`correct_labels` as the logits ``T log p``:
    it computes ``softmax(T log p / T) = p / sum(p) = p``, so its confidence rule applies unchanged.
    ``log p`` is a log-sum-exp of the two log-posteriors, which stays finite where a probability
    underflows in one modality.
    """
    if not temperature > 0.0:
        raise ConfigError(
            f"label-correction temperature must be positive, got {temperature}; the method uses 0.1"
        )
    if not 0.0 <= face_weight <= 1.0:  # also rejects NaN
        raise ConfigError(
            f"face_weight must be in [0, 1] (the audio gets 1 - face_weight), got {face_weight}"
        )
    if audio_logits_clean.dim() != 2 or face_logits_clean.shape != audio_logits_clean.shape:
        raise DataError(
            "audio_logits_clean and face_logits_clean must both be (batch, n_classes) over the same classes, "
            f"got {tuple(audio_logits_clean.shape)} and {tuple(face_logits_clean.shape)}"
        )
    n_rows = audio_logits_clean.shape[0]
    if has_face.dtype != torch.bool or has_face.shape != (n_rows,):
        raise DataError(
            f"has_face must be a bool tensor of shape ({n_rows},), got {has_face.dtype} {tuple(has_face.shape)}"
        )
    with torch.no_grad():
        weights = torch.tensor(
            [1.0 - face_weight, face_weight], dtype=torch.float64, device=audio_logits_clean.device
        )
        audio_log_p = torch.log_softmax(audio_logits_clean.double() / temperature, dim=1) + weights[0].log()
        face_log_p = torch.log_softmax(face_logits_clean.double() / temperature, dim=1) + weights[1].log()
        fused_logits = temperature * torch.logaddexp(audio_log_p, face_log_p)
        logits = torch.where(has_face[:, None], fused_logits, audio_logits_clean.double())
    return correct_labels(logits, pseudo_labels, gate_mask, temperature, confidence)


def _check_mode(mode: str) -> str:
    if mode not in GATE_MODES:
        raise ConfigError(f"cross-modal gate mode must be one of {sorted(GATE_MODES)}, got {mode!r}")
    return mode


def _as_tensors(
    audio: Losses, face: Losses, has_face: Losses
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Detached float64 CPU vectors of the losses and a bool CPU vector of the mask, all checked."""
    audio_t, face_t, has_t = (torch.as_tensor(v).detach().cpu().reshape(-1) for v in (audio, face, has_face))
    if has_t.dtype != torch.bool:
        raise DataError(f"has_face must be boolean, got {has_t.dtype}")
    _check_batch(audio_t, face_t, has_t, ("previous_audio_losses", "previous_face_losses"))
    return audio_t.double(), face_t.double(), has_t


def _check_batch(
    audio: torch.Tensor,
    face: torch.Tensor,
    has_face: torch.Tensor,
    names: tuple[str, str] = ("audio_losses", "face_losses"),
) -> None:
    if has_face.dtype != torch.bool:
        raise DataError(f"has_face must be a bool tensor, got {has_face.dtype}")
    if audio.dim() != 1 or face.shape != audio.shape or has_face.shape != audio.shape:
        raise DataError(
            f"{names[0]}, {names[1]} and has_face must be vectors of the same length (one entry per sample), "
            f"got shapes {tuple(audio.shape)}, {tuple(face.shape)} and {tuple(has_face.shape)}"
        )


def _check_losses(name: str, losses: torch.Tensor, which: str = "") -> None:
    """Per-sample cross-entropies are finite and non-negative; anything else is a bug upstream."""
    bad = ~torch.isfinite(losses) | (losses < 0)
    if bad.any():
        raise DataError(
            f"{name}: {int(bad.sum())} of {losses.numel()} losses{which} are negative, NaN or infinite; "
            "pass per-sample cross-entropies from a training run that has not diverged"
        )
