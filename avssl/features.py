"""Log-Mel filterbank front end, batched so it can run on the training device.

Kaldi-style fbank (``torchaudio.compliance.kaldi.fbank``) works on one utterance at a time, which makes
the data loader the bottleneck of DINO training (six crops per sample). ``MelSpectrogram`` computes the
same quantity (80 mel bands, 25 ms windows, 10 ms hop) for a whole batch of crops in one call, on CPU
or GPU, and is differentiable-free cheap compared with the encoder.
"""

from __future__ import annotations

import torch
import torchaudio
from torch import nn

from avssl.config import FeatureConfig


class Fbank(nn.Module):
    """Waveforms ``(batch, samples)`` -> log-Mel features ``(batch, n_mels, frames)``.

    Mean normalisation over time per crop removes a stationary channel (a microphone's EQ is a
    constant offset in the log-Mel domain), as in WeSpeaker's recipes.
    """

    def __init__(self, config: FeatureConfig, sample_rate: int = 16000) -> None:
        super().__init__()
        self.mean_norm = config.mean_norm
        self.hop_length = round(sample_rate * config.hop_ms / 1000)
        self.melspec = torchaudio.transforms.MelSpectrogram(
            sample_rate=sample_rate,
            n_fft=config.n_fft,
            win_length=round(sample_rate * config.win_ms / 1000),
            hop_length=self.hop_length,
            f_min=20.0,
            f_max=sample_rate / 2,
            n_mels=config.n_mels,
            window_fn=torch.hamming_window,
            power=2.0,
            center=False,
        )

    @torch.no_grad()
    def forward(self, waveforms: torch.Tensor) -> torch.Tensor:
        if waveforms.dim() != 2:
            raise ValueError(f"Fbank expects (batch, samples), got shape {tuple(waveforms.shape)}")
        with torch.autocast(device_type=waveforms.device.type, enabled=False):
            feats = self.melspec(waveforms.float()).clamp_min(1e-10).log()
        if self.mean_norm:
            feats = feats - feats.mean(dim=-1, keepdim=True)
        return feats
