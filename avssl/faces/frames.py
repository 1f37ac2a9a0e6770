"""Sample face frames from a face-track video: a few frames per second, cropped and resized.

VoxCeleb2's videos are face tracks (the detector's box, already centred on the speaker), so a centre
crop is the face; an optional OpenCV Haar detector refines the box per frame and falls back to the
centre crop when it finds nothing, counting how often, so a run can tell whether refinement did
anything at all. Identity changes slowly within an utterance: a low rate (default 2.5 frames/s, one
frame per 0.4 s as is common practice) keeps the useful variety at a fraction of the decoding and
storage cost of all 25 frames/s.

Frame times: an utterance of duration ``D`` seconds gives ``n = max(1, floor(D * rate))`` frames at
``t_k = (k + 0.5) / rate``, the centre of each ``1/rate`` interval (a trailing partial interval is not
sampled). The frame taken for ``t_k`` is the one on screen at that time (the last frame whose start is
<= ``t_k``; times run from the first frame's start), so a clip shorter than half an interval gives its
last frame. Times therefore depend only on the count and the rate (:func:`frame_times`).
"""

from __future__ import annotations

import logging
import math
import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np

from avssl.errors import ConfigError, DataError

if TYPE_CHECKING:
    import decord

log = logging.getLogger(__name__)

DEFAULT_RATE = 2.5  # frames per second
DEFAULT_SIZE = 112  # the input size of face-recognition networks
HAAR_CASCADE = "haarcascade_frontalface_default.xml"

# Why a video gave no frames; the keys of the skipped tables in `avssl prepare-faces` reports.
MISSING = "missing_file"
NO_VIDEO = "no_video"  # the manifest names no video for the utterance
UNREADABLE = "unreadable"  # not a video container the decoder can open (corrupt, truncated, empty)
NO_VIDEO_STREAM = "no_video_stream"
NO_FRAMES = "no_frames"
DECODE_ERROR = "decode_error"  # opened, but decoding the sampled frames failed


class VideoError(DataError):
    """A video that yields no face frames; ``reason`` is one of the codes above, for reports."""

    def __init__(self, path: str | os.PathLike, reason: str, detail: str) -> None:
        super().__init__(f"{path}: {reason}: {detail}")
        self.path = str(path)
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class FrameSampling:
    """How frames are taken from a video; the store records it so that resumed runs cannot mix settings.

    ``crop`` is the side of the centre square as a fraction of the frame's shorter side (1.0: the whole
    square middle; VoxCeleb2 tracks already frame the face). With ``detect``, a Haar detection replaces
    the centre square by a square ``margin`` times the detected box's side, centred on the face.
    """

    rate: float = DEFAULT_RATE
    size: int = DEFAULT_SIZE
    crop: float = 1.0
    detect: bool = False
    margin: float = 1.4

    def __post_init__(self) -> None:
        checks = (
            (self.rate > 0, "rate", "frames per second must be positive"),
            (self.size >= 8, "size", "the output side must be at least 8 pixels"),
            (0 < self.crop <= 1, "crop", "the centre crop is a fraction of the shorter side, in (0, 1]"),
            (self.margin >= 1, "margin", "the detected box is enlarged, so the margin must be >= 1"),
        )
        for ok, name, what in checks:
            if not ok:
                raise ConfigError(f"frame sampling option '{name}' = {getattr(self, name)!r}: {what}")


@dataclass(frozen=True)
class FaceFrames:
    """Frames of one utterance: ``frames`` uint8 RGB (T, size, size, 3), ``times`` (T,) in seconds.

    ``detected`` frames were cropped around a detected face; ``fallback`` frames asked for detection
    but used the centre crop (no face found, or no detector available). Both are 0 without detection.
    """

    frames: np.ndarray
    times: np.ndarray
    detected: int
    fallback: int


def frame_count(duration: float, rate: float) -> int:
    """How many frames a ``duration``-second video gives at ``rate`` (at least one)."""
    return max(1, math.floor(duration * rate + 1e-9))


def frame_times(count: int, rate: float) -> np.ndarray:
    """Nominal times of ``count`` frames at ``rate``: the centre of each ``1/rate`` interval."""
    return (np.arange(count) + 0.5) / rate


def frame_indices(starts: np.ndarray, times: np.ndarray) -> np.ndarray:
    """Index of the frame on screen at each time, given the frames' start times (sorted, from 0).

    Interval centres often fall exactly on a frame start (0.2 s at 25 frames/s), and decoders give
    float32 times (0.2 -> 0.20000000298), so a start within 0.1 ms of a time counts as reached."""
    reached = np.searchsorted(np.asarray(starts, np.float64), times + 1e-4, side="right") - 1
    return np.clip(reached, 0, len(starts) - 1)


def centre_box(height: int, width: int, crop: float) -> tuple[int, int, int]:
    """``(x, y, side)`` of the centred square whose side is ``crop`` times the shorter frame side."""
    side = max(1, round(min(height, width) * crop))
    return (width - side) // 2, (height - side) // 2, side


def face_box(height: int, width: int, box: tuple[int, int, int, int], margin: float) -> tuple[int, int, int]:
    """``(x, y, side)`` of a square ``margin`` times the detected ``(x, y, w, h)`` box, centred on it and
    moved (or shrunk) to lie inside the frame, so the crop never needs padding."""
    x, y, w, h = box
    side = min(round(max(w, h) * margin), height, width)
    cx, cy = x + w / 2, y + h / 2
    left = int(min(max(round(cx - side / 2), 0), width - side))
    top = int(min(max(round(cy - side / 2), 0), height - side))
    return left, top, side


