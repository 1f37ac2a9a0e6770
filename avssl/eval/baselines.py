"""No-learning baseline embedding: MFCC mean and standard deviation over time.

It sets the floor any trained model must beat: it captures the long-term spectral envelope (channel,
vocal tract length, recording conditions) and nothing a network would have to learn.
"""

from __future__ import annotations

from functools import lru_cache

import torch
import torchaudio

from avssl.errors import DataError

N_MFCC = 30
N_MELS = 80
WINDOW_S = 0.025
HOP_S = 0.010


@lru_cache(maxsize=8)
def _mfcc_transform(sample_rate: int) -> torchaudio.transforms.MFCC:
    """One MFCC front-end per sample rate: building the filterbank and DCT matrices is not free."""
    win_length = round(WINDOW_S * sample_rate)
    n_fft = 1 << (win_length - 1).bit_length()
    return torchaudio.transforms.MFCC(
        sample_rate=sample_rate,
        n_mfcc=N_MFCC,
        melkwargs={
            "n_fft": n_fft,
            "win_length": win_length,
            "hop_length": round(HOP_S * sample_rate),
            "n_mels": N_MELS,
        },
    )


def mfcc_stats_embedding(waveform: torch.Tensor, sample_rate: int) -> torch.Tensor:
    """Concatenated per-coefficient mean and std of MFCCs c1..c29 (25 ms windows, 10 ms hop, 80 mels).

    c0 (frame energy) is left out, as is usual for speaker features: it follows the recording's
    gain and noise level, not the voice. ``waveform`` is (samples,) or a batch of equal-length clips
    (batch, samples); the result is (2 * 29,) or (batch, 2 * 29).
    """
    if waveform.ndim not in (1, 2) or waveform.shape[-1] == 0:
        raise DataError(
            f"expected a (samples,) or (batch, samples) waveform, got shape {tuple(waveform.shape)}"
        )
    transform = _mfcc_transform(int(sample_rate)).to(waveform.device)
    # One channel per clip: torchaudio's dB floor (top_db) is taken over the channel dimension, so a
    # (batch, samples) input would let one clip's loudness change another's features.
    with torch.no_grad():
        mfcc = transform(waveform.float().unsqueeze(-2)).squeeze(-3)[..., 1:, :]
    mean = mfcc.mean(dim=-1)
    std = mfcc.std(dim=-1, correction=0)
    return torch.cat([mean, std], dim=-1)
