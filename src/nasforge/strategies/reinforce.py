"""Policy-gradient search: REINFORCE (Williams 1992) as in NAS-RL (Zoph & Le, ICLR 2017) and the
NAS-Bench-201 REINFORCE baseline, and PPO (Schulman et al. 2017) with the same controller.

An architecture is a sequence of categorical decisions (NB201: 6 edges, 5 ops each). A
controller samples the sequence one decision at a time; after each result it is trained to make
good sequences likelier:

* ``algorithm="reinforce"``: loss = -(reward - baseline) * log p(sequence), the baseline an
  exponential moving average of rewards (``baseline_decay``, 0.9 as in NB201's baseline), one
  Adam step every ``batch_size`` results (1: NB201's per-sample update);
* ``algorithm="ppo"``: the clipped surrogate min(ratio * A, clip(ratio, 1 - eps, 1 + eps) * A)
  with ratio = p_now / p_when_sampled, ``ppo_epochs`` Adam steps on each batch of
  ``batch_size`` results (``PPO`` below is the same class named "ppo").

Advantages are divided by the standard deviation of the rewards told so far, so the learning
rate and the entropy bonus (``entropy``, added to the objective to keep the policy from
collapsing onto cells already proposed) do not depend on the objective's units. Defaults:
Adam with ``lr`` 0.01 (NATS-Bench's REINFORCE script), ``hidden`` 32, ``entropy`` 0.01; PPO:
batches of 5, 4 epochs, ``clip`` 0.2 (Schulman et al.). The entropy weight and PPO batch were
chosen on seeds 1000-1029 of the NB201 tables, not on the seeds reported.

Controllers: ``"lstm"`` (default): an LSTM cell whose input at step t embeds decision t-1 and
whose step-t head gives decision t's logits (autoregressive, Zoph & Le); ``"independent"``: one
table of logits per decision (the policy of NB201's baseline). Parameters start uniform in
[-0.1, 0.1] from a torch.Generator seeded by ``seed``, sampling uses the strategy's numpy
generator, and the global RNGs are never touched, so runs are reproducible.

Asynchronous workers: each asked candidate keeps its decision sequence (and, for PPO, its
log-probability at sampling time) until its result arrives; the update uses the told reward with
that sequence. A sequence that is infeasible (``constraint``) or isomorphic to one already
proposed is resampled. A failed trial (``tell_failure``) is dropped: no reward, no gradient.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from nasforge.core import Candidate, Result
from nasforge.errors import ConfigError
from nasforge.spaces.base import SearchSpace
from nasforge.spaces.decisions import decisions_of
from nasforge.strategies.base import Constraint, SeededStrategy

ALGORITHMS = ("reinforce", "ppo")
CONTROLLERS = ("lstm", "independent")
#: sequences in the first controller pass of an ask (each further pass doubles it): a pass costs
#: about the same for 1 or 64 sequences, and redraws (isomorphic or infeasible cells) are common
#: once the policy has converged
SAMPLE_BATCH = 8


# --- the controller ------------------------------------------------------------------------------


class Controller(nn.Module):
    """A policy over decision sequences: autoregressive LSTM or independent logits.

    All decisions share one output layer over the concatenated options, each step masked to its
    own slice, so scoring a batch of sequences is a handful of tensor operations (fast on CPU).
    """

    def __init__(self, choices: Sequence[int], kind: str, hidden: int, generator: torch.Generator):
        super().__init__()
        self.choices, self.kind = tuple(choices), kind
        steps, total = len(self.choices), sum(self.choices)
        self.register_buffer("offsets", torch.tensor([0, *np.cumsum(self.choices)[:-1]]))
        mask = torch.full((steps, total), -1e9)  # finite: 0 * mask stays 0 in the entropy
        for t, start in enumerate(self.offsets.tolist()):
            mask[t, start : start + self.choices[t]] = 0.0
        self.register_buffer("mask", mask)
        # torch's default init draws from the global RNG: restore it, then init from `generator`
        with torch.random.fork_rng(devices=[]):
            if kind == "lstm":
                self.start = nn.Parameter(torch.empty(1, 1, hidden))
                self.embed = nn.Embedding(total, hidden)  # the option of decision t-1
                self.lstm = nn.LSTM(hidden, hidden, batch_first=True)
                self.head = nn.Linear(hidden, total)
            else:
                self.table = nn.Parameter(torch.empty(steps, total))
        with torch.no_grad():
            for p in self.parameters():
                nn.init.uniform_(p, -0.1, 0.1, generator=generator)
        self.refresh()

    def refresh(self) -> None:
        """Call after changing the parameters: sampling reads a numpy copy of them."""
        self._weights: dict[str, np.ndarray] | None = None

    def _numpy_weights(self) -> dict[str, np.ndarray]:
        if getattr(self, "_weights", None) is None:
            self._weights = {k: v.detach().double().numpy() for k, v in self.state_dict().items()}
        return self._weights  # type: ignore[return-value]

    def sample(self, rng: np.random.Generator, count: int) -> tuple[np.ndarray, np.ndarray]:
        """``count`` sequences drawn from the policy with ``rng``, and their log-probabilities.

        The same network as ``log_prob``, run in numpy: a torch call costs more than the whole
        computation at this size, and asking is on the search's critical path.
        """
        w = self._numpy_weights()
        steps = len(self.choices)
        sequences = np.zeros((count, steps), dtype=np.int64)
        logp = np.zeros(count)
        rows = np.arange(count)
        if self.kind == "lstm":
            x = np.repeat(w["start"][0], count, axis=0)
            h = c = np.zeros_like(x)
        for t in range(steps):
            lo, hi = int(self.offsets[t]), int(self.offsets[t]) + self.choices[t]
            if self.kind == "lstm":
                gates = x @ w["lstm.weight_ih_l0"].T + h @ w["lstm.weight_hh_l0"].T
                gates += w["lstm.bias_ih_l0"] + w["lstm.bias_hh_l0"]
                i, f, g, o = np.split(gates, 4, axis=1)
                c = _sigmoid(f) * c + _sigmoid(i) * np.tanh(g)
                h = _sigmoid(o) * np.tanh(c)
                logits = h @ w["head.weight"][lo:hi].T + w["head.bias"][lo:hi]
            else:
                logits = np.repeat(w["table"][t : t + 1, lo:hi], count, axis=0)
            logits = logits - logits.max(axis=1, keepdims=True)
            logps = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
            cumulative = np.cumsum(np.exp(logps), axis=1)
            draws = rng.random(count)[:, None] * cumulative[:, -1:]
            choice = np.minimum((cumulative < draws).sum(axis=1), self.choices[t] - 1)
            sequences[:, t], logp = choice, logp + logps[rows, choice]
            if self.kind == "lstm":
                x = w["embed.weight"][choice + lo]
        return sequences, logp

    def log_prob(self, sequences: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Log-probabilities (batch,) of given sequences (batch, steps), and mean entropy."""
        batch, steps = sequences.shape
        index = sequences + self.offsets
        if self.kind == "lstm":
            previous = self.embed(index[:, :-1])
            x = torch.cat([self.start.expand(batch, 1, -1), previous], dim=1)
            logits = self.head(self.lstm(x)[0]) + self.mask
        else:
            logits = (self.table + self.mask).expand(batch, steps, -1)
        logps = torch.log_softmax(logits, dim=-1)
        logp = logps.gather(2, index.unsqueeze(2)).squeeze(2).sum(1)
        entropy = -(logps.exp() * logps).sum(-1).sum(-1).mean()
        return logp, entropy


