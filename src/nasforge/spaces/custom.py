"""A search space of your own: named choices, optional conditions, and a function that builds it.

Most NAS tools started from a hand-written space of named hyperparameter-like choices (Zoph &
Le's NAS-RL chose filter height, width and count per layer; Hyperopt/SMAC/Optuna describe
configuration spaces the same way, with conditional parameters as in Hutter et al.'s SMAC).
``Custom`` is that space for nasforge: every strategy works on it unchanged.

```python
space = Custom(
    {
        "depth": IntRange(1, 3),                         # 1, 2, 3 (both ends included)
        "block": ["conv", "separable"],                  # categorical: str/int/float/bool
        "kernel": Choice([3, 5], when={"block": "conv"}),  # exists only for conv blocks
    },
    build=my_build,  # my_build(config, *, in_channels, num_classes) -> nn.Module
)
```

An architecture is a ``Config``: a frozen, hashable, picklable mapping from the names of the
*active* choices to their values (an inactive conditional choice is absent, not None). Its
string form is ``depth=3,block=conv,kernel=5`` with choices in the space's order; parsing it is
strict. The size of the space is the number of valid configurations, counting conditions
(``size()``); spaces under ``ENUMERATE_LIMIT`` configurations can be enumerated (grid search).

``load_space("file.py:name")`` / ``load_space("package.module:name")`` returns a space object
declared in a user's file; ``nasforge search --space examples/custom_space.py:space`` uses it.
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
import math
import re
import sys
import traceback
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from nasforge.errors import ConfigError, InvalidArchError, UnknownNameError
from nasforge.spaces.net_options import int_option
from nasforge.spaces.vector import DecisionVectorSpace

if TYPE_CHECKING:
    from torch import nn

#: A choice's value: what a user writes in the declaration, in a CSV or on the command line.
Value = str | int | float | bool
ENCODINGS: tuple[str, ...] = ("onehot", "index")
#: ``enumerate`` refuses spaces with more configurations than this (grid search on them would
#: never finish; use another strategy).
ENUMERATE_LIMIT = 1_000_000
#: An integer range may expand to at most this many values (each is a categorical option).
MAX_VALUES = 10_000
#: how many ``param_count`` results each space keeps (each costs one network build)
PARAM_CACHE_SIZE = 4096
#: Protocol methods ``load_space`` checks for.
SPACE_METHODS = (
    "sample",
    "mutate",
    "neighbours",
    "encode",
    "to_string",
    "from_string",
    "canonical",
)

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-]*\Z")
_FORBIDDEN = (",", "=")


# --- values ----------------------------------------------------------------------------------


def _is_value(value: object) -> bool:
    if isinstance(value, float):
        return math.isfinite(value)
    return isinstance(value, str | int)  # bool is an int


def _plain(value: object) -> object:
    """numpy scalars -> Python scalars, so ``np.int64(3)`` is accepted where 3 is."""
    return value.item() if isinstance(value, np.generic) else value


def format_value(value: Value) -> str:
    """The text of a value in strings and CSV files (floats round-trip exactly)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    return str(value)


# --- the architecture ------------------------------------------------------------------------


