"""From data to a model one can ship in one command: search, then final training, then export.

``nasforge search`` with real training (its default) does not stop at a ranking: once the search
has spent its budget, the winner is retrained at a higher fidelity over several seeds
(`final.train_final`) and exported (`export.export_run`). The plan is part of the run's stored
configuration (``config["cli"]["final"]``), so ``nasforge resume`` of an interrupted run carries
on to the same end; a final training that already finished is not repeated.

This module holds the plan and its defaults only; the work is done by `final` and `export`.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any

from nasforge.errors import ConfigError

#: where a real-training search is stored when no ``--store`` is given: a run that trains for
#: minutes must survive an interruption, and final training and export read it back
DEFAULT_STORE = "runs/nasforge.db"


@dataclass(frozen=True)
class FinalPlan:
    """What happens after the search. ``epochs``/``subset`` None: a higher fidelity than the
    search's, twice its epochs on three times its share of the data (at most all of it), so
    the final numbers are not read off the proxy the search ranked with."""

    top_k: int = 1
    seeds: int = 2
    epochs: int | None = None
    subset: float | None = None

    def __post_init__(self) -> None:
        for name in ("top_k", "seeds", "epochs"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or value < 1):
                raise ConfigError(f"final {name} must be a whole number >= 1, got {value!r}")
        if self.subset is not None and not 0 < self.subset <= 1:
            raise ConfigError(f"final subset must be a fraction in (0, 1], got {self.subset!r}")

    def resolved(self, search_epochs: int, search_subset: float) -> tuple[int, float]:
        """(epochs, subset) of the final training for a search at this fidelity."""
        epochs = self.epochs if self.epochs is not None else 2 * int(search_epochs)
        subset = self.subset if self.subset is not None else min(1.0, 3.0 * search_subset)
        return epochs, float(subset)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_config(cls, cfg: dict[str, Any]) -> FinalPlan | None:
        """The plan stored with a run; None for a search-only run (or one stored before
        searches went on to final training)."""
        stored = cfg.get("final")
        return None if not stored else cls(**stored)


def finish(
    store: Any,
    run_name: str,
    plan: FinalPlan,
    *,
    data_dir: str | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Final training (unless a finished one is stored already) and export of a stored run;
    ``{"final": FinalResult JSON, "export": what export_run wrote, "final_reused": bool}``."""
    from nasforge import final
    from nasforge.export import export_run
    from nasforge.outputs import final_paths

    with final.open_store(store) as db:
        _, cfg, _ = final.load_run(db, run_name)
        json_path, weights_path = final_paths(db, run_name)
    reused = json_path.is_file() and weights_path.is_file()
    if reused:
        result = json.loads(json_path.read_text())
    else:
        epochs, subset = plan.resolved(cfg["epochs"], cfg["subset"])
        result = final.train_final(
            store,
            run_name,
            top_k=plan.top_k,
            seeds=plan.seeds,
            epochs=epochs,
            subset=subset,
            data_dir=data_dir,
            progress=progress,
        ).to_json()
    written = export_run(store, run_name, data_dir=data_dir, progress=progress)
    return {"final": result, "export": written, "final_reused": reused}
