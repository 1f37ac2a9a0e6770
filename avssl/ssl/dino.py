"""DINO self-distillation (Caron et al. 2021), modality-agnostic.

Pieces, each small enough to check by hand:

* :func:`cosine_schedule` — per-step values of learning rate, weight decay and teacher momentum;
* :class:`DinoLoss` — cross-entropy between the centred, sharpened teacher distribution of each
  global crop and the student distribution of every other crop, plus the EMA of the centre
  (all-reduced across processes so every rank centres identically);
* :func:`ema_update` — the teacher as an exponential moving average of the student;
* :func:`entropy` — the collapse monitor: teacher entropy near ln(K) means uniform collapse,
  near 0 means one-hot collapse.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.distributed as dist
from torch import nn


def cosine_schedule(
    base: float,
    final: float,
    epochs: int,
    steps_per_epoch: int,
    warmup_epochs: float = 0.0,
    warmup_start: float = 0.0,
) -> np.ndarray:
    """Per-step values: linear warm-up from ``warmup_start`` to ``base``, then cosine to ``final``."""
    total = epochs * steps_per_epoch
    warmup = min(int(round(warmup_epochs * steps_per_epoch)), total)
    ramp = np.linspace(warmup_start, base, warmup, endpoint=False) if warmup else np.empty(0)
    steps = np.arange(total - warmup)
    decay = final + 0.5 * (base - final) * (1 + np.cos(np.pi * steps / max(len(steps), 1)))
    return np.concatenate([ramp, decay])


def teacher_temperature_schedule(
    warmup_temp: float, temp: float, warmup_epochs: float, epochs: int
) -> np.ndarray:
    """Per-epoch teacher temperature: linear warm-up, then constant (a fraction < 1 means of all epochs)."""
    warm = int(round(warmup_epochs * epochs)) if warmup_epochs < 1 else int(round(warmup_epochs))
    warm = min(warm, epochs)
    return np.concatenate([np.linspace(warmup_temp, temp, warm), np.full(epochs - warm, temp)])


def entropy(probs: torch.Tensor) -> torch.Tensor:
    """Mean Shannon entropy (nats) of the rows of a probability matrix."""
    return -(probs * probs.clamp_min(1e-12).log()).sum(dim=-1).mean()


class DinoLoss(nn.Module):
    """The DINO objective for ``n_crops`` student crops of which the first ``n_global`` are global.

    Inputs are crop-major: rows ``[c * B : (c + 1) * B]`` hold crop ``c`` of every sample.
    """

    def __init__(
        self,
        out_dim: int,
        n_global: int,
        n_crops: int,
        teacher_temps: np.ndarray,
        student_temp: float = 0.1,
        center_momentum: float = 0.9,
    ) -> None:
        super().__init__()
        self.n_global = n_global
        self.n_crops = n_crops
        self.student_temp = student_temp
        self.center_momentum = center_momentum
        self.teacher_temps = teacher_temps
        self.register_buffer("center", torch.zeros(1, out_dim))

    def forward(
        self, student_out: torch.Tensor, teacher_out: torch.Tensor, epoch: int
    ) -> tuple[torch.Tensor, dict[str, float]]:
        """Return the loss and the collapse monitors; updates the centre as a side effect."""
        temp = float(self.teacher_temps[min(epoch, len(self.teacher_temps) - 1)])
        teacher_probs = torch.softmax((teacher_out - self.center) / temp, dim=-1).detach()
        student_logp = torch.log_softmax(student_out / self.student_temp, dim=-1)
        teacher_chunks = teacher_probs.chunk(self.n_global)
        student_chunks = student_logp.chunk(self.n_crops)
        total = student_out.new_zeros(())
        pairs = 0
        for t_index, t_probs in enumerate(teacher_chunks):
            for s_index, s_logp in enumerate(student_chunks):
                if s_index == t_index:
                    continue  # never compare a crop with itself
                total = total + (-t_probs * s_logp).sum(dim=-1).mean()
                pairs += 1
        loss = total / pairs
        self.update_center(teacher_out)
        stats = {
            "teacher_entropy": float(entropy(teacher_probs)),
            "student_entropy": float(entropy(student_logp.exp().detach())),
            "teacher_temp": temp,
        }
        return loss, stats

    @torch.no_grad()
    def update_center(self, teacher_out: torch.Tensor) -> None:
        """EMA of the batch mean of teacher outputs, averaged over all processes."""
        batch_sum = teacher_out.float().sum(dim=0, keepdim=True)
        count = torch.tensor([teacher_out.shape[0]], dtype=torch.float32, device=teacher_out.device)
        if dist.is_available() and dist.is_initialized():
            dist.all_reduce(batch_sum)
            dist.all_reduce(count)
        batch_center = batch_sum / count
        self.center.mul_(self.center_momentum).add_(batch_center * (1 - self.center_momentum))


@torch.no_grad()
def ema_update(student: nn.Module, teacher: nn.Module, momentum: float) -> None:
    """teacher <- momentum * teacher + (1 - momentum) * student, parameter by parameter.

    Buffers (batch-norm statistics) are not averaged: the teacher keeps its own running statistics
    from its own forward passes, as in FAIR DINO.
    """
    for p_student, p_teacher in zip(student.parameters(), teacher.parameters(), strict=True):
        p_teacher.mul_(momentum).add_(p_student.detach(), alpha=1 - momentum)


def uniform_collapse_entropy(out_dim: int) -> float:
    """ln(K): the entropy of a uniform distribution over the prototypes."""
    return math.log(out_dim)
