#!/usr/bin/env bash
# The GPU checks of issue 22, for a machine with a GPU: one stage after another, each with its own time limit (cut
# short so that all end by $DEADLINE, in seconds since the epoch, when it is set). Every stage writes its JSON or log
# under outputs/bench/ (and its table in docs/benchmarks.md), so an interrupted run keeps what it did.
#   shapes    why the Trainer's bf16 arm ran 6x slower than fp32 on an H200: a step's cost on a new input shape against
#             a seen one, bf16 and fp32, cuDNN attention on and off (benchmarks/bf16_shapes.py; about 1 minute)
#   recipe    the 45-minute recipe on the GPU, its budget cut to $MINUTES (default 2) minutes, test split scored once
#   study     the label-budget study's fine-tuning rows (N = 16 to 1,024; seeds $SEEDS, default 0 1: 8 runs) one after
#             the other against $WORKERS (default 4) workers sharing the GPU (`--gpus 0 0 0 0`)
#   b16, b64  the Trainer against this project's fit over 1,000 steps at batch 16 and 64, bf16 and fp32 arms of both;
#             cuDNN attention off for every arm where `shapes` found it the cause (or NO_CUDNN=1)
#             ($ARMS picks arms, $TAG names a rerun: its own JSON and table)
#             (ARMS=C,Cc,C32,Cc32 TAG=_compile: the fit with the model compiled by torch.compile against without)
#   overhead  the training and evaluation loops' own cost per step with a tiny model (benchmarks/step_overhead.py,
#             benchmarks/eval_overhead.py), and what each training loop makes the host wait for a step
#             (benchmarks/host_reads.py: reads of device values, unpinned copies to the GPU)
# To run: PYTHON=.venv/bin/python bash benchmarks/gpu_check.sh shapes recipe study b16 b64 overhead
#         (on a GPU machine with no network: benchmarks/offline_gpu/ packs the model and data and runs the stages)
set -uo pipefail  # not -e: a stage cut by its time limit leaves what it finished, and the next stage runs
PY=${PYTHON:-python}
cd "$(dirname "$0")/.."
$PY -c "import torch; assert torch.cuda.is_available(), 'no CUDA GPU: this script is for a GPU machine'" || exit 1
mkdir -p outputs/bench

limit() {  # a stage's time limit: its own, or what is left before $DEADLINE (less 10 s), whichever is less
  local own=$1 left
  [ -z "${DEADLINE:-}" ] && { echo "$own"; return; }
  left=$(( DEADLINE - $(date +%s) - 10 ))
  echo $(( left < own ? (left > 1 ? left : 1) : own ))
}

cudnn_flag() {  # --no_cudnn_sdpa where the shapes stage found cuDNN attention's per-shape cost the cause
  [ "${NO_CUDNN:-}" = 1 ] && { echo --no_cudnn_sdpa; return; }
  [ "${NO_CUDNN:-}" = 0 ] && return
  $PY - <<'EOF' 2>/dev/null
import json
rows = {(r["precision"], r["cudnn_attention"]): r for r in json.load(open("outputs/bench/bf16_shapes.json"))["settings"]}
on, off = rows["bf16", True]["new_shape_ms"], rows["bf16", False]["new_shape_ms"]
print("--no_cudnn_sdpa" if on > 2 * off else "")
EOF
}

for stage in "$@"; do
  echo "[$(date +%T)] stage $stage"
  case $stage in
    shapes) timeout "$(limit 120)" $PY benchmarks/bf16_shapes.py ;;
    recipe)
      minutes=${MINUTES:-2}
      sed "s/minutes: 45/minutes: $minutes/" configs/bert_imdb/45min.yaml > outputs/bench/recipe_budget.yaml
      timeout "$(limit "$(awk "BEGIN { print int($minutes * 60 + 150) }")")" $PY -m src fit --config configs/bert_imdb.yaml \
          --config outputs/bench/recipe_budget.yaml --trainer.accelerator gpu --test_after_fit true \
          2>&1 | tee outputs/bench/recipe_gpu.log ;;
    study)
      workers=${WORKERS:-4}
      timeout "$(limit 300)" $PY benchmarks/study_workers.py --approach finetune --budgets 16 64 256 1024 \
          --seeds ${SEEDS:-0 1} --workers "$workers" --gpus $(printf '0 %.0s' $(seq "$workers")) ;;
    b16)  # 1,000 steps of 16 = 16,000 reviews
      timeout "$(limit 300)" $PY benchmarks/trainer_vs_fit.py --lengths 256 --arms "${ARMS:-C,B32,C32,B}" --n_train 16000 \
          --batch_size 16 $(cudnn_flag) --tag "b16${TAG:-}" ;;
    b64)  # 1,000 steps of 64 = 3 passes over 21,500 reviews (the split has 22,500)
      timeout "$(limit 360)" $PY benchmarks/trainer_vs_fit.py --lengths 256 --arms "${ARMS:-C,B32,C32,B}" --n_train 21500 \
          --epochs 3 --batch_size 64 --eval_batch_size 128 $(cudnn_flag) --tag "b64${TAG:-}" ;;
    overhead)
      timeout "$(limit 120)" $PY benchmarks/step_overhead.py --steps 300 --rounds 2
      timeout "$(limit 90)" $PY benchmarks/eval_overhead.py --rounds 3
      timeout "$(limit 60)" $PY benchmarks/host_reads.py
      timeout "$(limit 60)" $PY benchmarks/host_reads.py --loop eval --steps 20 ;;
    *) echo "unknown stage $stage: shapes, recipe, study, b16, b64 or overhead" >&2; exit 2 ;;
  esac
  echo "[$(date +%T)] stage $stage ended: $?"
done
