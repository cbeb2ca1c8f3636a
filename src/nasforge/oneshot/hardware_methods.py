"""Hardware-aware one-shot methods on the mobile supernet: ProxylessNAS and FBNet.

Both add the network's expected latency, from a latency lookup table built on the target
machine and runtime (``nasforge latency-table``; `oneshot.latency_model`), to the architecture
loss. Both need ``latency_table=FILE`` and search the mobile space (``--space mobile``).
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F

from nasforge.errors import ConfigError
from nasforge.oneshot.latency_model import LatencyModel, mobile_latency_model
from nasforge.oneshot.methods import Batch, OneShotMethod, _gumbel
from nasforge.oneshot.mixed import Path
from nasforge.oneshot.supernet import Supernet

LATENCY_LOSSES = ("add#linear", "mul#log")


class HardwareAware(OneShotMethod):
    """The shared part: the latency model from ``latency_table``, and the expected latency of
    each epoch in the log."""

    needs: ClassVar[frozenset[str]] = frozenset({"latency_table"})

    def __init__(self, supernet: Supernet, options: dict[str, Any], epochs: int, seed: int):
        super().__init__(supernet, options, epochs, seed)
        path = self.options["latency_table"]
        if not path:
            raise ConfigError(
                f"{self.name} needs a latency table of this machine: --option "
                "latency_table=FILE (made by 'nasforge latency-table --space mobile ...')"
            )
        self.latency: LatencyModel = mobile_latency_model(supernet, str(path))

    def expected_latency(self) -> float:
        """The predicted ms of the mixture (softmax of α)."""
        return float(self.latency.expected(self.mixing_weights().detach()))

    def derived_latency(self) -> float:
        """The predicted ms of the derived network (argmax of every stage)."""
        return self.latency.of(self.mixing_weights().detach().argmax(dim=1).tolist())

    def log_values(self) -> dict[str, float]:
        return {
            "expected_latency_ms": self.expected_latency(),
            "derived_latency_ms": self.derived_latency(),
        }


class ProxylessNAS(HardwareAware):
    """ProxylessNAS (Cai, Zhu & Han, "ProxylessNAS: Direct Neural Architecture Search on Target
    Task and Hardware", ICLR 2019), gradient version with binary gates.

    Weight step: one path sampled from softmax(α) per stage, trained alone (single-path memory).
    Architecture step (every ``arch_every`` weight steps, as the authors' code): per stage two
    ops are drawn from softmax(α) without replacement, one gate of the two is switched on by
    their renormalised probabilities, and the gradient reaches α through the straight-through
    gates, which is the paper's estimate ∂L/∂α_i = Σ_j ∂L/∂g_j p_j(δ_ij − p_i) over the two
    sampled paths. The latency term is the expected latency E[LAT] = Σ p·F(op) from the table:
    ``add#linear``: CE + λ·(E[LAT] − T)/T (λ = 0.1), or ``mul#log``: α·CE·(log E[LAT] / log T)^β
    (α = 0.2, β = 0.3; needs E[LAT] and T above 1 ms), with T = ``target_ms``. The derived
    network is the argmax of every stage.

    Departures: α's Adam keeps this package's betas (0.5, 0.999) instead of (0, 0.999); the
    weights use DARTS's SGD recipe like every method here (ProxylessNAS: its own schedule and
    120 epochs); warm-up is a fraction of the epochs (``warmup`` 0.25) rather than 40 epochs.
    """

    name = "proxylessnas"
    needs: ClassVar[frozenset[str]] = frozenset({"latency_table", "binary_gates"})
    defaults: ClassVar[dict[str, Any]] = {
        "latency_table": "",
        "target_ms": 0.0,
        "latency_loss": "add#linear",
        "reg_lambda": 0.1,
        "reg_alpha": 0.2,
        "reg_beta": 0.3,
        "arch_every": 5,
    }
    base_defaults: ClassVar[dict[str, Any]] = {
        **OneShotMethod.base_defaults,
        "arch_lr": 1e-3,
        "arch_weight_decay": 0.0,
        "warmup": 0.25,
    }

    def __init__(self, supernet: Supernet, options: dict[str, Any], epochs: int, seed: int):
        super().__init__(supernet, options, epochs, seed)
        if self.options["latency_loss"] not in LATENCY_LOSSES:
            raise ConfigError(
                f"latency_loss={self.options['latency_loss']!r} is not accepted; use "
                f"{' or '.join(LATENCY_LOSSES)}"
            )
        target = float(self.options["target_ms"])
        if not target > 0:
            raise ConfigError(
                "proxylessnas needs the latency it aims at: --option target_ms=MS (> 0)"
            )
        if self.options["latency_loss"] == "mul#log" and target <= 1:
            raise ConfigError("latency_loss=mul#log divides by log(target_ms): needs target > 1")
        self.target = target
        self._steps = 0

    def train_paths(self, rng: np.random.Generator) -> list[Path]:
        probs = self.mixing_weights().detach().double().numpy()
        index = [int(rng.choice(len(p), p=p / p.sum())) for p in probs]
        return [Path(index=index)]

    def search_path(self) -> Path:
        """Two sampled ops per stage, one gate on (straight-through)."""
        assert self.alpha is not None
        probs = F.softmax(self.alpha.detach(), dim=-1)
        pairs = torch.multinomial(probs, 2, replacement=False)
        weights = torch.zeros_like(self.alpha)
        rows = torch.arange(len(pairs))
        sub = F.softmax(self.alpha[rows[:, None], pairs], dim=-1)
        chosen = torch.multinomial(sub.detach(), 1).squeeze(1)
        hard = F.one_hot(chosen, 2).to(sub)
        gates = hard - sub.detach() + sub
        weights = weights.index_put((rows[:, None], pairs), gates)
        return Path(weights=weights, active=pairs.tolist())

    def arch_loss(self, batch: Batch) -> torch.Tensor:
        x, y = batch
        ce = F.cross_entropy(self.net(x, self.search_path()), y)
        expected = self.latency.expected(self.mixing_weights())
        if self.options["latency_loss"] == "add#linear":
            return ce + self.options["reg_lambda"] * (expected - self.target) / self.target
        ratio = torch.log(expected.clamp_min(1.0 + 1e-6)) / math.log(self.target)
        return self.options["reg_alpha"] * ce * ratio ** self.options["reg_beta"]

    def arch_step(self, train: Batch, val: Batch, lr: float) -> None:
        self._steps += 1
        if self._steps % int(self.options["arch_every"]) == 0:
            super().arch_step(train, val, lr)


class FBNet(HardwareAware):
    """FBNet (Wu et al., "FBNet: Hardware-Aware Efficient ConvNet Design via Differentiable
    Neural Architecture Search", CVPR 2019).

    Every stage is a Gumbel-softmax mixture of all its ops (mask m = softmax((log p + g)/τ)),
    for the weight step and the architecture step alike; τ starts at 5 and decays by 0.956
    per epoch. The loss is CE · α·(log LAT)^β with LAT = Σ m·LAT(op) from the table (α = 0.2,
    β = 0.6); α learns by Adam at 0.01 with weight decay 5e-4 after a warm-up of the weights
    (FBNet: 10 of 90 epochs, here the same fraction). The derived network is the argmax of
    every stage (FBNet samples several from the final distribution and trains them).

    Departures: LAT enters in microseconds, so that log LAT stays positive for networks under
    a millisecond (FBNet's phone latencies were tens of ms; the unit shifts log LAT by a
    constant); weights follow DARTS's SGD recipe like every method here.
    """

    name = "fbnet"
    defaults: ClassVar[dict[str, Any]] = {
        "latency_table": "",
        "tau_max": 5.0,
        "tau_decay": 0.956,
        "loss_alpha": 0.2,
        "loss_beta": 0.6,
    }
    base_defaults: ClassVar[dict[str, Any]] = {
        **OneShotMethod.base_defaults,
        "arch_lr": 1e-2,
        "arch_weight_decay": 5e-4,
        "warmup": 10 / 90,
    }

    def temperature(self) -> float:
        return float(self.options["tau_max"]) * float(self.options["tau_decay"]) ** self.epoch

    def search_path(self) -> Path:
        assert self.alpha is not None
        logits = F.log_softmax(self.alpha, dim=-1) + _gumbel(self.alpha)
        return Path(weights=F.softmax(logits / self.temperature(), dim=-1))

    def arch_loss(self, batch: Batch) -> torch.Tensor:
        x, y = batch
        path = self.search_path()
        ce = F.cross_entropy(self.net(x, path), y)
        assert path.weights is not None
        micro = 1000.0 * self.latency.expected(path.weights)
        factor = self.options["loss_alpha"] * torch.log(micro) ** self.options["loss_beta"]
        return ce * factor
