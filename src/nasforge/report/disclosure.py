"""What a reader needs to judge a NAS result: the disclosure of the fair-comparison checklists.

Lindauer & Hutter ("Best Practices for Scientific Research on Neural Architecture Search",
JMLR 2020) and Yang et al. ("NAS evaluation is frustratingly hard", ICLR 2020) ask every
result to state its space, estimator and fidelity, training recipe and augmentation, data
split, seeds, search cost, hardware and software. This module reads them from what a run stored;
anything a run did not record is said to be missing rather than guessed.
"""

from __future__ import annotations

from typing import Any

from nasforge.config import stored_config

NOT_RECORDED = "not recorded by this run"


def run_disclosure(
    config: dict[str, Any], cost_seconds: float, wall_seconds: float, trials: int
) -> list[tuple[str, str]]:
    """(label, text) rows for one run: what was searched, how candidates were judged, on which
    data, with which seeds, at what cost, on which machine and software."""
    cli = stored_config(config)
    search = None if cli is None else cli.search
    setup = config.get("setup") or {}
    rows = [
        ("search space", str(config.get("space", NOT_RECORDED))),
        ("search strategy", _strategy(config, search)),
        ("estimator and fidelity", _estimator(config, search, setup)),
        ("objective", _objective(config, search)),
        ("training recipe", _recipe(setup, config)),
        ("augmentation", _augmentation(setup)),
        ("data split", _split(setup, config)),
        ("seeds", _seeds(config, search)),
        ("search cost", _cost(config, cost_seconds, wall_seconds, trials)),
        ("hardware", _hardware(config)),
        ("software", _software(config)),
    ]
    return rows


def benchmark_disclosure(results: dict[str, Any]) -> list[tuple[str, str]]:
    """The same rows for a `nasforge benchmark` result."""
    cfg = results["config"]
    versions = results.get("versions") or {}
    table = cfg.get("table")
    data = f"table {table['path']}" if isinstance(table, dict) else cfg.get("dataset")
    return [
        ("search space", str(cfg.get("space"))),
        ("search strategies", ", ".join(cfg.get("strategies", [])) + " (random is the baseline)"),
        ("estimator and fidelity", f"{cfg.get('estimator')} on {data}"),
        (
            "objective",
            f"{cfg.get('objectives') or cfg.get('objective')}; reported: "
            f"{cfg.get('report_metric')} of the architecture best by the objective",
        ),
        ("data split", "the benchmark's own (validation for the search, test for the report)"),
        ("seeds", f"{cfg.get('seeds')} per strategy"),
        (
            "budget and cost",
            f"{cfg.get('budget_evaluations')} evaluations"
            + (f", {cfg['budget_seconds']} simulated s" if cfg.get("budget_seconds") else "")
            + f"; the whole comparison took {results.get('wall_seconds', 0):.1f} s of wall time",
        ),
        ("software", ", ".join(f"{k} {v}" for k, v in versions.items()) or NOT_RECORDED),
        ("command", str(cfg.get("command", NOT_RECORDED))),
    ]


def _strategy(config: dict[str, Any], search: Any) -> str:
    text = str(config.get("strategy", NOT_RECORDED))
    if search is not None and search.options:
        text += " (" + ", ".join(f"{k}={v}" for k, v in search.options.items()) + ")"
    return text


def _estimator(config: dict[str, Any], search: Any, setup: dict[str, Any]) -> str:
    name = str(config.get("estimator", NOT_RECORDED))
    if setup.get("epochs") is not None:
        return (
            f"{name}: {setup['epochs']} epochs on {setup.get('subset', 1):g} of the train split"
            + (f", images at {setup['resolution']} px" if setup.get("resolution") else "")
        )
    if "oneshot" in config:
        recipe = config["oneshot"]
        return (
            f"weight sharing ({recipe.get('method')}): {recipe.get('epochs')} supernet epochs, "
            f"batch {recipe.get('batch_size')}"
        )
    if search is not None and search.table:
        return f"{name} (table {search.table}, objective column {search.table_objective})"
    if search is not None and search.dataset:
        return f"{name} on {search.dataset} (tabular/surrogate: no training, cost simulated)"
    return name


