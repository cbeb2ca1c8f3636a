"""``nasforge report``: one self-contained HTML page (plus the same figures as PNG) for stored
runs or a ``nasforge benchmark`` result.

Self-contained means it opens without network access: the stylesheet, the table script and
every figure (SVG) are inside ``index.html``. It reads the store only, like ``nasforge show``.
"""

from __future__ import annotations

import csv
import json
import math
import statistics
import time
from importlib import metadata
from pathlib import Path
from typing import Any

from nasforge.errors import ConfigError
from nasforge.report import figures
from nasforge.report.disclosure import benchmark_disclosure, run_disclosure
from nasforge.report.trial_rows import columns, metric_columns, trial_row

#: a run with more trials than this shows its best ones in the page; all go to the CSV
MAX_ROWS = 5000
ASSETS = Path(__file__).parent


def page(template: str, **context: Any) -> str:
    """Render a template of ``report/templates`` with autoescaping: a run name or an error
    message with markup in it is shown as text, never run as markup."""
    from jinja2 import Environment, FileSystemLoader, select_autoescape

    env = Environment(
        loader=FileSystemLoader(ASSETS / "templates"),
        autoescape=select_autoescape(default=True, default_for_string=True),
    )
    return env.get_template(template).render(**context)


def asset(name: str) -> str:
    return (ASSETS / "static" / name).read_text()


def version() -> str:
    try:
        return metadata.version("nasforge")
    except metadata.PackageNotFoundError:
        return "unknown"


def prepare_out(out: Path) -> Path:
    """The report's folder, made if missing; a path that cannot be one is a clear error."""
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ConfigError(
            f"cannot write the report to {out}: {err.strerror or err} (give a folder for --out)"
        ) from None
    return out


def write_page(out: Path, title: str, **context: Any) -> Path:
    prepare_out(out)
    html = page(
        "report.html",
        title=title,
        made=time.strftime("%Y-%m-%d %H:%M:%S"),
        version=version(),
        css=asset("style.css"),
        js=asset("table.js"),
        **context,
    )
    target = out / "index.html"
    staged = out / ".index.html.part"
    staged.write_text(html)
    staged.replace(target)  # a reader never sees half a page
    return target


# runs in a store ---------------------------------------------------------------------------


def report_runs(store_url: str, names: list[str], out: str | Path) -> Path:
    """The report of ``names`` in the store at ``store_url``: a section per run (at most
    `MAX_SECTIONS`; more runs get the comparison only) and, for several runs, the comparison."""
    from nasforge.report.show import open_existing

    out = Path(out)
    with open_existing(store_url) as store:
        runs = [store.get_run(name) for name in names]  # every name checked before any work
        prepare_out(out)
        sections = [
            run_section(store, run, out, index)
            for index, run in enumerate(runs, 1)
            if len(runs) <= MAX_SECTIONS
        ]
        comparison = runs_comparison(store, runs, out) if len(runs) > 1 else None
    notices = []
    if len(runs) > MAX_SECTIONS:
        notices.append(
            f"{len(runs)} runs: the comparison only (a section per run is drawn for at most "
            f"{MAX_SECTIONS}; report fewer runs to see them)"
        )
    title = names[0] if len(names) == 1 else f"{len(names)} runs"
    return write_page(out, title, runs=sections, comparison=comparison, notices=notices)


MAX_SECTIONS = 8


