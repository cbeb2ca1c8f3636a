#!/usr/bin/env bash
# The main job (`make run`): a low-fidelity architecture search on real data, final training of
# the best cells, and export of the winner; about five minutes on 2 cores.
#
# Data: Fashion-MNIST from NASFORGE_DATA, else from Debian's dataset-fashion-mnist package
# (/usr/share/datasets/fashion-mnist; installed here when apt-get is usable), else scikit-learn's
# bundled digits, with a note saying so. Nothing is downloaded from anywhere else.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python

# In this repository's own workplace the shared data sits beside the checkout.
if [ -z "${NASFORGE_DATA:-}" ] && [ -d ../shared/data ]; then
  NASFORGE_DATA="$(cd ../shared/data && pwd)"
  export NASFORGE_DATA
fi

have_fashion() {
  "$PY" -c 'from nasforge.data.datasets import load_dataset; load_dataset("fashion-mnist")' \
    >/dev/null 2>&1
}

DATASET=fashion-mnist
if ! have_fashion; then
  if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    echo "Fashion-MNIST not found; installing Debian's dataset-fashion-mnist ..."
    (apt-get install -y -q dataset-fashion-mnist >/dev/null 2>&1 \
      || { apt-get update -q >/dev/null 2>&1 && apt-get install -y -q dataset-fashion-mnist >/dev/null 2>&1; }) \
      || true
  fi
  if ! have_fashion; then
    DATASET=digits
    echo "NOTE: Fashion-MNIST is not available (set NASFORGE_DATA to a folder holding"
    echo "      fashion-mnist/*-idx?-ubyte.gz, or install dataset-fashion-mnist);"
    echo "      searching on scikit-learn's bundled 8x8 digits instead."
  fi
fi

STORE=runs/nasforge.db
NAME="main-$(date +%Y%m%d-%H%M%S)"
echo "== 1/3 search: NB201 cells on $DATASET, regularized evolution, low fidelity (real training) =="
"$PY" -m nasforge.cli search \
  --space nb201 --estimator train --dataset "$DATASET" --strategy evolution \
  --budget "${NASFORGE_MAIN_BUDGET:-12}" --population 6 --sample 3 --workers 2 \
  --epochs 2 --subset 0.1 --channels 8 --cells 1 --batch-size 128 \
  --store "$STORE" --name "$NAME"

echo
echo "== 2/3 final training: the best 2 cells, 2 seeds each, 2 epochs on 30% of the data =="
"$PY" -m nasforge.cli train-final "$NAME" --store "$STORE" \
  --top-k 2 --seeds 2 --epochs "${NASFORGE_MAIN_FINAL_EPOCHS:-2}" --subset 0.3

echo
echo "== 3/3 export: TorchScript, ONNX (checked with onnxruntime), architecture JSON =="
"$PY" -m nasforge.cli export "$NAME" --store "$STORE"
