"""Executors run trials: in this process, in a pool of worker processes, or on a Ray cluster.

One interface (``base.Executor``): start with an estimator, submit jobs, wait for outcomes.
The strategy never knows which one runs its candidates.
"""

from nasforge._lazy import export_lazily

export_lazily(
    globals(),
    {
        "InProcessExecutor": "nasforge.executors.inprocess",
        "ProcessPoolExecutor": "nasforge.executors.pool",
        "RayExecutor": "nasforge.executors.ray",
    },
)