@dataclass(frozen=True, repr=False)
class Config(Mapping[str, Value]):
    """One configuration: read it like a dict (``cfg["depth"]``, ``cfg.get("kernel")``,
    ``dict(cfg)``, ``**cfg``). Immutable, hashable and equal when the pairs are equal; the pairs
    are kept sorted by name so declaration order never changes equality.

    ``Config({"depth": 3, "block": "conv"})`` builds one; the space checks it against its
    choices wherever it is used.
    """

    pairs: tuple[tuple[str, Value], ...] = field(default=())

    def __post_init__(self) -> None:
        items = self.pairs.items() if isinstance(self.pairs, Mapping) else self.pairs
        try:
            pairs = [(name, _plain(value)) for name, value in items]
        except (TypeError, ValueError):
            raise InvalidArchError(
                f"a Config needs a mapping of choice names to values, got {self.pairs!r}"
            ) from None
        for name, value in pairs:
            if not isinstance(name, str):
                raise InvalidArchError(f"Config choice names must be str, got {name!r}")
            if not _is_value(value):
                raise InvalidArchError(
                    f"Config value of {name!r} must be a str, int, finite float or bool, "
                    f"got {value!r}"
                )
        names = [name for name, _ in pairs]
        if len(set(names)) != len(names):
            raise InvalidArchError(f"Config names a choice twice: {names}")
        object.__setattr__(self, "pairs", tuple(sorted(pairs)))

    def __getitem__(self, name: str) -> Value:
        for key, value in self.pairs:
            if key == name:
                return value
        raise KeyError(name)

    def __iter__(self) -> Iterator[str]:
        return (name for name, _ in self.pairs)

    def __len__(self) -> int:
        return len(self.pairs)

    def __repr__(self) -> str:
        return f"Config({dict(self.pairs)!r})"

    def as_dict(self) -> dict[str, Value]:
        """A plain dict (JSON-serialisable)."""
        return dict(self.pairs)


# --- the declaration -------------------------------------------------------------------------


def _when_values(allowed: object) -> tuple[object, ...]:
    if isinstance(allowed, list | tuple | set | frozenset | range):
        return tuple(_plain(v) for v in allowed)
    return (_plain(allowed),)


@dataclass(frozen=True)
class Choice:
    """A categorical choice among ``values``; with ``when``, it exists only while every named
    parent choice exists and takes one of the given values:
    ``Choice([3, 5], when={"block": "conv"})`` or ``when={"block": ["conv", "dilated"]}``.
    """

    values: tuple[Value, ...]
    #: after construction: ((parent, allowed values), ...)
    when: Mapping[str, object] | tuple[tuple[str, tuple[object, ...]], ...] | None = None

    def __post_init__(self) -> None:
        values = self.values
        if isinstance(values, list | tuple | range):
            values = tuple(_plain(v) for v in values)
        object.__setattr__(self, "values", values)
        if self.when is not None and not isinstance(self.when, Mapping):
            raise ConfigError(
                f"Choice when= must map parent choice names to values, got {self.when!r}"
            )
        when = () if not self.when else tuple((p, _when_values(v)) for p, v in self.when.items())
        object.__setattr__(self, "when", when)


def IntRange(
    low: int, high: int, step: int = 1, when: Mapping[str, object] | None = None
) -> Choice:
    """The integers ``low, low + step, ...`` up to and INCLUDING ``high`` (as Optuna's and
    Hyperopt's integer ranges; a Python ``range`` in a declaration keeps its own exclusive end).
    """
    for label, value in (("low", low), ("high", high), ("step", step)):
        if isinstance(value, bool) or not isinstance(_plain(value), int):
            raise ConfigError(f"IntRange {label} must be an int, got {value!r}")
    if step < 1 or high < low:
        raise ConfigError(
            f"IntRange({low}, {high}, step={step}) is empty; need low <= high and step >= 1"
        )
    if (high - low) // step + 1 > MAX_VALUES:
        raise ConfigError(
            f"IntRange({low}, {high}, step={step}) has more than {MAX_VALUES} values; "
            "use a larger step (each value is a categorical option)"
        )
    return Choice(tuple(range(int(low), int(high) + 1, int(step))), when)


