#!/usr/bin/env bash
# The main job (`make run`): `nasforge search` with its defaults, that is a low-fidelity
# architecture search on real data, final training of the winner, and its export; about five
# minutes on 2 cores. The run is stored in runs/nasforge.db (`nasforge show NAME --store ...`).
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

NAME="main-$(date +%Y%m%d-%H%M%S)"
# the strategy nasforge search picks with real training (config.DEFAULT_TRAIN_SEARCH)
STRATEGY="$("$PY" -c 'from nasforge.config import describe_default_train_search as d; print(d())')"
echo "== nasforge search with its defaults: a low-fidelity search of NB201 cells on $DATASET"
echo "   (real training: C=8 N=1, 2 epochs on 10%, 12 trials of $STRATEGY, 2 workers),"
echo "   then final training of the winner (2 seeds, 4 epochs on 30%) and export =="
"$PY" -m nasforge.cli search --dataset "$DATASET" --name "$NAME" \
  ${NASFORGE_MAIN_BUDGET:+--budget "$NASFORGE_MAIN_BUDGET"}

echo "== the run as a page to read: nasforge report (open runs/$NAME-report/index.html) =="
"$PY" -m nasforge.cli report "$NAME" --store runs/nasforge.db --out "runs/$NAME-report"
