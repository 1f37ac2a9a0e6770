"""Encoders and heads. :func:`build_encoder` maps an :class:`EncoderConfig` to a module."""

from __future__ import annotations

from torch import nn

from avssl.config import EncoderConfig
from avssl.errors import ConfigError


def build_encoder(config: EncoderConfig, n_mels: int) -> nn.Module:
    """An audio encoder ``(batch, n_mels, frames) -> (batch, embedding_dim)``."""
    if config.name == "ecapa":
        from avssl.models.ecapa import EcapaTdnn

        return EcapaTdnn(n_mels=n_mels, channels=config.channels, embedding_dim=config.embedding_dim)
    if config.name == "resnet34":
        from avssl.models.resnet import ResNetSpeakerEncoder

        return ResNetSpeakerEncoder(
            n_mels=n_mels, channels=config.channels, embedding_dim=config.embedding_dim
        )
    raise ConfigError(f"config key 'encoder.name': unknown encoder '{config.name}'")
