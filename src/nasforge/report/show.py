"""``nasforge show``: what a stored run found, readable while it runs or after it stopped."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from nasforge.config import stored_config
from nasforge.history import rank_architectures
from nasforge.outputs import find_export, find_final, run_folder
from nasforge.store import Store


def open_existing(path: str) -> Store:
    """Open a store that must already exist: `show` and `resume` never create an empty one."""
    return Store(path, create=False)


def run_summary(
    store: Store, name: str, top: int = 5, artifacts: str | Path | None = None
) -> dict[str, Any]:
    run = store.get_run(name)
    trials = store.trials(run)
    complete = [t for t in trials if t.state == "complete"]
    ranked = rank_stored(complete)
    return {
        "run": run.name,
        "store": store.location,
        "status": run.effective_status,
        "created": time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(run.created)),
        "updated": time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(last_activity(run, trials))),
        "config": current_config(run.config),
        "trials": {
            "complete": len(complete),
            "failed": sum(t.state == "failed" for t in trials),
            "running": sum(t.state == "running" for t in trials),
        },
        "best": [
            {"trial": t.number, "arch": t.arch, **t.result.to_json()}  # type: ignore[union-attr]
            for t in ranked[:top]
        ],
        "failures": [{"trial": t.number, "error": t.error} for t in trials if t.state == "failed"],
        **products(store, run, artifacts),
        **oneshot_summary(store, run),
        **pareto_summary(run.config, complete),
    }


def rank_stored(complete: list[Any]) -> list[Any]:
    """Stored complete trials, one per architecture, best first: the rule of `History.best`
    and final training, by the stored string (no space, no torch)."""
    return rank_architectures(
        complete,
        key=lambda t: t.arch,
        fidelity=lambda t: t.fidelity,
        objective=lambda t: t.result.objective,
        number=lambda t: t.number,
    )


def pareto_summary(config: dict[str, Any], complete: list[Any]) -> dict[str, Any]:
    """A multi-objective run's Pareto front, read from its stored trials: the non-dominated
    architectures (each judged once, at its highest fidelity) with their objective values, and
    the front's hypervolume against a stated reference point (the worst value of each
    objective over the run's trials, moved out by a tenth of its range)."""
    stored = stored_config(config)
    text = None if stored is None else stored.search.objectives
    if not text or not complete:
        return {}
    import numpy as np

    from nasforge.objectives import MissingObjective, Objectives, parse_objectives
    from nasforge.pareto import hypervolume, nadir_reference, nondominated

    bound = Objectives(parse_objectives(text), config.get("objective") or "objective")
    if len(bound) < 2:
        return {}
    judged = rank_stored(complete)
    try:
        points = np.asarray([bound.minimised(t.result) for t in judged])
    except MissingObjective as err:
        return {"pareto": {"error": str(err)}}
    mask = nondominated(points)
    reference = nadir_reference(points, margin=0.1)
    signs = -np.asarray(bound.signs)
    front = sorted(
        (
            {
                "trial": t.number,
                "arch": t.arch,
                "values": dict(zip(bound.names, p * signs, strict=True)),
            }
            for t, p, keep in zip(judged, points, mask, strict=True)
            if keep
        ),
        key=lambda row: row["values"][bound.names[0]] * bound.objectives[0].sign,
    )
    return {
        "pareto": {
            "objectives": bound.to_json(),
            "front": [
                {**row, "values": {k: float(v) for k, v in row["values"].items()}} for row in front
            ],
            "architectures": len(judged),
            "hypervolume": hypervolume(points[mask], reference),
            "reference_point": (reference * signs).tolist(),
            "all_values": (points * signs).tolist(),
        }
    }


def oneshot_summary(store: Store, run: Any) -> dict[str, Any]:
    """A one-shot run's record without its bulky parts (α per epoch, the check's scores)."""
    record = store.oneshot(run)
    if record is None:
        return {}
    history = record.get("history", [])
    brief = {k: v for k, v in record.items() if k not in ("history", "check")}
    brief["epochs_done"] = len(history)
    if history:
        brief["last_epoch"] = {k: v for k, v in history[-1].items() if k != "alpha"}
    if "check" in record:
        brief["check"] = {
            k: v for k, v in record["check"].items() if k not in ("scores", "archs", "truths")
        }
    return {"oneshot": brief}


def current_config(config: dict[str, Any]) -> dict[str, Any]:
    """The stored config with its run configuration (``cli``) in the current version, so a
    reader sees one format whatever nasforge wrote the run."""
    run_config = stored_config(config)
    return config if run_config is None else {**config, "cli": run_config.to_json()}


