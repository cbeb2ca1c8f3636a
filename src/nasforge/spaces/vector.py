"""Spaces that are a fixed vector of categorical decisions, with their moves written once.

NB201 (an op per edge), the mobile space (a width and five choices per stage), a user's
``Custom`` space (a value per named choice) and the chain space's layer slots are each a vector
of decisions, decision t having ``choices[t]`` options. Sampling, mutation, neighbours, the
``onehot``/``index`` encodings, crossover and the ``decisions()`` view are one algorithm on all
of them, so ``DecisionVectorSpace`` holds it, with the guarantees strategies rely on:

- ``sample``: each (active) decision uniform, in order;
- ``mutate``: one active decision changes to another option, and the result is valid and a
  different network (``canonical`` differs from the input's); a canonical twin is redrawn,
  and after ``MUTATE_TRIES`` twins a random neighbour is taken, so it always ends;
- ``neighbours``: every single-decision change, in decision then option order, one per
  canonical class, never the input's own class;
- every in-range sequence decodes to a valid architecture, and decode(encode(a)) == a.

A concrete space supplies what is its own: its options (``_choices``), the two directions between
an architecture and its indices (``_encode``, ``_decode``), ``check``, its string form, its
``canonical`` form (the identity by default) and its network. ``canonical`` is only ever reached
as a method call, so a space (or a user's canonical function on a ``Custom`` space) plugs its own
in by overriding it, and the guarantees above hold for it unchanged.

Conditional decisions (``Custom``'s ``Choice(..., when=...)``) are decisions that may be
inactive; a space with some says which may be (``_conditional``) and which are, given the
indices (``_active``), with decision t's activity depending only on decisions before it. An
inactive decision is encoded as 0, has a "not active" slot of its own in the one-hot encoding,
is never mutated, and a move that activates it draws it at random (``mutate``, ``crossover``) or
takes its first option (``neighbours``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

import numpy as np

from nasforge.core import Arch
from nasforge.errors import ConfigError, InvalidArchError, UnknownNameError
from nasforge.spaces.decisions import Decisions

#: canonical twins ``mutate`` redraws before it picks among the neighbours instead
MUTATE_TRIES = 100


def one_hot(indices: Sequence[int], sizes: Sequence[int]) -> np.ndarray:
    """Concatenated one-hot blocks, block t of ``sizes[t]`` floats with a 1 at ``indices[t]``;
    a negative index leaves its block all zeros (padding, e.g. NASNet blocks not yet grown)."""
    sizes = np.asarray(sizes, dtype=int)
    index = np.asarray(indices, dtype=int)
    offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(int)
    out = np.zeros(int(sizes.sum()))
    present = index >= 0
    out[offsets[present] + index[present]] = 1.0
    return out


def checked_sequence(
    space: str, sequence: Sequence[int], choices: Sequence[int], names: Sequence[str] | None = None
) -> tuple[int, ...]:
    """``sequence`` as ints after checking its length and each value's range against
    ``choices``; InvalidArchError naming the decision (by ``names``, else its position)."""
    try:
        values = tuple(int(v) for v in sequence)
    except (TypeError, ValueError):
        raise InvalidArchError(
            f"space {space!r} decisions must be a sequence of option indices, got {sequence!r}"
        ) from None
    if len(values) != len(choices):
        raise InvalidArchError(
            f"space {space!r} has {len(choices)} decisions: need {len(choices)} values, "
            f"got {len(values)}"
        )
    for t, (value, n) in enumerate(zip(values, choices, strict=True)):
        if not 0 <= value < n:
            name = names[t] if names is not None else str(t)
            raise InvalidArchError(
                f"space {space!r}: decision {name} has {n} options (accepted: 0..{n - 1}), "
                f"got {sequence[t]!r}"
            )
    return values


class DecisionVectorSpace:
    """The moves of a space that is a fixed vector of categorical decisions (module docstring).

    Subclasses implement ``_choices``, ``_encode``, ``_decode``, ``check``, ``to_string``,
    ``from_string`` and ``build``, and override ``canonical`` where twins exist.
    """

    name: str
    #: encodings ``encode`` accepts; ``onehot`` and ``index`` are built here, others are the
    #: space's own (``_encode_extra``)
    encodings: ClassVar[tuple[str, ...]] = ("onehot", "index")

    # --- what a concrete space supplies ---------------------------------------------------

    def _choices(self) -> tuple[int, ...]:
        """Options of each decision, in decision order."""
        raise NotImplementedError

    def _encode(self, arch: Arch) -> tuple[int, ...]:
        """The option index of each decision of a checked ``arch`` (0 where inactive)."""
        raise NotImplementedError

    def _decode(self, indices: tuple[int, ...]) -> Arch:
        """The architecture of an in-range index vector; every such vector is valid (values of
        inactive decisions are ignored)."""
        raise NotImplementedError

    def check(self, arch: object) -> Arch:
        """``arch`` if it belongs to this space, else InvalidArchError saying why."""
        raise NotImplementedError

    def to_string(self, arch: Arch) -> str:
        raise NotImplementedError

    def canonical(self, arch: Arch) -> Arch:
        """One representative per class of architectures building the same network: here the
        architecture itself; spaces with twins override it."""
        return self.check(arch)

    # --- optional hooks -------------------------------------------------------------------

    def _genes(self) -> tuple[tuple[int, ...], ...]:
        """Groups of decisions ``crossover`` takes from one parent together (default: each
        decision alone)."""
        return tuple((t,) for t in range(len(self._choices())))

    def _conditional(self) -> tuple[bool, ...]:
        """Which decisions may be inactive (default: none)."""
        return (False,) * len(self._choices())

    def _active(self, indices: Sequence[int]) -> tuple[bool, ...]:
        """Which decisions are active for ``indices``; t's depends on decisions before t only."""
        return (True,) * len(self._choices())

    def _decision_names(self) -> tuple[str, ...] | None:
        """Names of the decisions for error messages (default: their positions)."""
        return None

    def _encode_extra(self, arch: Arch, kind: str) -> np.ndarray:
        """A space's own encodings beyond ``onehot``/``index`` (``kind`` is in ``encodings``)."""
        raise UnknownNameError("encoding", kind, self.encodings)

    # --- the decisions view ---------------------------------------------------------------

    def _decode_sequence(self, sequence: Sequence[int]) -> Arch:
        names = self._decision_names()
        return self._decode(checked_sequence(self.name, sequence, self._choices(), names))

    def _encode_arch(self, arch: Arch) -> tuple[int, ...]:
        return self._encode(self.check(arch))

    def decisions(self) -> Decisions:
        """The space as its decision vector; every in-range sequence decodes to a valid arch."""
        return Decisions(self._choices(), self._decode_sequence, self._encode_arch)

    def _draw_new(
        self, indices: Sequence[int], known: Sequence[bool], rng: np.random.Generator
    ) -> tuple[int, ...]:
        """``indices`` with every decision that is active but not ``known`` drawn uniformly, in
        decision order (so a drawn parent decides whether its children are drawn)."""
        choices, conditional = self._choices(), self._conditional()
        out = list(indices)
        for t, n in enumerate(choices):
            if known[t]:
                continue
            if not conditional[t] or self._active(out)[t]:
                out[t] = int(rng.integers(n))
        return tuple(out)

    # --- the protocol ---------------------------------------------------------------------

    def sample(self, rng: np.random.Generator) -> Arch:
        """Each active decision uniform, in decision order (uniform over the decisions)."""
        size = len(self._choices())
        return self._decode(self._draw_new((0,) * size, (False,) * size, rng))

    def mutate(self, arch: Arch, rng: np.random.Generator) -> Arch:
        """One random active decision changes to another random option (decisions it activates
        are drawn at random), redrawn until ``canonical`` differs from ``arch``'s: a valid,
        different network one decision away (Real et al. 2019's mutation)."""
        arch = self.check(arch)
        indices, choices = self._encode(arch), self._choices()
        active = self._active(indices)
        movable = [t for t, n in enumerate(choices) if active[t] and n > 1]
        if not movable:
            raise ConfigError(f"space {self.name!r} has a single configuration; cannot mutate")
        own = self.canonical(arch)
        for _ in range(MUTATE_TRIES):
            position = movable[int(rng.integers(len(movable)))]
            value = int(rng.integers(choices[position] - 1))
            child = list(indices)
            child[position] = value + (value >= indices[position])
            mutant = self._decode(self._draw_new(child, active, rng))
            if self.canonical(mutant) != own:
                return mutant
        near = self.neighbours(arch)
        if not near:
            raise ConfigError(
                f"space {self.name!r}: every single-decision change of {self.to_string(arch)!r} "
                "builds the same network; cannot mutate"
            )
        return near[int(rng.integers(len(near)))]

    def neighbours(self, arch: Arch) -> list[Arch]:
        """Every single change of an active decision (decision by decision, options in order;
        decisions it activates take their first option), keeping the first of each canonical
        class and leaving out ``arch``'s own."""
        arch = self.check(arch)
        indices = self._encode(arch)
        active = self._active(indices)
        seen = {self.canonical(arch)}
        out = []
        for position, n in enumerate(self._choices()):
            if not active[position]:
                continue
            for value in range(n):
                if value == indices[position]:
                    continue
                child = self._decode((*indices[:position], value, *indices[position + 1 :]))
                key = self.canonical(child)
                if key not in seen:
                    seen.add(key)
                    out.append(child)
        return out

    def encode(self, arch: Arch, kind: str = "onehot") -> np.ndarray:
        """``index``: the decision indices (``decisions().encode``) as floats; ``onehot``: one
        block per decision, one float per option plus a "not active" float for decisions that
        may be inactive, so the length is fixed; other kinds are the space's own."""
        if kind not in self.encodings:
            raise UnknownNameError("encoding", kind, self.encodings)
        arch = self.check(arch)
        if kind not in ("onehot", "index"):
            return self._encode_extra(arch, kind)
        indices = self._encode(arch)
        if kind == "index":
            return np.asarray(indices, dtype=float)
        choices, conditional = self._choices(), self._conditional()
        active = self._active(indices)
        slots = [i if on else n for i, on, n in zip(indices, active, choices, strict=True)]
        return one_hot(slots, [n + c for n, c in zip(choices, conditional, strict=True)])

    def crossover(self, a: Arch, b: Arch, rng: np.random.Generator) -> Arch:
        """Uniform crossover over genes (``_genes``): each comes from either parent with equal
        probability; a decision active in one parent only comes from that one, and one active
        in neither but in the child is drawn at random."""
        a, b = self.check(a), self.check(b)
        first, second = self._encode(a), self._encode(b)
        on_a, on_b = self._active(first), self._active(second)
        genes = self._genes()
        take_a = rng.random(len(genes)) < 0.5
        child = list(second)
        for gene, from_a in zip(genes, take_a, strict=True):
            for t in gene:
                pick_a = on_a[t] if on_a[t] != on_b[t] else from_a
                child[t] = first[t] if pick_a else second[t]
        known = [x or y for x, y in zip(on_a, on_b, strict=True)]
        return self._decode(self._draw_new(child, known, rng))
