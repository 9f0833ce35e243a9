#!/usr/bin/env bash
# The README's pictures, from a real run: TensorBoard screenshots (headless Chromium) and a plot of the curves.
# Needs: apt-get install chromium.   To run: bash docs/make_figures.sh outputs/bert_imdb/version_0 "make fit"
set -euo pipefail
RUN=${1:?run folder, e.g. outputs/bert_imdb/version_0}
NAME=${2:-run}
PY=${PY:-.venv/bin/python}
PORT=${PORT:-6199}
SHOT=$(mktemp -d)
ln -s "$(realpath "$RUN")" "$SHOT/$NAME"  # the run's name in TensorBoard's run list
"$PY" -m tensorboard.main --logdir "$SHOT" --host 127.0.0.1 --port "$PORT" >/dev/null 2>&1 &
TB=$!
trap 'kill $TB; rm -rf "$SHOT"' EXIT
sleep 10
# The SCALARS and IMAGES dashboards draw with SVG and <img>, which headless Chromium renders (TIME SERIES uses WebGL).
shoot() {
  chromium --headless --no-sandbox --hide-scrollbars --window-size=1600,1100 --virtual-time-budget=40000 \
    --screenshot="$1" "http://127.0.0.1:$PORT/$2" 2>/dev/null
}
shoot docs/tensorboard_scalars.png '#scalars&tagFilter=%5E(train%7Cval)%2F(loss%7Cacc%7Cf1%7Cauroc%7Csamples_per_sec)$'
shoot docs/tensorboard_images.png '#images'
"$PY" -m src.plot "$RUN" docs/training_curves.png --title "$NAME: $RUN"
