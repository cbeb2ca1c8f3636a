"""On a multi-fidelity run every command agrees on "the best": `History.best`, the anytime
curve, `nasforge show` and final training's choice judge each architecture at the highest
fidelity it reached. The scripted trials make the answer known by hand: architecture a's lucky
short training (90) must not beat c's long one (80), because a's own long training gave 70."""

from __future__ import annotations

from pathlib import Path

from nasforge.core import Candidate, Result
from nasforge.experiment import Experiment
from nasforge.final import top_architectures
from nasforge.report.show import run_summary
from nasforge.spaces.custom import Custom
from nasforge.store import Store

#: (architecture, fidelity) -> objective, asked in this order
SCRIPT = [("a", 1.0, 90.0), ("b", 1.0, 60.0), ("c", 3.0, 80.0), ("a", 3.0, 70.0)]


class Scripted:
    """A strategy that asks the script's candidates in order."""

    name = "scripted"

    def __init__(self, space: Custom) -> None:
        self.asks = iter([Candidate(space.from_string(f"x={x}"), f) for x, f, _ in SCRIPT])

    def ask(self) -> Candidate:
        return next(self.asks)

    def tell(self, candidate: Candidate, result: Result) -> None:
        pass


class ScriptedScores:
    name = "scripted"
    objective_name = "val_acc"

    def evaluate(self, candidate: Candidate) -> Result:
        score = {(x, f): s for x, f, s in SCRIPT}[(candidate.arch["x"], candidate.fidelity)]
        return Result(objective=score, metrics={}, report={"test_acc": score - 1}, cost=1.0,
                      fidelity=candidate.fidelity)  # fmt: skip


def test_history_curve_show_and_final_training_pick_the_same_best(tmp_path: Path) -> None:
    space = Custom({"x": ["a", "b", "c"]})
    store = tmp_path / "r.db"
    history = Experiment(
        space, Scripted(space), ScriptedScores(), len(SCRIPT), store=store, name="mf",
        progress=False,
    ).run()  # fmt: skip
    assert history.best.arch == "x=c" and history.best.result.objective == 80.0
    curve = history.anytime()
    assert [p["best_arch"] for p in curve] == ["x=a", "x=a", "x=a", "x=c"]
    assert curve[-1]["best_test_acc"] == 79.0
    with Store(store) as db:
        trials = db.trials(db.get_run("mf"))
        chosen = top_architectures(space, trials, 3)
        shown = run_summary(db, "mf")["best"]
    assert [c["arch"] for c in chosen] == ["x=c", "x=a", "x=b"]
    assert [c["objective"] for c in chosen] == [80.0, 70.0, 60.0]
    assert [row["arch"] for row in shown] == ["x=c", "x=a", "x=b"]
