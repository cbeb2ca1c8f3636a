"""One-shot methods: how each trains a supernet's architecture and weights, and what it returns.

Every method is a class with the paper's default hyper-parameters as ``defaults`` (options a
user can override by name) and its citation and departures in its docstring. The training loop
(`oneshot.train`) is shared; a method supplies:

- ``train_paths(rng)``: the path(s) of the weight step (FairNAS: several, gradients summed);
- ``arch_step(train, val, lr)``: its update of the architecture (gradient methods: α on a
  validation batch; ENAS: the controller by REINFORCE; sampling methods: nothing);
- ``eval_path()`` / ``derive()``: the path whose validation accuracy the epoch log reports, and
  the architecture the method returns (sampling methods return None: a search over the trained
  supernet, `oneshot.run`, chooses).

Shared defaults are DARTS's (Liu et al., ICLR 2019) as NB201 ran every method: weights by SGD,
learning rate 0.025 cosine to 0.001, momentum 0.9, weight decay 3e-4, gradient clip 5, batch
64; architecture weights α ~ 1e-3·N(0, 1) by Adam (lr 3e-4, betas (0.5, 0.999), weight decay
1e-3) on the validation half of the training images.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F

from nasforge.errors import ConfigError, UnknownNameError
from nasforge.oneshot.mixed import Path
from nasforge.oneshot.supernet import Supernet

Batch = tuple[torch.Tensor, torch.Tensor]
#: ops without parameters: what collapsed DARTS cells fill up with
PARAMETER_FREE = frozenset({"none", "skip_connect", "avg_pool_3x3", "max_pool_3x3"})


class OneShotMethod:
    """The shared part: options, the epoch clock, α when the method has one, state for
    checkpoints."""

    name: ClassVar[str]
    gradient: ClassVar[bool] = True
    #: PC-DARTS builds its supernet with partial channels
    partial: ClassVar[int] = 1
    #: the `Supernet.features` the method's paths use (a supernet without one is refused)
    needs: ClassVar[frozenset[str]] = frozenset()
    defaults: ClassVar[dict[str, Any]] = {}
    base_defaults: ClassVar[dict[str, Any]] = {
        "arch_lr": 3e-4,
        "arch_weight_decay": 1e-3,
        "warmup": 0.0,  # fraction of epochs before the architecture is first updated
        "stop_param_free": 0,  # > 0: stop once the derived cell has this many param-free ops
        "derive": "argmax",  # or perturbation (Wang et al. 2021)
    }

    def __init__(self, supernet: Supernet, options: dict[str, Any], epochs: int, seed: int):
        accepted = check_options(type(self), options)
        self.options = {k: coerce_option(k, options.get(k, v), v) for k, v in accepted.items()}
        if self.options["derive"] not in ("argmax", "perturbation"):
            raise ConfigError(
                f"derive={self.options['derive']!r} is not a derivation; accepted: argmax, "
                "perturbation"
            )
        self.net, self.epochs, self.seed = supernet, epochs, seed
        self.epoch = 0
        self.alpha: torch.nn.Parameter | None = None
        self.arch_optimiser: torch.optim.Optimizer | None = None
        if self.gradient:
            generator = torch.Generator().manual_seed(seed)
            shape = (supernet.num_edges, len(supernet.ops))
            self.alpha = torch.nn.Parameter(1e-3 * torch.randn(shape, generator=generator))
            self.arch_optimiser = torch.optim.Adam(
                self.arch_parameters(),
                lr=self.options["arch_lr"],
                betas=(0.5, 0.999),
                weight_decay=self.options["arch_weight_decay"],
            )

    @classmethod
    def check_space(cls, space: str, supernet: type[Supernet]) -> None:
        """Refuse a space the method cannot search (before anything is built or stored)."""
        missing = sorted(cls.needs - supernet.features)
        if missing:
            able = ", ".join(
                name for name, net in _supernets().items() if cls.needs <= net.features
            )
            raise ConfigError(
                f"{cls.name} needs {', '.join(missing)} paths, which the {space!r} supernet "
                f"does not have; spaces it searches: {able}"
            )

    # -- the clock -----------------------------------------------------------------------------

    def begin_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    @property
    def progress(self) -> float:
        """0 at the first epoch, 1 at the last."""
        return self.epoch / max(1, self.epochs - 1)

    def arch_active(self) -> bool:
        return self.gradient and self.epoch >= round(self.options["warmup"] * self.epochs)

    # -- what the loop calls --------------------------------------------------------------------

    def arch_parameters(self) -> list[torch.nn.Parameter]:
        return [] if self.alpha is None else [self.alpha]

    def mixing_weights(self) -> torch.Tensor:
        """The deterministic mixture the method derives from (softmax of α by default)."""
        assert self.alpha is not None
        return F.softmax(self.alpha, dim=-1)

    def search_path(self) -> Path:
        """The path of the architecture loss (and, for weighted methods, of the weight step)."""
        return Path(weights=self.mixing_weights())

    def train_paths(self, rng: np.random.Generator) -> list[Path]:
        return [self.search_path()]

    def arch_loss(self, batch: Batch) -> torch.Tensor:
        x, y = batch
        return F.cross_entropy(self.net(x, self.search_path()), y) + self.regulariser()

    def regulariser(self) -> torch.Tensor | float:
        return 0.0

    def arch_step(self, train: Batch, val: Batch, lr: float) -> None:
        """First-order: α follows the gradient of the validation loss at the current weights;
        only α's gradient is computed (``autograd.grad``), not the weights'."""
        if not self.arch_active():
            return
        params = self.arch_parameters()
        # a sampled path can leave α out of the graph (GDAS drawing none on every edge into a
        # node): its gradient is then zero
        grads = torch.autograd.grad(self.arch_loss(val), params, allow_unused=True)
        self._apply(
            params,
            tuple(
                torch.zeros_like(p) if g is None else g for p, g in zip(params, grads, strict=True)
            ),
        )

    def _apply(self, params: list[torch.nn.Parameter], grads: tuple[torch.Tensor, ...]) -> None:
        assert self.arch_optimiser is not None
        for p, g in zip(params, grads, strict=True):
            p.grad = g
        self.arch_optimiser.step()
        self.arch_optimiser.zero_grad(set_to_none=True)

    def eval_path(self) -> Path:
        """The path whose validation accuracy the epoch log reports: the derived cell alone
        (sampling methods, which derive nothing until their search: one fixed seeded path, so
        the epochs stay comparable)."""
        arch = self.derive()
        return (
            self.net.path_of(arch)
            if arch is not None
            else Path(index=self.net.sample_index(np.random.default_rng(self.seed)))
        )

    def derive(self) -> Any:
        if self.alpha is None:
            return None
        return self.net.derive(self.mixing_weights().detach(), self.edge_weights())

    def edge_weights(self) -> torch.Tensor | None:
        return None

    def temperature(self) -> float | None:
        return None

    def aux_skip(self) -> float:
        return 0.0

    def log_values(self) -> dict[str, float]:
        """Method-specific numbers for the epoch's record (hardware-aware: latencies)."""
        return {}

    def snapshot(self) -> list[list[float]] | None:
        """The mixing weights as plain lists, for the α trajectory."""
        if self.alpha is None:
            return None
        return [[round(float(v), 5) for v in row] for row in self.mixing_weights().detach()]

    def state_dict(self) -> dict[str, Any]:
        state: dict[str, Any] = {"epoch": self.epoch}
        if self.alpha is not None:
            state["arch"] = [p.detach().clone() for p in self.arch_parameters()]
            state["arch_optimiser"] = self.arch_optimiser.state_dict()  # type: ignore[union-attr]
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.epoch = state["epoch"]
        if self.alpha is not None:
            with torch.no_grad():
                for p, v in zip(self.arch_parameters(), state["arch"], strict=True):
                    p.copy_(v)
            self.arch_optimiser.load_state_dict(state["arch_optimiser"])  # type: ignore[union-attr]


