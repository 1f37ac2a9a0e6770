"""Batched waveform augmentation: reverberation or additive noise, one draw per crop.

Why batched tensor operations: DINO corrupts six crops per sample, and doing that with per-crop
numpy calls in data-loader workers is what starves GPUs in other toolkits. Here the noise clips and
impulse responses live as tensors on the training device; a whole batch of crops is corrupted with
one FFT convolution and one gather. The same code runs in a data-loader worker on CPU when that is
preferable (it only needs a device to live on).
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass, field
from pathlib import Path

import scipy.fft
import torch

from avssl.config import AugmentConfig
from avssl.data.audio import load_audio
from avssl.errors import DataError


def reverberate_head(waves: torch.Tensor, rirs: torch.Tensor) -> torch.Tensor:
    """The first ``T`` samples of each crop (N, T) linearly convolved with its impulse response (N, R).

    The same samples as ``torchaudio.functional.fftconvolve(waves, rirs)[:, :T]``, but transformed at the
    next 2-3-5-smooth length at or above T + R - 1 instead of exactly there: that length often has a large
    prime factor (1 s crops with the demo's 18,010-sample RIRs: 34,009 = 71 x 479), which made the
    convolution 7 times slower on CPU (docs/benchmarks.md). Zero padding beyond T + R - 1 changes nothing.
    """
    length = waves.shape[-1]
    size = scipy.fft.next_fast_len(length + rirs.shape[-1] - 1, real=True)
    spectrum = torch.fft.rfft(waves, n=size) * torch.fft.rfft(rirs, n=size)
    return torch.fft.irfft(spectrum, n=size)[..., :length]


@dataclass
class AugmentSources:
    """Noise streams per category (clips concatenated) and energy-normalised, peak-aligned RIRs."""

    noises: dict[str, torch.Tensor] = field(default_factory=dict)
    rirs: torch.Tensor | None = None  # (count, length)

    def to(self, device: torch.device | str) -> AugmentSources:
        rirs = self.rirs.to(device) if self.rirs is not None else None
        return AugmentSources({k: v.to(device) for k, v in self.noises.items()}, rirs)


def read_media_list(path: str | Path) -> list[dict[str, str]]:
    """Rows of a TSV list written by `avssl prepare` (needs a ``path`` column)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"augmentation list not found: {path} (run `avssl prepare` or set the key to null)")
    with path.open(newline="") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t"))
    if not rows or "path" not in rows[0]:
        raise DataError(f"{path}: expected a TSV with a header holding a 'path' column and at least one row")
    return rows


def load_augment_sources(noise_list: str | None, rir_list: str | None, sample_rate: int) -> AugmentSources:
    """Read every noise clip and impulse response once; they are small next to the training data."""
    sources = AugmentSources()
    if noise_list:
        streams: dict[str, list[torch.Tensor]] = {}
        for row in read_media_list(noise_list):
            wave = torch.from_numpy(load_audio(row["path"], sample_rate))
            streams.setdefault(row.get("category") or "noise", []).append(wave)
        sources.noises = {name: torch.cat(clips) for name, clips in sorted(streams.items())}
    if rir_list:
        rirs = [_normalise_rir(torch.from_numpy(load_audio(r["path"], sample_rate))) for r in read_media_list(rir_list)]
        length = max(r.shape[0] for r in rirs)
        sources.rirs = torch.stack([torch.nn.functional.pad(r, (0, length - r.shape[0])) for r in rirs])
    return sources


def _normalise_rir(rir: torch.Tensor) -> torch.Tensor:
    """Start at the direct path (so the reverberant crop stays aligned) and have unit energy."""
    rir = rir[int(rir.abs().argmax()) :]
    return rir / rir.norm().clamp_min(1e-8)


# The random EQ curve starts at this fraction of the Nyquist frequency (50 Hz at 16 kHz).
_EQ_LOWEST = 50 / 8000


