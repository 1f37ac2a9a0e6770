"""The DINO projection head: MLP -> L2-normalised bottleneck -> weight-normalised prototypes.

The L2 normalisation before a weight-normalised last layer bounds the logits, which (with the
teacher's centring and sharpening) is what keeps DINO from collapsing. Fixing the last layer's norm
(``norm_last_layer``) further stabilises training, as in FAIR DINO.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.parametrizations import weight_norm

from avssl.config import DinoConfig


class DinoHead(nn.Module):
    """``(batch, in_dim)`` -> ``(batch, out_dim)`` logits over the prototypes."""

    def __init__(self, in_dim: int, config: DinoConfig) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        dim = in_dim
        for _ in range(config.head_layers - 1):
            layers.append(nn.Linear(dim, config.hidden_dim))
            if config.head_bn:
                layers.append(nn.BatchNorm1d(config.hidden_dim))
            layers.append(nn.GELU())
            dim = config.hidden_dim
        layers.append(nn.Linear(dim, config.bottleneck_dim))
        self.mlp = nn.Sequential(*layers)
        self.mlp.apply(_init_linear)
        self.last_layer = weight_norm(nn.Linear(config.bottleneck_dim, config.out_dim, bias=False))
        magnitude = self.last_layer.parametrizations.weight.original0
        magnitude.data.fill_(1.0)
        if config.norm_last_layer:
            magnitude.requires_grad = False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = nn.functional.normalize(self.mlp(x), dim=-1, p=2)
        return self.last_layer(x)

    def last_layer_parameters(self) -> list[nn.Parameter]:
        """The parameters frozen during the first epoch(s)."""
        return [p for p in self.last_layer.parameters() if p.requires_grad]


def _init_linear(module: nn.Module) -> None:
    if isinstance(module, nn.Linear):
        nn.init.trunc_normal_(module.weight, std=0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)


class EncoderWithHead(nn.Module):
    """Encoder + DINO head applied to groups of equally long crops.

    Crops of one length (all globals, then all locals) go through the encoder in one batch each,
    so batch norm sees whole groups and no padding is ever needed.
    """

    def __init__(self, encoder: nn.Module, head: DinoHead) -> None:
        super().__init__()
        self.encoder = encoder
        self.head = head

    def forward(self, crop_groups: list[torch.Tensor]) -> torch.Tensor:
        embeddings = torch.cat([self.encoder(group) for group in crop_groups])
        return self.head(embeddings)