# --- gradient-based ----------------------------------------------------------------------------


class Darts(OneShotMethod):
    """DARTS (Liu, Simonyan & Yang, "DARTS: Differentiable Architecture Search", ICLR 2019):
    every edge a softmax(α)-weighted sum of all ops, α and weights updated alternately on the
    two halves of the training images. ``order=2`` is the paper's unrolled approximation: the
    validation loss is taken at one virtual SGD step ``w - ξ∇L_train`` (ξ = the weight learning
    rate) and the second-order term by finite differences (ε = 0.01/‖∇w'L_val‖). Departure: the
    virtual step omits momentum (DARTS includes the momentum buffer)."""

    name = "darts"
    defaults: ClassVar[dict[str, Any]] = {"order": 1}
    #: the finite-difference step is this over ‖∇w'L_val‖ (DARTS: 0.01)
    fd_scale: float = 0.01

    def arch_step(self, train: Batch, val: Batch, lr: float) -> None:
        if self.options["order"] == 1:
            super().arch_step(train, val, lr)
            return
        if self.options["order"] != 2:
            raise ConfigError(f"darts order must be 1 or 2, got {self.options['order']}")
        if not self.arch_active():
            return
        weights = [p for p in self.net.parameters() if p.requires_grad]
        alpha = self.arch_parameters()
        x, y = train
        g_train = torch.autograd.grad(F.cross_entropy(self.net(x, self.search_path()), y), weights)
        backup = [p.detach().clone() for p in weights]
        with torch.no_grad():  # w' = w - ξ ∇w L_train(w, α)
            for p, g in zip(weights, g_train, strict=True):
                p.sub_(lr * g)
        grads = torch.autograd.grad(self.arch_loss(val), alpha + weights)
        d_alpha, d_w = grads[: len(alpha)], grads[len(alpha) :]
        norm = torch.sqrt(sum((g * g).sum() for g in d_w))
        eps = self.fd_scale / float(norm.clamp_min(1e-12))
        hessian = []
        for sign in (1.0, -1.0):
            with torch.no_grad():
                for p, b, g in zip(weights, backup, d_w, strict=True):
                    p.copy_(b + sign * eps * g)
            loss = F.cross_entropy(self.net(x, self.search_path()), y)
            hessian.append(torch.autograd.grad(loss, alpha))
        with torch.no_grad():
            for p, b in zip(weights, backup, strict=True):
                p.copy_(b)
        final = tuple(
            da - lr * (hp - hm) / (2 * eps)
            for da, hp, hm in zip(d_alpha, hessian[0], hessian[1], strict=True)
        )
        self._apply(alpha, final)


