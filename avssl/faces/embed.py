"""Utterance face embeddings: the mean of the face encoder's embeddings of every frame of the utterance.

Identity is constant within an utterance while pose, expression and lighting vary from frame to frame,
so averaging over all the sampled frames (2.5 per second by default) gives one steadier vector than any
single frame. Whole frames are resized to the size the teacher saw in training (the global crops'),
with no augmentation, and the encoder runs in eval mode (batch-norm running statistics), so an
embedding does not depend on which other frames share its batch. Frames of several utterances are
batched together, up to ``batch_frames`` at a time, to keep the encoder busy.

Clustering rounds of visual DINO and ``avssl extract-faces`` both use :func:`embed_faces`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torchvision.transforms.v2.functional as F
from torch import nn
from tqdm.auto import tqdm

from avssl.data.manifest import Utterance
from avssl.errors import DataError
from avssl.faces.sources import FaceSource

DEFAULT_BATCH_FRAMES = 256


def frames_to_input(frames: np.ndarray, image_size: int) -> torch.Tensor:
    """(T, S, S, 3) uint8 RGB frames -> (T, 3, image_size, image_size) uint8, resized with antialiasing."""
    images = torch.from_numpy(np.array(frames)).permute(0, 3, 1, 2)  # a copy: store frames are read-only maps
    if images.shape[-1] != image_size or images.shape[-2] != image_size:
        images = F.resize(images, [image_size, image_size], antialias=True)
    return images


@torch.inference_mode()
def embed_faces(
    encoder: nn.Module,
    utterances: Sequence[Utterance],
    source: FaceSource,
    image_size: int,
    device: str | torch.device = "cpu",
    batch_frames: int = DEFAULT_BATCH_FRAMES,
    progress: bool = False,
) -> tuple[dict[int, np.ndarray], dict[int, str]]:
    """Embed each utterance's frames; returns ``({index: mean embedding}, {index: why it was skipped})``.

    An utterance whose frames cannot be read (no video, a corrupt file) is reported, not fatal: an
    extraction over a whole test set should not end on one bad video. Puts ``encoder`` in eval mode.
    """
    if batch_frames < 1:
        raise ValueError(f"batch_frames must be positive, got {batch_frames}")
    encoder.eval()
    rows: dict[int, np.ndarray] = {}
    failed: dict[int, str] = {}
    pending: list[tuple[int, torch.Tensor]] = []

    def flush() -> None:
        if not pending:
            return
        batch = torch.cat([images for _, images in pending]).to(device)
        out = torch.cat([encoder(chunk).float() for chunk in batch.split(batch_frames)]).cpu()
        for (index, _), frame_rows in zip(pending, out.split([len(images) for _, images in pending]), strict=True):
            rows[index] = frame_rows.mean(dim=0).numpy()
        pending.clear()

    with tqdm(total=len(utterances), desc="face embeddings", disable=not progress, leave=False) as bar:
        for index, utterance in enumerate(utterances):
            if not source.available(utterance):
                failed[index] = "no usable video (none in the manifest, a missing file, or not in the face store)"
            else:
                try:
                    pending.append((index, frames_to_input(source.frames(utterance), image_size)))
                except DataError as err:
                    failed[index] = str(err)
            if sum(len(images) for _, images in pending) >= batch_frames:
                flush()
            bar.update(1)
        flush()
    return rows, failed


def embed_all_faces(
    encoder: nn.Module,
    utterances: Sequence[Utterance],
    source: FaceSource,
    image_size: int,
    device: str | torch.device = "cpu",
) -> np.ndarray:
    """(N, dim) embeddings in ``utterances`` order; DataError if any utterance has no readable frames.

    For clustering, which needs one embedding per training utterance.
    """
    rows, failed = embed_faces(encoder, utterances, source, image_size, device)
    if failed:
        first = [f"{utterances[i].key}: {failed[i]}" for i in sorted(failed)[:5]]
        raise DataError(f"{len(failed)} of {len(utterances)} utterances have no readable frames: {first}")
    if not rows:
        return np.zeros((0, 0), np.float32)
    return np.stack([rows[i] for i in range(len(utterances))])
