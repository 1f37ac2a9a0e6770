"""Additive angular margin softmax (AAM-softmax / ArcFace), the Stage II classifier over pseudo-labels.

Embeddings and class weights are L2-normalised, so a logit is ``scale * cos(theta)``. For the target
class the angle is widened to ``theta + margin`` during training, which forces tighter speaker clusters
than plain softmax. Once ``theta + margin`` passes pi, ``cos(theta + margin)`` would rise again and
reward a worse angle; past that point (``cos(theta) < cos(pi - margin)``) the target logit falls back to
the linear penalty ``cos(theta) - margin * sin(margin)`` (the usual ``th`` / ``mm`` trick, easy margin
off), which keeps the target logit decreasing in theta.

``forward`` returns the per-sample cross-entropy without reduction, because the dynamic loss gate needs
each sample's loss; ``logits`` gives the margin-free logits used for predictions and label correction.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from avssl.errors import ConfigError, DataError


class AamSoftmax(nn.Module):
    """``(batch, embedding_dim)`` embeddings and ``(batch,)`` labels -> ``(batch,)`` cross-entropy."""

    def __init__(self, embedding_dim: int, n_classes: int, margin: float = 0.2, scale: float = 30.0) -> None:
        super().__init__()
        if embedding_dim < 1 or n_classes < 1:
            raise ConfigError(
                f"AamSoftmax needs embedding_dim >= 1 and n_classes >= 1, got {embedding_dim} and {n_classes}"
            )
        if not 0.0 <= margin < math.pi / 2:
            raise ConfigError(f"AAM margin must be in [0, pi/2) radians, got {margin}; the method uses 0.2")
        if not scale > 0.0:
            raise ConfigError(f"AAM scale must be positive, got {scale}; the method uses 30")
        self.embedding_dim = embedding_dim
        self.n_classes = n_classes
        self.margin = margin
        self.scale = scale
        self.weight = nn.Parameter(torch.empty(n_classes, embedding_dim))
        nn.init.xavier_normal_(self.weight)
        self._cos_m = math.cos(margin)
        self._sin_m = math.sin(margin)
        self._th = math.cos(math.pi - margin)
        self._mm = math.sin(math.pi - margin) * margin

    def cosine(self, embeddings: torch.Tensor) -> torch.Tensor:
        """``(batch, n_classes)`` cosine between each embedding and each class weight, in [-1, 1]."""
        if embeddings.dim() != 2 or embeddings.shape[1] != self.embedding_dim:
            raise DataError(
                f"AamSoftmax expects embeddings of shape (batch, {self.embedding_dim}), "
                f"got {tuple(embeddings.shape)}; check the encoder's embedding_dim"
            )
        cosine = F.linear(F.normalize(embeddings, dim=1), F.normalize(self.weight, dim=1))
        return cosine.clamp(-1.0, 1.0)

    def logits(self, embeddings: torch.Tensor) -> torch.Tensor:
        """``scale * cos(theta)`` without margin: what the model predicts, used for label correction."""
        return self.scale * self.cosine(embeddings)

    def forward(self, embeddings: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Per-sample cross-entropy with the angular margin on the target class (no reduction)."""
        return self.loss_from_cosine(self.cosine(embeddings), labels)

    def loss_from_cosine(self, cosine: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """The per-sample loss of :meth:`forward` from precomputed :meth:`cosine` values.

        Label correction needs the loss of one forward pass under two labellings (the pseudo-label for
        the gate, the corrected label for training); computing both from one cosine matrix avoids a
        second pass through the encoder.
        """
        if labels.shape != (cosine.shape[0],):
            raise DataError(
                f"AamSoftmax expects one label per embedding, got labels of shape {tuple(labels.shape)} "
                f"for {cosine.shape[0]} embeddings"
            )
        if labels.numel() and (int(labels.min()) < 0 or int(labels.max()) >= self.n_classes):
            raise DataError(
                f"pseudo-labels must lie in [0, {self.n_classes}), got range "
                f"[{int(labels.min())}, {int(labels.max())}]; "
                "the classifier's n_classes must match the clustering"
            )
        # The floor keeps sqrt's gradient finite at |cos| = 1 (an inf there would turn into NaN).
        sine = torch.sqrt((1.0 - cosine.pow(2)).clamp(min=1e-12))
        with_margin = cosine * self._cos_m - sine * self._sin_m
        with_margin = torch.where(cosine > self._th, with_margin, cosine - self._mm)
        target = F.one_hot(labels, self.n_classes).bool()
        logits = self.scale * torch.where(target, with_margin, cosine)
        return F.cross_entropy(logits, labels, reduction="none")
