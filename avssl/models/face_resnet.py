"""A ResNet-18-class face encoder for 112 x 112 crops, built from torchvision's ResNet blocks.

ImageNet's ResNet stem (7 x 7 stride-2 convolution, then max-pooling) shrinks 224-pixel images by 4
before the first block; on a 112-pixel face it would leave the first stage only 28 x 28 pixels. Like
the face-recognition ResNets (ArcFace's IR-ResNets), the stem here is a 3 x 3 stride-1 convolution and
every one of the four stages halves the resolution: 112 -> 56 -> 28 -> 14 -> 7, with 64, 128, 256
and 512 channels and two torchvision ``BasicBlock`` per stage (ResNet-18's depth). ``width`` scales the
channels (``width``, 2x, 4x, 8x): a narrower network trains the demo on a CPU in minutes.

The head pools globally (so 64-pixel local crops work too, see :mod:`avssl.faces.views`), projects to
the embedding and batch-normalises it, as face-recognition networks do before the margin loss; a DINO
head then sits on the embedding as on the audio encoder's. Input: RGB in [0, 1] as float, or uint8
(divided by 255 here, so data loaders can ship uint8), normalised to [-1, 1] inside the model.

This module does not register in :func:`avssl.models.build_encoder`: that factory builds the *audio*
encoder of a training config (its ``n_mels`` input), so the face encoder has its own
:func:`build_face_encoder`.
"""

from __future__ import annotations

import torch
from torch import nn
from torchvision.models.resnet import BasicBlock, conv1x1

from avssl.errors import ConfigError

_DEPTHS = {"face_resnet18": (2, 2, 2, 2)}  # blocks per stage
FACE_ENCODERS = tuple(_DEPTHS)
DEFAULT_WIDTH = 64  # ResNet-18's first-stage channels


class FaceResNet(nn.Module):
    """``(batch, 3, H, W)`` face crops (112 x 112 nominal, any size >= 16) -> ``(batch, embedding_dim)``."""

    def __init__(
        self, depths: tuple[int, ...] = (2, 2, 2, 2), embedding_dim: int = 512, width: int = DEFAULT_WIDTH
    ) -> None:
        super().__init__()
        self.embedding_dim = embedding_dim
        self.stem = nn.Sequential(
            nn.Conv2d(3, width, 3, stride=1, padding=1, bias=False),
            nn.BatchNorm2d(width),
            nn.ReLU(inplace=True),
        )
        stages, channels = [], width
        for stage, depth in enumerate(depths):
            stages.append(_stage(channels, width * 2**stage, depth, stride=2))
            channels = width * 2**stage
        self.stages = nn.Sequential(*stages)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.embed = nn.Linear(channels, embedding_dim, bias=False)  # the BN below supplies the bias
        self.norm = nn.BatchNorm1d(embedding_dim)
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = images.float() / 255.0 if images.dtype == torch.uint8 else images
        x = self.stages(self.stem((x - 0.5) / 0.5))
        return self.norm(self.embed(torch.flatten(self.pool(x), 1)))


def _stage(in_channels: int, out_channels: int, depth: int, stride: int) -> nn.Sequential:
    """``depth`` BasicBlocks; the first changes resolution and width through a 1 x 1 shortcut."""
    shortcut = nn.Sequential(conv1x1(in_channels, out_channels, stride), nn.BatchNorm2d(out_channels))
    blocks = [BasicBlock(in_channels, out_channels, stride, downsample=shortcut)]
    blocks += [BasicBlock(out_channels, out_channels) for _ in range(depth - 1)]
    return nn.Sequential(*blocks)


def build_face_encoder(
    name: str = "face_resnet18", embedding_dim: int = 512, width: int = DEFAULT_WIDTH
) -> FaceResNet:
    """The face encoder called ``name`` (one of :data:`FACE_ENCODERS`), ``width`` first-stage channels."""
    if name not in _DEPTHS:
        raise ConfigError(f"unknown face encoder {name!r}; choose one of {', '.join(FACE_ENCODERS)}")
    if embedding_dim <= 0:
        raise ConfigError(f"face encoder embedding_dim {embedding_dim} must be positive")
    if width < 1:
        raise ConfigError(f"face encoder width {width} must be positive")
    return FaceResNet(_DEPTHS[name], embedding_dim, width)
