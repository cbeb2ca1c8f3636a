"""PNAS: Liu et al., "Progressive Neural Architecture Search", ECCV 2018.

Sequential model-based optimisation that grows cells one block at a time, simple to complex:

1. **Level 1**: evaluate the one-block cells (``space.seeds()``); where there are more than
   ``max_seeds``, a seeded uniform sample of ``max_seeds`` of them.
2. Fit the **predictor** on every result so far: an ensemble of small MLPs (the MLP variant of
   the paper's LSTM/MLP ensemble; ``bananas.MLPEnsemble``) on the space's fixed-length
   encoding, which pads cells that have fewer blocks.
3. **Expand** the ``beam`` (the paper's K) best evaluated cells of level b by one block
   (``space.grow``), score every child with the predictor, and evaluate the ``beam`` best
   children not proposed before (and feasible under ``constraint``). Refit; repeat until the
   cells reach the space's full size (``grow`` returns nothing).
4. **Beyond full size** (the budget is not spent): each round scores the neighbours of the
   ``beam`` best full-size cells with the refitted predictor and evaluates the ``beam`` best, so
   the search never runs dry; if every neighbour was already proposed, a random architecture.

A space is searchable when it offers ``seeds()``, ``grow(arch)`` and ``num_blocks(arch)``
(``NASNetSpace`` does); ``seeds``/``grow`` that accept ``limit=`` and ``rng=`` keywords draw their
sample themselves, without listing a huge expansion first.

Asynchronous use: the asks of one level come from a queue; when it is empty and results of the
level are still pending, ``ask`` raises ``NoCandidateYet`` (the next level needs them all). Ask
cost is dominated by the refit and scoring at a level change: at most ``max_children`` children
are scored (sampled evenly from the parents' expansions when there are more), which keeps an ask
well under a second at a few hundred observations (NASNet, 5 blocks, 13 ops, 300 observations:
at most 0.4 s tied and 0.5 s untied on one busy CPU core, 12 to 17 ms on average).

Differences from the paper: ``beam`` defaults to 16 rather than 256, and at most ``max_seeds``
(32) one-block cells are evaluated (the paper evaluated every one of its space), so the full
cell size is reached after about ``max_seeds + (blocks - 1) * beam`` evaluations; the predictor
is an MLP ensemble only; the children of the top ``beam`` cells of a level are expanded (the
paper expands all K evaluated cells, which is the same set at levels above 1). Inputs of the
encoding that no training cell has set (the new block's position) are zeroed before scoring:
the ensemble's weights for them are untrained noise.
"""

from __future__ import annotations

import inspect
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from nasforge.core import Arch, Candidate, Result
from nasforge.errors import ConfigError, UnknownNameError
from nasforge.spaces.base import SearchSpace
from nasforge.strategies.bananas import MLPEnsemble
from nasforge.strategies.base import Constraint, NoCandidateYet, SeededStrategy
from nasforge.strategies.model_based import check_int, one_blas_thread

GROWTH_METHODS = ("seeds", "grow", "num_blocks")


def _accepts_limit(method: Callable[..., object]) -> bool:
    try:
        parameters = inspect.signature(method).parameters
    except (TypeError, ValueError):  # pragma: no cover - builtins without a signature
        return False
    return "limit" in parameters and "rng" in parameters


