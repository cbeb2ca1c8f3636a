"""Hypervolume scoring of multi-objective runs in ``nasforge benchmark --objectives``.

On a benchmark that can list its whole space (NB201: 15,625 cells), the **true Pareto front**
is computed from every architecture's values, and each run is scored by the hypervolume of the
front it found as a fraction of the true front's (``hypervolume_fraction``; 1 means it found
the whole front). Both hypervolumes use one stated **reference point**: the worst value of
each objective over the true front, moved out by `REFERENCE_MARGIN` of the front's range on
that objective, so every front point adds volume and architectures worse than the whole front
in some objective add none. Where the space cannot be listed, the reference is taken from the
runs' own points and only the raw hypervolume is reported.
"""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING, Any

import numpy as np

from nasforge import factory
from nasforge.compare import ComparisonSetup, pad_curves, space_and_estimator
from nasforge.pareto import hypervolume, nadir_reference, nondominated

if TYPE_CHECKING:
    from nasforge.history import History

#: how far beyond the true front's worst values the reference point lies (fraction of range)
REFERENCE_MARGIN = 0.1
#: the largest space whose every architecture is evaluated for the true front
MAX_ENUMERATED = 1_000_000


def _objectives(setup: ComparisonSetup) -> Any:
    _, estimator = space_and_estimator(setup)
    return factory.bind_objectives(setup.objectives, estimator)


@lru_cache(maxsize=4)
def true_front(setup: ComparisonSetup) -> dict[str, Any] | None:
    """``{"points": all-minimised front vectors, "reference": ..., "hypervolume": ...}`` from
    every architecture of the space; None when the space cannot be listed."""
    from nasforge.core import Candidate

    space, estimator = space_and_estimator(setup)
    try:
        size = int(space.size())
        space.enumerate  # noqa: B018 - a space that cannot be listed has no true front
    except (AttributeError, NotImplementedError, TypeError, OverflowError):
        return None
    if size > MAX_ENUMERATED:
        return None
    bound = _objectives(setup)
    points = np.asarray(
        [bound.minimised(estimator.evaluate(Candidate(arch))) for arch in space.enumerate()]
    )
    front = np.unique(points[nondominated(points)], axis=0)
    reference = nadir_reference(front, REFERENCE_MARGIN)
    return {
        "points": front,
        "reference": reference,
        "hypervolume": hypervolume(front, reference),
        "architectures": len(points),
    }


def front_record(setup: ComparisonSetup, history: History, estimator: Any) -> dict[str, Any]:
    """What one run found: its front (raw values), its hypervolume and, with a true front,
    the hypervolume fraction after each evaluation (the multi-objective anytime curve)."""
    bound = _objectives(setup)
    points = np.asarray([bound.minimised(t.result) for t in history.completed])
    truth = true_front(setup)
    record: dict[str, Any] = {"points": points.tolist()}
    if truth is not None:
        fractions = [
            hypervolume(points[: i + 1], truth["reference"]) / truth["hypervolume"]
            for i in range(len(points))
        ]
        record["hv_curve"] = fractions
        record["hypervolume_fraction"] = fractions[-1] if fractions else 0.0
    return record


def summarise_fronts(
    setup: ComparisonSetup, runs: list[dict[str, Any]], names: list[str]
) -> dict[str, Any]:
    """Per strategy: hypervolume fraction (mean ± std, min, max), its anytime curve, and the
    median run's front; plus the true front and reference point, in the objectives' own units
    and directions."""
    bound = _objectives(setup)
    signs = -np.asarray(bound.signs)  # minimised -> raw: v = -sign * m
    truth = true_front(setup)
    if truth is None:  # a reference from the runs' own points, stated as such
        every = np.vstack([np.asarray(r["points"]) for r in runs if r["points"]])
        reference = nadir_reference(every, REFERENCE_MARGIN)
    else:
        reference = truth["reference"]
    strategies: dict[str, Any] = {}
    for name in names:
        mine = [r for r in runs if r["strategy"] == name]
        volumes = np.asarray([hypervolume(r["points"], reference) for r in mine])
        row: dict[str, Any] = {"hypervolume_mean": float(volumes.mean())}
        order = np.argsort(volumes, kind="stable")
        median = mine[int(order[len(order) // 2])]
        if truth is not None:
            fractions = volumes / truth["hypervolume"]
            curves = pad_curves([r["hv_curve"] for r in mine])
            row |= {
                "hypervolume_fraction": float(fractions.mean()),
                "hypervolume_fraction_std": float(fractions.std(ddof=1)) if len(mine) > 1 else 0.0,
                "hypervolume_fraction_min": float(fractions.min()),
                "hypervolume_fraction_max": float(fractions.max()),
                "hypervolume_fractions": fractions.tolist(),
                "hv_anytime_mean": curves.mean(axis=0).tolist(),
                "hv_anytime_std": curves.std(axis=0).tolist(),
            }
        found = np.asarray(median["points"])
        front = found[nondominated(found)] if len(found) else found
        row["median_seed"] = median["seed"]
        row["median_front"] = (front * signs).tolist()
        strategies[name] = row
    pareto: dict[str, Any] = {
        "objectives": bound.to_json(),
        "reference_point": (np.asarray(reference) * signs).tolist(),
        "reference_rule": (
            f"worst value of each objective over the true front, moved out by "
            f"{REFERENCE_MARGIN:g} of its range"
            if truth is not None
            else f"worst value of each objective over all runs' points, moved out by "
            f"{REFERENCE_MARGIN:g} of its range (the space cannot be listed: no true front)"
        ),
    }
    if truth is not None:
        pareto |= {
            "true_front": (truth["points"] * signs).tolist(),
            "true_hypervolume": truth["hypervolume"],
            "architectures": truth["architectures"],
        }
    return {"strategies": strategies, "pareto": pareto}
