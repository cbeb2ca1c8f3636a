"""Shared plumbing of surrogate-model strategies (BO, BANANAS, TPE): the random initial design,
cached encodings, the pending set, the candidate pool around the incumbents (every neighbour of
the best few architectures, random mutations of the top ten, uniform samples: searching the
acquisition by local moves is what BANANAS found best on NAS benchmarks) and the pick of the
first fresh, feasible candidate. Model code runs with one BLAS thread: multi-threaded BLAS made
the small factorisations several times slower on a busy 2-core machine.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from nasforge.core import Arch, Candidate, Result
from nasforge.errors import ConfigError
from nasforge.spaces.base import SearchSpace
from nasforge.strategies.base import Constraint, SeededStrategy


def check_int(name: str, value: int, low: int) -> int:
    """``value`` as an int, or a ConfigError naming the option and its lower bound."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < low:
        raise ConfigError(f"{name} must be an int >= {low}, got {value!r}")
    return int(value)


@functools.cache
def _blas_controller() -> Any:
    try:
        from threadpoolctl import ThreadpoolController
    except ImportError:  # pragma: no cover - scikit-learn brings it
        return None
    return ThreadpoolController()


def one_blas_thread() -> contextlib.AbstractContextManager[Any]:
    """BLAS limited to one thread while a model is fitted and queried.

    The matrices here are tiny (100 x 100), and a multi-threaded BLAS spends more time waking
    threads than computing: on a shared 2-core machine the triangular solve of a BO ask (100 x
    100, 270 right-hand sides) took 8 to 24 ms with two OpenBLAS threads and 0.2 ms with one.
    """
    controller = _blas_controller()
    if controller is None:  # pragma: no cover
        return contextlib.nullcontext()
    return controller.limit(limits=1, user_api="blas")


