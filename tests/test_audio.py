"""Audio loading: wav via soundfile, AAC in m4a via PyAV, and clear errors for bad files."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest
import soundfile as sf

from avssl.data.audio import load_audio, random_crop
from avssl.errors import DataError


def write_m4a(path: Path, wave: np.ndarray, rate: int) -> None:
    with av.open(str(path), "w", format="mp4") as container:
        stream = container.add_stream("aac", rate=rate, layout="mono")
        frame = av.AudioFrame.from_ndarray(wave.reshape(1, -1).astype(np.float32), format="fltp", layout="mono")
        frame.sample_rate = rate
        for packet in stream.encode(frame):
            container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)


def test_m4a_decodes_to_the_signal(tmp_path: Path) -> None:
    rate = 16000
    tone = (0.5 * np.sin(2 * np.pi * 440 * np.arange(rate) / rate)).astype(np.float32)
    write_m4a(tmp_path / "a.m4a", tone, rate)
    decoded = load_audio(tmp_path / "a.m4a", rate)
    assert abs(decoded.shape[0] - rate) < 0.1 * rate  # AAC adds priming samples
    spectrum = np.abs(np.fft.rfft(decoded[: rate // 2]))
    assert abs(np.argmax(spectrum) * 2 - 440) <= 4  # the tone survives the codec
    with pytest.raises(DataError, match="8000 Hz"):
        load_audio(tmp_path / "a.m4a", 8000)


def test_bad_files_name_the_file(tmp_path: Path) -> None:
    broken = tmp_path / "broken.m4a"
    broken.write_bytes(b"\x00not an mp4" * 50)
    with pytest.raises(DataError, match="broken.m4a"):
        load_audio(broken, 16000)
    wav = tmp_path / "x.wav"
    sf.write(wav, np.zeros(800, dtype=np.float32), 8000)
    with pytest.raises(DataError, match="8000 Hz"):
        load_audio(wav, 16000)
    garbage = tmp_path / "g.wav"
    garbage.write_bytes(b"RIFF....junk")
    with pytest.raises(DataError, match="g.wav"):
        load_audio(garbage, 16000)


def test_random_crop_repeats_short_recordings() -> None:
    rng = np.random.default_rng(0)
    crop = random_crop(np.arange(5, dtype=np.float32), 12, rng)
    assert crop.shape == (12,)
    assert set(crop.tolist()) <= set(range(5))
