"""Declared capabilities: what an estimator or a strategy can do beyond its protocol.

An estimator answers ``evaluate``; what else it can do (report a cost, offer a fidelity range,
read the search context, record its setup ...) is declared in one record,
`EstimatorCapabilities`, held by its ``capabilities`` member. A strategy answers ``ask`` and
``tell``; one that wants failure notices is `FailureAware`. Both are read here, once, when an
experiment (or a multi-fidelity strategy) is built: `capabilities_of` and `failure_listener`.
Nothing else asks an estimator or a strategy what it can do, so a misspelt or undeclared
capability is an error naming the object and the member, never a silent default later.

This module sits beside ``core``: it imports nothing from nasforge but ``core`` and ``errors``,
so estimators, strategies and the experiment can all import it.
"""

from __future__ import annotations

import difflib
import inspect
import math
import numbers
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from types import MappingProxyType
from typing import Any, Protocol, runtime_checkable

from nasforge.core import Candidate
from nasforge.errors import ConfigError

# -- estimators -----------------------------------------------------------------------------


@dataclass(frozen=True)
class EstimatorCapabilities:
    """What an estimator can do beyond ``evaluate``; the defaults suit a plain estimator.

    * ``has_cost``: results carry a cost in seconds (real or simulated), so a budget may be
      given in seconds. False for tables without training time (NB201).
    * ``report_metric``: the report-only metric shown beside the objective (progress, the
      comparison tables, anytime curves).
    * ``uses_context``: ``evaluate(candidate, context=SearchContext)`` wants the search so far
      (early stopping); the experiment then sends a context with each job.
    * ``fidelity_range``: ``(low, high)`` values of ``Candidate.fidelity`` it accepts (epochs);
      None when the fidelity is fixed. Multi-fidelity strategies choose within it, and the
      context counts only trials at ``high`` as finished.
    * ``build_options``: keywords of ``space.build`` for the network it evaluates, so that a
      parameter constraint counts that network.
    * ``setup``: plain JSON values that fix what a trial's number means (data split, fidelity,
      recipe), stored with the run so that reports disclose them; None when there is nothing
      to record.
    """

    has_cost: bool = True
    report_metric: str = "test_acc"
    uses_context: bool = False
    fidelity_range: tuple[float, float] | None = None
    build_options: Mapping[str, Any] = field(default_factory=dict)
    setup: Mapping[str, Any] | None = None

    def __post_init__(self) -> None:
        for label in ("has_cost", "uses_context"):
            if not isinstance(getattr(self, label), bool):
                raise ConfigError(f"{label} must be True or False, got {getattr(self, label)!r}")
        if not isinstance(self.report_metric, str) or not self.report_metric:
            raise ConfigError(
                f"report_metric must be a metric name (a non-empty string), "
                f"got {self.report_metric!r}"
            )
        if self.fidelity_range is not None:
            object.__setattr__(self, "fidelity_range", _fidelity_range(self.fidelity_range))
        if not isinstance(self.build_options, Mapping) or not all(
            isinstance(key, str) for key in self.build_options
        ):
            raise ConfigError(
                f"build_options must map keyword names to values, got {self.build_options!r}"
            )
        object.__setattr__(self, "build_options", MappingProxyType(dict(self.build_options)))
        if self.setup is not None:
            if not isinstance(self.setup, Mapping):
                raise ConfigError(f"setup must be a mapping or None, got {self.setup!r}")
            object.__setattr__(self, "setup", MappingProxyType(dict(self.setup)))

    def __reduce__(self) -> tuple[type[EstimatorCapabilities], tuple[Any, ...]]:
        # read-only mapping proxies do not pickle; estimators travel to worker processes
        return (
            EstimatorCapabilities,
            (
                self.has_cost,
                self.report_metric,
                self.uses_context,
                self.fidelity_range,
                dict(self.build_options),
                None if self.setup is None else dict(self.setup),
            ),
        )


