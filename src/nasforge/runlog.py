"""What a run tells people while it runs: a log file per run and the progress line.

The log file is ``logs/<run>.log`` beside a SQLite store (in the working directory for a
database server), or in ``log_dir``; a run without store or ``log_dir`` keeps no file. The
progress line counts trials or cost seconds, with running and failed trials, the best
objective and an ETA (live on a terminal, periodic in logs).
"""

from __future__ import annotations

import logging
from pathlib import Path

from nasforge.budget import Budget
from nasforge.executors.base import Outcome
from nasforge.history import History
from nasforge.report.progress import Progress
from nasforge.store import Store


def log_folder(log_dir: Path | None, store: Store | None) -> Path | None:
    """Where the run's log file goes: ``log_dir``, else beside a SQLite store (for a database
    server, in the working directory), else nowhere."""
    if log_dir is not None or store is None:
        return log_dir
    store_file = getattr(store, "path", None)  # only a SQLite store is a file
    return Path(store_file).parent / "logs" if store_file else Path("logs")


class RunLog:
    """The run's logger (``nasforge.run.<name>``) and, once opened, its file."""

    def __init__(self, name: str, objective_name: str):
        self.name, self.objective_name = name, objective_name
        self.logger = logging.getLogger(f"nasforge.run.{name}")

    @property
    def path(self) -> Path | None:
        handler = next(
            (h for h in self.logger.handlers if isinstance(h, logging.FileHandler)), None
        )
        return None if handler is None else Path(handler.baseFilename)

    def open(self, folder: Path | None, header: str) -> None:
        """Write to ``folder/<run>.log`` (appending: a resumed run continues its file)."""
        if folder is None:
            return
        folder.mkdir(parents=True, exist_ok=True)
        handler = logging.FileHandler(folder / f"{self.name}.log")
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
        self.logger.handlers = [handler]
        self.logger.setLevel(logging.INFO)
        self.logger.propagate = False
        self.logger.info("%s", header)

    def info(self, message: str, *args: object) -> None:
        self.logger.info(message, *args)

    def trial_started(self, number: int, arch: str, fidelity: float | None) -> None:
        at = "" if fidelity is None else f" at fidelity {fidelity:g}"
        self.logger.info("trial %d started: %s%s", number, arch, at)

    def trial_ended(self, outcome: Outcome) -> None:
        if outcome.result is None:
            self.logger.warning(
                "trial %d failed on %s: %s", outcome.number, outcome.worker, outcome.error
            )
            return
        self.logger.info(
            "trial %d finished on %s in %.2f s: %s %.4f",
            outcome.number,
            outcome.worker,
            outcome.seconds,
            self.objective_name,
            outcome.result.objective,
        )

    def close(self, message: str) -> None:
        self.logger.info("run %s", message)
        for handler in self.logger.handlers:
            handler.close()
        self.logger.handlers = []


def summary(history: History) -> str:
    """``N trials, F failed, best X (trial i: arch)``: the last line of a run's log."""
    best = history.best
    text = f"{len(history.trials)} trials, {len(history.failed)} failed"
    if best is not None:
        text += f", best {best.result.objective:.4f} (trial {best.number}: {best.arch})"  # type: ignore[union-attr]
    return text


def budget_progress(budget: Budget, label: str, enabled: bool) -> Progress:
    """Counted in trials or in cost seconds; with both limits, in percent of whichever runs out
    first (so the ETA follows the limit that will end the run)."""
    total: float
    if budget.evaluations is not None and budget.seconds is not None:
        total, unit = 100.0, "% of budget"
    elif budget.evaluations is not None:
        total, unit = budget.evaluations, "trials"
    else:
        total, unit = budget.seconds, "s"  # type: ignore[assignment]
    return Progress(total, label=label, unit=unit, enabled=enabled)


def progress_amount(budget: Budget, history: History) -> float:
    """How far the run is, in the unit of `budget_progress`."""
    trials = len(history.trials)
    if budget.seconds is None:
        return trials
    cost = round(history.total_cost, 1)
    if budget.evaluations is None:
        return cost
    return round(100.0 * max(trials / budget.evaluations, cost / budget.seconds), 1)


def progress_text(
    history: History, running: int, objective_name: str, degraded: str | None = None
) -> str:
    """``running R | <executor's degraded note> | failed F | best <objective> X``: what
    follows the count."""
    best = history.best
    parts = [f"running {running}"]
    if degraded:
        parts.append(degraded)
    if history.failed:
        parts.append(f"failed {len(history.failed)}")
    if best is not None:
        parts.append(f"best {objective_name} {best.result.objective:.2f}")  # type: ignore[union-attr]
    return " | ".join(parts)