@contextlib.contextmanager
def _one_thread() -> Iterator[None]:
    """Run torch single-threaded, then restore the setting: these tensors are tiny, and on a
    busy machine starting OpenMP threads costs ~100x the computation (0.1 s per update)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * x))


# --- the strategy --------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Sample:
    sequence: tuple[int, ...]
    logp: float  # at sampling time (PPO's old policy)


class Reinforce(SeededStrategy):
    name = "reinforce"

    def __init__(
        self,
        space: SearchSpace,
        seed: int = 0,
        constraint: Constraint | None = None,
        algorithm: str = "reinforce",
        controller: str = "lstm",
        hidden: int = 32,
        lr: float = 0.01,
        baseline_decay: float = 0.9,
        entropy: float = 0.01,
        batch_size: int | None = None,
        ppo_epochs: int = 4,
        clip: float = 0.2,
    ):
        if algorithm not in ALGORITHMS:
            raise ConfigError(f"unknown algorithm {algorithm!r}; accepted: {', '.join(ALGORITHMS)}")
        if controller not in CONTROLLERS:
            raise ConfigError(
                f"unknown controller {controller!r}; accepted: {', '.join(CONTROLLERS)}"
            )
        batch_size = batch_size or (1 if algorithm == "reinforce" else 5)
        checks = (
            ("hidden", hidden, hidden >= 1, ">= 1"),
            ("lr", lr, lr > 0, "> 0"),
            ("baseline_decay", baseline_decay, 0 <= baseline_decay < 1, "in [0, 1)"),
            ("entropy", entropy, entropy >= 0, ">= 0"),
            ("batch_size", batch_size, batch_size >= 1, ">= 1"),
            ("ppo_epochs", ppo_epochs, ppo_epochs >= 1, ">= 1"),
            ("clip", clip, clip > 0, "> 0"),
        )
        for label, value, ok, accepted in checks:
            if not ok:
                raise ConfigError(f"{algorithm}: {label} must be {accepted}, got {value!r}")
        super().__init__(space, seed, constraint)
        if algorithm == "ppo":
            self.name = "ppo"
        self.decisions = decisions_of(space, f"strategy {self.name!r}")
        self.algorithm = algorithm
        self.batch_size = batch_size
        self.ppo_epochs = ppo_epochs
        self.clip = clip
        self.baseline_decay = baseline_decay
        self.entropy_weight = entropy
        generator = torch.Generator().manual_seed(seed)
        self.controller = Controller(self.decisions.choices, controller, hidden, generator)
        self.optimizer = torch.optim.Adam(self.controller.parameters(), lr=lr, foreach=True)
        self.baseline: float | None = None
        self.rewards: list[float] = []
        self.in_flight: dict[Candidate, _Sample] = {}
        self.buffer: list[tuple[_Sample, float]] = []  # told, not yet learned from
        self.updates = 0

    # asking ---------------------------------------------------------------------------------

    def ask(self) -> Candidate:
        drawn, count = 0, SAMPLE_BATCH
        while drawn < self.max_redraws:  # batches of 8, 16, 32 ...: a peaked policy needs more
            sequences, logps = self.controller.sample(self.rng, count)
            drawn, count = drawn + count, 2 * count
            for sequence, logp in zip(sequences.tolist(), logps.tolist(), strict=True):
                arch = self.decisions.decode(sequence)
                if self.feasible(arch) and arch not in self.seen:
                    self.seen.add(arch)
                    return self._track(Candidate(arch), sequence, logp)
        # the policy keeps proposing known or infeasible cells: fall back to a uniform draw
        arch = self.sample_new()
        sequence = list(self.decisions.encode(arch))
        with torch.no_grad(), _one_thread():
            logp = float(self.controller.log_prob(torch.tensor([sequence]))[0][0])
        return self._track(Candidate(arch), sequence, logp)

    def _track(self, candidate: Candidate, sequence: Sequence[int], logp: float) -> Candidate:
        self.in_flight[candidate] = _Sample(tuple(sequence), logp)
        return candidate

    # telling --------------------------------------------------------------------------------

    def tell(self, candidate: Candidate, result: Result) -> None:
        super().tell(candidate, result)
        sample = self.in_flight.pop(candidate, None)
        if sample is None:  # not asked by this strategy (e.g. seeded by hand): learn from it too
            sample = _Sample(self.decisions.encode(candidate.arch), float("nan"))
        self.buffer.append((sample, result.objective))
        if len(self.buffer) >= self.batch_size:
            with _one_thread():
                self._update()

    def tell_failure(self, candidate: Candidate, reason: str) -> None:
        super().tell_failure(candidate, reason)
        self.in_flight.pop(candidate, None)

    def _advantages(self, rewards: list[float]) -> torch.Tensor:
        """(reward - moving-average baseline) / std of all rewards so far; baseline updated."""
        advantages = []
        for reward in rewards:
            if self.baseline is None:
                self.baseline = reward
            advantages.append(reward - self.baseline)
            self.baseline = self.baseline_decay * self.baseline + (1 - self.baseline_decay) * reward
            self.rewards.append(reward)
        scale = float(np.std(self.rewards)) if len(self.rewards) > 1 else 0.0
        return torch.tensor(advantages, dtype=torch.float32) / (scale if scale > 1e-8 else 1.0)

    def _update(self) -> None:
        samples = [s for s, _ in self.buffer]
        advantages = self._advantages([r for _, r in self.buffer])
        self.buffer = []
        sequences = torch.tensor([s.sequence for s in samples])
        if self.algorithm == "reinforce":
            logp, entropy = self.controller.log_prob(sequences)
            self._step(-(advantages * logp).mean() - self.entropy_weight * entropy)
            return
        old = torch.tensor([s.logp for s in samples])
        for _ in range(self.ppo_epochs):
            logp, entropy = self.controller.log_prob(sequences)
            ratio = torch.exp(logp - torch.where(torch.isnan(old), logp.detach(), old))
            clipped = torch.clamp(ratio, 1 - self.clip, 1 + self.clip)
            surrogate = torch.minimum(ratio * advantages, clipped * advantages)
            self._step(-surrogate.mean() - self.entropy_weight * entropy)

    def _step(self, loss: torch.Tensor) -> None:
        self.optimizer.zero_grad()
        loss.backward()
        self.optimizer.step()
        self.controller.refresh()
        self.updates += 1


class PPO(Reinforce):
    """``Reinforce(algorithm="ppo")`` under its own name, for registries and stored runs."""

    name = "ppo"

    def __init__(self, space: SearchSpace, seed: int = 0, **options: object):
        options.setdefault("algorithm", "ppo")
        super().__init__(space, seed, **options)  # type: ignore[arg-type]