@dataclass(frozen=True)
class _Spec:
    """A validated choice: its values, their texts, and its conditions."""

    name: str
    values: tuple[Value, ...]
    texts: tuple[str, ...]
    when: tuple[tuple[str, tuple[Value, ...]], ...]

    @property
    def conditional(self) -> bool:
        return bool(self.when)

    def accepted(self) -> str:
        return ", ".join(self.texts)

    def index(self, value: Value) -> int:
        for i, own in enumerate(self.values):
            if own == value and isinstance(own, bool) == isinstance(value, bool):
                return i
        raise ValueError(value)

    def parse(self, text: str) -> Value | None:
        """The value whose text is ``text`` (numbers also by numeric value: ``3.0`` is 3,
        as CSV writers print integer columns with gaps); None if no value matches."""
        text = text.strip()
        if text in self.texts:
            return self.values[self.texts.index(text)]
        lowered = text.lower()
        for value in self.values:
            if isinstance(value, bool) and lowered == format_value(value):
                return value
        try:
            number = float(text)
        except ValueError:
            return None
        for value in self.values:
            if isinstance(value, int | float) and not isinstance(value, bool) and value == number:
                return value
        return None

    def describe_when(self) -> str:
        parts = [f"{p}={'|'.join(format_value(v) for v in vs)}" for p, vs in self.when]
        return " and ".join(parts)


def _spec(name: object, declared: object) -> _Spec:
    if not isinstance(name, str) or not _NAME.match(name):
        raise ConfigError(
            f"choice name {name!r} is not accepted; use letters, digits, '_', '.', '-' "
            "(starting with a letter or '_')"
        )
    if isinstance(declared, list | tuple | range):
        declared = Choice(tuple(declared))
    if not isinstance(declared, Choice):
        raise ConfigError(
            f"choice {name!r}: expected a list/tuple of values, a range, IntRange(...) or "
            f"Choice(...), got {type(declared).__name__}"
        )
    values = declared.values
    if not isinstance(values, tuple):
        raise ConfigError(f"choice {name!r}: values must be a list, tuple or range, got {values!r}")
    if not values:
        raise ConfigError(f"choice {name!r} has no values; give at least one")
    for value in values:
        if not _is_value(value):
            raise ConfigError(
                f"choice {name!r}: value {value!r} is not accepted; values must be str, int, "
                "finite float or bool"
            )
        if isinstance(value, str) and (
            not value or value != value.strip() or any(c in value for c in _FORBIDDEN)
        ):
            raise ConfigError(
                f"choice {name!r}: string value {value!r} must be non-empty, without "
                "surrounding spaces, ',' or '='"
            )
    texts = tuple(format_value(v) for v in values)
    for i, value in enumerate(values):
        for other in values[:i]:
            same = other == value and isinstance(other, bool) == isinstance(value, bool)
            if same or format_value(other) == format_value(value) or other == value:
                raise ConfigError(
                    f"choice {name!r} lists {other!r} and {value!r}, which are the same value; "
                    "values must be distinct"
                )
    return _Spec(name, tuple(values), texts, declared.when)  # type: ignore[arg-type]


def _order(specs: dict[str, _Spec]) -> tuple[_Spec, ...]:
    """Parents before children, otherwise declaration order; ConfigError on bad conditions."""
    for spec in specs.values():
        for parent, allowed in spec.when:
            if parent not in specs:
                raise ConfigError(
                    f"choice {spec.name!r} has a condition on unknown choice {parent!r}; "
                    f"choices: {', '.join(specs)}"
                )
            if parent == spec.name:
                raise ConfigError(f"choice {spec.name!r} has a condition on itself")
            if not allowed:
                raise ConfigError(
                    f"choice {spec.name!r}: condition on {parent!r} lists no values; "
                    f"accepted: {specs[parent].accepted()}"
                )
            for value in allowed:
                if not _is_value(value) or specs[parent].parse(format_value(value)) is None:
                    raise ConfigError(
                        f"choice {spec.name!r}: condition {parent}={value!r} names a value "
                        f"{parent!r} cannot take; accepted: {specs[parent].accepted()}"
                    )
    ordered: list[_Spec] = []
    placed: set[str] = set()
    remaining = list(specs.values())
    while remaining:
        ready = next((s for s in remaining if all(p in placed for p, _ in s.when)), None)
        if ready is None:
            names = ", ".join(s.name for s in remaining)
            raise ConfigError(f"the conditions of choices {names} form a cycle; remove one")
        ordered.append(ready)
        placed.add(ready.name)
        remaining.remove(ready)
    return tuple(ordered)


