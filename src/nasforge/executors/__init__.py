"""Executors run trials: in this process, in a pool of worker processes, or on a Ray cluster.

One interface (``base.Executor``): start with an estimator, submit jobs, wait for outcomes.
The strategy never knows which one runs its candidates.
"""

from nasforge._lazy import lazy_exports

__getattr__ = lazy_exports(
    __name__,
    {
        "InProcessExecutor": "nasforge.executors.inprocess",
        "ProcessPoolExecutor": "nasforge.executors.pool",
        "RayExecutor": "nasforge.executors.ray",
    },
)