def _gumbel(alpha: torch.Tensor) -> torch.Tensor:
    """Gumbel(0, 1) noise of α's shape, from torch's global generator (seeded per epoch)."""
    return -torch.empty_like(alpha).exponential_().log()


class Gdas(OneShotMethod):
    """GDAS (Dong & Yang, "Searching for a Robust Neural Architecture in Four GPU Hours", CVPR
    2019): each step samples one op per edge by Gumbel-softmax with a straight-through hard
    one-hot, so only the sampled op runs (the speed), and its gradient reaches α through the
    soft sample. The temperature falls linearly from 10 to 0.1 over the epochs. Weights and α
    each take their own sample (train and validation batches), as in NB201's GDAS."""

    name = "gdas"
    defaults: ClassVar[dict[str, Any]] = {"tau_max": 10.0, "tau_min": 0.1}

    def temperature(self) -> float:
        hi, lo = self.options["tau_max"], self.options["tau_min"]
        return hi - (hi - lo) * self.progress

    def search_path(self) -> Path:
        assert self.alpha is not None
        for _ in range(100):  # NB201's code redraws a sample that overflowed
            soft = F.softmax(
                (F.log_softmax(self.alpha, dim=-1) + _gumbel(self.alpha)) / self.temperature(),
                dim=-1,
            )
            if torch.isfinite(soft).all():
                break
        index = soft.argmax(dim=-1)
        hard = F.one_hot(index, soft.shape[-1]).to(soft) - soft.detach() + soft
        return Path(weights=hard, index=index.tolist())


class Snas(OneShotMethod):
    """SNAS (Xie et al., "SNAS: Stochastic Neural Architecture Search", ICLR 2019): a relaxed
    (soft) Gumbel-softmax sample of every edge's op each step, α and weights trained on one
    objective. Departures: α is updated on the validation batch like the other methods here
    (SNAS uses the training batch for both); the temperature falls geometrically from 1 to 0.03
    over the run (SNAS anneals from 1 over many more steps); no resource constraint."""

    name = "snas"
    defaults: ClassVar[dict[str, Any]] = {"tau_max": 1.0, "tau_min": 0.03}

    def temperature(self) -> float:
        hi, lo = self.options["tau_max"], self.options["tau_min"]
        return hi * (lo / hi) ** self.progress

    def search_path(self) -> Path:
        assert self.alpha is not None
        logits = F.log_softmax(self.alpha, dim=-1) + _gumbel(self.alpha)
        return Path(weights=F.softmax(logits / self.temperature(), dim=-1))