def last_activity(run: Any, trials: list[Any]) -> float:
    """When the run last did something: its own record changes only with its status, its
    trials' start and finish times show a running search is alive."""
    stamps = [run.updated]
    for trial in trials:
        stamps += [t for t in (trial.started, trial.finished) if t is not None]
    return max(stamps)


def products(store: Store, run: Any, artifacts: str | Path | None = None) -> dict[str, Any]:
    """The run's final training (its chosen architecture's test accuracy, kept in the store),
    its artifacts folder, and its export folder where a model was exported."""
    found: dict[str, Any] = {"artifacts": str(run_folder(store, run.name, artifacts))}
    done = find_final(store, run, artifacts)
    if done is not None:
        data = done.result
        chosen = next(a for a in data["architectures"] if a["rank"] == data["best"]["rank"])
        found["final"] = {
            "source": done.source,
            "weights": None if done.weights is None else str(done.weights),
            "arch": chosen["arch"],
            "test_acc_mean": chosen["test_acc_mean"],
            "test_acc_std": chosen["test_acc_std"],
            "seeds": len(data["seeds"]),
            "epochs": data["epochs"],
            "subset": data["subset"],
        }
    export_dir = find_export(store, run.name, artifacts)
    if export_dir is not None:
        found["export"] = str(export_dir)
    return found


def describe_run(
    path: str,
    name: str,
    top: int = 5,
    as_json: bool = False,
    artifacts: str | Path | None = None,
) -> str:
    store = open_existing(path)
    summary = run_summary(store, name, top, artifacts)
    if as_json:
        return json.dumps(summary)
    cfg = summary["config"]
    counts = summary["trials"]
    budget = cfg.get("budget", {}).get("evaluations")
    lines = [
        f"run {summary['run']} in {summary['store']}: {summary['status']}",
        f"  {cfg.get('strategy')} on {cfg.get('space')} with {cfg.get('estimator')}"
        f" (objective {cfg.get('objective')}), started {summary['created']}, "
        f"last update {summary['updated']}",
        f"  trials: {counts['complete']} complete, {counts['failed']} failed, "
        f"{counts['running']} in flight" + (f", budget {budget}" if budget else ""),
    ]
    if cfg.get("setup"):
        lines.append(f"  setup: {describe_setup(cfg['setup'])}")
    if summary["best"]:
        lines.append(f"  best {len(summary['best'])} by objective:")
        for row in summary["best"]:
            report = ", ".join(f"{k} {v:.2f}" for k, v in row["report"].items())
            lines.append(
                f"    #{row['trial']:<4} {row['objective']:8.2f}  {row['arch']}"
                + (f"  [report: {report}]" if report else "")
            )
    if "final" in summary:
        done = summary["final"]
        lines.append(
            f"  final training: {done['arch']} test {done['test_acc_mean']:.2f} ± "
            f"{done['test_acc_std']:.2f} over {done['seeds']} seed(s), {done['epochs']} epoch(s) "
            f"on {done['subset']:.0%} of the data"
            + (" (kept in the store)" if done["source"] == "store" else f" ({done['source']})")
        )
    if "pareto" in summary:
        lines.extend(describe_pareto(summary["pareto"]))
    if "oneshot" in summary:
        lines.extend(describe_oneshot(summary["oneshot"]))
    if "export" in summary:
        lines.append(f"  exported model: {summary['export']}/")
    stored = stored_config(cfg)
    plan = None if stored is None else stored.final
    if plan or "final" in summary or "export" in summary:
        lines.append(f"  artifacts folder: {summary['artifacts']}/")
    if plan and summary["status"] == "finished" and "export" not in summary:
        lines.append(
            f"  final training and export not done yet: nasforge resume {name} --store {path}"
        )
    for failure in summary["failures"][:5]:
        lines.append(f"  failed #{failure['trial']}: {failure['error']}")
    if summary["status"] == "interrupted":
        lines.append(f"  continue with: nasforge resume {name} --store {path}")
    return "\n".join(lines)