def _fidelity_range(value: object) -> tuple[float, float]:
    """``(low, high)`` as floats with ``0 < low <= high``, both finite, or a ConfigError."""
    try:
        low, high = value  # type: ignore[misc]
    except (TypeError, ValueError):
        raise ConfigError(f"fidelity_range must be (low, high) or None, got {value!r}") from None
    numbers_ok = all(
        isinstance(v, numbers.Real) and not isinstance(v, bool) and math.isfinite(v)
        for v in (low, high)
    )
    if not numbers_ok or not 0 < low <= high:
        raise ConfigError(f"fidelity_range must be (low, high) with 0 < low <= high, got {value!r}")
    return float(low), float(high)


#: The member that holds the record, and the names under which estimators used to be probed
#: for each capability (attribute name -> field of `EstimatorCapabilities`).
CAPABILITIES = "capabilities"
_ATTRIBUTES = {
    "has_cost": "has_cost",
    "report_metric": "report_metric",
    "uses_context": "uses_context",
    "fidelity_range": "fidelity_range",
    "build_options": "build_options",
    "describe": "setup",
}
_FIELDS = tuple(f.name for f in fields(EstimatorCapabilities))


def label_of(thing: object) -> str:
    """How errors name an estimator or strategy: its ``name``, else its class."""
    name = getattr(thing, "name", None)
    return repr(name) if isinstance(name, str) else type(thing).__name__


def near_misses(thing: object, known: tuple[str, ...]) -> list[tuple[str, str]]:
    """Public members of ``thing`` spelt almost like one of ``known`` (``(member, meant)``):
    a misspelt declaration that would otherwise be ignored."""
    found = []
    for member in dir(thing):
        if member.startswith("_") or member in known:
            continue
        close = difflib.get_close_matches(member, known, n=1, cutoff=0.8)
        if close:
            found.append((member, close[0]))
    return found


def capabilities_of(estimator: object) -> EstimatorCapabilities:
    """The estimator's declared capabilities, checked: the one place they are read.

    An estimator without a ``capabilities`` member gets the defaults. Refused, with a
    ConfigError naming the estimator and the member: a ``capabilities`` that is not an
    `EstimatorCapabilities`, a member spelt almost like ``capabilities`` or one of its fields,
    an attribute under a capability's name (``has_cost``, ``fidelity_range``, ``describe`` ...)
    that disagrees with the record (it would be ignored), an estimator without ``evaluate``, and
    ``uses_context`` with an ``evaluate`` that takes no ``context``.
    """
    who = label_of(estimator)
    for member, meant in near_misses(estimator, (CAPABILITIES, *_ATTRIBUTES, *_FIELDS)):
        raise ConfigError(
            f"estimator {who} has a member {member!r}: did you mean {meant!r}? "
            f"Capabilities are declared in {CAPABILITIES} = EstimatorCapabilities(...) "
            f"(fields: {', '.join(_FIELDS)})"
        )
    evaluate = getattr(estimator, "evaluate", None)
    if not callable(evaluate):
        raise ConfigError(f"estimator {who} has no evaluate(candidate) method")
    declared = _declared(estimator, who)
    for attribute, field_name in _ATTRIBUTES.items():
        _check_agrees(estimator, who, attribute, field_name, declared)
    if declared.uses_context and not _takes_context(evaluate):
        raise ConfigError(
            f"estimator {who} declares uses_context but its evaluate() takes no 'context' "
            "argument; accepted: evaluate(candidate, context=None)"
        )
    return declared