def run_section(store: Any, run: Any, out: Path, index: int) -> dict[str, Any]:
    """Everything the page shows of one run."""
    from nasforge.report.show import pareto_summary, products, rank_stored

    trials = store.trials(run)
    complete = [t for t in trials if t.state == "complete" and t.result is not None]
    counts = {s: sum(t.state == s for t in trials) for s in ("complete", "failed", "running")}
    config = run.config
    status = run.effective_status
    ranked = rank_stored(complete)
    objective_name = str(config.get("objective", "objective"))
    section: dict[str, Any] = {
        "name": run.name,
        "objective": objective_name,
        "status": status,
        "headline": headline(config, counts),
        "notices": status_notices(run, status, store, len(trials)),
        "figures": [],
        "failures": [{"trial": t.number, "error": t.error} for t in trials if t.state == "failed"][
            :20
        ],
    }
    oneshot = store.oneshot(run)
    best_arch = None
    if ranked:
        best = ranked[0]
        best_arch = best.arch
        extra = ", ".join(f"{k} {v:.4g}" for k, v in best.result.report.items())
        section["best"] = {
            "trial": best.number,
            "objective": f"{best.result.objective:.4g}",
            "arch": best.arch,
            "extra": extra,
        }
    elif oneshot and oneshot.get("derived"):
        best_arch = oneshot["derived"]
        section["best"] = {
            "trial": "the cell derived from the trained supernet",
            "objective": f"{oneshot.get('derived_val_acc', float('nan')):.4g}",
            "arch": best_arch,
            "extra": "its accuracy with the supernet's weights",
        }
    section.update(diagram_of(str(config.get("space", "")), best_arch))
    made = products(store, run)
    if "final" in made:
        f = made["final"]
        section["final"] = (
            f"{f['arch']}: test {f['test_acc_mean']:.2f} ± {f['test_acc_std']:.2f} over "
            f"{f['seeds']} seed(s), {f['epochs']} epoch(s) on {f['subset']:.0%} of the data"
        )
    prefix = f"run{index}"
    section["figures"] += trial_figures(complete, objective_name, out, prefix)
    pareto = pareto_summary(config, complete).get("pareto")
    if pareto and "error" not in pareto:
        section["front"] = front_table(pareto)
        if len(pareto["objectives"]) == 2:  # the front first: it is what such a run is for
            section["figures"].insert(0, front_figure(pareto, out, prefix))
    if oneshot:
        section["figures"] += oneshot_figures(oneshot, out, prefix)
    cost = sum(t.result.cost for t in complete)
    wall = store.last_activity(run) - run.created
    section["disclosure"] = run_disclosure(config, cost, wall, len(trials))
    section.update(table_rows(trials, complete, ranked, out, prefix))
    return section


def headline(config: dict[str, Any], counts: dict[str, int]) -> str:
    budget = (config.get("budget") or {}).get("evaluations")
    return (
        f"{config.get('strategy')} on {config.get('space')} with {config.get('estimator')}; "
        f"{counts['complete']} complete, {counts['failed']} failed, {counts['running']} in flight"
        + (f" of a budget of {budget} evaluations" if budget else "")
    )


def status_notices(run: Any, status: str, store: Any, trials: int) -> list[str]:
    """What a reader must know about a run that is not finished."""
    stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(store.last_activity(run)))
    if status == "running":
        return [
            f"This run is still being written (last activity {stamp}): the report shows the "
            f"{trials} trials stored when it was made. Make the report again for the rest, "
            "or watch it live with nasforge dashboard."
        ]
    if status == "interrupted":
        return [
            f"This run was interrupted (last activity {stamp}); continue it with: nasforge "
            f"resume {run.name} --store {store.location}"
        ]
    if status == "failed":
        return ["This run failed; its trials up to the failure are shown."]
    return []


def diagram_of(space: str, arch: str | None) -> dict[str, Any]:
    """The drawing of the best architecture, or a note why there is none."""
    from nasforge.report.diagrams import architecture_svg

    if arch is None:
        return {"diagram": None, "diagram_note": "no architecture found yet"}
    try:
        svg = architecture_svg(space, arch)
    except ValueError as err:
        return {"diagram": None, "diagram_note": f"no drawing: {err}"}
    if svg is None:
        return {
            "diagram": None,
            "diagram_note": f"no drawing for the {space!r} space: its architectures are the "
            "strings above",
        }
    return {"diagram": svg, "diagram_note": ""}


def trial_figures(complete: list[Any], objective: str, out: Path, prefix: str) -> list[dict]:
    """Anytime curve, objective vs trial time, objective vs parameters (where measured)."""
    if not complete:
        return []
    numbers = [t.number for t in complete]
    values = [t.result.objective for t in complete]
    shown = [
        figure(
            figures.anytime_run_figure(numbers, values, objective, "best so far"),
            out,
            f"{prefix}-anytime",
            "Anytime curve: every complete trial's objective and the best so far.",
        )
    ]
    best = max(range(len(values)), key=values.__getitem__)
    seconds = [t.result.cost for t in complete]
    if any(s > 0 for s in seconds):
        shown.append(
            figure(
                figures.scatter_figure(
                    seconds,
                    values,
                    "cost: training seconds (simulated for a table)",
                    objective,
                    "objective vs cost",
                    log_x=True,
                    highlight=best,
                ),
                out,
                f"{prefix}-cost",
                "Objective against what each trial cost.",
            )
        )
    for metric, label in (("params", "parameters"), ("macs", "MACs")):
        pairs = [
            (t.result.metrics[metric], t.result.objective)
            for t in complete
            if metric in t.result.metrics
        ]
        if len(pairs) >= 2:
            x, y = zip(*pairs, strict=True)
            top = max(range(len(y)), key=y.__getitem__)
            shown.append(
                figure(
                    figures.scatter_figure(
                        x, y, label, objective, f"objective vs {label}", True, top
                    ),
                    out,
                    f"{prefix}-{metric}",
                    f"Objective against the network's {label}.",
                )
            )
    return shown