def plot_front(path: str, name: str, out: str | Path) -> Path:
    """``nasforge show RUN --front-plot FILE``: the run's trials and front (two objectives)."""
    from nasforge.errors import ConfigError
    from nasforge.report.fronts import plot_run_front

    summary = run_summary(open_existing(path), name, top=1)
    pareto = summary.get("pareto")
    if not pareto or "error" in pareto or len(pareto["objectives"]) != 2:
        raise ConfigError(
            f"run {name!r} has no two-objective front to draw (it was not searched with two "
            "--objectives, or its trials lack them)"
        )
    names = [o["name"] for o in pareto["objectives"]]
    front = [[row["values"][n] for n in names] for row in pareto["front"]]
    title = f"{name}: {len(front)} of {pareto['architectures']} architectures on the front"
    return plot_run_front(pareto["all_values"], front, pareto["objectives"], title, out)


def describe_pareto(pareto: dict[str, Any]) -> list[str]:
    """The front as lines: one per non-dominated architecture, best first objective first."""
    if "error" in pareto:
        return [f"  Pareto front: not available ({pareto['error']})"]
    names = [o["name"] for o in pareto["objectives"]]
    over = ", ".join(f"{o['name']} ({o['direction']})" for o in pareto["objectives"])
    reference = ", ".join(f"{v:.4g}" for v in pareto["reference_point"])
    lines = [
        f"  Pareto front over {over}: {len(pareto['front'])} of {pareto['architectures']} "
        f"architectures, hypervolume {pareto['hypervolume']:.4g} (reference point "
        f"{reference}: the trials' worst values moved out by a tenth of their range)",
    ]
    for row in pareto["front"]:
        values = "  ".join(f"{name} {row['values'][name]:.4g}" for name in names)
        lines.append(f"    #{row['trial']:<4} {values}  {row['arch']}")
    return lines


def describe_oneshot(brief: dict[str, Any]) -> list[str]:
    """The lines of a one-shot run: supernet progress, the derived cell, the check."""
    recipe = brief.get("recipe", {})
    lines = [
        f"  one-shot {brief.get('method')}: {brief['epochs_done']}/{recipe.get('epochs')} "
        f"supernet epochs, {brief.get('train_seconds', 0) / 60:.1f} min; split "
        f"{brief.get('split', {}).get('train')} train / {brief.get('split', {}).get('val')} "
        "validation images"
    ]
    last = brief.get("last_epoch")
    if last:
        lines.append(
            f"  last epoch: train acc {last['train_acc']:.1f}, val acc {last['val_acc']:.1f}"
            + (f", derived {last['derived']}" if "derived" in last else "")
        )
    if "derived" in brief:
        lines.append(
            f"  derived: {brief['derived']} (supernet val acc {brief['derived_val_acc']:.2f})"
        )
    if "derived_nb201" in brief:
        accs = ", ".join(f"{k} {v:.2f}" for k, v in brief["derived_nb201"].items())
        lines.append(f"  NB201 200-epoch test accuracy (report only): {accs}")
    for dataset, m in brief.get("check", {}).get("metrics", {}).items():
        lines.append(
            f"  supernet vs NB201 {dataset}: Kendall tau {m['kendall']:.3f}, Spearman rho "
            f"{m['spearman']:.3f} over {brief['check']['cells']} cells"
        )
    return lines


def describe_setup(setup: dict[str, Any]) -> str:
    """One line a report can quote: the data split, the fidelity and the training recipe."""
    parts = [
        f"{setup.get('dataset')} split {setup.get('train_images')} train / "
        f"{setup.get('val_images')} validation / {setup.get('test_images')} test "
        f"(seed {setup.get('split_seed')})",
        f"{setup.get('epochs')} epochs on {setup.get('subset'):g} of the train split",
    ]
    if setup.get("resolution") and setup["resolution"] != setup.get("image_size"):
        parts.append(f"images resized {setup.get('image_size')} -> {setup['resolution']}")
    augmentation = setup.get("augmentation")
    parts.append(
        "augmentation "
        + (", ".join(f"{k} {v}" for k, v in augmentation.items()) if augmentation else "none")
    )
    if setup.get("early_stopping"):
        parts.append(f"early stopping {setup['early_stopping']}")
    if setup.get("net"):
        parts.append("network " + ", ".join(f"{k}={v}" for k, v in setup["net"].items()))
    return "; ".join(parts)


def list_runs(path: str, as_json: bool = False) -> str:
    store = open_existing(path)
    rows = []
    for name in store.run_names():
        run = store.get_run(name)
        n = sum(t.state == "complete" for t in store.trials(run))
        rows.append({"run": name, "status": run.effective_status, "complete_trials": n})
    if as_json:
        return json.dumps(rows)
    if not rows:
        return f"no runs in {path}"
    return "\n".join(
        f"{r['run']:<30} {r['status']:<12} {r['complete_trials']} trials" for r in rows
    )