class PNAS(SeededStrategy):
    """Progressive NAS (see the module docstring). Options:

    * ``beam``: K, the cells expanded and the children evaluated per level (16);
    * ``max_seeds``: at most this many one-block cells are evaluated, a uniform sample (32);
    * ``max_children``: at most this many children are scored by the predictor per level (2000);
    * ``encoding``: the space encoding(s) the predictor reads, one name or several concatenated;
      ``"auto"`` (default) is ``("blocks", "onehot")`` where the space offers the position-free
      ``blocks`` encoding (NASNet), else ``"onehot"``;
    * ``members``, ``layers``, ``width``, ``epochs``, ``lr``: the MLP ensemble (5 networks of 2
      hidden layers of 20, 200 full-batch Adam steps at 0.01 on the mean absolute error, refitted
      from scratch at every level).
    * ``predictor``: a name from ``nasforge.estimators.predictors`` that replaces the MLP
      ensemble (its mean ranks the children; it reads ``encoding`` when that names one encoding,
      else its own default), and ``scorer``: an arch scorer whose proxy scores become its
      features (with no predictor named, the ensemble as the ``bananas`` predictor).
    """

    name = "pnas"

    def __init__(
        self,
        space: SearchSpace,
        seed: int = 0,
        constraint: Constraint | None = None,
        *,
        beam: int = 16,
        max_seeds: int = 32,
        max_children: int = 2000,
        encoding: str | Sequence[str] = "auto",
        members: int = 5,
        layers: int = 2,
        width: int = 20,
        epochs: int = 200,
        lr: float = 0.01,
        predictor: str | None = None,
        scorer: Any = None,
    ):
        missing = [m for m in GROWTH_METHODS if not callable(getattr(space, m, None))]
        if missing:
            raise ConfigError(
                f"pnas needs a space whose cells grow block by block (methods seeds(), grow(), "
                f"num_blocks()); space {getattr(space, 'name', space)!r} lacks "
                f"{', '.join(m + '()' for m in missing)}"
            )
        super().__init__(space, seed, constraint)
        self.beam = check_int("beam", beam, 1)
        self.max_seeds = check_int("max_seeds", max_seeds, 1)
        self.max_children = check_int("max_children", max_children, 1)
        self.ensemble = MLPEnsemble(members, layers, width, epochs, lr)
        options = {"members": members, "layers": layers, "width": width, "epochs": epochs}
        options["lr"] = lr
        self.encodings = self._resolve_encoding(encoding)
        self.level = 0  # number of blocks of the cells being evaluated; 0 before the seeds
        self.refining = False  # past full size: rounds around the best full-size cells
        self.queue: deque[Arch] = deque()
        self.pending: dict[Arch, Arch] = {}  # canonical -> asked, not told yet
        self.archs: list[Arch] = []  # told, in order
        self.values: list[float] = []
        self._codes: dict[Arch, np.ndarray] = {}
        self.surrogate = self._make_surrogate(predictor, scorer, seed, encoding, options)

    def _make_surrogate(
        self,
        predictor: str | None,
        scorer: Any,
        seed: int,
        encoding: str | Sequence[str],
        options: dict[str, Any],
    ) -> Any:
        """The named predictor, or None (the MLP ensemble of the paper's variant)."""
        if predictor is None and scorer is None:
            return None
        from nasforge.estimators.predictors.base import make_predictor, predictor_class

        if predictor is None:  # a proxy for the strategy's own model: the same MLP ensemble
            predictor = "bananas"
            kwargs: dict[str, Any] = options
        else:
            if not isinstance(predictor, str):
                raise ConfigError(f"predictor must be a predictor's name, got {predictor!r}")
            kwargs = {}
        graph = predictor_class(predictor).default_encoding is None
        single = isinstance(encoding, str) and encoding != "auto"
        chosen = encoding if single and not graph else None
        return make_predictor(
            predictor, self.space, encoding=chosen, scorer=scorer, seed=seed, **kwargs
        )

    def _resolve_encoding(self, encoding: str | Sequence[str]) -> tuple[str, ...]:
        probe = self.space.sample(np.random.default_rng(0))
        if encoding == "auto":
            try:
                self.space.encode(probe, "blocks")
            except UnknownNameError:
                return ("onehot",)
            return ("blocks", "onehot")
        names = (encoding,) if isinstance(encoding, str) else tuple(encoding)
        if not names:
            raise ConfigError("encoding must name at least one of the space's encodings")
        for name in names:
            self.space.encode(probe, name)  # an unknown encoding fails now, naming the accepted
        return names

    # the protocol -----------------------------------------------------------------------

    def ask(self) -> Candidate:
        for _ in range(3):  # a refill that finds nothing fresh moves on to the next stage
            while self.queue:
                arch = self.queue.popleft()
                if self._fresh(arch):
                    return self._propose(arch)
            if self.pending:
                raise NoCandidateYet(
                    f"pnas: {len(self.pending)} result(s) of level {self.level} pending; the "
                    "next level is chosen from all of them"
                )
            self._refill()
        return self._propose(self.sample_new(), seen=True)

    def tell(self, candidate: Candidate, result: Result) -> None:
        super().tell(candidate, result)
        self.pending.pop(self.space.canonical(candidate.arch), None)
        self.archs.append(candidate.arch)
        self.values.append(float(result.objective))

    def tell_failure(self, candidate: Candidate, reason: str) -> None:
        super().tell_failure(candidate, reason)
        self.pending.pop(self.space.canonical(candidate.arch), None)

    # stages -------------------------------------------------------------------------------

    def _refill(self) -> None:
        """Queue the next level's (or refinement round's) candidates, best predicted first."""
        if self.level == 0:
            seeds = self._capped(self.space.seeds, (), self.max_seeds)
            self.queue.extend(seeds[i] for i in self.rng.permutation(len(seeds)))
            self.level = 1
            return
        if not self.refining:
            parents = self._top(self.level) or self._top(None)
            children: list[Arch] = []
            share = max(1, self.max_children // max(1, len(parents)))
            for parent in parents:
                children += self._capped(self.space.grow, (parent,), share)
            if children:
                self.queue.extend(self._best(children))
                self.level += 1
                return
            self.refining = True
        self.queue.extend(self._best(self._around_best()))

    def _around_best(self) -> list[Arch]:
        """Neighbours of the ``beam`` best cells of the largest size told (sampled if many)."""
        if not self.archs:
            return []
        size = max(self.space.num_blocks(a) for a in self.archs)
        parents = self._top(size)
        share = max(1, self.max_children // len(parents))
        pool: list[Arch] = []
        for parent in parents:
            near = self.space.neighbours(parent)
            if len(near) > share:
                near = [near[i] for i in np.sort(self.rng.choice(len(near), share, replace=False))]
            pool += near
        return pool

    def _best(self, children: list[Arch]) -> list[Arch]:
        """The ``beam`` fresh, feasible children with the highest predicted objective."""
        unique = list(dict.fromkeys(children))
        fresh = [a for a in unique if self.space.canonical(a) not in self.seen.keys]
        if not fresh:
            return []
        order = self._rank(fresh)
        picked: list[Arch] = []
        keys: set[Arch] = set()
        for i in order:
            arch = fresh[i]
            key = self.space.canonical(arch)
            if key in keys or not self.feasible(arch):
                continue
            picked.append(arch)
            keys.add(key)
            if len(picked) == self.beam:
                break
        return picked

    def _rank(self, archs: list[Arch]) -> np.ndarray:
        """Indices of ``archs``, highest ensemble-mean prediction first (random before 2 data)."""
        if len(self.values) < 2:
            return self.rng.permutation(len(archs))
        if self.surrogate is not None:
            self.surrogate.fit(self.archs, np.asarray(self.values))
            score, _ = self.surrogate.predict(archs)
            return np.argsort(-score, kind="stable")
        X_train = self._encode(self.archs)
        X = np.stack([self._encode_one(a) for a in archs])
        # inputs never seen in training keep random first-layer weights; read them as absent
        X[:, ~np.any(X_train != 0, axis=0)] = 0.0
        with one_blas_thread():
            self.ensemble.fit(X_train, np.asarray(self.values), self.rng)
            score = self.ensemble.predict(X).mean(axis=0)
        return np.argsort(-score, kind="stable")

    # helpers ------------------------------------------------------------------------------

    def _top(self, blocks: int | None) -> list[Arch]:
        """The ``beam`` best told cells with ``blocks`` blocks (any size if None), best first."""
        told = [
            (value, i)
            for i, (arch, value) in enumerate(zip(self.archs, self.values, strict=True))
            if blocks is None or self.space.num_blocks(arch) == blocks
        ]
        told.sort(key=lambda pair: (-pair[0], pair[1]))
        return [self.archs[i] for _, i in told[: self.beam]]

    def _capped(self, method: Callable[..., list[Arch]], args: tuple, limit: int) -> list[Arch]:
        """``method(*args)``, at most ``limit`` of its answers drawn uniformly (in its order)."""
        if _accepts_limit(method):
            return list(method(*args, limit=limit, rng=self.rng))
        out = list(method(*args))
        if len(out) <= limit:
            return out
        return [out[i] for i in np.sort(self.rng.choice(len(out), limit, replace=False))]

    def _encode_one(self, arch: Arch) -> np.ndarray:
        parts = [np.asarray(self.space.encode(arch, kind), dtype=float) for kind in self.encodings]
        return np.concatenate(parts)

    def _encode(self, archs: Sequence[Arch]) -> np.ndarray:
        rows = []
        for arch in archs:
            code = self._codes.get(arch)
            if code is None:
                code = self._codes[arch] = self._encode_one(arch)
            rows.append(code)
        return np.stack(rows)

    def _fresh(self, arch: Arch) -> bool:
        return self.space.canonical(arch) not in self.seen.keys and self.feasible(arch)

    def _propose(self, arch: Arch, seen: bool = False) -> Candidate:
        if not seen:
            self.seen.add(arch)
        self.pending[self.space.canonical(arch)] = arch
        return Candidate(arch)
