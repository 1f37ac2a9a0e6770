"""Decision thresholds and the audio + face fusion of a Verifier, fitted on a development trial list.

Nothing here is a constant: cosine scores of different encoders (and of one encoder on different data)
live on different scales, so each mode's threshold is the EER operating point of the user's development
list, and the fused score ``(1 - w) * z_audio + w * z_face`` takes its z-normalisation statistics (the
list's non-target scores) and its face weight ``w`` (lowest EER on a 0.01 grid) from the same list, as
``avssl eval --fusion-dev-trials`` does (:mod:`avssl.eval.fusion`). Never pass test trials: the
threshold and weight would be tuned on the data they are judged on.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from avssl.eval.fusion import ZNorm, fit_fusion_weight, fuse, znorm_from_trials
from avssl.eval.metrics import equal_error_rate

MODES = ("audio", "face", "fused")


@dataclass(frozen=True)
class Fusion:
    """Per-modality z-normalisation and the face weight: raw cosines in, one fused score out."""

    audio: ZNorm
    face: ZNorm
    weight: float

    def __call__(self, audio: float | np.ndarray, face: float | np.ndarray) -> np.ndarray:
        return fuse(self.audio(audio), self.face(face), self.weight)


@dataclass(frozen=True)
class Calibration:
    """What a development list gave: a threshold and the EER there per mode, and the fusion if fitted."""

    source: str
    n_trials: int
    thresholds: dict[str, float]
    dev_eer: dict[str, float]
    fusion: Fusion | None


def fit_calibration(scores: dict[str, np.ndarray], labels: np.ndarray, source: str) -> Calibration:
    """Thresholds for each modality in ``scores`` ("audio", "face"), plus "fused" when both are there.

    ``scores`` are the raw cosines of one development list's trials, ``labels`` its 1/0 labels.
    """
    by_mode = dict(scores)
    fusion = None
    if "audio" in scores and "face" in scores:
        what = f"non-target trials of {source}"
        audio_z = znorm_from_trials(scores["audio"], labels, what)
        face_z = znorm_from_trials(scores["face"], labels, what)
        weight, _ = fit_fusion_weight(audio_z(scores["audio"]), face_z(scores["face"]), labels)
        fusion = Fusion(audio_z, face_z, weight)
        by_mode["fused"] = fusion(scores["audio"], scores["face"])
    thresholds: dict[str, float] = {}
    dev_eer: dict[str, float] = {}
    for mode in MODES:
        if mode in by_mode:
            dev_eer[mode], thresholds[mode] = equal_error_rate(by_mode[mode], labels)
    return Calibration(source, int(np.asarray(labels).size), thresholds, dev_eer, fusion)
