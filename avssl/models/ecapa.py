"""ECAPA-TDNN speaker encoder (Desplanques et al., Interspeech 2020), WeSpeaker-style head.

Input: log-mel filterbank features (batch, n_mels, frames). Output: (batch, embedding_dim).

Layout: Conv1d(k=5) -> three SE-Res2Net blocks (k=3, dilations 2, 3, 4) -> multi-layer feature
aggregation (concatenated block outputs, 1x1 conv) -> attentive statistics pooling with global context
-> BN -> Linear -> BN. Width is a parameter because the CPU demo trains at 64-256 channels while the
paper recipe uses 512 or 1024.
"""

from __future__ import annotations

import torch
from torch import nn


class ConvReluBn(nn.Sequential):
    """Conv1d -> ReLU -> BatchNorm, the unit every ECAPA frame layer is built from."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 1, dilation: int = 1) -> None:
        super().__init__(
            nn.Conv1d(
                in_channels,
                out_channels,
                kernel_size,
                dilation=dilation,
                padding=dilation * (kernel_size - 1) // 2,
            ),
            nn.ReLU(),
            nn.BatchNorm1d(out_channels),
        )


class Res2Conv(nn.Module):
    """Res2Net dilated conv: channel groups processed hierarchically to widen the receptive field cheaply.

    The first group passes through unchanged; group i is convolved after adding group i-1's output.
    """

    def __init__(self, channels: int, kernel_size: int, dilation: int, scale: int) -> None:
        super().__init__()
        if channels % scale:
            raise ValueError(f"channels ({channels}) must be divisible by res2_scale ({scale})")
        self.width = channels // scale
        self.convs = nn.ModuleList(
            ConvReluBn(self.width, self.width, kernel_size, dilation) for _ in range(scale - 1)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        groups = torch.split(x, self.width, dim=1)
        outputs = [groups[0]]
        previous = None
        for group, conv in zip(groups[1:], self.convs, strict=True):
            previous = conv(group if previous is None else group + previous)
            outputs.append(previous)
        return torch.cat(outputs, dim=1)


class SqueezeExcitation(nn.Module):
    """Channel gates from the utterance-level mean: lets frame features depend on global context."""

    def __init__(self, channels: int, bottleneck: int) -> None:
        super().__init__()
        self.squeeze = nn.Linear(channels, bottleneck)
        self.excite = nn.Linear(bottleneck, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gate = torch.sigmoid(self.excite(torch.relu(self.squeeze(x.mean(dim=2)))))
        return x * gate.unsqueeze(2)


class SeRes2Block(nn.Module):
    """1x1 conv -> Res2 dilated conv -> 1x1 conv -> SE, with a residual connection around it all."""

    def __init__(
        self, channels: int, dilation: int, scale: int, se_channels: int, kernel_size: int = 3
    ) -> None:
        super().__init__()
        self.body = nn.Sequential(
            ConvReluBn(channels, channels),
            Res2Conv(channels, kernel_size, dilation, scale),
            ConvReluBn(channels, channels),
            SqueezeExcitation(channels, se_channels),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class AttentiveStatsPooling(nn.Module):
    """Attention-weighted mean and std over frames, per channel.

    With ``global_context`` the attention sees each frame next to the utterance's unweighted mean and
    std, so it can weight frames relative to the whole recording (the ECAPA paper's context variant).
    """

    def __init__(self, channels: int, attention_channels: int, global_context: bool) -> None:
        super().__init__()
        self.global_context = global_context
        in_channels = 3 * channels if global_context else channels
        self.attention = nn.Sequential(
            nn.Conv1d(in_channels, attention_channels, kernel_size=1),
            nn.Tanh(),
            nn.Conv1d(attention_channels, channels, kernel_size=1),
        )

    @staticmethod
    def _mean_std(x: torch.Tensor, weights: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mean = (weights * x).sum(dim=2)
        variance = (weights * x.square()).sum(dim=2) - mean.square()
        return mean, variance.clamp(min=1e-7).sqrt()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        attention_input = x
        if self.global_context:
            mean = x.mean(dim=2)
            std = x.var(dim=2, correction=0).clamp(min=1e-7).sqrt()
            frames = x.shape[2]
            attention_input = torch.cat(
                [x, mean.unsqueeze(2).expand(-1, -1, frames), std.unsqueeze(2).expand(-1, -1, frames)], dim=1
            )
        weights = torch.softmax(self.attention(attention_input), dim=2)
        return torch.cat(self._mean_std(x, weights), dim=1)


class EcapaTdnn(nn.Module):
    """ECAPA-TDNN: (batch, n_mels, frames) fbank features -> (batch, embedding_dim) speaker embedding.

    ``mfa_channels`` (default ``3 * channels``) is the width of the aggregation layer; WeSpeaker fixes it
    at 1536, which equals 3 * channels at the usual C=512 and keeps a narrow CPU model narrow.
    ``embedding_bn`` adds a non-affine BatchNorm on the embedding (WeSpeaker's ``emb_bn``).
    """

    def __init__(
        self,
        n_mels: int = 80,
        channels: int = 512,
        embedding_dim: int = 192,
        res2_scale: int = 8,
        se_channels: int = 128,
        attention_channels: int = 128,
        global_context: bool = True,
        mfa_channels: int | None = None,
        embedding_bn: bool = True,
    ) -> None:
        super().__init__()
        self.embedding_dim = embedding_dim
        mfa_channels = 3 * channels if mfa_channels is None else mfa_channels
        self.stem = ConvReluBn(n_mels, channels, kernel_size=5)
        self.blocks = nn.ModuleList(
            SeRes2Block(channels, dilation, res2_scale, se_channels) for dilation in (2, 3, 4)
        )
        self.aggregate = nn.Sequential(nn.Conv1d(3 * channels, mfa_channels, kernel_size=1), nn.ReLU())
        self.pool = AttentiveStatsPooling(mfa_channels, attention_channels, global_context)
        self.pool_bn = nn.BatchNorm1d(2 * mfa_channels)
        self.embed = nn.Linear(2 * mfa_channels, embedding_dim)
        self.embed_bn = nn.BatchNorm1d(embedding_dim, affine=False) if embedding_bn else nn.Identity()

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        x = self.stem(features)
        block_outputs = []
        for block in self.blocks:
            x = block(x)
            block_outputs.append(x)
        x = self.aggregate(torch.cat(block_outputs, dim=1))
        x = self.pool_bn(self.pool(x))
        return self.embed_bn(self.embed(x))
