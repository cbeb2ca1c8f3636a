"""The search-space protocol: what can be searched, and how to turn a choice into a network."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol, runtime_checkable

import numpy as np
import torch

from nasforge.core import Arch


@runtime_checkable
class SearchSpace(Protocol):
    """A set of architectures with the operations every strategy needs.

    Strategies only use this protocol, so any space that implements it can be searched by any
    strategy. ``enumerate``/``size`` are optional (small spaces only). A space that is a fixed
    vector of categorical decisions gets every move from ``spaces.vector.DecisionVectorSpace``;
    ``tests/spaces/test_space_properties.py`` holds every space to the promises below.
    """

    name: str

    def sample(self, rng: np.random.Generator) -> Arch:
        """A uniformly random architecture."""

    def mutate(self, arch: Arch, rng: np.random.Generator) -> Arch:
        """A random valid architecture one edit away from ``arch`` that is a different network:
        ``canonical(mutate(a)) != canonical(a)`` (a twin would be skipped as a duplicate)."""

    def neighbours(self, arch: Arch) -> list[Arch]:
        """The valid architectures one edit away, in a deterministic order, one per canonical
        class and never ``arch``'s own."""

    def encode(self, arch: Arch, kind: str = "onehot") -> np.ndarray:
        """A fixed-length float vector (for predictors and Bayesian optimisation)."""

    def to_string(self, arch: Arch) -> str:
        """The benchmark's own string form where one exists; round-trips with from_string."""

    def from_string(self, text: str) -> Arch:
        """Parse a string form; raises InvalidArchError naming what is accepted."""

    def canonical(self, arch: Arch) -> Arch:
        """One representative per isomorphism class (cells that differ only in ways that do not
        change the network), so strategies can avoid evaluating twins."""

    def build(self, arch: Arch, **net: object) -> torch.nn.Module:
        """A real, trainable PyTorch network for ``arch``."""


@runtime_checkable
class EnumerableSpace(SearchSpace, Protocol):
    """A space small enough to list (NAS-Bench-201: 15,625 cells)."""

    def size(self) -> int: ...

    def enumerate(self) -> Iterator[Arch]: ...