def _normalise_when(spec: _Spec, specs: dict[str, _Spec]) -> _Spec:
    """Conditions hold the parent's own values (so ``3.0`` in a condition means 3)."""
    when = tuple(
        (parent, tuple(specs[parent].parse(format_value(v)) for v in allowed))  # type: ignore[misc]
        for parent, allowed in spec.when
    )
    return _Spec(spec.name, spec.values, spec.texts, when)  # type: ignore[arg-type]


# --- the space -------------------------------------------------------------------------------

#: ``build(config, *, in_channels, num_classes, **net) -> nn.Module``
BuildFunction = Callable[..., "nn.Module"]
#: ``canonical(config) -> config``: one representative of the configurations that are the
#: same network
CanonicalFunction = Callable[["Config"], Mapping[str, object]]


class Custom(DecisionVectorSpace):
    """A user-declared space of named choices (see the module docstring).

    ``build(config, *, in_channels, num_classes, **net)`` turns a ``Config`` into a network
    returning logits; it is optional (a space searched only against a table needs none).
    ``size_options`` maps the CLI's ``channels``/``cells`` knobs to keywords of ``build``.

    As decisions it is one per choice, parents first (``DecisionVectorSpace`` gives the moves):
    ``sample`` draws each active choice uniformly; ``mutate`` changes one active choice to
    another value, drawing the choices that change activates and dropping the ones it
    deactivates; ``neighbours`` set each active choice to each other value (activated choices
    take their first value); ``crossover`` takes each choice from a parent that has it active;
    ``index`` is ``decisions().encode`` (0 for an inactive choice) and ``onehot`` has a slot
    per value plus an "inactive" slot for each conditional choice, so its length is fixed.
    ``canonical`` is the one place that says which configurations are the same network.
    """

    size_options: ClassVar[dict[str, str | None]] = {"channels": None, "cells": None}

    def __init__(
        self,
        choices: Mapping[str, object],
        build: BuildFunction | None = None,
        *,
        name: str = "custom",
        size_options: Mapping[str, str | None] | None = None,
        canonical: CanonicalFunction | None = None,
    ):
        if not isinstance(choices, Mapping) or not choices:
            raise ConfigError(
                "Custom needs a non-empty mapping of choice names to values, e.g. "
                '{"depth": [2, 3], "width": [16, 32]}'
            )
        if build is not None and not callable(build):
            raise ConfigError(
                f"build must be a function (config, *, in_channels, num_classes) -> nn.Module, "
                f"got {build!r}"
            )
        if not isinstance(name, str) or not name:
            raise ConfigError(f"space name must be a non-empty str, got {name!r}")
        if canonical is not None and not callable(canonical):
            raise ConfigError(
                f"canonical must be a function (config) -> config that maps equivalent "
                f"configurations to one of them, got {canonical!r}"
            )
        self._canonical = canonical
        specs = {n: _spec(n, declared) for n, declared in choices.items()}
        ordered = _order(specs)
        self.specs: tuple[_Spec, ...] = tuple(_normalise_when(s, specs) for s in ordered)
        self._by_name = {s.name: s for s in self.specs}
        self._option_counts = tuple(len(s.values) for s in self.specs)
        self._conditional_flags = tuple(s.conditional for s in self.specs)
        self._build = build
        self.name = name
        if size_options is not None:
            unknown = set(size_options) - {"channels", "cells"}
            if unknown:
                raise ConfigError(
                    f"unknown size option(s) {', '.join(sorted(unknown))}; accepted: "
                    "channels, cells"
                )
            self.size_options = {"channels": None, "cells": None, **size_options}
        self._param_cache: dict[tuple[Config, tuple[tuple[str, Any], ...]], int] = {}
        #: set by ``load_space``: the space pickles as "load it again from there", so a user's
        #: file-defined build function reaches worker processes
        self.source: str | None = None

    # -- pickling: a space loaded from a file is rebuilt from that file -------------------------

    def __reduce_ex__(self, protocol: Any) -> Any:
        if self.source is not None:
            return (load_space, (self.source,))
        return super().__reduce_ex__(protocol)

    def __repr__(self) -> str:
        parts = []
        for spec in self.specs:
            when = f" when {spec.describe_when()}" if spec.when else ""
            parts.append(f"{spec.name}: [{spec.accepted()}]{when}")
        return f"Custom({self.name!r}; {'; '.join(parts)})"

    @property
    def names(self) -> tuple[str, ...]:
        """Choice names, parents before children (the order of strings and encodings)."""
        return tuple(spec.name for spec in self.specs)

    def choice(self, name: str) -> _Spec:
        try:
            return self._by_name[name]
        except KeyError:
            raise UnknownNameError("choice", name, self._by_name) from None

    # -- activity and repair ----------------------------------------------------------------

    @staticmethod
    def _is_active(spec: _Spec, assigned: Mapping[str, Value]) -> bool:
        return all(p in assigned and assigned[p] in allowed for p, allowed in spec.when)

    def active(self, name: str, assigned: Mapping[str, Value]) -> bool:
        """Whether choice ``name`` exists given the values of its parents in ``assigned``."""
        return self._is_active(self.choice(name), assigned)

    def _complete(self, given: Mapping[str, Value], fill: Callable[[_Spec], Value]) -> Config:
        """Parents first: keep ``given`` values of active choices, ``fill`` the active ones it
        lacks, drop the inactive ones. Every strategy move goes through here."""
        assigned: dict[str, Value] = {}
        for spec in self.specs:
            if not self._is_active(spec, assigned):
                continue
            assigned[spec.name] = given[spec.name] if spec.name in given else fill(spec)
        return Config(assigned)

    def _check(self, arch: object, *, drop_inactive: bool = False) -> Config:
        """``arch`` as a valid Config of this space, or InvalidArchError saying what is wrong."""
        if isinstance(arch, Mapping) and not isinstance(arch, Config):
            arch = Config(arch)
        if not isinstance(arch, Config):
            raise InvalidArchError(
                f"space {self.name!r} expects a Config (or a dict of choices), "
                f"got {type(arch).__name__}"
            )
        unknown = [n for n in arch if n not in self._by_name]
        if unknown:
            raise InvalidArchError(
                f"unknown choice {unknown[0]!r} in space {self.name!r}; choices: "
                f"{', '.join(self.names)}"
            )
        assigned: dict[str, Value] = {}
        for spec in self.specs:
            active = self._is_active(spec, assigned)
            if spec.name not in arch:
                if active:
                    raise InvalidArchError(
                        f"choice {spec.name!r} is missing; accepted: {spec.accepted()}"
                    )
                continue
            if not active:
                if drop_inactive:
                    continue
                raise InvalidArchError(
                    f"choice {spec.name!r} is inactive here (it exists only when "
                    f"{spec.describe_when()}); leave it out"
                )
            value = arch[spec.name]
            try:
                assigned[spec.name] = spec.values[spec.index(value)]  # 3.0 given -> the 3 declared
            except ValueError:
                raise InvalidArchError(
                    f"choice {spec.name!r} cannot be {value!r}; accepted: {spec.accepted()}"
                ) from None
        return Config(assigned)

    # -- the protocol ------------------------------------------------------------------------

    def to_string(self, arch: Config) -> str:
        """``name=value`` for each active choice, comma-separated, in the space's order."""
        config = self._check(arch)
        return ",".join(
            f"{s.name}={format_value(config[s.name])}" for s in self.specs if s.name in config
        )

    def from_string(self, text: str) -> Config:
        """Parse ``depth=3,width=32,kernel=5`` strictly: every active choice once, values from
        the declaration, no unknown or inactive choice."""
        if not isinstance(text, str):
            raise InvalidArchError(f"a configuration string must be a str, got {type(text)}")
        given: dict[str, Value] = {}
        for part in text.strip().split(","):
            name, sep, raw = part.partition("=")
            name = name.strip()
            if not sep or not name:
                raise InvalidArchError(
                    f"invalid configuration {text!r}: {part!r} is not 'name=value'; expected "
                    f"e.g. {self.to_string(self._complete({}, _first))!r}"
                )
            if name not in self._by_name:
                raise InvalidArchError(
                    f"invalid configuration {text!r}: unknown choice {name!r}; choices: "
                    f"{', '.join(self.names)}"
                )
            if name in given:
                raise InvalidArchError(f"invalid configuration {text!r}: {name!r} given twice")
            spec = self._by_name[name]
            value = spec.parse(raw)
            if value is None:
                raise InvalidArchError(
                    f"invalid configuration {text!r}: {name}={raw.strip()!r} is not accepted; "
                    f"accepted: {spec.accepted()}"
                )
            given[name] = value
        try:
            return self._check(Config(given))
        except InvalidArchError as err:
            raise InvalidArchError(f"invalid configuration {text!r}: {err}") from None

    def canonical(self, arch: Config) -> Config:
        """One representative per network: the configuration with any inactive choice dropped
        (``{"block": "pool", "kernel": 3}`` and ``{"block": "pool"}`` are one architecture),
        then the user's ``canonical=`` function, if given, which declares twins (an identity
        layer placed anywhere within a stage, say). Strategies skip twins of what they have
        proposed, ``mutate``/``neighbours`` never return one, and a table keys its rows by it.

        The function's result must be a valid configuration, and a fixed point (its own
        canonical form); both are checked here, so a wrong hook is a clear error instead of
        a search that silently revisits networks."""
        plain = self._check(arch, drop_inactive=True)
        if self._canonical is None:
            return plain
        once = self._user_canonical(plain)
        if self._user_canonical(once) != once:
            raise ConfigError(
                f"space {self.name!r}: canonical= is not a fixed point: it maps {dict(plain)} to "
                f"{dict(once)}, and that to {dict(self._user_canonical(once))}; it must return "
                "one representative that it maps to itself"
            )
        return once

    def _user_canonical(self, config: Config) -> Config:
        returned = self._canonical(config)  # type: ignore[misc]
        try:
            return self._check(Config(returned), drop_inactive=True)
        except InvalidArchError as err:
            raise ConfigError(
                f"space {self.name!r}: canonical= returned {returned!r} for {dict(config)}, "
                f"which is not a configuration of the space ({err})"
            ) from None

    # -- the space as decisions (``DecisionVectorSpace`` builds the moves on these) ---------

    def check(self, arch: object) -> Config:
        """``arch`` as a valid Config of this space (a plain dict is accepted), or
        InvalidArchError naming the choice that is wrong and what it accepts."""
        return self._check(arch)

    def _choices(self) -> tuple[int, ...]:
        return self._option_counts

    def _conditional(self) -> tuple[bool, ...]:
        return self._conditional_flags

    def _decision_names(self) -> tuple[str, ...]:
        return tuple(repr(name) for name in self.names)

    def _active(self, indices: Sequence[int]) -> tuple[bool, ...]:
        """A choice is active when its conditions hold for the (active) values before it."""
        assigned: dict[str, Value] = {}
        mask = []
        for spec, index in zip(self.specs, indices, strict=True):
            on = self._is_active(spec, assigned)
            if on:
                assigned[spec.name] = spec.values[int(index)]
            mask.append(on)
        return tuple(mask)

    def _encode(self, config: Config) -> tuple[int, ...]:
        """One index per choice, parents first; 0 for an inactive choice."""
        return tuple(s.index(config[s.name]) if s.name in config else 0 for s in self.specs)

    def _decode(self, indices: tuple[int, ...]) -> Config:
        """The active choices' values; an inactive choice's index is ignored."""
        pairs = zip(self.specs, indices, strict=True)
        return self._complete({spec.name: spec.values[int(i)] for spec, i in pairs}, _first)

    # -- size and enumeration ---------------------------------------------------------------

    def size(self) -> int:
        """The number of valid configurations, conditions counted (exact, even when huge)."""
        parents = {p for s in self.specs for p, _ in s.when}

        @functools.cache
        def count(t: int, state: tuple[tuple[str, Value], ...]) -> int:
            if t == len(self.specs):
                return 1
            spec, assigned = self.specs[t], dict(state)
            if not self._is_active(spec, assigned):
                return count(t + 1, state)
            if spec.name not in parents:
                return len(spec.values) * count(t + 1, state)
            return sum(count(t + 1, (*state, (spec.name, v))) for v in spec.values)

        return count(0, ())

    def enumerate(self) -> Iterator[Config]:
        """Every configuration once, parents first, the last choice varying fastest."""
        total = self.size()
        if total > ENUMERATE_LIMIT:
            raise ConfigError(
                f"space {self.name!r} has {total:,} configurations; enumerate (grid search) "
                f"takes spaces of at most {ENUMERATE_LIMIT:,}; use another strategy"
            )
        return self._walk(0, {})

    def _walk(self, t: int, assigned: dict[str, Value]) -> Iterator[Config]:
        if t == len(self.specs):
            yield Config(assigned)
            return
        spec = self.specs[t]
        if not self._is_active(spec, assigned):
            yield from self._walk(t + 1, assigned)
            return
        for value in spec.values:
            yield from self._walk(t + 1, {**assigned, spec.name: value})

    # -- networks ----------------------------------------------------------------------------

    def build(
        self, arch: Config, *, in_channels: int = 3, num_classes: int = 10, **net: Any
    ) -> nn.Module:
        """The user's network for ``arch``: ``build(config, in_channels=, num_classes=, **net)``."""
        from torch import nn

        config = self._check(arch)
        int_option(f"{self.name} network in_channels", in_channels)
        int_option(f"{self.name} network num_classes", num_classes)
        if self._build is None:
            raise ConfigError(
                f"space {self.name!r} has no build function, so it cannot make networks; pass "
                "build=fn(config, *, in_channels, num_classes) to Custom, or search it with a "
                "tabular estimator"
            )
        model = self._build(config, in_channels=in_channels, num_classes=num_classes, **net)
        if not isinstance(model, nn.Module):
            raise ConfigError(
                f"space {self.name!r}: build returned {type(model).__name__}; it must return a "
                "torch.nn.Module"
            )
        return model

    def param_count(
        self, arch: Config, *, in_channels: int = 3, num_classes: int = 10, **net: Any
    ) -> int:
        """Trainable parameters of ``build(arch, ...)``: one build per (config, keywords),
        cached; the global torch RNG is left as it was."""
        import torch

        config = self._check(arch)
        key = (config, tuple(sorted({"in": in_channels, "out": num_classes, **net}.items())))
        if key not in self._param_cache:
            with torch.random.fork_rng(devices=[]):
                model = self.build(config, in_channels=in_channels, num_classes=num_classes, **net)
            if len(self._param_cache) >= PARAM_CACHE_SIZE:
                self._param_cache.clear()
            self._param_cache[key] = sum(p.numel() for p in model.parameters() if p.requires_grad)
        return self._param_cache[key]


