"""ResNet34 speaker encoder (the WeSpeaker / VoxCeleb-recipe variant), the method's alternative to ECAPA.

Input: log-mel filterbank features (batch, n_mels, frames). Output: (batch, embedding_dim).

Layout: the fbank is treated as a one-channel image (n_mels x frames). Conv2d 3x3 (stride 1) -> four
stages of BasicBlocks ([3, 4, 6, 3] for ResNet34) with widths ``channels * (1, 2, 4, 8)`` and strides
1, 2, 2, 2 -> the (width x frequency) map is flattened into one feature vector per frame -> temporal
statistics pooling (mean and std over frames) -> Linear to the embedding. WeSpeaker's optional second
embedding layer (BN -> ReLU -> Linear) is off in its ResNet34 recipes and is not built here. Compared with
the full-width ImageNet ResNet34, the speaker variant starts at 32 channels and never pools in the stem,
because an 80-bin frequency axis has little resolution to spare.
"""

from __future__ import annotations

import torch
from torch import nn

STAGE_STRIDES = (1, 2, 2, 2)
STAGE_WIDTH_MULTIPLIERS = (1, 2, 4, 8)


class BasicBlock(nn.Module):
    """Two 3x3 conv-BN layers with an identity (or 1x1 conv-BN projection) shortcut, ReLU after the sum.

    The projection is used only where the block changes resolution or width, as in He et al. (2016).
    Convolutions carry no bias because the BatchNorm after each one has its own shift.
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(),
            nn.Conv2d(out_channels, out_channels, 3, stride=1, padding=1, bias=False),
            nn.BatchNorm2d(out_channels),
        )
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or in_channels != out_channels:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False),
                nn.BatchNorm2d(out_channels),
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.body(x) + self.shortcut(x))


def temporal_stats_pooling(x: torch.Tensor) -> torch.Tensor:
    """(batch, features, frames) -> (batch, 2 * features): mean and std over frames, concatenated.

    The std uses the population variance plus a small epsilon under the root, so that it is defined (and
    differentiable) even when a short crop leaves a single frame after the three stride-2 stages;
    WeSpeaker's unbiased variance would give NaN there.
    """
    mean = x.mean(dim=2)
    std = (x.var(dim=2, correction=0) + 1e-7).sqrt()
    return torch.cat([mean, std], dim=1)


class ResNetSpeakerEncoder(nn.Module):
    """ResNet speaker encoder: (batch, n_mels, frames) fbank features -> (batch, embedding_dim) embedding.

    ``channels`` is the base width (32 for WeSpeaker's ResNet34, which then has about 6.6 M parameters
    at 80 mels and a 256-d embedding); ``layers`` the number of BasicBlocks per stage ([3, 4, 6, 3] is
    ResNet34). Any frame count works: the stride-2 stages shrink the time axis by about 8, and pooling
    removes it.
    """

    def __init__(
        self,
        n_mels: int = 80,
        channels: int = 32,
        embedding_dim: int = 256,
        layers: tuple[int, ...] = (3, 4, 6, 3),
    ) -> None:
        super().__init__()
        if len(layers) != len(STAGE_STRIDES):
            raise ValueError(f"layers must give {len(STAGE_STRIDES)} block counts, got {layers}")
        self.embedding_dim = embedding_dim
        self.stem = nn.Sequential(
            nn.Conv2d(1, channels, 3, stride=1, padding=1, bias=False),
            nn.BatchNorm2d(channels),
            nn.ReLU(),
        )
        stages = []
        in_channels, freq_bins = channels, n_mels
        for n_blocks, stride, multiplier in zip(layers, STAGE_STRIDES, STAGE_WIDTH_MULTIPLIERS, strict=True):
            out_channels = channels * multiplier
            blocks = [BasicBlock(in_channels, out_channels, stride)]
            blocks += [BasicBlock(out_channels, out_channels, 1) for _ in range(n_blocks - 1)]
            stages.append(nn.Sequential(*blocks))
            in_channels = out_channels
            freq_bins = (freq_bins - 1) // stride + 1  # a 3x3 conv with padding 1 gives ceil(bins / stride)
        self.stages = nn.Sequential(*stages)
        self.embed = nn.Linear(2 * in_channels * freq_bins, embedding_dim)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        x = self.stages(self.stem(features.unsqueeze(1)))  # (batch, width, freq, frames)
        x = x.flatten(start_dim=1, end_dim=2)  # (batch, width * freq, frames)
        return self.embed(temporal_stats_pooling(x))