def _objective(config: dict[str, Any], search: Any) -> str:
    parts = [str(config.get("objective", NOT_RECORDED)) + " (maximised)"]
    if search is not None:
        if search.objectives:
            parts = [f"objectives {search.objectives}"]
        if search.constraints:
            parts.append("constraints " + ", ".join(search.constraints))
        if search.max_params:
            parts.append(f"at most {search.max_params} parameters")
    return "; ".join(parts)


def _recipe(setup: dict[str, Any], config: dict[str, Any]) -> str:
    if setup.get("lr") is not None:
        return (
            f"SGD lr {setup['lr']}, momentum {setup.get('momentum')}"
            + (" (Nesterov)" if setup.get("nesterov") else "")
            + f", weight decay {setup.get('weight_decay')}, batch {setup.get('batch_size')}, "
            f"{setup.get('schedule')} schedule"
            + (f", early stopping {setup['early_stopping']}" if setup.get("early_stopping") else "")
        )
    if "oneshot" in config:
        r = config["oneshot"]
        return (
            f"SGD lr {r.get('lr')} to {r.get('lr_min')}, momentum {r.get('momentum')}, "
            f"weight decay {r.get('weight_decay')}, batch {r.get('batch_size')}, "
            f"gradient clip {r.get('grad_clip')}"
        )
    return "none: the estimator does not train (a table or surrogate's own recipe applies)"


def _augmentation(setup: dict[str, Any]) -> str:
    if not setup:
        return "the benchmark's own (no training here)"
    if "augmentation" not in setup:
        return NOT_RECORDED
    augmentation = setup.get("augmentation")
    return ", ".join(f"{k} {v}" for k, v in augmentation.items()) if augmentation else "none"


def _split(setup: dict[str, Any], config: dict[str, Any]) -> str:
    if setup.get("train_images") is not None:
        return (
            f"{setup.get('dataset')}: {setup['train_images']} train / "
            f"{setup.get('val_images')} validation / {setup.get('test_images')} test images "
            f"(split seed {setup.get('split_seed')}); the search reads validation only"
        )
    return "the benchmark's own split (search on validation, test for the report)"


def _seeds(config: dict[str, Any], search: Any) -> str:
    seed = config.get("seed", None if search is None else search.seed)
    text = f"search seed {seed}" if seed is not None else NOT_RECORDED
    if config.get("deterministic"):
        text += ", deterministic order (the same seed gives the same trials)"
    return text


def _cost(config: dict[str, Any], cost_seconds: float, wall_seconds: float, trials: int) -> str:
    budget = config.get("budget") or {}
    limit = ", ".join(
        f"{v} {k}" for k, v in budget.items() if v is not None and k in ("evaluations", "seconds")
    )
    trained = bool((config.get("setup") or {}).get("epochs")) or "oneshot" in config
    if cost_seconds <= 0:
        spent = "(the estimator reports no training cost)"
    elif trained:
        spent = f"costing {cost_seconds:,.1f} s of training"
    else:
        spent = (
            f"costing {cost_seconds:,.1f} s of simulated training (what the benchmark says "
            "training them took)"
        )
    return f"{trials} trials {spent}, {wall_seconds:,.1f} s of wall time" + (
        f"; budget {limit}" if limit else ""
    )


def _hardware(config: dict[str, Any]) -> str:
    env = config.get("environment")
    if not env:
        return NOT_RECORDED
    slots = config.get("slots")
    return (
        f"{env.get('cpu')}, {env.get('physical_cores') or '?'} physical / "
        f"{env.get('logical_cores')} logical cores ({env.get('usable_cores')} usable), "
        f"{env.get('system')} {env.get('arch')}, host {env.get('hostname')}"
        + (f"; {slots} worker slot(s)" if slots else "")
    )


def _software(config: dict[str, Any]) -> str:
    env = config.get("environment")
    if not env:
        return NOT_RECORDED
    names = ("nasforge", "python", "torch", "numpy", "onnxruntime")
    return ", ".join(f"{k} {env[k]}" for k in names if env.get(k))
