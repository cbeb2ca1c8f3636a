"""One-shot (weight-sharing) search: supernets, their mixed operations, and the methods that
train them (DARTS and its family, GDAS, SNAS, PC-DARTS, β-DARTS, DrNAS, DARTS-, SPOS, FairNAS,
RSWS, ENAS). A method returns an architecture of the space and its history; sampling-based
methods then search with an ordinary `Strategy` over a `SupernetEstimator`."""

from nasforge._lazy import export_lazily

export_lazily(
    globals(),
    {
        "METHODS": "nasforge.oneshot.registry",
        "MixedOp": "nasforge.oneshot.mixed",
        "Path": "nasforge.oneshot.mixed",
        "SupernetEstimator": "nasforge.oneshot.estimator",
        "make_method": "nasforge.oneshot.methods",
        "make_supernet": "nasforge.oneshot.supernet",
    },
)