class ModelBasedStrategy(SeededStrategy):
    """Shared plumbing of surrogate-model strategies (BO, BANANAS, TPE).

    ``initial`` asks are uniform samples (the initial design); after that each ask scores the
    pool from ``candidates()`` with ``rank`` and proposes the best fresh, feasible one.
    Subclasses implement ``rank(candidates, X) -> order`` (``X``: the candidates' rows of
    ``encode_one``) and may replace ``candidates`` or ``encode_one``. Only ``result.objective``
    of told results is used; a failed trial is never proposed again and not modelled.
    """

    def __init__(
        self,
        space: SearchSpace,
        seed: int = 0,
        constraint: Constraint | None = None,
        *,
        encoding: str = "onehot",
        initial: int = 10,
        local: int = 5,
        mutations: int = 50,
        random_candidates: int = 100,
        predictor: str | None = None,
        scorer: Any = None,
    ):
        super().__init__(space, seed, constraint)
        self.encoding = encoding
        self.initial = check_int("initial", initial, 1)
        self.local = check_int("local", local, 0)
        self.mutations = check_int("mutations", mutations, 0)
        self.random_candidates = check_int("random_candidates", random_candidates, 0)
        if self.local + self.mutations + self.random_candidates == 0:
            raise ConfigError("local, mutations and random_candidates cannot all be 0")
        self.encode_one(space.sample(np.random.default_rng(0)))  # an unknown encoding fails now
        self.archs: list[Arch] = []  # told, in order
        self.values: list[float] = []  # their objectives
        self.pending: dict[Arch, Arch] = {}  # canonical -> asked arch, not told yet
        self._told: set[Arch] = set()
        self._codes: dict[Arch, np.ndarray] = {}
        self._canonical: dict[Arch, Arch] = {}
        self.surrogate = self._make_surrogate(predictor, scorer, seed)

    def _make_surrogate(self, predictor: str | None, scorer: Any, seed: int) -> Any:
        """The named predictor (None when neither a predictor nor a scorer is given)."""
        if scorer is not None and predictor is None:
            predictor = self.default_predictor
            if predictor is None:
                raise ConfigError(f"strategy {self.name!r} cannot use a scorer (proxy)")
        if predictor is None:
            return None
        from nasforge.estimators.predictors.base import make_predictor, predictor_class

        if not isinstance(predictor, str):
            raise ConfigError(f"predictor must be a predictor's name, got {predictor!r}")
        graph = predictor_class(predictor).default_encoding is None
        encoding = None if graph else self.encoding
        return make_predictor(predictor, self.space, encoding=encoding, scorer=scorer, seed=seed)

    # the protocol -----------------------------------------------------------------------

    def ask(self) -> Candidate:
        asked = len(self.archs) + len(self.pending) + len(self.failures)
        if asked < self.initial or not self.archs:
            arch = self.sample_new()
        else:
            pool = self.candidates()
            with one_blas_thread():
                order = self.rank(pool, self.encode_all(pool))
            arch = self._first_fresh(pool[i] for i in order)
            # keep the encodings that the next ask will likely need again: memory stays bounded
            keep = self._told | set(pool)
            self._codes = {a: code for a, code in self._codes.items() if a in keep}
        self.pending[self._canon(arch)] = arch
        return Candidate(arch)

    def tell(self, candidate: Candidate, result: Result) -> None:
        super().tell(candidate, result)
        self.pending.pop(self._canon(candidate.arch), None)
        self.archs.append(candidate.arch)
        self.values.append(float(result.objective))
        self._told.add(candidate.arch)

    def tell_failure(self, candidate: Candidate, reason: str) -> None:
        super().tell_failure(candidate, reason)
        self.pending.pop(self._canon(candidate.arch), None)
        self._told.add(candidate.arch)

    # for subclasses -----------------------------------------------------------------------

    def rank(self, candidates: Sequence[Arch], X: np.ndarray) -> np.ndarray:
        """Indices of ``candidates`` (encoded as the rows of ``X``), most promising first."""
        raise NotImplementedError  # pragma: no cover - abstract

    def predict_pool(self, candidates: Sequence[Arch]) -> tuple[np.ndarray, np.ndarray] | None:
        """The surrogate predictor, fitted on every told result, on ``candidates``: (mean, std);
        None when there is no predictor or fewer than the 2 results a fit needs."""
        if self.surrogate is None or len(self.archs) < 2:
            return None
        self.surrogate.fit(self.archs, np.asarray(self.values))
        return self.surrogate.predict(candidates)

    def encode_all(self, archs: Iterable[Arch]) -> np.ndarray:
        """The encodings of ``archs`` as rows (cached: pools overlap from one ask to the next)."""
        rows = []
        for arch in archs:
            code = self._codes.get(arch)
            if code is None:
                code = self._codes[arch] = self.encode_one(arch)
            rows.append(code)
        return np.stack(rows)

    def encode_one(self, arch: Arch) -> np.ndarray:
        """The vector the model sees for ``arch`` (``space.encode(arch, self.encoding)``)."""
        return np.asarray(self.space.encode(arch, self.encoding), dtype=float)

    def top(self, k: int) -> list[Arch]:
        """The ``k`` best told architectures, best first (ties: the earlier told)."""
        order = np.argsort(-np.asarray(self.values), kind="stable")[:k]
        return [self.archs[i] for i in order]

    def candidates(self) -> list[Arch]:
        """The pool the acquisition is maximised over, without told archs or exact repeats.

        Every neighbour of the ``local`` best, ``mutations`` children of one or two random edits
        of the ten best, and ``random_candidates`` uniform samples. Isomorphic twins of seen
        architectures are skipped lazily when the ranked pool is walked (``_first_fresh``).
        """
        pool: dict[Arch, None] = {}
        for parent in self.top(self.local):
            pool.update(dict.fromkeys(self.space.neighbours(parent)))
        parents = self.top(10)
        for _ in range(self.mutations):
            child = self.space.mutate(parents[int(self.rng.integers(len(parents)))], self.rng)
            if self.rng.random() < 0.5:
                child = self.space.mutate(child, self.rng)
            pool[child] = None
        for _ in range(self.random_candidates):
            pool[self.space.sample(self.rng)] = None
        fresh = [a for a in pool if a not in self._told and a not in self.pending.values()]
        return fresh or [self.space.sample(self.rng)]

    # internals ----------------------------------------------------------------------------

    def _canon(self, arch: Arch) -> Arch:
        key = self._canonical.get(arch)
        if key is None:
            key = self._canonical[arch] = self.space.canonical(arch)
        return key

    def _first_fresh(self, ranked: Iterable[Arch]) -> Arch:
        """The first feasible architecture of ``ranked`` not proposed before (or a random one)."""
        for arch in ranked:
            if self._canon(arch) not in self.seen.keys and self.feasible(arch):
                return self.propose(lambda arch=arch: arch)
        return self.sample_new()


# --- the Gaussian process -------------------------------------------------------------------
