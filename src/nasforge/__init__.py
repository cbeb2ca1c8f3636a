"""nasforge: neural architecture search that installs cleanly and runs on a CPU.

The three parts of NAS each have a package: ``spaces`` (what can be searched), ``strategies``
(which candidate next) and ``estimators`` (how good is it); ``Experiment`` joins one of each.
Names are imported lazily, so ``import nasforge`` is cheap.
"""

from nasforge._lazy import export_lazily

__version__ = "0.1.0"

export_lazily(
    globals(),
    {
        "spaces": "nasforge.spaces",
        "strategies": "nasforge.strategies",
        "estimators": "nasforge.estimators",
        "data": "nasforge.data",
        "Experiment": "nasforge.experiment",
        "Budget": "nasforge.experiment",
        "Store": "nasforge.store",
        "Candidate": "nasforge.core",
        "Result": "nasforge.core",
    },
)
