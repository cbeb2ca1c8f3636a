"""Training-time augmentation applied to a whole batch tensor at once.

The images are already decoded and normalised in memory (`ImageDataset`), so augmenting image
by image in Python would cost more than the training step on small networks. Each transform
here draws its random numbers for the whole batch from one `torch.Generator` and applies them
with tensor indexing and masks: the same seed gives the same augmented batches.

Padding and cutout act on *normalised* images, so a zero there is the per-channel training
mean (as in DeVries & Taylor's cutout, which is applied after normalisation), not black.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from nasforge.errors import ConfigError

PADDING_MODES = ("reflect", "zero")


@dataclass(frozen=True)
class Augmentation:
    """What is done to each training batch (never to validation or test images).

    ``crop_padding``: pad every side by this many pixels (``padding_mode`` "reflect" or "zero")
    and take a random crop of the original size (CIFAR's standard is 4). ``flip``: mirror
    left-right with probability 1/2. ``cutout``: zero one square of this side per image at a
    uniformly random centre, clipped at the border (DeVries & Taylor 2017; 16 on CIFAR-10).
    Order: crop, flip, cutout. The default value does nothing.
    """

    crop_padding: int = 0
    flip: bool = False
    cutout: int = 0
    padding_mode: str = "reflect"

    def __post_init__(self) -> None:
        for label in ("crop_padding", "cutout"):
            value = getattr(self, label)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ConfigError(
                    f"augmentation {label} must be a whole number >= 0, got {value!r}"
                )
        if not isinstance(self.flip, bool):
            raise ConfigError(f"augmentation flip must be True or False, got {self.flip!r}")
        if self.padding_mode not in PADDING_MODES:
            raise ConfigError(
                f"augmentation padding_mode {self.padding_mode!r} is unknown; "
                f"accepted: {', '.join(PADDING_MODES)}"
            )

    @classmethod
    def standard(cls, cutout: int = 0) -> Augmentation:
        """CIFAR's usual recipe: random crop with 4 pixels of padding, horizontal flip."""
        return cls(crop_padding=4, flip=True, cutout=cutout)

    @classmethod
    def parse(cls, spec: str) -> Augmentation:
        """From a command-line spelling: ``none``, ``standard``, or comma-separated parts
        ``crop:4``, ``crop:4:zero``, ``flip``, ``cutout:16`` (e.g. ``crop:4,flip,cutout:16``)."""
        text = spec.strip().lower()
        if text in ("", "none"):
            return cls()
        if text == "standard":
            return cls.standard()
        options: dict[str, Any] = {}
        accepted = "none, standard, or parts crop:N[:reflect|zero], flip, cutout:N"
        for part in (p.strip() for p in text.split(",")):
            name, *args = part.split(":")
            try:
                if name == "flip" and not args:
                    options["flip"] = True
                elif name == "crop" and len(args) in (1, 2):
                    options["crop_padding"] = int(args[0])
                    if len(args) == 2:
                        options["padding_mode"] = args[1]
                elif name == "cutout" and len(args) == 1:
                    options["cutout"] = int(args[0])
                else:
                    raise ValueError(part)
            except ValueError as err:
                raise ConfigError(
                    f"augmentation {spec!r}: cannot read {part!r}; accepted: {accepted}"
                ) from err
        return cls(**options)

    @property
    def active(self) -> bool:
        """Whether this changes any image (the default value is the identity)."""
        return self.crop_padding > 0 or self.flip or self.cutout > 0

    def describe(self) -> dict[str, Any]:
        """The settings as plain JSON values, for a run's record and its report."""
        return {
            "crop_padding": self.crop_padding,
            "padding_mode": self.padding_mode,
            "flip": self.flip,
            "cutout": self.cutout,
        }

    def __call__(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """An augmented copy of the N×C×H×W batch ``x`` (``x`` itself is left unchanged)."""
        if self.crop_padding:
            x = random_crop(x, self.crop_padding, generator, self.padding_mode)
        if self.flip:
            x = random_flip(x, generator)
        if self.cutout:
            x = cutout(x, self.cutout, generator)
        return x


def random_crop(
    x: torch.Tensor, padding: int, generator: torch.Generator, mode: str = "reflect"
) -> torch.Tensor:
    """Pad by ``padding`` and cut each image's H×W window at its own random offset."""
    n, c, h, w = x.shape
    if mode == "reflect" and padding >= min(h, w):
        raise ConfigError(
            f"reflect padding {padding} needs images larger than {padding}; got {h}×{w}"
        )
    padded = F.pad(x, (padding,) * 4, mode="reflect" if mode == "reflect" else "constant")
    wide = w + 2 * padding
    dy = torch.randint(0, 2 * padding + 1, (n,), generator=generator)
    dx = torch.randint(0, 2 * padding + 1, (n,), generator=generator)
    # flat index of each output pixel in its padded image: one gather, no per-image work
    window = (torch.arange(h)[:, None] * wide + torch.arange(w)).view(1, h * w)
    index = (window + (dy * wide + dx)[:, None])[:, None, :].expand(n, c, h * w)
    return padded.reshape(n, c, -1).gather(2, index).view(n, c, h, w)


def random_flip(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Mirror a random half (in expectation) of the images left-right."""
    flip = torch.rand(len(x), generator=generator) < 0.5
    return torch.where(flip[:, None, None, None], x.flip(3), x)


def cutout(x: torch.Tensor, length: int, generator: torch.Generator) -> torch.Tensor:
    """Zero one ``length``×``length`` square per image, centred uniformly, clipped at edges."""
    n, _, h, w = x.shape
    cy = torch.randint(0, h, (n,), generator=generator)
    cx = torch.randint(0, w, (n,), generator=generator)
    top, left = cy - length // 2, cx - length // 2
    rows, cols = torch.arange(h), torch.arange(w)
    in_rows = (rows >= top[:, None]) & (rows < top[:, None] + length)  # N×H
    in_cols = (cols >= left[:, None]) & (cols < left[:, None] + length)  # N×W
    mask = in_rows[:, :, None] & in_cols[:, None, :]
    return x.masked_fill(mask[:, None], 0.0)
