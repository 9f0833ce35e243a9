#!/usr/bin/env bash
# The pictures of docs/tensorboard.md, from real runs: TensorBoard screenshots (headless Chromium) and a plot of the curves.
# Needs: apt-get install chromium.
# To run: bash docs/make_figures.sh outputs/bert_imdb/version_0 "make fit"
set -euo pipefail
RUN=${1:?run folder, e.g. outputs/bert_imdb/version_0}
NAME=${2:-run}
PY=${PY:-.venv/bin/python}
# The screenshots come from the browser test of TensorBoard's first screen, pointed at this run and at docs/.
TENSORBOARD_RUN="$RUN" TENSORBOARD_SHOTS=docs "$PY" -m pytest -q tests/test_tensorboard.py -k first_screen
"$PY" -m src plot "$RUN" docs/training_curves.png --title "$NAME: $RUN"