class PcDarts(OneShotMethod):
    """PC-DARTS (Xu et al., "PC-DARTS: Partial Channel Connections for Memory-Efficient
    Architecture Search", ICLR 2020): only 1/K of the channels (K = 4) pass through the mixed
    ops, the rest bypass them, then a channel shuffle; edge normalisation β (softmax over each
    node's incoming edges) scales every edge and enters the DARTS-space derivation. α and β are
    first updated after the warm-up (15 of 50 epochs: 0.3), with arch lr 6e-4. Departure: the
    weights keep DARTS's recipe (PC-DARTS uses batch 256 and lr 0.1)."""

    name = "pc-darts"
    partial = 4
    needs: ClassVar[frozenset[str]] = frozenset({"partial"})
    defaults: ClassVar[dict[str, Any]] = {}
    base_defaults: ClassVar[dict[str, Any]] = {
        **OneShotMethod.base_defaults,
        "arch_lr": 6e-4,
        "warmup": 0.3,
    }

    def __init__(self, supernet: Supernet, options: dict[str, Any], epochs: int, seed: int):
        generator = torch.Generator().manual_seed(seed + 1)
        self.beta = torch.nn.Parameter(1e-3 * torch.randn(supernet.num_edges, generator=generator))
        super().__init__(supernet, options, epochs, seed)

    def arch_parameters(self) -> list[torch.nn.Parameter]:
        return [*super().arch_parameters(), self.beta]

    def edge_weights(self) -> torch.Tensor:
        out = torch.empty_like(self.beta)
        for rows in self.net.node_edges:
            out[list(rows)] = F.softmax(self.beta[list(rows)], dim=0)
        return out

    def search_path(self) -> Path:
        return Path(weights=self.mixing_weights(), edge=self.edge_weights())

    def eval_path(self) -> Path:
        """The derived cell, its edges scaled by β as in the supernet it was derived from."""
        index = self.net.indices_of(self.derive())
        return Path(index=index, edge=self.edge_weights().detach())


