"""Using a trained model: embed recordings, score pairs, decide at a threshold chosen on a dev list.

The decision threshold is never a constant: cosine scores of different models (and of one model on
different data) live on different scales, so :meth:`Verifier.calibrate` picks the EER threshold on
a development trial list the user provides — never on the test trials the model is judged on.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from avssl.data.audio import load_audio
from avssl.errors import DataError
from avssl.eval.evaluate import mean_embedding
from avssl.eval.extract import load_embeddings
from avssl.eval.metrics import equal_error_rate
from avssl.eval.trials import read_trials
from avssl.models.waveform import WaveformEncoder
from avssl.train.encoder_file import load_encoder

AudioInput = str | Path | np.ndarray | torch.Tensor


@dataclass(frozen=True)
class Decision:
    """A scored pair: the cosine score, the threshold it was compared with, and the verdict."""

    score: float
    threshold: float | None
    same_speaker: bool | None  # None when no threshold has been calibrated


class Verifier:
    """Speaker verification with a trained audio encoder file (``encoder.pt`` from `avssl train`).

    It embeds and scores audio only. Face and audio+face verification arrive with the face encoder;
    until then audio+face results come from `avssl eval --face-embeddings` on extracted embeddings.
    """

    def __init__(
        self,
        encoder: torch.nn.Module,
        fbank: torch.nn.Module,
        sample_rate: int,
        mean: np.ndarray | None = None,
        device: str | torch.device = "cpu",
    ) -> None:
        self.model = WaveformEncoder(encoder, fbank).eval()
        self.sample_rate = sample_rate
        self.mean = mean
        self.device = torch.device(device)
        self.threshold: float | None = None

    @classmethod
    def load(
        cls, encoder_path: str | Path, train_embeddings: str | Path | None = None, device: str | torch.device = "cpu"
    ) -> Verifier:
        """Rebuild the encoder from its file; ``train_embeddings`` (.npz) gives the mean to subtract."""
        encoder, fbank, sample_rate = load_encoder(encoder_path, device)
        mean = mean_embedding(load_embeddings(train_embeddings)[1]) if train_embeddings else None
        return cls(encoder, fbank, sample_rate, mean, device)

    @torch.inference_mode()
    def embed(self, audio: AudioInput) -> np.ndarray:
        """A length-normalised embedding of a file path or a mono waveform at the model's sample rate."""
        if isinstance(audio, (str, Path)):
            wave = torch.from_numpy(load_audio(audio, self.sample_rate))
        else:
            wave = torch.as_tensor(audio, dtype=torch.float32)
            if wave.dim() != 1 or wave.numel() < self.sample_rate // 10:
                raise DataError(
                    f"expected a mono waveform of at least 0.1 s at {self.sample_rate} Hz, got shape {tuple(wave.shape)}"
                )
        embedding = self.model(wave.to(self.device).unsqueeze(0))[0].double().cpu().numpy()
        if self.mean is not None:
            embedding = embedding - self.mean
        return embedding / max(np.linalg.norm(embedding), 1e-12)

    def score(self, first: AudioInput, second: AudioInput) -> float:
        """Cosine similarity of the two recordings' embeddings."""
        return float(self.embed(first) @ self.embed(second))

    def calibrate(self, dev_trials: str | Path, audio_root: str | Path, extension: str = ".wav") -> float:
        """Set the threshold to the EER operating point of a development trial list; return it.

        ``dev_trials`` is in VoxCeleb1 format with paths relative to ``audio_root``.
        """
        trials = read_trials(dev_trials)
        root = Path(audio_root)
        cache = {key: self.embed(root / f"{key}{extension}") for key in trials.keys()}
        scores = np.array([cache[e] @ cache[t] for e, t in zip(trials.enrol, trials.test, strict=True)])
        _, self.threshold = equal_error_rate(scores, trials.labels)
        return self.threshold

    def verify(self, first: AudioInput, second: AudioInput) -> Decision:
        """Score a pair and, when calibrated, decide whether it is one speaker."""
        score = self.score(first, second)
        same = None if self.threshold is None else score >= self.threshold
        return Decision(score, self.threshold, same)

