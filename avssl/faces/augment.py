"""Face augmentations for self-supervised training: the image counterpart of reverb and noise on audio.

Random resized crop, horizontal flip, colour jitter, Gaussian blur and random greyscale (the
augmentations of DINO and SimCLR), built on ``torchvision.transforms.v2.functional``. torchvision's
random transforms draw from torch's global generator, which would make views depend on whatever else
used it (another worker, the model); here every random parameter is drawn from a ``torch.Generator``
the caller passes, so a view is a pure function of (image, generator state), like the audio crops.

Faces tolerate less cropping than ImageNet objects (a crop of one cheek has no identity left), so the
crop scales are narrower than DINO's defaults; see :class:`avssl.faces.views.FaceCropConfig`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torchvision.transforms.v2.functional as F

from avssl.errors import ConfigError


@dataclass(frozen=True)
class FaceAugmentConfig:
    """One view's augmentation; probabilities are per image, ranges are sampled uniformly."""

    size: int = 112  # output side
    scale_min: float = 0.5  # crop area as a fraction of the image
    scale_max: float = 1.0
    ratio_min: float = 3 / 4  # crop aspect ratio (w / h), sampled log-uniformly
    ratio_max: float = 4 / 3
    flip_p: float = 0.5
    jitter_p: float = 0.8
    brightness: float = 0.4  # factors in [1 - b, 1 + b]
    contrast: float = 0.4
    saturation: float = 0.2
    hue: float = 0.1  # shift in [-h, h] (of a full turn)
    blur_p: float = 0.5
    blur_sigma_min: float = 0.1  # in output pixels
    blur_sigma_max: float = 2.0
    grey_p: float = 0.2

    def __post_init__(self) -> None:
        checks = (
            (self.size >= 8, "size", "must be >= 8"),
            (0 < self.scale_min <= self.scale_max <= 1, "scale_min/scale_max", "need 0 < min <= max <= 1"),
            (0 < self.ratio_min <= self.ratio_max, "ratio_min/ratio_max", "need 0 < min <= max"),
            (0 <= self.hue <= 0.5, "hue", "must be within [0, 0.5]"),
            (
                min(self.brightness, self.contrast, self.saturation) >= 0,
                "brightness/contrast/saturation",
                "must be >= 0",
            ),
            (
                0 < self.blur_sigma_min <= self.blur_sigma_max,
                "blur_sigma_min/blur_sigma_max",
                "need 0 < min <= max",
            ),
        )
        probabilities = ("flip_p", "jitter_p", "blur_p", "grey_p")
        checks += tuple((0 <= getattr(self, p) <= 1, p, "must be within [0, 1]") for p in probabilities)
        for ok, name, what in checks:
            if not ok:
                raise ConfigError(f"face augmentation option '{name}' {what}")


def _uniform(low: float, high: float, generator: torch.Generator) -> float:
    return low + (high - low) * float(torch.rand((), generator=generator))


def _chance(p: float, generator: torch.Generator) -> bool:
    return float(torch.rand((), generator=generator)) < p


def crop_box(
    height: int, width: int, config: FaceAugmentConfig, generator: torch.Generator
) -> tuple[int, int, int, int]:
    """``(top, left, h, w)`` of a random crop with the configured area and aspect ratio.

    Ten tries at a box that fits, as torchvision's RandomResizedCrop does, then the whole image."""
    area = height * width
    log_ratio = (math.log(config.ratio_min), math.log(config.ratio_max))
    for _ in range(10):
        target = area * _uniform(config.scale_min, config.scale_max, generator)
        ratio = math.exp(_uniform(*log_ratio, generator))
        w = round(math.sqrt(target * ratio))
        h = round(math.sqrt(target / ratio))
        if 0 < w <= width and 0 < h <= height:
            top = int(torch.randint(0, height - h + 1, (), generator=generator))
            left = int(torch.randint(0, width - w + 1, (), generator=generator))
            return top, left, h, w
    return 0, 0, height, width


class FaceAugment:
    """Callable: uint8 images (3, H, W) or (B, 3, H, W) -> uint8 (.., 3, size, size), each image with its
    own random parameters drawn from ``generator`` (uint8 keeps data-loader traffic four times smaller
    than float; the encoder scales it)."""

    def __init__(self, config: FaceAugmentConfig) -> None:
        self.config = config

    def __call__(self, images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        if images.dtype != torch.uint8 or images.dim() not in (3, 4) or images.shape[-3] != 3:
            raise ValueError(
                f"expected uint8 RGB images (3, H, W) or (B, 3, H, W), got {images.dtype} {tuple(images.shape)}"
            )
        if images.dim() == 3:
            return self._one(images, generator)
        return torch.stack([self._one(image, generator) for image in images])

    def _one(self, image: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        c = self.config
        top, left, h, w = crop_box(image.shape[-2], image.shape[-1], c, generator)
        out = F.resized_crop(image, top, left, h, w, [c.size, c.size], antialias=True)
        if _chance(c.flip_p, generator):
            out = F.horizontal_flip(out)
        if _chance(c.jitter_p, generator):
            out = self._jitter(out, generator)
        if _chance(c.blur_p, generator):
            sigma = _uniform(c.blur_sigma_min, c.blur_sigma_max, generator)
            kernel = min(2 * math.ceil(3 * sigma) + 1, c.size - (1 - c.size % 2))  # odd, within the image
            out = F.gaussian_blur(out, [kernel, kernel], [sigma, sigma])
        if _chance(c.grey_p, generator):
            out = F.rgb_to_grayscale(out, num_output_channels=3)
        return out

    def _jitter(self, image: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Brightness, contrast, saturation and hue, in a random order (as ColorJitter does)."""
        c = self.config
        for op in torch.randperm(4, generator=generator).tolist():
            if op == 0 and c.brightness:
                image = F.adjust_brightness(image, _uniform(1 - c.brightness, 1 + c.brightness, generator))
            elif op == 1 and c.contrast:
                image = F.adjust_contrast(image, _uniform(1 - c.contrast, 1 + c.contrast, generator))
            elif op == 2 and c.saturation:
                image = F.adjust_saturation(image, _uniform(1 - c.saturation, 1 + c.saturation, generator))
            elif op == 3 and c.hue:
                image = F.adjust_hue(image, _uniform(-c.hue, c.hue, generator))
        return image
