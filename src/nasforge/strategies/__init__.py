"""Search strategies: which candidate next. Each implements ``strategies.base.Strategy``;
``nasforge.factory.STRATEGY_CLASSES`` maps the CLI names to these classes."""

from nasforge._lazy import export_lazily

export_lazily(
    globals(),
    {
        "RandomSearch": "nasforge.strategies.random",
        "GridSearch": "nasforge.strategies.grid",
        "RegularizedEvolution": "nasforge.strategies.evolution",
        "ProxyEvolution": "nasforge.strategies.proxy_evolution",
        "TournamentEvolution": "nasforge.strategies.tournament",
        "GeneticAlgorithm": "nasforge.strategies.genetic",
        "LocalSearch": "nasforge.strategies.local",
        "Reinforce": "nasforge.strategies.reinforce",
        "PPO": "nasforge.strategies.reinforce",
        "MCTS": "nasforge.strategies.mcts",
        "BayesianOptimisation": "nasforge.strategies.bo",
        "Bananas": "nasforge.strategies.bananas",
        "TPE": "nasforge.strategies.tpe",
        "SuccessiveHalving": "nasforge.strategies.hyperband",
        "Hyperband": "nasforge.strategies.hyperband",
        "ASHA": "nasforge.strategies.asha",
        "BOHB": "nasforge.strategies.bohb",
        "PNAS": "nasforge.strategies.pnas",
        "NSGA2": "nasforge.strategies.nsga2",
        "ParetoEvolution": "nasforge.strategies.pareto_evolution",
        "ParEGO": "nasforge.strategies.parego",
        "MaxParams": "nasforge.strategies.constraints",
        "ParamsScorer": "nasforge.strategies.scoring",
    },
)
