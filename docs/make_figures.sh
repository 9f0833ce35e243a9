#!/usr/bin/env bash
# The pictures of docs/tensorboard.md, from real runs: TensorBoard screenshots (headless Chromium) and a plot of the curves.
# Needs: apt-get install chromium.
# To run: bash docs/make_figures.sh outputs/bert_imdb/version_0 "make fit" [outputs/bert_imdb/version_0/validate/version_0]
#   (the optional third run, e.g. a `validate` of the best checkpoint, gives the IMAGES screenshot)
set -euo pipefail
RUN=${1:?run folder, e.g. outputs/bert_imdb/version_0}
NAME=${2:-run}
IMAGES_RUN=${3:-$RUN}
PY=${PY:-.venv/bin/python}
PORT=${PORT:-6199}
# The SCALARS and IMAGES dashboards draw with SVG and <img>, which headless Chromium renders (TIME SERIES uses WebGL).
shoot() {  # run folder, run name, PNG, dashboard
  local dir
  dir=$(mktemp -d)
  ln -s "$(realpath "$1")" "$dir/$2"  # the run's name in TensorBoard's run list
  "$PY" -m tensorboard.main --logdir "$dir" --host 127.0.0.1 --port "$PORT" >/dev/null 2>&1 &
  local tb=$!
  sleep 10
  chromium --headless --no-sandbox --hide-scrollbars --window-size=1600,1100 --virtual-time-budget=40000 \
    --screenshot="$3" "http://127.0.0.1:$PORT/$4" 2>/dev/null
  kill $tb
  rm -rf "$dir"
}
shoot "$RUN" "$NAME" docs/tensorboard_scalars.png '#scalars&tagFilter=%5E(train%7Cval)%2F(loss%7Cacc%7Cf1%7Cauroc%7Csamples_per_sec)$'
shoot "$IMAGES_RUN" "$NAME" docs/tensorboard_images.png '#images'
"$PY" -m src plot "$RUN" docs/training_curves.png --title "$NAME: $RUN"
