"""What every supernet offers the one-shot methods, and the batch-statistics rule they share.

BatchNorm: every BN of a supernet normalises with the batch's own statistics, in training and
in evaluation (``track_running_stats=False``). One path of a supernet sees activations whose
statistics differ from the average path's; SPOS (Guo et al. 2020) therefore recalibrates
running statistics before scoring each path, and batch statistics give the same correction
with no extra pass, so scoring a path is deterministic and has no side effect on the supernet.
Evaluation batches must then hold enough images (a few hundred) for stable statistics.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from nasforge.oneshot.mixed import Path

#: what a supernet may offer beyond weighted and sampled paths (`Supernet.features`):
#: ``partial`` channels (PC-DARTS), an ``aux_skip`` beside each edge (DARTS-), ``skip_dropout``
#: and a shallower ``depth`` (P-DARTS), ops without parameters to count (``param_free``:
#: collapse indicators, P-DARTS's skip cap); ``binary_gates`` (ProxylessNAS: `Path.active`)
#: and ``latency_table`` (per-op latencies for ProxylessNAS and FBNet) are the mobile supernet's
CELL_FEATURES = frozenset({"partial", "aux_skip", "skip_dropout", "depth", "param_free"})


def use_batch_statistics(module: nn.Module) -> None:
    """Make every BatchNorm of ``module`` normalise with batch statistics only (see above)."""
    for m in module.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.track_running_stats = False
            m.running_mean = m.running_var = m.num_batches_tracked = None


class Supernet(nn.Module):
    """What every supernet offers the methods; ``ops`` are the columns of a path's weights,
    ``num_edges`` its rows, ``node_edges`` the rows summed into each node (for PC-DARTS's edge
    normalisation)."""

    space: Any
    ops: tuple[str, ...]
    num_edges: int
    node_edges: tuple[tuple[int, ...], ...]
    net_options: dict[str, Any]
    #: every edge chooses among all ``ops`` (strict-fair sampling needs this)
    uniform_edges: ClassVar[bool] = False
    #: which of `CELL_FEATURES` its paths honour (the cell supernets: all of them)
    features: ClassVar[frozenset[str]] = CELL_FEATURES

    def indices_of(self, arch: Any) -> tuple[int, ...]:
        raise NotImplementedError

    def arch_of(self, index: Sequence[int]) -> Any:
        raise NotImplementedError

    def derive(self, weights: torch.Tensor, edge: torch.Tensor | None = None) -> Any:
        raise NotImplementedError

    def sample_index(self, rng: np.random.Generator) -> tuple[int, ...]:
        """A uniform single path: the space's own uniform sample (SPOS, RSWS)."""
        return self.indices_of(self.space.sample(rng))

    def path_of(self, arch: Any) -> Path:
        return Path(index=self.indices_of(arch))
