"""One recording's speaker (audio) embedding for verification, from an audio file or a waveform.

The training mean is subtracted and the result has unit length, exactly as ``avssl eval`` treats the
extracted embeddings (:func:`avssl.eval.scoring.centred_unit`), so a Verifier score is the score the
evaluation would give the same pair.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from avssl.data.audio import load_audio
from avssl.errors import DataError
from avssl.eval.extract import load_mean_embedding
from avssl.eval.scoring import centred_unit
from avssl.models.waveform import WaveformEncoder
from avssl.train.encoder_file import load_encoder, read_encoder_configs

AudioInput = str | Path | np.ndarray | torch.Tensor


class AudioEmbedder:
    """A speaker encoder with its fbank front end, embedding one waveform at a time."""

    def __init__(self, encoder: torch.nn.Module, fbank: torch.nn.Module, sample_rate: int,
                 mean: np.ndarray | None = None, device: str | torch.device = "cpu") -> None:
        self.model = WaveformEncoder(encoder, fbank).eval()
        self.sample_rate = sample_rate
        self.mean = mean
        self.device = torch.device(device)

    @classmethod
    def load(cls, path: str | Path, train_embeddings: str | Path | None = None,
             device: str | torch.device = "cpu") -> AudioEmbedder:
        """Rebuild the encoder from its file; ``train_embeddings`` (.npz) gives the mean to subtract."""
        encoder, fbank, sample_rate = load_encoder(path, device)
        dim = read_encoder_configs(path)[0].embedding_dim
        mean = load_mean_embedding(train_embeddings, dim) if train_embeddings else None
        return cls(encoder, fbank, sample_rate, mean, device)

    @torch.inference_mode()
    def embed(self, audio: AudioInput) -> np.ndarray:
        """The length-normalised embedding of a file (wav, flac, m4a, mp4) or a mono waveform at the model's rate."""
        if isinstance(audio, (str, Path)):
            wave = torch.from_numpy(load_audio(audio, self.sample_rate))
        else:
            wave = torch.as_tensor(audio, dtype=torch.float32)
            if wave.dim() != 1 or wave.numel() < self.sample_rate // 10:
                raise DataError(
                    f"expected a mono waveform of at least 0.1 s at {self.sample_rate} Hz, got shape {tuple(wave.shape)}"
                )
        return centred_unit(self.model(wave.to(self.device).unsqueeze(0))[0].cpu().numpy(), self.mean)
