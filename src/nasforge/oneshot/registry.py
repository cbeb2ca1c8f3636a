"""Every one-shot method by its ``--method`` name (`oneshot.command.METHOD_NAMES` lists the same
names without importing torch; a test keeps the two equal)."""

from __future__ import annotations

from nasforge.oneshot.hardware_methods import FBNet, ProxylessNAS
from nasforge.oneshot.methods import (
    BetaDarts,
    Darts,
    DartsMinus,
    DrNas,
    Enas,
    FairNas,
    Gdas,
    OneShotMethod,
    PcDarts,
    PDarts,
    Rsws,
    Snas,
    Spos,
)

METHODS: dict[str, type[OneShotMethod]] = {
    cls.name: cls
    for cls in (
        Darts,
        Gdas,
        Snas,
        PcDarts,
        PDarts,
        BetaDarts,
        DrNas,
        DartsMinus,
        Spos,
        FairNas,
        Rsws,
        Enas,
        ProxylessNAS,
        FBNet,
    )
}