def _declared(estimator: object, who: str) -> EstimatorCapabilities:
    try:
        declared = getattr(estimator, CAPABILITIES, None)
    except ConfigError as err:
        raise ConfigError(f"estimator {who}: {CAPABILITIES}: {err}") from None
    except TypeError as err:  # e.g. EstimatorCapabilities(has_cots=...): a misspelt field
        raise ConfigError(
            f"estimator {who}: {CAPABILITIES} could not be made ({err}); "
            f"accepted fields: {', '.join(_FIELDS)}"
        ) from None
    if declared is None:
        return EstimatorCapabilities()
    if not isinstance(declared, EstimatorCapabilities):
        kind = "a method" if callable(declared) else type(declared).__name__
        raise ConfigError(
            f"estimator {who}: {CAPABILITIES} must be an EstimatorCapabilities (a class "
            f"attribute or a property), got {kind}"
        )
    return declared


def _check_agrees(
    estimator: object,
    who: str,
    attribute: str,
    field_name: str,
    declared: EstimatorCapabilities,
) -> None:
    """An attribute under a capability's name must say what the record says: otherwise it
    is an old-style or misplaced declaration that nothing reads."""
    if not hasattr(estimator, attribute):
        return
    value = getattr(estimator, attribute)
    if attribute == "describe":
        if not callable(value):
            raise ConfigError(f"estimator {who}: describe must be a method, got {value!r}")
        value = value()
    expected = getattr(declared, field_name)
    if not _same(field_name, value, expected):
        raise ConfigError(
            f"estimator {who} sets {attribute} = {_short(value)} outside its {CAPABILITIES}, "
            f"which say {field_name} = {_short(expected)}; nasforge reads only {CAPABILITIES}: "
            f"declare {CAPABILITIES} = EstimatorCapabilities({field_name}=...)"
        )


def _same(field_name: str, value: Any, expected: Any) -> bool:
    if field_name == "fidelity_range":
        try:
            return (None if value is None else _fidelity_range(value)) == expected
        except ConfigError:
            return False
    if field_name in ("build_options", "setup"):
        if value is None or expected is None:
            return value is None and expected is None
        return isinstance(value, Mapping) and dict(value) == dict(expected)
    return type(value) is type(expected) and value == expected


def _short(value: Any) -> str:
    if isinstance(value, Mapping):
        value = dict(value)
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _takes_context(evaluate: Any) -> bool:
    try:
        parameters = inspect.signature(evaluate).parameters.values()
    except (TypeError, ValueError):  # a builtin without a signature: trust the declaration
        return True
    return any(p.name == "context" or p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters)


# -- strategies -----------------------------------------------------------------------------


@runtime_checkable
class FailureAware(Protocol):
    """A strategy that wants to hear of trials that failed (crashed, timed out, out of
    memory), e.g. to free their pending place; strategies without it never hear of them."""

    def tell_failure(self, candidate: Candidate, reason: str) -> None: ...


#: What the experiment calls with a failed trial's candidate and the reason it failed.
FailureListener = Callable[[Candidate, str], None]


def failure_listener(strategy: object) -> FailureListener | None:
    """The strategy's ``tell_failure``, checked, or None when it is not `FailureAware`.

    Refused with a ConfigError naming the strategy and the member: a ``tell_failure`` that is
    not a method taking ``(candidate, reason)``, and a member spelt almost like it."""
    who = label_of(strategy)
    for member, _ in near_misses(strategy, ("tell_failure",)):
        raise ConfigError(
            f"strategy {who} has a member {member!r}: did you mean 'tell_failure'? "
            "Failure notices go to tell_failure(candidate, reason)"
        )
    if not isinstance(strategy, FailureAware):
        return None
    listener = strategy.tell_failure
    if not callable(listener):
        raise ConfigError(
            f"strategy {who}: tell_failure must be a method (candidate, reason), "
            f"got {type(listener).__name__}"
        )
    try:
        signature = inspect.signature(listener)
    except (TypeError, ValueError):  # no signature to read (a builtin): trust it
        return listener
    try:
        signature.bind(None, "reason")
    except TypeError:
        raise ConfigError(
            f"strategy {who}: tell_failure{signature} cannot be called as "
            "tell_failure(candidate, reason)"
        ) from None
    return listener
