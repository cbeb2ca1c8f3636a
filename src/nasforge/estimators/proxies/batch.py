"""The real minibatch every data-driven proxy sees: seeded images of the *training* split.

Proxies are computed at initialisation, but on real images (Abdelfattah et al. 2021 and Mellor
et al. 2021 both use a minibatch of the training data). The images come from the same seeded
train/validation split `Train` uses (``split_train_val``), from its training part, so a proxy
never looks at validation or test images and a search that uses it stays honest.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from nasforge.data.datasets import ImageDataset, split_train_val
from nasforge.errors import ConfigError

#: The validation fraction of the split the minibatch avoids (the `Train` default).
VAL_FRACTION = 0.1


@dataclass(frozen=True)
class ProxyBatch:
    """``size`` training images and labels, drawn without replacement, and how."""

    x: torch.Tensor
    y: torch.Tensor
    rule: str

    def first(self, count: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The first ``count`` images (every proxy uses a prefix of one draw)."""
        return self.x[:count], self.y[:count]

    def to(self, device: torch.device | str) -> ProxyBatch:
        return ProxyBatch(self.x.to(device), self.y.to(device), self.rule)


def draw_batch(
    dataset: ImageDataset, size: int, seed: int, val_fraction: float = VAL_FRACTION
) -> ProxyBatch:
    """``size`` images drawn with ``numpy.random.default_rng(seed)`` from the training part of
    ``split_train_val(n, val_fraction, seed)``; another seed gives another minibatch."""
    if not isinstance(size, int) or isinstance(size, bool) or size < 1:
        raise ConfigError(f"proxy batch size must be an int >= 1, got {size!r}")
    train_idx, _ = split_train_val(len(dataset.train_x), val_fraction, seed)
    if size > len(train_idx):
        raise ConfigError(
            f"proxy batch size {size} exceeds the {len(train_idx)} training images of "
            f"{dataset.name}; accepted: 1 to {len(train_idx)}"
        )
    pick = np.random.default_rng(seed).choice(train_idx, size=size, replace=False)
    index = torch.from_numpy(pick.astype(np.int64))
    rule = (
        f"{size} images of {dataset.name}'s training split drawn without replacement by "
        f"numpy default_rng({seed}) from the train part of split_train_val(val_fraction="
        f"{val_fraction:g}, seed={seed}); each proxy uses the first k of them"
    )
    return ProxyBatch(dataset.train_x[index].clone(), dataset.train_y[index].clone(), rule)


def describe(batch: ProxyBatch) -> dict[str, Any]:
    return {"minibatch": batch.rule, "images_drawn": len(batch.x)}
