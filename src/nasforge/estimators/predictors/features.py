"""Architectures to feature rows: a space encoding plus, optionally, proxy scores.

The encodings are the space's own (``space.encode(arch, kind)``): ``onehot`` (one op per edge,
one-hot; for NB201 the one-hot adjacency of the op-labelled cell) and ``path`` (one bit per
input-to-output path of ops; White et al., "BANANAS", AAAI 2021). A zero-cost proxy's scores
are added as extra columns, standardised with the mean and spread of the training set (White et
al., "How Powerful are Performance Predictors in NAS?", NeurIPS 2021, found proxy features lift
most predictors at small training sets).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from nasforge.core import Arch
from nasforge.errors import ConfigError
from nasforge.spaces.base import SearchSpace

#: standardised proxy columns are clipped to this many standard deviations: a heavy-tailed
#: proxy (synflow spans orders of magnitude) must not dominate the distance of a GP or ridge
CLIP = 5.0
#: encodings kept per Features object
MAX_CACHED = 20_000


def scorer_columns(scorer: Any, archs: Sequence[Arch]) -> dict[str, np.ndarray]:
    """Every score an arch scorer gives ``archs``: ``score_all`` where it has one, else
    ``score`` under the scorer's ``name``."""
    if hasattr(scorer, "score_all"):
        columns = scorer.score_all(list(archs))
    elif hasattr(scorer, "score"):
        columns = {str(getattr(scorer, "name", "score")): scorer.score(list(archs))}
    else:
        raise ConfigError(
            f"scorer {scorer!r} is not an arch scorer: expected score_all(archs) or score(archs)"
        )
    out = {}
    for name, values in columns.items():
        values = np.asarray(values, dtype=float).reshape(-1)
        if len(values) != len(archs):
            raise ConfigError(
                f"scorer column {name!r} has {len(values)} scores for {len(archs)} architectures"
            )
        out[str(name)] = values
    return out


class Features:
    """``transform(archs)``: rows of ``space.encode(arch, encoding)`` (none when ``encoding``
    is None) followed by one standardised column per proxy score of ``scorer``.

    ``fit_transform`` fixes each proxy column's mean and spread on the training archs; a
    non-finite score becomes the training mean (0 after standardising).
    """

    def __init__(self, space: SearchSpace, encoding: str | None, scorer: Any = None):
        self.space, self.encoding, self.scorer = space, encoding, scorer
        if encoding is not None:  # an unknown encoding fails now, with the space's list
            space.encode(space.sample(np.random.default_rng(0)), encoding)
        if scorer is not None and not (hasattr(scorer, "score_all") or hasattr(scorer, "score")):
            raise ConfigError(
                f"scorer {scorer!r} is not an arch scorer: expected score_all(archs) or "
                "score(archs)"
            )
        self.proxy_names: list[str] = []
        self._centre = np.zeros(0)
        self._scale = np.ones(0)
        self._codes: dict[Arch, np.ndarray] = {}

    @property
    def names(self) -> list[str]:
        """Column names: ``encoding[i]`` for the encoding's columns, then ``proxy:NAME``."""
        width = 0 if self.encoding is None else self.encoding_width
        return [f"{self.encoding}[{i}]" for i in range(width)] + [
            f"proxy:{n}" for n in self.proxy_names
        ]

    @property
    def encoding_width(self) -> int:
        if self.encoding is None:
            return 0
        return len(self._code(self.space.sample(np.random.default_rng(0))))

    def encode(self, archs: Sequence[Arch]) -> np.ndarray:
        """The encoding rows alone (cached per architecture), shape (len(archs), width)."""
        if self.encoding is None:
            return np.zeros((len(archs), 0))
        return np.stack([self._code(a) for a in archs]) if archs else np.zeros((0, 0))

    def fit_transform(self, archs: Sequence[Arch]) -> np.ndarray:
        """Rows for the training archs; fixes the standardisation of the proxy columns."""
        if self.scorer is not None:
            raw = scorer_columns(self.scorer, archs)
            self.proxy_names = list(raw)
            matrix = np.column_stack([raw[n] for n in self.proxy_names])
            finite = np.where(np.isfinite(matrix), matrix, np.nan)
            with np.errstate(all="ignore"):
                centre = np.nanmean(finite, axis=0)
                scale = np.nanstd(finite, axis=0)
            self._centre = np.nan_to_num(centre, nan=0.0)
            self._scale = np.where(np.isfinite(scale) & (scale > 0), scale, 1.0)
        return self.transform(archs)

    def proxies(self, archs: Sequence[Arch]) -> np.ndarray:
        """The standardised proxy columns alone, shape (len(archs), len(proxy_names))."""
        if self.scorer is None:
            return np.zeros((len(archs), 0))
        raw = scorer_columns(self.scorer, archs)
        missing = [n for n in self.proxy_names if n not in raw]
        if missing:
            raise ConfigError(f"scorer lost the proxy columns {missing} after fit")
        matrix = np.column_stack([raw[n] for n in self.proxy_names])
        z = (matrix - self._centre) / self._scale
        return np.clip(np.where(np.isfinite(z), z, 0.0), -CLIP, CLIP)

    def transform(self, archs: Sequence[Arch]) -> np.ndarray:
        archs = list(archs)
        return np.hstack([self.encode(archs), self.proxies(archs)])

    def _code(self, arch: Arch) -> np.ndarray:
        code = self._codes.get(arch)
        if code is None:
            if len(self._codes) >= MAX_CACHED:  # a long search keeps memory bounded
                self._codes.clear()
            code = self._codes[arch] = np.asarray(
                self.space.encode(arch, self.encoding), dtype=float
            )
        return code