class PDarts(OneShotMethod):
    """P-DARTS (Chen et al., "Progressive Differentiable Architecture Search: Bridging the
    Depth Gap between Search and Evaluation", ICCV 2019): the search runs in three stages of
    growing depth while the op space shrinks (each edge keeps its ``keep`` strongest ops by α
    at the end of a stage: DARTS space 8, 5, 3; NB201's 5 ops 5, 4, 2), dropout on the skip op
    rises (0, 0.3, 0.6) and the derived cell keeps at most ``skip_cap`` (2) skip connections
    (the weakest extra ones give way to their edge's next op). Departures: the stages run on
    one supernet at full depth whose first ``depth`` cells per stage are active (a third, two
    thirds, all), so weights and α carry over between stages instead of being rebuilt."""

    name = "p-darts"
    needs: ClassVar[frozenset[str]] = frozenset({"skip_dropout", "depth", "param_free"})
    defaults: ClassVar[dict[str, Any]] = {"skip_cap": 2, "dropout_max": 0.6}

    def __init__(self, supernet: Supernet, options: dict[str, Any], epochs: int, seed: int):
        super().__init__(supernet, options, epochs, seed)
        k = len(supernet.ops)
        self.keep = (k, math.ceil(k * 5 / 8), math.ceil(k * 3 / 8))
        self.mask = torch.zeros(supernet.num_edges, k)  # 0 kept, -inf pruned
        self.stage = 0

    def stage_of(self, epoch: int) -> int:
        return min(2, 3 * epoch // max(1, self.epochs))

    def begin_epoch(self, epoch: int) -> None:
        super().begin_epoch(epoch)
        stage = self.stage_of(epoch)
        while self.stage < stage:  # prune at each stage boundary (also when resuming)
            self.stage += 1
            self._prune(self.keep[self.stage])

    def _prune(self, keep: int) -> None:
        with torch.no_grad():
            logits = (self.alpha + self.mask.to(self.alpha)).detach()
            logits[:, self.net.ops.index("none")] = -math.inf  # none is never kept
            top = logits.topk(keep, dim=1).indices
            mask = torch.full_like(self.mask, -math.inf)
            mask.scatter_(1, top.cpu(), 0.0)
            self.mask = mask

    def mixing_weights(self) -> torch.Tensor:
        assert self.alpha is not None
        return F.softmax(self.alpha + self.mask.to(self.alpha), dim=-1)

    def search_path(self) -> Path:
        depth = self.net.net_options.get("N") or max(1, (self.net.net_options["layers"] - 2) // 3)
        active = math.ceil(depth * (self.stage + 1) / 3)
        dropout = self.options["dropout_max"] * self.stage / 2
        return Path(weights=self.mixing_weights(), skip_dropout=dropout, depth=active)

    def derive(self) -> Any:
        weights = self.mixing_weights().detach().clone()
        skip = self.net.ops.index("skip_connect")
        for _ in range(self.net.num_edges):
            arch = self.net.derive(weights)
            index = self.net.indices_of(arch)
            normal = range(
                self.net.num_edges if self.net.uniform_edges else self.net.num_edges // 2
            )
            skips = [e for e in normal if index[e] == skip]
            if len(skips) <= int(self.options["skip_cap"]):
                return arch
            weakest = min(skips, key=lambda e: float(weights[e, skip]))
            weights[weakest, skip] = 0.0
        return arch

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "mask": self.mask.clone(), "stage": self.stage}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.mask, self.stage = state["mask"], state["stage"]


class BetaDarts(OneShotMethod):
    """β-DARTS (Ye et al., "β-DARTS: Beta-Decay Regularization for Differentiable Architecture
    Search", CVPR 2022): DARTS plus λ·mean over edges of logsumexp(α), the Beta-Decay
    regulariser, which keeps the softmax of α from saturating early (the route to collapse).
    λ rises linearly over the epochs to ``beta_max`` at the last one; by default at the rate of
    the authors' NAS-Bench-201 code, 0.5 per epoch (λ = 50·epoch/100), so a run of E epochs
    ends at 0.5·(E − 1). Measured here (10 epochs, 3 seeds; README, "One-shot search"): an
    end value of 1 delays the collapse without preventing it, none collapsed at the authors'
    rate, and an end value of 50 keeps α too flat to choose well."""

    name = "beta-darts"
    defaults: ClassVar[dict[str, Any]] = {"beta_max": None}
    #: λ added per epoch when ``beta_max`` is not given (the authors' code)
    rate: ClassVar[float] = 0.5

    def regulariser(self) -> torch.Tensor:
        assert self.alpha is not None
        end = self.options["beta_max"]
        if end is None:
            end = self.rate * max(0, self.epochs - 1)
        return float(end) * self.progress * torch.logsumexp(self.alpha, dim=-1).mean()


class DrNas(OneShotMethod):
    """DrNAS (Chen et al., "DrNAS: Dirichlet Neural Architecture Search", ICLR 2021): each
    edge's op weights are a Dirichlet sample with concentration ELU(α) + 1, reparameterised
    (``rsample``) so α learns through it, plus ``reg_scale`` × KL to the uniform Dirichlet(1)
    prior (1e-3, the paper's). The derived op is the largest mean weight. Departure: no
    progressive stage (DrNAS's second stage with partial channels and pruned ops)."""

    name = "drnas"
    defaults: ClassVar[dict[str, Any]] = {"reg_scale": 1e-3}

    def concentration(self) -> torch.Tensor:
        assert self.alpha is not None
        return F.elu(self.alpha) + 1.0

    def mixing_weights(self) -> torch.Tensor:
        c = self.concentration()
        return c / c.sum(dim=-1, keepdim=True)

    def search_path(self) -> Path:
        sample = torch.distributions.Dirichlet(self.concentration()).rsample()
        return Path(weights=sample)

    def regulariser(self) -> torch.Tensor:
        c = self.concentration()
        prior = torch.distributions.Dirichlet(torch.ones_like(c))
        kl = torch.distributions.kl_divergence(torch.distributions.Dirichlet(c), prior)
        return self.options["reg_scale"] * kl.sum()


class DartsMinus(OneShotMethod):
    """DARTS- (Chu et al., "DARTS-: Robustly Stepping out of Performance Collapse Without
    Indicators", ICLR 2021): DARTS with an auxiliary skip connection beside every edge whose
    coefficient falls linearly from 1 to 0, so the searched skip op no longer has to carry the
    residual path that makes it win under plain DARTS."""

    name = "darts-"
    needs: ClassVar[frozenset[str]] = frozenset({"aux_skip"})
    defaults: ClassVar[dict[str, Any]] = {"aux_start": 1.0}

    def aux_skip(self) -> float:
        return self.options["aux_start"] * (1.0 - self.progress)

    def search_path(self) -> Path:
        return Path(weights=self.mixing_weights(), aux_skip=self.aux_skip())


# --- sampling-based ----------------------------------------------------------------------------


class Spos(OneShotMethod):
    """SPOS (Guo et al., "Single Path One-Shot Neural Architecture Search with Uniform
    Sampling", ECCV 2020): each step trains one uniformly sampled path; afterwards a search
    (evolution in the paper, ``search`` here: any strategy of the suite) scores paths with the
    inherited weights (`SupernetEstimator`). BN recalibration per path is replaced by batch
    statistics (see `oneshot.supernet`)."""

    name = "spos"
    gradient = False
    defaults: ClassVar[dict[str, Any]] = {"search": "evolution", "search_budget": 100}

    def train_paths(self, rng: np.random.Generator) -> list[Path]:
        return [Path(index=self.net.sample_index(rng))]

    def arch_step(self, train: Batch, val: Batch, lr: float) -> None:
        return None


class Rsws(Spos):
    """Random search with weight sharing (Li & Talwalkar, "Random Search and Reproducibility
    for Neural Architecture Search", UAI 2019; NB201's RSPS): uniform single-path training, then
    ``search_budget`` random paths scored with the shared weights, the best returned."""

    name = "rsws"
    defaults: ClassVar[dict[str, Any]] = {"search": "random", "search_budget": 100}


class FairNas(Spos):
    """FairNAS (Chu, Zhang & Xu, "FairNAS: Rethinking Evaluation Fairness of Weight Sharing
    Neural Architecture Search", ICCV 2021): strict fairness, each step trains K paths (K = ops
    per edge) built from one random permutation of the ops per edge, so every op of every edge
    is trained exactly once per step; their gradients are summed before one update. Needs a
    space whose every edge chooses among the same ops (NB201)."""

    name = "fairnas"
    defaults: ClassVar[dict[str, Any]] = {"search": "evolution", "search_budget": 100}

    @classmethod
    def check_space(cls, space: str, supernet: type[Supernet]) -> None:
        super().check_space(space, supernet)
        if not supernet.uniform_edges:
            able = ", ".join(name for name, net in _supernets().items() if net.uniform_edges)
            raise ConfigError(
                f"fairnas needs a space whose every edge chooses among the same ops ({able}); "
                f"{space!r} also chooses each node's inputs"
            )

    def __init__(self, supernet: Supernet, options: dict[str, Any], epochs: int, seed: int):
        self.check_space(supernet.space.name, type(supernet))
        super().__init__(supernet, options, epochs, seed)

    def train_paths(self, rng: np.random.Generator) -> list[Path]:
        k = len(self.net.ops)
        perms = [rng.permutation(k) for _ in range(self.net.num_edges)]
        return [Path(index=tuple(int(p[j]) for p in perms)) for j in range(k)]


class Enas(OneShotMethod):
    """ENAS (Pham et al., "Efficient Neural Architecture Search via Parameter Sharing", ICML
    2018): an LSTM controller (`strategies.reinforce.Controller`, hidden 64) samples the path of
    each weight step and is trained by REINFORCE on the sampled path's accuracy on a validation
    batch, with a moving-average baseline (decay 0.99), entropy bonus 1e-4 and Adam (lr 1e-3),
    as NB201 ran it. Departure: one controller update follows every weight step (ENAS
    alternates whole phases). The returned cell is the best of ``derive_samples`` controller
    samples on the validation images."""

    name = "enas"
    gradient = False
    defaults: ClassVar[dict[str, Any]] = {
        "controller_lr": 1e-3,
        "entropy": 1e-4,
        "baseline_decay": 0.99,
        "hidden": 64,
        "derive_samples": 20,
    }

    def __init__(self, supernet: Supernet, options: dict[str, Any], epochs: int, seed: int):
        from nasforge.spaces.decisions import decisions_of
        from nasforge.strategies.reinforce import Controller

        super().__init__(supernet, options, epochs, seed)
        self.decisions = decisions_of(supernet.space, "enas")
        generator = torch.Generator().manual_seed(seed)
        self.controller = Controller(
            self.decisions.choices, "lstm", int(self.options["hidden"]), generator
        )
        self.controller_optimiser = torch.optim.Adam(
            self.controller.parameters(), lr=self.options["controller_lr"]
        )
        self.baseline: float | None = None
        self.rng = np.random.default_rng(seed)

    def _sample(self, rng: np.random.Generator) -> tuple[np.ndarray, Path]:
        sequence = self.controller.sample(rng, 1)[0][0]
        arch = self.decisions.decode([int(v) for v in sequence])
        return sequence, self.net.path_of(arch)

    def train_paths(self, rng: np.random.Generator) -> list[Path]:
        self.rng = rng
        return [self._sample(rng)[1]]

    def arch_step(self, train: Batch, val: Batch, lr: float) -> None:
        sequence, path = self._sample(self.rng)
        x, y = val
        with torch.no_grad():
            reward = float((self.net(x, path).argmax(1) == y).float().mean())
        decay = self.options["baseline_decay"]
        self.baseline = (
            reward if self.baseline is None else decay * self.baseline + (1 - decay) * reward
        )
        logp, entropy = self.controller.log_prob(torch.as_tensor(sequence)[None])
        loss = -(reward - self.baseline) * logp.sum() - self.options["entropy"] * entropy
        self.controller_optimiser.zero_grad(set_to_none=True)
        loss.backward()
        self.controller_optimiser.step()
        self.controller.refresh()

    def derive(self) -> Any:
        return None  # chosen by `oneshot.run` from controller samples (``derive_samples``)

    def sample_archs(self, count: int) -> list[Any]:
        rng = np.random.default_rng(self.seed + 7)
        sequences = self.controller.sample(rng, count)[0]
        return [self.decisions.decode([int(v) for v in s]) for s in sequences]

    def state_dict(self) -> dict[str, Any]:
        return {
            **super().state_dict(),
            "controller": self.controller.state_dict(),
            "controller_optimiser": self.controller_optimiser.state_dict(),
            "baseline": self.baseline,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.controller.load_state_dict(state["controller"])
        self.controller_optimiser.load_state_dict(state["controller_optimiser"])
        self.controller.refresh()
        self.baseline = state["baseline"]


def method_class(name: str) -> type[OneShotMethod]:
    from nasforge.oneshot.registry import METHODS  # it imports the methods' modules

    try:
        return METHODS[name]
    except KeyError:
        raise UnknownNameError("one-shot method", name, METHODS) from None


def make_method(
    name: str, supernet: Supernet, options: dict[str, Any] | None, epochs: int, seed: int
) -> OneShotMethod:
    """The method ``name`` on ``supernet`` with the paper's defaults overridden by ``options``."""
    return method_class(name)(supernet, dict(options or {}), epochs, seed)


def check_options(cls: type[OneShotMethod], options: dict[str, Any]) -> dict[str, Any]:
    """The method's accepted options with their defaults; an unknown key is a one-line error
    that lists them."""
    accepted = {**cls.base_defaults, **cls.defaults}
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise ConfigError(
            f"method {cls.name!r} has no option {', '.join(unknown)}; accepted: "
            + ", ".join(f"{k} (default {v})" for k, v in accepted.items())
        )
    return accepted


def coerce_option(key: str, value: Any, default: Any) -> Any:
    """An option's value as its default's type (command-line options arrive as text)."""
    if isinstance(value, str) and not isinstance(default, str):
        try:
            return type(default)(float(value)) if isinstance(default, int) else float(value)
        except ValueError:
            raise ConfigError(
                f"option {key}={value!r} is not a number; its default is {default!r}"
            ) from None
    return value


def param_free_count(space: Any, arch: Any) -> int:
    """Parameter-free ops of an architecture (NB201: of its 6 edges; DARTS: of the normal
    cell's 8), the quantity collapse drives up; 0 in a space without such ops (mobile)."""
    ops = getattr(arch, "ops", None)
    if ops is None and hasattr(arch, "normal"):
        ops = [op for op, _ in arch.normal]
    return sum(op in PARAMETER_FREE for op in ops or ())


def _supernets() -> dict[str, type[Supernet]]:
    from nasforge.oneshot.supernet import SUPERNETS

    return SUPERNETS
