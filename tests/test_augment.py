"""Batched augmentation: SNR is what was asked for, reverberation keeps level and alignment."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from avssl.config import AugmentConfig
from avssl.data.augment import AugmentSources, WaveAugment, load_augment_sources, reverberate_head
from avssl.errors import DataError


def noise_only(snr: tuple[float, float]) -> WaveAugment:
    sources = AugmentSources(noises={"noise": torch.randn(50_000)})
    config = AugmentConfig(prob=1.0, reverb_weight=0.0, snr_db={"noise": list(snr)})
    return WaveAugment(sources, config)


def test_additive_noise_hits_the_requested_snr() -> None:
    augment = noise_only((10.0, 10.0))
    clean = torch.sin(torch.linspace(0, 800 * math.pi, 16_000)).repeat(8, 1)
    noisy = augment(clean, torch.Generator().manual_seed(0))
    noise = noisy - clean
    snr = 10 * torch.log10(clean.pow(2).mean(1) / noise.pow(2).mean(1))
    torch.testing.assert_close(snr, torch.full((8,), 10.0), atol=1e-3, rtol=0)


def test_draws_are_reproducible_and_per_crop() -> None:
    augment = noise_only((0.0, 15.0))
    clean = torch.randn(6, 4000)
    a = augment(clean, torch.Generator().manual_seed(1))
    b = augment(clean, torch.Generator().manual_seed(1))
    c = augment(clean, torch.Generator().manual_seed(2))
    torch.testing.assert_close(a, b)
    assert not torch.equal(a, c)
    assert not torch.allclose(a[0] - clean[0], a[1] - clean[1])  # each crop its own noise


def test_reverb_keeps_level_and_a_unit_impulse_is_identity() -> None:
    identity = torch.zeros(1, 800)
    identity[0, 0] = 1.0
    augment = WaveAugment(AugmentSources(rirs=identity), AugmentConfig(noise_weight=0.0))
    clean = torch.randn(4, 3000)
    torch.testing.assert_close(augment(clean, torch.Generator().manual_seed(0)), clean, atol=1e-4, rtol=1e-4)

    decay = torch.randn(2000) * torch.exp(-torch.arange(2000) / 300.0)
    augment = WaveAugment(AugmentSources(rirs=decay.unsqueeze(0)), AugmentConfig(noise_weight=0.0))
    wet = augment(clean, torch.Generator().manual_seed(0))
    torch.testing.assert_close(wet.pow(2).mean(1), clean.pow(2).mean(1), rtol=1e-3, atol=1e-5)
    assert not torch.allclose(wet, clean)


def test_reverberation_is_the_head_of_the_linear_convolution_at_any_length() -> None:
    generator = torch.Generator().manual_seed(0)
    # 1000 + 701 - 1 = 1700 is smooth, 997 + 701 - 1 = 1697 is prime: both must give the direct result.
    for length in (1000, 997):
        waves = torch.randn(3, length, generator=generator, dtype=torch.float64)
        rirs = torch.randn(3, 701, generator=generator, dtype=torch.float64)
        direct = np.stack([np.convolve(w, r)[:length] for w, r in zip(waves.numpy(), rirs.numpy(), strict=True)])
        np.testing.assert_allclose(reverberate_head(waves, rirs).numpy(), direct, atol=1e-9)


def test_probability_zero_leaves_crops_untouched() -> None:
    augment = noise_only((0.0, 0.0))
    augment.config.prob = 0.0
    clean = torch.randn(3, 1000)
    assert torch.equal(augment(clean, torch.Generator().manual_seed(0)), clean)


def test_lists_from_prepare_load_and_bad_lists_fail(tmp_path: Path) -> None:
    clip = tmp_path / "n.wav"
    sf.write(clip, np.random.default_rng(0).normal(size=8000).astype(np.float32) * 0.1, 16000)
    noise_list = tmp_path / "noise.tsv"
    noise_list.write_text(f"path\tduration\tsample_rate\tcategory\n{clip}\t0.5\t16000\tmusic\n")
    sources = load_augment_sources(str(noise_list), None, 16000)
    assert list(sources.noises) == ["music"] and sources.noises["music"].shape == (8000,)
    with pytest.raises(DataError, match="not found"):
        load_augment_sources(str(tmp_path / "missing.tsv"), None, 16000)
    with pytest.raises(DataError, match="SNR range"):
        WaveAugment(sources, AugmentConfig(snr_db={"noise": [0.0, 1.0]}))


def test_random_eq_keeps_power_stays_within_its_range_and_is_reproducible() -> None:
    augment = WaveAugment(AugmentSources(), AugmentConfig(prob=0.0, eq_prob=1.0, eq_db=6.0, eq_bands=4))
    assert augment.active
    waves = torch.randn(16, 16_000, generator=torch.Generator().manual_seed(1))
    shaped = augment(waves, torch.Generator().manual_seed(0))
    torch.testing.assert_close(shaped.pow(2).mean(1), waves.pow(2).mean(1), rtol=1e-4, atol=0)
    # The gain curve is the ratio of the spectra: a sum of 4 cosines of amplitude <= 6 / sqrt(4) dB each.
    gain_db = 20 * torch.log10(torch.fft.rfft(shaped).abs() / torch.fft.rfft(waves).abs().clamp_min(1e-9))
    speech_band = gain_db[:, 100:7000]  # 100 Hz .. 7 kHz at 1-Hz bins
    assert float((speech_band.amax(1) - speech_band.amin(1)).max()) <= 2 * 4 * 6.0 / 2 + 1e-3
    assert float((speech_band.amax(1) - speech_band.amin(1)).min()) > 0.5  # every crop really is coloured
    again = augment(waves, torch.Generator().manual_seed(0))
    torch.testing.assert_close(again, shaped)
    assert not torch.allclose(augment(waves, torch.Generator().manual_seed(1)), shaped)


def test_random_eq_applies_with_its_own_probability() -> None:
    augment = WaveAugment(AugmentSources(), AugmentConfig(prob=0.0, eq_prob=0.5))
    waves = torch.randn(200, 800, generator=torch.Generator().manual_seed(2))
    changed = ~torch.isclose(augment(waves, torch.Generator().manual_seed(3)), waves).all(dim=1)
    assert 60 < int(changed.sum()) < 140
    off = WaveAugment(AugmentSources(), AugmentConfig(prob=0.0, eq_prob=0.0))
    assert not off.active and off(waves, torch.Generator()) is waves
