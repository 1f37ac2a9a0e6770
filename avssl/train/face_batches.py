"""The face half of an audio-visual stage-II batch: one augmented face crop per utterance, and its clean copy.

Stage II trains on one random audio segment per utterance per epoch; its face counterpart is one
random frame of the utterance, cut and corrupted like visual DINO's global crops
(:class:`avssl.faces.augment.FaceAugment`). Label correction needs the model's opinion on an
uncorrupted view, which for faces is the whole frame resized as for embedding
(:func:`avssl.faces.embed.frames_to_input`).

Randomness is keyed by (seed, epoch, utterance index), so a sample's crop does not depend on the
batch, the rank or whether the run was resumed. Samples without a usable face still need a row in the
face batch, so that the face encoder sees a batch of fixed size on every rank (DDP needs every
parameter used in every step): they get a copy of another face of the batch (batch-norm statistics
then stay those of real faces), or zeros when the batch has none, and ``has_face`` False, which masks
their face loss out.

The crops are made where the audio batch is assembled: in the data-loader workers when there are any
(:class:`FacesInWorkers`), beside the training step: reading and augmenting stored frames runs at about a hundred
samples per second per core (docs/concepts/faces.md), time the training process would otherwise spend
with the accelerator idle.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch.utils.data import default_collate

from avssl.data.manifest import Utterance
from avssl.errors import DataError
from avssl.faces.augment import FaceAugment, FaceAugmentConfig
from avssl.faces.embed import frames_to_input
from avssl.faces.sources import FaceSource

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FaceBatch:
    """(B, 3, S, S) uint8 crops, their clean copies (None when not asked for), and (B,) bool ``has_face``."""

    crops: torch.Tensor
    clean: torch.Tensor | None
    has_face: torch.Tensor

    def to(self, device: torch.device) -> FaceBatch:
        clean = self.clean.to(device) if self.clean is not None else None
        return FaceBatch(self.crops.to(device), clean, self.has_face.to(device))


class FaceCrops:
    """Builds the :class:`FaceBatch` of a batch of utterance indices (see the module docstring)."""

    def __init__(
        self, utterances: Sequence[Utterance], source: FaceSource, augment: FaceAugmentConfig, seed: int
    ) -> None:
        self.utterances = utterances
        self.source = source
        self.augment = FaceAugment(augment)
        self.size = augment.size
        self.seed = seed

    def __call__(self, indices: Sequence[int], epoch: int, has_face: np.ndarray, clean_needed: bool) -> FaceBatch:
        """Crops of ``indices`` (into ``utterances``) in epoch ``epoch`` on the CPU; ``has_face`` is the round's mask."""
        crops: list[torch.Tensor | None] = []
        clean: list[torch.Tensor | None] = []
        for index in (int(i) for i in indices):
            frame = self._frame(index, epoch) if has_face[index] else None
            if frame is None:
                crops.append(None)
                clean.append(None)
                continue
            image, rng = frame
            generator = torch.Generator().manual_seed(int(rng.integers(2**63)))
            crops.append(self.augment(image, generator))
            clean.append(frames_to_input(image.permute(1, 2, 0)[None].numpy(), self.size)[0] if clean_needed else None)
        has = torch.tensor([c is not None for c in crops], dtype=torch.bool)
        return FaceBatch(_fill(crops, self.size), _fill(clean, self.size) if clean_needed else None, has)

    def _frame(self, index: int, epoch: int) -> tuple[torch.Tensor, np.random.Generator] | None:
        """One random frame (3, S, S) uint8 of utterance ``index`` and the generator that chose it.

        A file that turned unreadable since the round embedded it costs this sample its face, not the run.
        """
        rng = np.random.default_rng([self.seed, epoch, index])
        utterance = self.utterances[index]
        try:
            frames = self.source.frames(utterance)
        except DataError as err:
            log.warning("utterance %s: face frames unreadable (%s); training its audio only", utterance.key, err)
            return None
        frame = np.array(frames[int(rng.integers(len(frames)))])  # a writable copy: store frames are read-only maps
        return torch.from_numpy(frame).permute(2, 0, 1), rng


class FacesInWorkers:
    """A ``collate_fn`` that adds each batch's :class:`FaceBatch` (key ``faces``) to the audio batch.

    It wraps the audio side's collate function (``None``: the default one). What the crops depend on
    beyond the batch (the epoch, the round's ``has_face`` mask, whether label correction needs clean
    copies) is set with :meth:`prepare` before each epoch's pass; the loaders are not persistent, so the
    workers started for the pass see it.
    """

    def __init__(self, collate: Callable[[list[dict]], Any] | None, crops: FaceCrops) -> None:
        self.collate = collate or default_collate
        self.crops = crops
        self.epoch = 0
        self.has_face: np.ndarray | None = None
        self.clean_needed = False

    def prepare(self, epoch: int, has_face: np.ndarray, clean_needed: bool) -> None:
        self.epoch, self.has_face, self.clean_needed = epoch, has_face, clean_needed

    def __call__(self, items: list[dict]) -> dict:
        if self.has_face is None:
            raise RuntimeError("FacesInWorkers.prepare() must run before the epoch's batches are drawn")
        batch = self.collate(items)
        batch["faces"] = self.crops(batch["index"].tolist(), self.epoch, self.has_face, self.clean_needed)
        return batch


def _fill(images: list[torch.Tensor | None], size: int) -> torch.Tensor:
    """Stack, with the first real image (or zeros) in the places of missing ones."""
    first = next((image for image in images if image is not None), None)
    stand_in = first if first is not None else torch.zeros(3, size, size, dtype=torch.uint8)
    return torch.stack([image if image is not None else stand_in for image in images])
