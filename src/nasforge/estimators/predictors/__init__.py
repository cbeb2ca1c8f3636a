"""Performance predictors: models fitted on (architecture, accuracy) pairs that predict a mean and
an uncertainty for unseen architectures (White et al., "How Powerful are Performance Predictors
in Neural Architecture Search?", NeurIPS 2021, survey the families implemented here)."""

from nasforge._lazy import export_lazily

export_lazily(
    globals(),
    {
        "PREDICTORS": "nasforge.estimators.predictors.models",
        "Predictor": "nasforge.estimators.predictors.base",
        "make_predictor": "nasforge.estimators.predictors.base",
        "Features": "nasforge.estimators.predictors.features",
        "CurvePredictor": "nasforge.estimators.predictors.curve",
    },
)
