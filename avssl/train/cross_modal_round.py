"""The face half of audio-visual stage II (``cross_modal.enabled``): what :mod:`avssl.train.stage_pseudo` adds.

Both encoders train on the round's shared labels (:mod:`avssl.train.fused_labels`), each with its own
AAM-softmax head, and one cross-modal gate decides which samples count for both
(:mod:`avssl.pseudo.cross_modal_epoch_gate`). Label correction averages the two clean posteriors, so
one modality can correct the other. A sample without a usable face trains the audio side only: its face
loss is masked out (and recorded as NaN), and the gate judges it by its audio loss alone.

Here: the face side of a run (:class:`FaceTraining`: frame source, crops, encoder files), the one module
Accelerate wraps (:class:`AudioVisualClassifiers`), one training step's losses and decisions
(:func:`cross_modal_step`) and the epoch's face losses gathered from every process (:class:`FaceTally`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from accelerate import Accelerator
from torch import nn

from avssl.config import CorrectionConfig, PseudoTrainConfig
from avssl.data.manifest import Utterance
from avssl.errors import DataError
from avssl.models.aam import AamSoftmax
from avssl.pseudo.correction import masked_mean_loss
from avssl.pseudo.cross_modal import correct_labels_cross_modal, cross_modal_mask
from avssl.pseudo.cross_modal_epoch_gate import CrossModalEpochGate
from avssl.train.encoder_file import load_face_encoder, read_face_encoder_info, save_face_encoder
from avssl.train.epoch_records import StepRecords
from avssl.train.face_batches import FaceBatch, FaceCrops
from avssl.train.modality import face_augment_config, face_source

FACE_ENCODER = "face_encoder.safetensors"


class FaceTraining:
    """The face side of a run: where frames come from, the training crops, and the face encoder files.

    The architecture and input size come from ``cross_modal.init_face_encoder`` (visual DINO's file);
    every round's file must match them.
    """

    def __init__(self, config: PseudoTrainConfig, utterances: list[Utterance]) -> None:
        cross_modal = config.cross_modal
        self.init_path = Path(str(cross_modal.init_face_encoder))
        self.info = read_face_encoder_info(self.init_path)
        self.source, self.sampling = face_source(cross_modal.frames)
        augment = face_augment_config(cross_modal.augment, self.info.image_size, cross_modal.crop_scale)
        self.crops = FaceCrops(utterances, self.source, augment, config.run.seed)

    def load_encoder(self, path: Path, device: torch.device) -> nn.Module:
        encoder, info = load_face_encoder(path, device)
        if (info.encoder, info.image_size) != (self.info.encoder, self.info.image_size):
            raise DataError(
                f"{path} holds a {info.encoder} face encoder at {info.image_size} px, but "
                f"cross_modal.init_face_encoder ({self.init_path}) one of {self.info.encoder} at "
                f"{self.info.image_size} px; a run continues one architecture"
            )
        return encoder

    def save_encoder(self, path: Path, encoder: nn.Module) -> Path:
        """The face encoder file, with the frame sampling this run read (what extract-faces should decode)."""
        return save_face_encoder(path, encoder, self.info.encoder, self.info.image_size, self.sampling)


class AudioVisualClassifiers(nn.Module):
    """One module for Accelerate/DDP: (features, faces) -> (audio cosines, face cosines) to every class.

    As in the audio-only trainer the margins and losses are applied outside, so that the gate's losses
    and the corrected labels' losses come from one pass.
    """

    def __init__(
        self, audio_encoder: nn.Module, audio_classifier: AamSoftmax, face_encoder: nn.Module,
        face_classifier: AamSoftmax,
    ) -> None:
        super().__init__()
        self.audio_encoder = audio_encoder
        self.audio_classifier = audio_classifier
        self.face_encoder = face_encoder
        self.face_classifier = face_classifier

    def forward(self, features: torch.Tensor, faces: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return (self.audio_classifier.cosine(self.audio_encoder(features)),
                self.face_classifier.cosine(self.face_encoder(faces)))


@dataclass(frozen=True)
class StepOutcome:
    """One batch: the loss to minimise and the per-sample decisions that the epoch tallies record."""

    loss: torch.Tensor
    audio_losses: torch.Tensor  # on the pseudo-labels: what the gate sees
    face_losses: torch.Tensor | None  # the same; NaN where the sample has no face (None: audio-only run)
    kept: torch.Tensor
    corrected: torch.Tensor
    trained_labels: torch.Tensor
    has_face: torch.Tensor | None = None

    def finite(self) -> torch.Tensor:
        """Whether every loss that counts is finite (a scalar bool tensor; False means training diverged)."""
        finite = torch.isfinite(self.audio_losses).all()
        if self.face_losses is not None and self.has_face is not None:
            finite = finite & torch.isfinite(self.face_losses[self.has_face]).all()
        return finite


def cross_modal_step(
    model: nn.Module,
    accelerator: Accelerator,
    classifiers: tuple[AamSoftmax, AamSoftmax],
    features: tuple[torch.Tensor, torch.Tensor | None],
    faces: FaceBatch,
    targets: torch.Tensor,
    gate: CrossModalEpochGate,
    correction: CorrectionConfig,
    face_weight: float,
) -> StepOutcome:
    """Forward both modalities, gate, correct, and combine: audio loss over the used samples plus face
    loss over the used samples that have a face. ``features`` are the augmented and (LC only) clean fbanks."""
    audio_classifier, face_classifier = classifiers
    noisy, clean = features
    has = faces.has_face
    clean_cosines = _clean_cosines(model, clean, faces.clean) if gate.correct else None
    with accelerator.autocast():
        audio_cosine, face_cosine = model(noisy, faces.crops)
    audio_cosine, face_cosine = audio_cosine.float(), face_cosine.float()
    audio_losses = audio_classifier.loss_from_cosine(audio_cosine, targets)
    face_losses = face_classifier.loss_from_cosine(face_cosine, targets)
    kept = cross_modal_mask(gate.gate, audio_losses.detach(), face_losses.detach(), has)
    if clean_cosines is not None:
        decision = correct_labels_cross_modal(
            *clean_cosines, has, targets, kept, correction.temperature, correction.confidence, face_weight
        )
        use, trained, corrected = decision.use, decision.labels, decision.corrected
        audio_trained = audio_classifier.loss_from_cosine(audio_cosine, trained)
        face_trained = face_classifier.loss_from_cosine(face_cosine, trained)
    else:
        use, trained, corrected = kept, targets, torch.zeros_like(kept)
        audio_trained, face_trained = audio_losses, face_losses
    loss = masked_mean_loss(audio_trained, use) + masked_mean_loss(face_trained, use & has)
    recorded_face = torch.where(has, face_losses.detach(), torch.full_like(face_losses, float("nan")))
    return StepOutcome(loss, audio_losses, recorded_face, kept, corrected, trained, has)


@torch.no_grad()
def _clean_cosines(
    model: nn.Module, clean: torch.Tensor | None, faces: torch.Tensor | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Both modalities' cosines on the clean copies (LC's logits), in eval mode so batch-norm
    statistics stay untouched."""
    if clean is None or faces is None:
        raise DataError("label correction needs the clean audio features and face frames of the batch")
    model.eval()
    try:
        audio, face = model(clean, faces)
        return audio.float(), face.float()
    finally:
        model.train()


class FaceTally:
    """The epoch's face losses (NaN without a face) and face masks; :meth:`finish` gathers them from every
    process."""

    def __init__(self) -> None:
        self.records = StepRecords("index", "loss", "has")
        self.epoch: dict[str, np.ndarray] = {}

    def add(self, indices: torch.Tensor, face_losses: torch.Tensor, has_face: torch.Tensor) -> None:
        self.records.append(index=indices, loss=face_losses.float(), has=has_face.bool())

    def finish(self, accelerator: Accelerator) -> None:
        """Gather the epoch from every process (a collective: every rank calls it)."""
        self.epoch = self.records.gather(accelerator)

    def in_sample_order(self) -> tuple[np.ndarray, np.ndarray]:
        """(face losses, has_face) ordered as the audio tally's losses_in_sample_order orders the audio."""
        order = np.argsort(self.epoch["index"], kind="stable")
        return self.epoch["loss"][order].astype(np.float32), self.epoch["has"][order]

    def summary(self) -> dict:
        losses, has = self.in_sample_order()
        return {
            "mean_face_loss": float(losses[has].mean()) if has.any() else None,
            "samples_without_face": int((~has).sum()),
        }