def crop_resize(frame: np.ndarray, box: tuple[int, int, int], size: int) -> np.ndarray:
    """Cut the square ``box`` out of ``frame`` and resize it to ``size`` (area filter when shrinking)."""
    x, y, side = box
    patch = frame[y : y + side, x : x + side]
    if side == size:
        return np.ascontiguousarray(patch)
    interpolation = cv2.INTER_AREA if side > size else cv2.INTER_LINEAR
    return cv2.resize(patch, (size, size), interpolation=interpolation)


class HaarFaceDetector:
    """OpenCV's frontal-face Haar cascade: a face box per frame, or None.

    It is fast and needs no model download (opencv-python 4.x wheels ship the cascade), but misses
    profile faces and about half of the synthetic corpus's drawn faces; the extraction then keeps the
    centre crop.
    """

    def __init__(self, cascade: str = HAAR_CASCADE, min_fraction: float = 0.2) -> None:
        path = Path(cv2.data.haarcascades) / cascade
        self._classifier = cv2.CascadeClassifier(str(path))
        if self._classifier.empty():
            raise ConfigError(
                f"OpenCV could not load the Haar cascade {path}; install opencv-python-headless<5"
            )
        self.min_fraction = min_fraction

    def detect(self, frame: np.ndarray) -> tuple[int, int, int, int] | None:
        """The largest face in an RGB frame as ``(x, y, w, h)``; faces smaller than ``min_fraction`` of the
        shorter side are ignored (in a face track the speaker's face is the large one)."""
        grey = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)
        smallest = max(8, round(min(grey.shape) * self.min_fraction))
        faces = self._classifier.detectMultiScale(
            grey, scaleFactor=1.1, minNeighbors=5, minSize=(smallest, smallest)
        )
        if len(faces) == 0:
            return None
        x, y, w, h = max(faces, key=lambda face: int(face[2]) * int(face[3]))
        return int(x), int(y), int(w), int(h)


@lru_cache(maxsize=1)
def default_detector() -> HaarFaceDetector | None:
    """The Haar detector, or None (logged once per process) when this OpenCV build has no cascades."""
    if not hasattr(cv2, "CascadeClassifier") or not hasattr(cv2, "data"):
        log.warning("this OpenCV build has no Haar cascades (opencv 5.x?): face crops stay centred")
        return None
    try:
        return HaarFaceDetector()
    except ConfigError as err:
        log.warning("%s: face crops stay centred", err)
        return None


def _open(path: Path) -> decord.VideoReader:
    """A one-thread decord reader (parallelism comes from processes), or VideoError saying why not.

    decord is imported on first use: reading a frame store never needs it."""
    import decord

    if not path.is_file():
        raise VideoError(
            path, MISSING, "no such file; check the manifest's video column or re-run `avssl prepare`"
        )
    try:
        return decord.VideoReader(str(path), num_threads=1)
    except (RuntimeError, decord.DECORDError) as err:
        message = " ".join(str(err).split()) or type(err).__name__
        if "cannot find video stream" in message:
            detail = "no decodable video stream (an audio-only file, or a video stream without frames)"
            raise VideoError(path, NO_VIDEO_STREAM, detail) from None
        raise VideoError(
            path, UNREADABLE, f"the decoder cannot open it (corrupt, truncated or empty): {message[:160]}"
        ) from None


def extract_frames(
    path: str | os.PathLike, sampling: FrameSampling | None = None, detector: HaarFaceDetector | None = None
) -> FaceFrames:
    """Decode the sampled frames of the video at ``path`` and crop them; raise VideoError if none.

    ``sampling`` defaults to :class:`FrameSampling`'s defaults. With ``sampling.detect``, ``detector``
    (default: :func:`default_detector`) refines each crop.
    """
    import decord

    sampling = sampling or FrameSampling()
    path = Path(path)
    reader = _open(path)
    total = len(reader)
    if total == 0:
        raise VideoError(path, NO_FRAMES, "the video stream holds no frames")
    stamps = reader.get_frame_timestamp(range(total))
    starts = stamps[:, 0] - stamps[0, 0]
    duration = float(stamps[-1, 1] - stamps[0, 0])
    times = frame_times(frame_count(duration, sampling.rate), sampling.rate)
    try:
        decoded = reader.get_batch(frame_indices(starts, times).tolist()).asnumpy()
    except (RuntimeError, decord.DECORDError) as err:
        raise VideoError(path, DECODE_ERROR, str(err).strip()[:200] or type(err).__name__) from None
    if sampling.detect and detector is None:
        detector = default_detector()
    height, width = decoded.shape[1:3]
    centre = centre_box(height, width, sampling.crop)
    out = np.empty((len(decoded), sampling.size, sampling.size, 3), np.uint8)
    detected = fallback = 0
    for k, frame in enumerate(decoded):
        found = detector.detect(frame) if sampling.detect and detector is not None else None
        if found is not None:
            detected += 1
            box = face_box(height, width, found, sampling.margin)
        else:
            fallback += int(sampling.detect)
            box = centre
        out[k] = crop_resize(frame, box, sampling.size)
    return FaceFrames(out, times, detected, fallback)
