"""The face-frame store: one file per utterance, keyed by the utterance key, written by `prepare-faces`.

Layout of a store folder::

    faces.json                 the frame sampling and file format (checked on every write and read)
    frames/<key>.jpg|.npy      the utterance's frames, (T, size, size, 3) uint8 RGB
    reports/                   what each `prepare-faces` run (or shard) did and skipped

One file per utterance gives random access with a single open, lets array jobs write disjoint files
without coordination, and makes resuming trivial (an atomically written file is either complete or
absent). Two formats:

* ``jpg``: the frames stacked vertically into one "film strip" JPEG. About ten times smaller than raw
  pixels at quality 90 (VoxCeleb2 at 2.5 frames/s: tens of GB instead of hundreds); the frame side of
  112 is a multiple of JPEG's 16-pixel blocks, so frames never bleed into each other.
* ``npy``: raw uint8, memory-mapped on read so that only the frames used are read from disk; lossless
  and the fastest to read, at the full size.

Frame times are not stored: they follow from the frame count and the rate (:func:`frame_times`).
"""

from __future__ import annotations

import io
import json
import os
from dataclasses import asdict
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from avssl.data.manifest import Utterance
from avssl.errors import ConfigError, DataError
from avssl.faces.frames import FrameSampling, frame_times
from avssl.utils.atomic import atomic_write, atomic_write_json

FORMATS = ("jpg", "npy")
DEFAULT_FORMAT = "jpg"
DEFAULT_QUALITY = 90
META = "faces.json"
VERSION = 1


def store_settings(sampling: FrameSampling, fmt: str, quality: int) -> dict[str, Any]:
    """What ``faces.json`` records: everything that changes the stored bytes."""
    if fmt not in FORMATS:
        raise ConfigError(f"face store format {fmt!r} is unknown; choose one of {', '.join(FORMATS)}")
    if not 1 <= quality <= 100:
        raise ConfigError(f"JPEG quality {quality} must be within 1..100")
    return {
        "version": VERSION,
        "format": fmt,
        "quality": quality if fmt == "jpg" else None,
        **asdict(sampling),
    }


def open_for_writing(root: str | os.PathLike, settings: dict[str, Any]) -> Path:
    """Create the store (or check that an existing one was written with the same ``settings``).

    Shards of an array job all call this; they write identical bytes, so the race is harmless."""
    root = Path(root)
    meta = root / META
    if meta.exists():
        existing = _read_meta(meta)
        if existing != settings:
            changed = sorted(
                k for k in settings.keys() | existing.keys() if settings.get(k) != existing.get(k)
            )
            detail = ", ".join(f"{k}: stored {existing.get(k)!r}, asked {settings.get(k)!r}" for k in changed)
            raise DataError(
                f"{root} holds face frames made with other settings ({detail}); use the same options, "
                "another output folder, or delete it"
            )
    else:
        atomic_write_json(meta, settings)
    return root


def _read_meta(meta: Path) -> dict[str, Any]:
    try:
        settings = json.loads(meta.read_text())
    except (OSError, ValueError) as err:
        raise DataError(
            f"{meta} is unreadable ({err}); delete the store and run `avssl prepare-faces` again"
        ) from err
    if (
        not isinstance(settings, dict)
        or settings.get("version") != VERSION
        or settings.get("format") not in FORMATS
    ):
        raise DataError(
            f"{meta} is not a version-{VERSION} face store description; run `avssl prepare-faces` again"
        )
    return settings


def frames_path(root: str | os.PathLike, key: str, fmt: str) -> Path:
    """Where the frames of ``key`` live; keys are relative paths (``idXXXXX/<session>/NNNNN``)."""
    relative = Path(key)
    if relative.is_absolute() or ".." in relative.parts or not key:
        raise DataError(f"utterance key {key!r} cannot name a file inside the face store; fix the manifest")
    return Path(root) / "frames" / f"{key}.{fmt}"


def write_frames(path: Path, frames: np.ndarray, fmt: str, quality: int) -> None:
    """Write ``frames`` (T, S, S, 3) uint8 RGB atomically in ``fmt``."""
    if fmt == "npy":
        buffer = io.BytesIO()
        np.save(buffer, np.ascontiguousarray(frames), allow_pickle=False)
        payload = buffer.getvalue()
    else:
        strip = cv2.cvtColor(frames.reshape(-1, *frames.shape[2:]), cv2.COLOR_RGB2BGR)
        ok, encoded = cv2.imencode(".jpg", strip, [cv2.IMWRITE_JPEG_QUALITY, quality])
        if not ok:
            raise DataError(f"OpenCV could not encode the frames of {path} as JPEG")
        payload = encoded.tobytes()
    atomic_write(path, lambda handle: handle.write(payload))


def read_frames(path: Path, fmt: str, size: int) -> np.ndarray:
    """The frames stored at ``path``: a memory map for ``npy``, a decoded array for ``jpg``."""
    if fmt == "npy":
        try:
            frames = np.load(path, mmap_mode="r", allow_pickle=False)
        except (OSError, ValueError) as err:  # a truncated or overwritten file: report it, as for JPEG
            raise DataError(f"{path} is not readable face frames ({err}); delete it and re-run prepare-faces") from err
        if frames.ndim != 4 or frames.shape[1:] != (size, size, 3) or frames.dtype != np.uint8:
            raise DataError(
                f"{path} holds {frames.dtype} {frames.shape}, not (T, {size}, {size}, 3) uint8 face frames; "
                "delete it and re-run prepare-faces"
            )
        return frames
    strip = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if strip is None or strip.shape[0] % size or strip.shape[1] != size:
        raise DataError(
            f"{path} is not a {size}-pixel-wide film strip of face frames; delete it and re-run prepare-faces"
        )
    return cv2.cvtColor(strip, cv2.COLOR_BGR2RGB).reshape(-1, size, size, 3)


class FaceStore:
    """Read access to a store written by ``avssl prepare-faces``; a face source for the views.

    ``available(utt)`` is one ``stat``; ``frames(utt)`` one open (plus a JPEG decode)."""

    def __init__(self, root: str | os.PathLike) -> None:
        self.root = Path(root)
        meta = self.root / META
        if not meta.is_file():
            raise DataError(
                f"{self.root} is not a face store (no {META}); run `avssl prepare-faces MANIFEST {self.root}`"
            )
        self.settings = _read_meta(meta)
        self.format: str = self.settings["format"]
        self.rate: float = self.settings["rate"]
        self.size: int = self.settings["size"]

    def path(self, key: str) -> Path:
        return frames_path(self.root, key, self.format)

    def available(self, utterance: Utterance) -> bool:
        return self.path(utterance.key).is_file()

    def frames(self, utterance: Utterance) -> np.ndarray:
        return read_frames(self.path(utterance.key), self.format, self.size)

    def times(self, count: int) -> np.ndarray:
        """Times (s) of an utterance's ``count`` stored frames."""
        return frame_times(count, self.rate)