def front_table(pareto: dict[str, Any]) -> dict[str, Any]:
    names = [o["name"] for o in pareto["objectives"]]
    reference = ", ".join(f"{v:.4g}" for v in pareto["reference_point"])
    return {
        "names": [f"{o['name']} ({o['direction']})" for o in pareto["objectives"]],
        "rows": [
            {
                "trial": row["trial"],
                "values": [f"{row['values'][n]:.4g}" for n in names],
                "arch": row["arch"],
            }
            for row in pareto["front"]
        ],
        "caption": f"{len(pareto['front'])} of {pareto['architectures']} architectures on the "
        f"front; hypervolume {pareto['hypervolume']:.4g} against the reference point "
        f"({reference}): the trials' worst values moved out by a tenth of their range",
    }


def front_figure(pareto: dict[str, Any], out: Path, prefix: str) -> dict[str, Any]:
    from nasforge.report.fronts import run_front_figure

    names = [o["name"] for o in pareto["objectives"]]
    front = [[row["values"][n] for n in names] for row in pareto["front"]]
    fig = run_front_figure(pareto["all_values"], front, pareto["objectives"], "Pareto front")
    return figure(fig, out, f"{prefix}-front", "Every architecture (grey) and the front (red).")


def oneshot_figures(record: dict[str, Any], out: Path, prefix: str) -> list[dict[str, Any]]:
    """The α trajectory and, where the run made the weight-sharing check, supernet vs table."""
    shown = []
    history = record.get("history") or []
    if any("alpha" in h for h in history):
        ops = (record.get("supernet") or {}).get("ops")
        fig = figures.alpha_figure(history, ops, f"{record.get('method')}: α over the epochs")
        shown.append(
            figure(fig, out, f"{prefix}-alpha", "Architecture weights, averaged over edges.")
        )
    check = record.get("check") or {}
    truths = check.get("truths") or {}
    for dataset, values in truths.items():
        scores = check.get("scores") or []
        if len(scores) == len(values) and scores:
            metrics = (check.get("metrics") or {}).get(dataset, {})
            fig = figures.rank_check_figure(
                scores, values, f"NB201 {dataset} test accuracy (200 epochs)", metrics
            )
            shown.append(
                figure(
                    fig,
                    out,
                    f"{prefix}-check-{dataset}",
                    f"Supernet accuracy against NAS-Bench-201's, {dataset}: the rank "
                    "correlation of weight sharing.",
                )
            )
    return shown


def table_rows(
    trials: list[Any], complete: list[Any], ranked: list[Any], out: Path, prefix: str
) -> dict[str, Any]:
    """The trial table: every trial, or for a huge run the best `MAX_ROWS` (all go to CSV)."""
    metrics = metric_columns(trials)
    header = columns(metrics)
    chosen = trials
    note = ""
    if len(trials) > MAX_ROWS:
        order = sorted(complete, key=lambda t: -t.result.objective)
        chosen = sorted(order[:MAX_ROWS], key=lambda t: t.number)
        note = (
            f"the best {MAX_ROWS} of {len(trials)} trials by objective; all are in "
            f"{prefix}-trials.csv"
        )
    rows = [trial_row(t, metrics) for t in chosen]
    with (out / f"{prefix}-trials.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        for trial in trials:
            writer.writerow(cell["text"] for cell in trial_row(trial, metrics)["cells"])
    return {"columns": header, "rows": rows, "rows_note": note}


def figure(fig: Any, out: Path, name: str, caption: str) -> dict[str, Any]:
    """A figure for the page (SVG) and beside it (``NAME.png``)."""
    return {"id": name, "svg": figures.render(fig, out / f"{name}.png"), "caption": caption}


def runs_comparison(store: Any, runs: list[Any], out: Path) -> dict[str, Any]:
    """Several runs: grouped by strategy, the best objective as mean ± std over the group's
    runs (its seeds) and the best-so-far curves with one-std bands."""
    groups: dict[str, list[list[float]]] = {}
    for run in runs:
        series = store.trial_series(run)
        curve = figures.best_so_far([row[1] for row in series if row[1] is not None])
        groups.setdefault(str(run.config.get("strategy")), []).append(curve)
    rows, curves = [], {}
    for name, members in groups.items():
        finals = [c[-1] for c in members if c]
        rows.append(
            [
                name,
                str(len(members)),
                mean_std(finals),
                f"{statistics.mean(len(c) for c in members):.0f}",
            ]
        )
        length = max((len(c) for c in members), default=0)
        padded = [c + [c[-1]] * (length - len(c)) for c in members if c]
        if padded:
            columns_ = list(zip(*padded, strict=True))
            curves[name] = (
                [statistics.mean(col) for col in columns_],
                [statistics.pstdev(col) for col in columns_],
            )
    objective = str(runs[0].config.get("objective", "objective"))
    fig = figures.band_figure(curves, f"best {objective} so far", "runs by strategy, mean ± std")
    return {
        "columns": ["strategy", "runs", f"best {objective} (mean ± std)", "trials (mean)"],
        "rows": rows,
        "caption": "Runs grouped by strategy; each group's spread is over its runs (seeds).",
        "figures": [figure(fig, out, "comparison-anytime", "Best so far, mean ± std per group.")],
        "disclosure": None,
    }


def mean_std(values: list[float]) -> str:
    if not values:
        return "–"
    spread = statistics.pstdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.3f} ± {spread:.3f}"


