"""Decoding one source recording fully, and saying precisely why it cannot be used.

Conversion and chunking must tell a truncated download from a corrupt one, a video without sound, an
empty file and a silent one, because each has a different remedy (re-extract, re-download, ignore). A
problem is raised as :class:`Unusable` with one of the reasons below and a detail naming the evidence.
m4a/mp4 go through PyAV (it bundles FFmpeg, so no ``ffmpeg`` binary is needed), wav/flac through
soundfile, which is faster for them.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from math import gcd
from pathlib import Path

import av
import numpy as np
import soundfile
from scipy.signal import resample_poly

from avssl.errors import DataError

SOUNDFILE_SUFFIXES = (".wav", ".flac")
CONTAINER_SUFFIXES = (".m4a", ".mp4", ".aac")
AUDIO_SUFFIXES = SOUNDFILE_SUFFIXES + CONTAINER_SUFFIXES

# Reasons a recording cannot be used (keys of the reports' "skipped" tables).
ZERO_LENGTH = "zero_length"
CORRUPT = "corrupt"
TRUNCATED = "truncated"
NO_AUDIO_STREAM = "no_audio_stream"
SILENT = "silent"

# A recording whose decoded length falls this far short of what its header declares was cut off.
TRUNCATION_RATIO = 0.9
# Peak below this (about 3 LSB of 16-bit PCM) is digital silence: nothing a speaker model can learn from.
SILENCE_PEAK = 1e-4


class Unusable(Exception):
    """A recording that cannot be used; ``reason`` is one of the constants above."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class Pcm:
    """Decoded audio: ``wave`` is float32 (channels, samples) at ``sample_rate``."""

    wave: np.ndarray
    sample_rate: int


def check_decoders() -> None:
    """Fail before any work when the AAC decoder or the flac writer is missing, instead of per file.

    Users of other toolkits lose days to conversions that "succeed" without output because ffmpeg was
    absent; a missing codec must stop the command at once, saying what to install.
    """
    try:
        av.codec.Codec("aac", "r")
    except Exception as error:
        raise DataError(
            f"PyAV {av.__version__} cannot decode AAC ({error}); reinstall it with `pip install --force-reinstall av`"
        ) from None
    missing = {"WAV", "FLAC"} - set(soundfile.available_formats())
    if missing:
        raise DataError(f"libsndfile lacks {sorted(missing)}; reinstall soundfile with `pip install soundfile`")


def read_pcm(path: str | os.PathLike) -> Pcm:
    """Decode all of ``path``; raise :class:`Unusable` for every way a file can fail."""
    path = Path(path)
    try:
        size = path.stat().st_size
    except OSError as error:
        raise Unusable(CORRUPT, f"cannot stat the file ({error})") from None
    if size == 0:
        raise Unusable(ZERO_LENGTH, "the file has 0 bytes; re-extract or re-download it")
    if path.suffix.lower() in SOUNDFILE_SUFFIXES:
        pcm = _read_soundfile(path)
    else:
        pcm = _read_container(path)
    if pcm.wave.shape[1] == 0:
        raise Unusable(ZERO_LENGTH, "the file holds no audio samples")
    peak = float(np.abs(pcm.wave).max())
    if peak < SILENCE_PEAK:
        raise Unusable(SILENT, f"digital silence (peak {peak:.1e} of full scale)")
    return pcm


def _read_soundfile(path: Path) -> Pcm:
    try:
        wave, rate = soundfile.read(path, dtype="float32", always_2d=True)
    except Exception as error:  # libsndfile raises several types for bad headers
        raise Unusable(CORRUPT, f"{type(error).__name__}: {error}") from None
    return Pcm(np.ascontiguousarray(wave.T), int(rate))


def _read_container(path: Path) -> Pcm:
    """Decode the first audio stream to planar float; a decode error after some audio means truncation."""
    try:
        container = av.open(str(path))
    except Exception as error:  # FFmpeg reports a bad container in many ways
        message = str(error).replace(f": '{path}'", "")  # the report names the file already
        raise Unusable(CORRUPT, f"cannot open the container ({type(error).__name__}: {message})") from None
    with container:
        if not container.streams.audio:
            raise Unusable(NO_AUDIO_STREAM, "the container has no audio stream")
        stream = container.streams.audio[0]
        stream.codec_context.thread_count = 1  # one process per core already
        rate = int(stream.codec_context.sample_rate or 0)
        declared = _declared_samples(container, stream, rate)
        planar = av.AudioResampler(format="fltp")
        chunks: list[np.ndarray] = []
        try:
            for frame in container.decode(stream):
                chunks += [out.to_ndarray() for out in planar.resample(frame)]
            chunks += [out.to_ndarray() for out in planar.resample(None)]
        except Exception as error:
            decoded = sum(chunk.shape[1] for chunk in chunks)
            if decoded == 0:
                raise Unusable(CORRUPT, f"no audio decodes ({type(error).__name__}: {error})") from None
            raise Unusable(TRUNCATED, f"decoding stopped after {decoded / rate:.2f} s: {error}") from None
    if not chunks or rate <= 0:
        raise Unusable(ZERO_LENGTH, "no audio frame could be decoded")
    wave = np.concatenate(chunks, axis=1).astype(np.float32, copy=False)
    if declared and wave.shape[1] < TRUNCATION_RATIO * declared:
        raise Unusable(
            TRUNCATED, f"decoded {wave.shape[1] / rate:.2f} s of the {declared / rate:.2f} s the header declares"
        )
    return Pcm(wave, rate)


def _declared_samples(container: av.container.InputContainer, stream: av.audio.stream.AudioStream, rate: int) -> int:
    """Samples the header promises (0 when it does not say), to detect files cut off mid-stream."""
    if stream.duration and stream.time_base:
        return int(stream.duration * stream.time_base * rate)
    if container.duration:
        return int(container.duration / av.time_base * rate)
    return 0


def to_mono(wave: np.ndarray, first_channel: bool = False) -> np.ndarray:
    """Average the channels (speech, noise), or keep the first (room impulse responses, whose channels
    are different microphone positions: averaging them would blur the response)."""
    if wave.shape[0] == 1 or first_channel:
        return wave[0]
    return wave.mean(axis=0)


def resample(wave: np.ndarray, rate: int, target: int) -> np.ndarray:
    """Polyphase resampling of a mono signal (exact rational ratio, anti-aliased)."""
    if rate == target:
        return wave
    common = gcd(rate, target)
    return resample_poly(wave, target // common, rate // common).astype(np.float32)


def to_pcm16(wave: np.ndarray) -> np.ndarray:
    """float in [-1, 1] -> int16, clipped (AAC decoding can overshoot full scale slightly)."""
    return (np.clip(wave, -1.0, 32767 / 32768) * 32768).astype(np.int16)
