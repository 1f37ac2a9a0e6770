"""The MFCC mean/std baseline: shape, determinism, and that it tells different spectra apart."""

from __future__ import annotations

import math

import pytest
import torch

from avssl.errors import DataError
from avssl.eval.baselines import mfcc_stats_embedding

SAMPLE_RATE = 16000


def _coloured_noise(seed: int, low_hz: float, high_hz: float, seconds: float = 1.0) -> torch.Tensor:
    """White noise band-limited to [low_hz, high_hz] in the frequency domain."""
    generator = torch.Generator().manual_seed(seed)
    n = int(seconds * SAMPLE_RATE)
    spectrum = torch.fft.rfft(torch.randn(n, generator=generator))
    freqs = torch.fft.rfftfreq(n, d=1.0 / SAMPLE_RATE)
    spectrum[(freqs < low_hz) | (freqs > high_hz)] = 0
    signal = torch.fft.irfft(spectrum, n=n)
    return 0.1 * signal / signal.std()


def _tone(seed: int, hz: float) -> torch.Tensor:
    t = torch.arange(SAMPLE_RATE) / SAMPLE_RATE
    noise = 0.01 * torch.randn(SAMPLE_RATE, generator=torch.Generator().manual_seed(seed))
    return 0.3 * torch.sin(2 * math.pi * hz * t) + noise


def test_shape_and_batching() -> None:
    single = mfcc_stats_embedding(_tone(0, 200.0), SAMPLE_RATE)
    assert single.shape == (58,)
    batch = torch.stack([_tone(0, 200.0), _tone(1, 900.0)])
    batched = mfcc_stats_embedding(batch, SAMPLE_RATE)
    assert batched.shape == (2, 58)
    torch.testing.assert_close(batched[0], single)
    assert mfcc_stats_embedding(_tone(0, 200.0)[:8000], 8000).shape == (58,)


def test_deterministic() -> None:
    wave = _coloured_noise(0, 100.0, 2000.0)
    torch.testing.assert_close(
        mfcc_stats_embedding(wave, SAMPLE_RATE), mfcc_stats_embedding(wave, SAMPLE_RATE)
    )


def test_empty_waveform_is_a_data_error() -> None:
    with pytest.raises(DataError, match="waveform"):
        mfcc_stats_embedding(torch.zeros(0), SAMPLE_RATE)


def test_separates_different_spectra() -> None:
    classes = {
        "low": lambda seed: _coloured_noise(seed, 100.0, 1500.0),
        "high": lambda seed: _coloured_noise(seed, 3000.0, 7000.0),
        "tone": lambda seed: _tone(seed, 440.0),
    }
    embeddings = {
        name: [mfcc_stats_embedding(make(seed), SAMPLE_RATE) for seed in range(3)]
        for name, make in classes.items()
    }
    # Score as the evaluation does: cosine after removing the mean embedding.
    mean = torch.stack([e for group in embeddings.values() for e in group]).mean(dim=0)

    def cosine(a: torch.Tensor, b: torch.Tensor) -> float:
        return float(torch.nn.functional.cosine_similarity(a - mean, b - mean, dim=0))

    names = list(classes)
    same = [
        cosine(group[i], group[j]) for group in embeddings.values() for i in range(3) for j in range(i + 1, 3)
    ]
    different = [
        cosine(embeddings[a][i], embeddings[b][j])
        for ai, a in enumerate(names)
        for b in names[ai + 1 :]
        for i in range(3)
        for j in range(3)
    ]
    assert min(same) > max(different)