# a benchmark result -------------------------------------------------------------------------


def load_results(path: str | Path) -> dict[str, Any]:
    """A ``nasforge benchmark --out FILE`` result, checked to be one."""
    path = Path(path)
    try:
        results = json.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"benchmark result {path} does not exist") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ConfigError(f"{path} is not a nasforge benchmark result (not JSON: {err})") from None
    if not isinstance(results, dict) or not {"config", "strategies"} <= set(results):
        raise ConfigError(
            f"{path} is not a nasforge benchmark result: it has no 'config' and 'strategies' "
            "(give the JSON that nasforge benchmark --out wrote, or RUN names with --store)"
        )
    return results


def report_benchmark(path: str | Path, out: str | Path) -> Path:
    """The report of a benchmark result: comparison table, curves with bands, fronts."""
    from nasforge.report.fronts import benchmark_fronts_figure
    from nasforge.report.plots import anytime_figure

    results = load_results(path)
    out = prepare_out(Path(out))
    cfg = results["config"]
    metric = cfg.get("report_metric", "objective")
    columns_ = ["strategy", "runs", f"{metric} (mean ± std)", "min", "max", "s per run"]
    multi = any("hypervolume_fraction" in row for row in results["strategies"].values())
    if multi:
        columns_.append("hypervolume fraction (mean ± std)")
    rows = []
    for name, row in results["strategies"].items():
        cells = [
            name,
            str(row.get("runs")),
            f"{row['mean']:.3f} ± {row['std']:.3f}",
            f"{row['min']:.3f}",
            f"{row['max']:.3f}",
            f"{row.get('seconds_per_run', math.nan):.3g}",
        ]
        if multi:
            cells.append(
                f"{row.get('hypervolume_fraction', math.nan):.4f} ± "
                f"{row.get('hypervolume_fraction_std', math.nan):.4f}"
            )
        rows.append(cells)
    shown = [
        figure(
            anytime_figure(results),
            out,
            "anytime",
            f"{metric} of the best-by-objective architecture against evaluations, mean ± std "
            "over seeds (bands drawn for up to 4 strategies).",
        )
    ]
    if len(results["strategies"]) > 4:
        shown.append(
            figure(
                figures.band_grid_figure(results),
                out,
                "anytime-bands",
                "The same curves one strategy at a time, each with its band and random search's.",
            )
        )
    if any(row.get("time_mean") for row in results["strategies"].values()):
        shown.append(
            figure(
                anytime_figure(results, "time", "simulated training seconds"),
                out,
                "anytime-time",
                "The same against simulated training time.",
            )
        )
    pareto = results.get("pareto")
    if pareto and len(pareto.get("objectives", [])) == 2:
        shown.append(
            figure(
                benchmark_fronts_figure(results),
                out,
                "fronts",
                "Each strategy's median run front over the true front, and the hypervolume "
                "fraction against evaluations.",
            )
        )
    optimum = results.get("optimum") or {}
    caption = (
        f"{cfg.get('seeds')} seeds × {cfg.get('budget_evaluations')} evaluations per strategy"
        + (f"; the table's optimum: {metric} {optimum[metric]:.3f}" if metric in optimum else "")
    )
    comparison = {
        "columns": columns_,
        "rows": rows,
        "caption": caption,
        "figures": shown,
        "disclosure": benchmark_disclosure(results),
    }
    title = f"benchmark: {cfg.get('space')} / {cfg.get('dataset')}"
    return write_page(out, title, runs=[], comparison=comparison, notices=[])