class WaveAugment:
    """Corrupt each crop independently with probability ``prob``: reverb or noise at a random SNR."""

    def __init__(self, sources: AugmentSources, config: AugmentConfig) -> None:
        self.sources = sources
        self.config = config
        for category in sources.noises:
            if category not in config.snr_db:
                raise DataError(
                    f"noise category '{category}' has no SNR range: add augment.snr_db.{category}: [low, high]"
                )
        kinds: list[tuple[str, float]] = []
        if sources.rirs is not None and config.reverb_weight > 0:
            kinds.append(("reverb", config.reverb_weight))
        if sources.noises and config.noise_weight > 0:
            kinds.extend((f"noise:{c}", config.noise_weight / len(sources.noises)) for c in sources.noises)
        self.kinds = [k for k, _ in kinds]
        weights = torch.tensor([w for _, w in kinds], dtype=torch.float64)
        self.weights = weights / weights.sum() if kinds else weights

    @property
    def active(self) -> bool:
        return (bool(self.kinds) and self.config.prob > 0) or self.config.eq_prob > 0

    @torch.no_grad()
    def __call__(self, waves: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """``waves`` (N, T) -> corrupted copy. Draws come from ``generator`` (CPU) for reproducibility."""
        if not self.active:
            return waves
        count = waves.shape[0]
        out = waves.clone()
        if self.kinds and self.config.prob > 0:
            apply = torch.rand(count, generator=generator) < self.config.prob
            choice = torch.multinomial(self.weights, count, replacement=True, generator=generator)
            for kind_index, kind in enumerate(self.kinds):
                rows = torch.nonzero(apply & (choice == kind_index)).flatten().to(waves.device)
                if rows.numel() == 0:
                    continue
                if kind == "reverb":
                    out[rows] = self._reverb(waves[rows], generator)
                else:
                    out[rows] = self._add_noise(waves[rows], kind.split(":", 1)[1], generator)
        if self.config.eq_prob > 0:
            rows = torch.nonzero(torch.rand(count, generator=generator) < self.config.eq_prob).flatten()
            if rows.numel():
                rows = rows.to(waves.device)
                out[rows] = self._equalise(out[rows], generator)
        return out

    def _equalise(self, waves: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Multiply each crop's spectrum by its own smooth random gain curve (zero phase), keeping its power.

        The curve is ``sum_k c_k cos(pi k u)`` in dB over ``u``, the log-frequency position from 50 Hz to
        Nyquist (flat below), with ``c_k`` uniform in +-eq_db / sqrt(eq_bands): shelves, tilts and broad bells like
        those of microphones and rooms, never a notch that would remove a formant.
        """
        count, length = waves.shape
        spectrum = torch.fft.rfft(waves, dim=1)
        bins = spectrum.shape[1]
        fraction_of_nyquist = torch.linspace(0.0, 1.0, bins, dtype=torch.float64).clamp_min(_EQ_LOWEST)
        position = torch.log(fraction_of_nyquist / _EQ_LOWEST) / math.log(1 / _EQ_LOWEST)
        bands = max(1, self.config.eq_bands)
        basis = torch.stack([torch.cos(math.pi * k * position) for k in range(1, bands + 1)])  # (bands, bins)
        coefficients = (2 * torch.rand(count, bands, generator=generator, dtype=torch.float64) - 1)
        curve_db = (coefficients * self.config.eq_db / math.sqrt(bands)) @ basis
        gain = torch.pow(10.0, curve_db / 20).to(dtype=waves.dtype, device=waves.device)
        shaped = torch.fft.irfft(spectrum * gain, n=length, dim=1)
        power_in = waves.pow(2).mean(dim=1, keepdim=True)
        power_out = shaped.pow(2).mean(dim=1, keepdim=True).clamp_min(1e-10)
        return shaped * (power_in / power_out).sqrt()

    def _reverb(self, waves: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        rirs = self.sources.rirs
        assert rirs is not None
        pick = torch.randint(rirs.shape[0], (waves.shape[0],), generator=generator).to(rirs.device)
        wet = reverberate_head(waves, rirs[pick])
        # Keep the loudness of the dry crop: reverberation should change the timbre, not the level.
        dry_power = waves.pow(2).mean(dim=1, keepdim=True)
        wet_power = wet.pow(2).mean(dim=1, keepdim=True).clamp_min(1e-10)
        return wet * (dry_power / wet_power).sqrt()

    def _add_noise(self, waves: torch.Tensor, category: str, generator: torch.Generator) -> torch.Tensor:
        stream = self.sources.noises[category]
        count, length = waves.shape
        if stream.shape[0] < length:
            stream = stream.repeat(-(-length // stream.shape[0]) + 1)
        starts = torch.randint(stream.shape[0] - length + 1, (count, 1), generator=generator).to(stream.device)
        noise = stream[starts + torch.arange(length, device=stream.device)]
        low, high = self.config.snr_db[category]
        snr = low + (high - low) * torch.rand(count, 1, generator=generator).to(waves.device)
        signal_power = waves.pow(2).mean(dim=1, keepdim=True)
        noise_power = noise.pow(2).mean(dim=1, keepdim=True).clamp_min(1e-10)
        gain = (signal_power / (noise_power * 10 ** (snr / 10))).sqrt()
        return waves + gain * noise
