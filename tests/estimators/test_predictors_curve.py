"""Learning-curve prediction (Domhan et al. 2015, via early stopping's curve models) on real
learning curves: small networks trained on Fashion-MNIST, final accuracy predicted from the
first epochs and compared with the observed one."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from conftest import require_data
from nasforge.data.idx import IMAGES_MAGIC, LABELS_MAGIC, read_idx
from nasforge.errors import ConfigError
from nasforge.estimators.predictors import CurvePredictor

pytestmark = pytest.mark.usefixtures("one_torch_thread")

EPOCHS, SEEN = 16, 7


@pytest.fixture(scope="module")
def curves():
    """Validation-accuracy curves (percent) of four one-hidden-layer networks (Adam, batches
    of 50, 1,500 training and 1,000 validation images)."""
    folder = require_data("fashion-mnist/train-images-idx3-ubyte.gz").parent
    images = read_idx(folder / "train-images-idx3-ubyte.gz", IMAGES_MAGIC)[:2500]
    labels = read_idx(folder / "train-labels-idx1-ubyte.gz", LABELS_MAGIC)[:2500]
    X = torch.tensor(images.reshape(len(images), -1) / 255.0, dtype=torch.float32)
    y = torch.tensor(labels.astype(np.int64))
    out = []
    for seed, (width, lr) in enumerate([(16, 1e-3), (32, 1e-3), (8, 2e-3), (16, 5e-4)]):
        torch.manual_seed(seed)
        net = torch.nn.Sequential(
            torch.nn.Linear(784, width), torch.nn.ReLU(), torch.nn.Linear(width, 10)
        )
        optimiser = torch.optim.Adam(net.parameters(), lr=lr)
        curve = []
        for _ in range(EPOCHS):
            for i in range(0, 1500, 50):
                optimiser.zero_grad()
                loss = torch.nn.functional.cross_entropy(net(X[i : i + 50]), y[i : i + 50])
                loss.backward()
                optimiser.step()
            with torch.no_grad():
                right = (net(X[1500:]).argmax(1) == y[1500:]).float().mean().item()
            curve.append(100.0 * right)
        out.append(curve)
    return out


def test_final_accuracy_predicted_from_the_first_epochs(curves):
    predictor = CurvePredictor(EPOCHS)
    means, stds = predictor.predict_many([c[:SEEN] for c in curves])
    finals = np.array([c[-1] for c in curves])
    last_seen = np.array([c[SEEN - 1] for c in curves])
    assert np.all(np.isfinite(means)) and np.all(stds > 0)
    error = np.abs(means - finals)
    # closer to the observed final than "it stays where it is", and within a few points
    assert error.mean() < 0.6 * np.abs(last_seen - finals).mean(), (means, finals)
    assert error.mean() < 5.0, (means, finals)
    assert np.all(error < 4.0 * stds + 1.0), (means, stds, finals)


def test_finished_curves_calibrate_the_prediction(curves):
    plain = CurvePredictor(EPOCHS).predict(curves[0][:SEEN])
    calibrated = CurvePredictor(EPOCHS, reference=curves[1:]).predict(curves[0][:SEEN])
    assert calibrated != plain


def test_bad_curves_are_one_line_errors():
    predictor = CurvePredictor(10)
    with pytest.raises(ConfigError, match="between 4 and 9 observed epochs"):
        predictor.predict([50.0, 60.0])
    with pytest.raises(ConfigError, match="between 4 and 9"):
        predictor.predict([50.0] * 10)
    with pytest.raises(ConfigError, match="not finite"):
        predictor.predict([50.0, 60.0, float("nan"), 70.0])
    with pytest.raises(ConfigError, match="no option horizon"):
        CurvePredictor(10, horizon=3)
    with pytest.raises(ConfigError, match="final_epoch"):
        CurvePredictor(1)