def _first(spec: _Spec) -> Value:
    return spec.values[0]


# --- loading a user's space ------------------------------------------------------------------


def _module_from_file(path: Path) -> Any:
    """Execute a Python file as a module registered in ``sys.modules`` (dataclasses and pickling
    look classes up there); its name is derived from the absolute path, so loading twice
    replaces it."""
    name = "nasforge_user_space_" + re.sub(r"\W", "_", str(path.with_suffix("")))
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ConfigError(f"cannot load {path} as a Python module; give a .py file")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as err:
        sys.modules.pop(name, None)
        raise UserCodeError.of(err, path) from err
    except BaseException:
        sys.modules.pop(name, None)
        raise
    return module


class UserCodeError(ConfigError):
    """A user's space file or module that fails to import (syntax error, import error, an
    exception at module level): one line naming the file, the line and the error; the original
    traceback stays on ``__cause__`` for ``--debug``."""

    @classmethod
    def of(cls, err: BaseException, path: Path | None) -> UserCodeError:
        where = _where_in(err, path)
        message = err.msg if isinstance(err, SyntaxError) and err.msg else str(err)
        return cls(
            f"cannot import space {where}: {type(err).__name__}: {message} "
            "(fix the file; --debug shows the traceback)"
        )


def _where_in(err: BaseException, path: Path | None) -> str:
    """``file:line`` where ``err`` arose: a syntax error's own place, else the deepest frame of
    the traceback in ``path`` (or, for a module given by name, outside Python's import
    machinery)."""
    if isinstance(err, SyntaxError) and err.filename and err.lineno:
        return f"{err.filename}:{err.lineno}"
    place = str(path) if path is not None else "module"
    for frame in traceback.extract_tb(err.__traceback__):
        mine = (
            Path(frame.filename) == path if path is not None else "importlib" not in frame.filename
        )
        if mine and not frame.filename.endswith(str(Path("nasforge", "spaces", "custom.py"))):
            place = f"{frame.filename}:{frame.lineno}"
    return place


