"""One recording's face embedding for verification, from a face-track video or from frames already sampled.

A video is sampled exactly as the face encoder's training frames were (its file records rate, crop
size and detection), because frames cut differently would give embeddings that are not comparable
with the ones the encoder learned on. An array is taken to be frames already sampled that way
(:func:`avssl.faces.frames.extract_frames` with the encoder's ``FrameSampling``), so the two inputs give
the same embedding. The embedding is the mean of the frames' embeddings, as in ``avssl extract-faces``
(:mod:`avssl.faces.embed`), with the training mean subtracted and unit length, as ``avssl eval`` scores.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from avssl.errors import DataError
from avssl.eval.extract import load_mean_embedding
from avssl.eval.scoring import centred_unit
from avssl.faces.embed import DEFAULT_BATCH_FRAMES, frames_to_input
from avssl.faces.frames import extract_frames
from avssl.train.encoder_file import FaceEncoderInfo, load_face_encoder

FaceInput = str | Path | np.ndarray


class FaceEmbedder:
    """A face encoder with what its file says, embedding one recording at a time."""

    def __init__(
        self,
        encoder: nn.Module,
        info: FaceEncoderInfo,
        mean: np.ndarray | None = None,
        device: str | torch.device = "cpu",
        batch_frames: int = DEFAULT_BATCH_FRAMES,
    ) -> None:
        self.encoder = encoder.eval()
        self.info = info
        self.mean = mean
        self.device = torch.device(device)
        self.batch_frames = batch_frames

    @classmethod
    def load(
        cls, path: str | Path, train_embeddings: str | Path | None = None, device: str | torch.device = "cpu"
    ) -> FaceEmbedder:
        """Rebuild the face encoder from its file; ``train_embeddings`` (face .npz) gives the mean to subtract."""
        encoder, info = load_face_encoder(path, device)
        mean = load_mean_embedding(train_embeddings, info.encoder.embedding_dim) if train_embeddings else None
        return cls(encoder, info, mean, device)

    def frames(self, face: FaceInput) -> np.ndarray:
        """The (T, S, S, 3) uint8 RGB face crops of a video path (sampled as in training) or of an array."""
        if isinstance(face, (str, Path)):
            return extract_frames(face, self.info.frames).frames
        frames = np.asarray(face)
        if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[3] != 3 or frames.shape[1] != frames.shape[2]:
            raise DataError(
                f"face frames must be square RGB crops, a uint8 array (T, S, S, 3); got {frames.dtype} "
                f"{frames.shape}. Pass the video's path, or sample it with avssl.faces.frames.extract_frames"
            )
        if frames.shape[0] == 0:
            raise DataError("face frames: the array holds no frames")
        return frames

    @torch.inference_mode()
    def embed(self, face: FaceInput) -> np.ndarray:
        """The length-normalised mean embedding of the recording's frames."""
        images = frames_to_input(self.frames(face), self.info.image_size).to(self.device)
        rows = torch.cat([self.encoder(chunk).float() for chunk in images.split(self.batch_frames)])
        return centred_unit(rows.mean(dim=0).cpu().numpy(), self.mean)
