"""Reading audio files and cutting random crops from them.

wav and flac are read with soundfile; AAC in m4a / mp4 containers (VoxCeleb2 ships its audio as
m4a) is decoded with PyAV, which bundles FFmpeg, so no system FFmpeg is needed and nothing has to
be converted on disk first (decoding costs CPU; `avssl prepare` can convert once instead).
"""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import soundfile as sf

from avssl.errors import DataError


def load_audio(path: str | Path, sample_rate: int) -> np.ndarray:
    """Read a mono file as float32 in [-1, 1]; refuse a file at another sample rate.

    Resampling silently would hide a preparation mistake (VoxCeleb is 16 kHz throughout), so a
    mismatch is an error that names the file.
    """
    if Path(path).suffix.lower() in CONTAINER_SUFFIXES:
        return _decode_container(Path(path), sample_rate)
    try:
        wave, rate = sf.read(str(path), dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, OSError) as err:
        raise DataError(f"cannot read audio file {path}: {err}") from err
    if rate != sample_rate:
        raise DataError(f"{path}: sample rate {rate} Hz, expected {sample_rate} Hz (re-run `avssl prepare`)")
    if wave.shape[0] == 0:
        raise DataError(f"{path}: the file holds no samples")
    return wave.mean(axis=1) if wave.shape[1] > 1 else wave[:, 0]


CONTAINER_SUFFIXES = (".m4a", ".mp4", ".aac")


def _decode_container(path: Path, sample_rate: int) -> np.ndarray:
    """Decode the first audio stream of an m4a/mp4 file to mono float32."""
    try:
        with av.open(str(path)) as container:
            stream = next((s for s in container.streams if s.type == "audio"), None)
            if stream is None:
                raise DataError(f"{path}: the file has no audio stream")
            if stream.rate != sample_rate:
                raise DataError(f"{path}: sample rate {stream.rate} Hz, expected {sample_rate} Hz (re-run `avssl prepare`)")
            to_mono = av.AudioResampler(format="flt", layout="mono", rate=stream.rate)
            chunks = [out.to_ndarray().reshape(-1) for frame in container.decode(stream) for out in to_mono.resample(frame)]
            chunks += [out.to_ndarray().reshape(-1) for out in to_mono.resample(None)]
    except av.error.FFmpegError as err:
        raise DataError(f"cannot decode audio file {path}: {err}") from err
    if not chunks or sum(c.size for c in chunks) == 0:
        raise DataError(f"{path}: the file holds no samples")
    return np.concatenate(chunks).astype(np.float32)


def random_crop(wave: np.ndarray, length: int, rng: np.random.Generator) -> np.ndarray:
    """A random window of ``length`` samples; a shorter recording is repeated to fill the window."""
    if wave.shape[0] < length:
        repeats = -(-length // wave.shape[0])
        wave = np.tile(wave, repeats)
    start = int(rng.integers(0, wave.shape[0] - length + 1))
    return wave[start : start + length]