def _module_by_name(module_name: str, spec: str) -> Any:
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as err:
        missing = err.name or ""
        if module_name == missing or module_name.startswith(missing + "."):
            raise ConfigError(
                f"space {spec!r}: no module {module_name!r} (and no file of that name); "
                "accepted: FILE.py:NAME or PACKAGE.MODULE:NAME"
            ) from None
        raise UserCodeError.of(err, None) from err
    except Exception as err:
        raise UserCodeError.of(err, None) from err


def _missing_methods(obj: object) -> list[str]:
    missing = [m for m in SPACE_METHODS if not callable(getattr(obj, m, None))]
    if not isinstance(getattr(obj, "name", None), str):
        missing.append("name")
    return missing


def load_space(spec: str) -> Any:
    """The space named by ``"path/to/file.py:name"`` or ``"package.module:name"``.

    ``name`` may be a space object or a space class (instantiated without arguments). Errors
    (no such file or module, no such attribute, not a space) are ConfigErrors naming what was
    looked for; a file that fails to import is a `UserCodeError` naming its file and line.
    """
    if not isinstance(spec, str) or ":" not in spec:
        raise ConfigError(f"space {spec!r}: expected FILE.py:NAME or PACKAGE.MODULE:NAME")
    where, _, attr = spec.rpartition(":")
    if not where or not attr.isidentifier():
        raise ConfigError(
            f"space {spec!r}: expected FILE.py:NAME or PACKAGE.MODULE:NAME, NAME a Python "
            "identifier"
        )
    path = Path(where)
    is_file = where.endswith(".py") or "/" in where or "\\" in where
    if is_file:
        if not path.is_file():
            raise ConfigError(f"space {spec!r}: file {str(path)!r} not found")
        path = path.resolve()
        module = _module_from_file(path)
        source = f"{path}:{attr}"
    else:
        module = _module_by_name(where, spec)
        source = spec
    if not hasattr(module, attr):
        found = [
            n
            for n, v in vars(module).items()
            if not n.startswith("_") and not isinstance(v, type) and not _missing_methods(v)
        ]
        raise ConfigError(
            f"space {spec!r}: {where} has no attribute {attr!r}; spaces defined there: "
            f"{', '.join(found) or 'none'}"
        )
    space = getattr(module, attr)
    if isinstance(space, type) and not _missing_methods(space):
        space = space()
    missing = _missing_methods(space)
    if missing:
        raise ConfigError(
            f"space {spec!r}: {attr} is a {type(space).__name__}, not a search space (it lacks "
            f"{', '.join(missing)}); define it as nasforge.spaces.custom.Custom(...)"
        )
    if isinstance(space, Custom):
        space.source = source
    return space


__all__ = [
    "ENUMERATE_LIMIT",
    "Choice",
    "Config",
    "Custom",
    "IntRange",
    "format_value",
    "load_space",
]
