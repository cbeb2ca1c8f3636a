"""From data to a model one can ship in one command: search, then final training, then export.

``nasforge search`` with real training (its default) does not stop at a ranking: once the search
has spent its budget, the winner is retrained at a higher fidelity over several seeds
(`final.train_final`) and exported (`export.export_run`). The plan (`config.FinalPlan`) is part
of the run's stored configuration, so ``nasforge resume`` of an interrupted run carries on to
the same end; a final training that already finished (kept in the store, with its weights) is
not repeated.

This module sequences the two steps only; the work is done by `final` and `export`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from nasforge.config import FinalPlan

__all__ = ["DEFAULT_STORE", "FinalPlan", "finish"]

#: where a real-training search is stored when no ``--store`` is given: a run that trains for
#: minutes must survive an interruption, and final training and export read it back
DEFAULT_STORE = "runs/nasforge.db"


def finish(
    store: Any,
    run_name: str,
    plan: FinalPlan,
    *,
    data_dir: str | None = None,
    progress: bool = True,
    artifacts: str | Path | None = None,
) -> dict[str, Any]:
    """Final training (unless a finished one is stored already) and export of a stored run;
    ``{"final": FinalResult JSON, "export": what export_run wrote, "final_reused": bool}``."""
    from nasforge import final
    from nasforge.export import export_run
    from nasforge.outputs import find_final

    with final.open_store(store) as db:
        run, cfg, _ = final.load_run(db, run_name)
        found = find_final(db, run, artifacts)
    reused = found is not None and found.weights is not None
    if found is not None and reused:
        result = found.result
    else:
        epochs, subset = plan.resolved(cfg.train.epochs, cfg.train.subset)
        result = final.train_final(
            store,
            run_name,
            top_k=plan.top_k,
            seeds=plan.seeds,
            epochs=epochs,
            subset=subset,
            data_dir=data_dir,
            progress=progress,
            artifacts=artifacts,
        ).to_json()
    written = export_run(store, run_name, data_dir=data_dir, progress=progress, artifacts=artifacts)
    return {"final": result, "export": written, "final_reused": reused}
