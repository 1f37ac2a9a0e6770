"""Reading audio files and cutting random crops from them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf

from avssl.errors import DataError


def load_audio(path: str | Path, sample_rate: int) -> np.ndarray:
    """Read a mono file as float32 in [-1, 1]; refuse a file at another sample rate.

    Resampling silently would hide a preparation mistake (VoxCeleb is 16 kHz throughout), so a
    mismatch is an error that names the file.
    """
    try:
        wave, rate = sf.read(str(path), dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, OSError) as err:
        raise DataError(f"cannot read audio file {path}: {err}") from err
    if rate != sample_rate:
        raise DataError(f"{path}: sample rate {rate} Hz, expected {sample_rate} Hz (re-run `avssl prepare`)")
    if wave.shape[0] == 0:
        raise DataError(f"{path}: the file holds no samples")
    return wave.mean(axis=1) if wave.shape[1] > 1 else wave[:, 0]


def random_crop(wave: np.ndarray, length: int, rng: np.random.Generator) -> np.ndarray:
    """A random window of ``length`` samples; a shorter recording is repeated to fill the window."""
    if wave.shape[0] < length:
        repeats = -(-length // wave.shape[0])
        wave = np.tile(wave, repeats)
    start = int(rng.integers(0, wave.shape[0] - length + 1))
    return wave[start : start + length]
