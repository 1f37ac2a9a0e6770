"""Using trained models: embed recordings, score pairs by audio, face or both, decide at a dev-list threshold.

The decision threshold is never a constant: cosine scores of different models (and of one model on
different data) live on different scales, so :meth:`Verifier.calibrate` picks each mode's EER
threshold, and fits the audio + face fusion, on a development trial list the user provides — never on
the test trials the model is judged on (:mod:`avssl.calibration`). Face input handling lives in
:mod:`avssl.faces.embedder`, imported only when a face encoder is loaded (it needs OpenCV and decord).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from avssl.audio_embedder import AudioEmbedder, AudioInput
from avssl.calibration import MODES, Calibration, fit_calibration
from avssl.errors import ConfigError, DataError
from avssl.eval.trials import read_trials
from avssl.train.encoder_file import read_encoder_configs, read_face_encoder_info

if TYPE_CHECKING:
    from avssl.faces.embedder import FaceEmbedder, FaceInput

VIDEO_SUFFIXES = (".mp4",)  # a path with both tracks: its audio (AAC) and its face frames
# Where calibrate() looks for a dev-list key, in this order: lossless audio first.
_AUDIO_SUFFIXES = (".wav", ".flac", ".m4a", ".mp4")


@dataclass(frozen=True)
class Recording:
    """One side of a trial: its audio, its face frames, or both (None: not given)."""

    audio: AudioInput | None = None
    face: FaceInput | None = None

    @classmethod
    def of(cls, value: Recording | AudioInput | FaceInput) -> Recording:
        """What a bare input holds: an .mp4 path both tracks, another path audio; a 1-D array is a
        waveform, a 4-D array (T, H, W, 3) face frames."""
        if isinstance(value, Recording):
            return value
        if isinstance(value, (str, Path)):
            return cls(value, value) if Path(value).suffix.lower() in VIDEO_SUFFIXES else cls(audio=value)
        if np.ndim(value) == 4:
            return cls(face=value)
        return cls(audio=value)

    def name(self) -> str:
        value = self.audio if self.audio is not None else self.face
        return str(value) if isinstance(value, (str, Path)) else f"an array of shape {tuple(value.shape)}"


@dataclass(frozen=True)
class Decision:
    """A scored pair in one mode: its score, the threshold it was compared with, and the verdict.

    ``scores`` holds every score the mode used (audio and face cosines, and the fused score)."""

    mode: str
    score: float
    threshold: float | None
    same_speaker: bool | None  # None when no threshold has been calibrated
    scores: dict[str, float] = field(default_factory=dict)


class Verifier:
    """Speaker verification with a trained audio encoder, a face encoder, or both (files from `avssl train`).

    Modes: "audio" and "face" score cosines of one modality; "fused" weighs their z-normalised scores
    and exists only after :meth:`calibrate`, which fits the weight and statistics on a development list.
    """

    def __init__(self, audio: AudioEmbedder | None = None, face: FaceEmbedder | None = None) -> None:
        if audio is None and face is None:
            raise ConfigError("a Verifier needs an audio encoder (encoder_path, --encoder), a face encoder "
                              "(face_encoder_path, --face-encoder) or both")
        self.audio, self.face = audio, face
        self.calibration: Calibration | None = None

    @classmethod
    def load(cls, encoder_path: str | Path | None = None, face_encoder_path: str | Path | None = None,
             train_embeddings: str | Path | None = None, face_train_embeddings: str | Path | None = None,
             device: str | torch.device = "cpu") -> Verifier:
        """Rebuild the encoders from their files; the training embedding files give the means to subtract."""
        for given, needs in ((train_embeddings, encoder_path), (face_train_embeddings, face_encoder_path)):
            if given is not None and needs is None:
                raise ConfigError(f"{given}: training embeddings need the encoder that made them; load it too")
        audio = face = None
        if encoder_path is not None:
            try:
                audio = AudioEmbedder.load(encoder_path, train_embeddings, device)
            except DataError:
                _refuse_if_swapped(encoder_path, read_face_encoder_info, "a face", "face_encoder_path (--face-encoder)")
                raise
        if face_encoder_path is not None:
            from avssl.faces.embedder import FaceEmbedder

            try:
                face = FaceEmbedder.load(face_encoder_path, face_train_embeddings, device)
            except DataError:
                _refuse_if_swapped(face_encoder_path, read_encoder_configs, "a speaker", "encoder_path (--encoder)")
                raise
        return cls(audio, face)

    @property
    def default_mode(self) -> str:
        """"fused" with both encoders, otherwise the one modality loaded."""
        if self.audio is not None and self.face is not None:
            return "fused"
        return "audio" if self.audio is not None else "face"

    def embed(self, audio: AudioInput) -> np.ndarray:
        """The length-normalised audio embedding of a file path or a mono waveform at the model's rate."""
        return self._embedder("audio").embed(audio)

    def embed_face(self, face: FaceInput) -> np.ndarray:
        """The length-normalised face embedding of a video path or of (T, S, S, 3) uint8 face crops."""
        return self._embedder("face").embed(face)

    def scores(self, first: Recording | AudioInput | FaceInput,
               second: Recording | AudioInput | FaceInput, mode: str | None = None) -> dict[str, float]:
        """The scores ``mode`` uses: its modality's cosine, or for "fused" both cosines and the fused score."""
        mode = self._check_mode(mode)
        pair = (Recording.of(first), Recording.of(second))
        out = {m: float(self._embed(m, pair[0]) @ self._embed(m, pair[1]))
               for m in (("audio", "face") if mode == "fused" else (mode,))}
        if mode == "fused":
            out["fused"] = float(self.calibration.fusion(out["audio"], out["face"]))
        return out

    def score(self, first: Recording | AudioInput | FaceInput,
              second: Recording | AudioInput | FaceInput, mode: str | None = None) -> float:
        """The pair's score in ``mode`` (default :attr:`default_mode`)."""
        return self.scores(first, second, mode)[self._check_mode(mode)]

    def verify(self, first: Recording | AudioInput | FaceInput,
               second: Recording | AudioInput | FaceInput, mode: str | None = None) -> Decision:
        """Score a pair and, when calibrated, decide whether it is one speaker."""
        mode = self._check_mode(mode)
        scores = self.scores(first, second, mode)
        threshold = self.calibration.thresholds[mode] if self.calibration else None
        same = None if threshold is None else scores[mode] >= threshold
        return Decision(mode, scores[mode], threshold, same, scores)

    def calibrate(self, dev_trials: str | Path, audio_root: str | Path | None = None,
                  video_root: str | Path | None = None) -> dict[str, float]:
        """Fit each mode's threshold (and the fusion, with both encoders) on a development list; return them.

        ``dev_trials`` is in VoxCeleb1 format; its keys are looked up under ``audio_root`` (.wav, .flac,
        .m4a or .mp4) and ``video_root`` (.mp4 face tracks). One folder of .mp4 files can be both.
        """
        trials = read_trials(dev_trials)
        scores = {}
        for modality, root, suffixes, option in (("audio", audio_root, _AUDIO_SUFFIXES, "audio_root, --dev-root"),
                                                 ("face", video_root, VIDEO_SUFFIXES, "video_root, --dev-video-root")):
            if getattr(self, modality) is None:
                continue
            if root is None:
                raise ConfigError(f"a {modality} encoder is loaded: give the folder of {dev_trials}'s {modality} "
                                  f"recordings ({option})")
            embedder = self._embedder(modality)
            table = {key: embedder.embed(_find(Path(root), key, suffixes, dev_trials)) for key in trials.keys()}
            scores[modality] = np.array([table[e] @ table[t] for e, t in zip(trials.enrol, trials.test, strict=True)])
        self.calibration = fit_calibration(scores, trials.labels, str(dev_trials))
        return dict(self.calibration.thresholds)

    def _embedder(self, modality: str) -> AudioEmbedder | FaceEmbedder:
        embedder = getattr(self, modality)
        if embedder is None:
            option = "encoder_path (--encoder)" if modality == "audio" else "face_encoder_path (--face-encoder)"
            raise ConfigError(f"no {modality} encoder loaded: give {option}")
        return embedder

    def _embed(self, modality: str, recording: Recording) -> np.ndarray:
        value = getattr(recording, modality)
        if value is None:
            needs = "audio (a waveform or an audio file)" if modality == "audio" else "a face (an .mp4 or frames)"
            raise DataError(f"{modality} scoring needs {needs} on both sides; {recording.name()} has none")
        return self._embedder(modality).embed(value)

    def _check_mode(self, mode: str | None) -> str:
        mode = mode or self.default_mode
        if mode not in MODES:
            raise ConfigError(f"unknown mode {mode!r}: choose one of {', '.join(MODES)}")
        for modality in ("audio", "face") if mode == "fused" else (mode,):
            self._embedder(modality)
        if mode == "fused" and (self.calibration is None or self.calibration.fusion is None):
            raise ConfigError("fused scores need calibration: call calibrate() with a development trial list "
                              "(--dev-trials) first, or choose mode audio or face")
        return mode


def _find(root: Path, key: str, suffixes: tuple[str, ...], trials: str | Path) -> Path:
    """The file of a dev-list key under ``root``, trying ``suffixes`` in order."""
    for suffix in suffixes:
        path = root / f"{key}{suffix}"
        if path.is_file():
            return path
    raise DataError(f"{trials} names {key}, but {root} has no {key}{{{','.join(suffixes)}}}; check the folder")


def _refuse_if_swapped(path: str | Path, reader: Callable[[str | Path], object], kind: str, option: str) -> None:
    """Raise an error saying what to do when ``path`` is the other modality's encoder file (``reader`` reads it)."""
    try:
        reader(path)
    except DataError:
        return
    raise DataError(f"{path} is {kind} encoder file: give it as {option}")
