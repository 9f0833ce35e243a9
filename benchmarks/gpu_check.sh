#!/usr/bin/env bash
# The GPU checks of the training loop, prepared for a lent GPU. Each step writes its JSON under outputs/bench/ and its
# table in docs/benchmarks.md, so an interrupted run keeps what it did. Times are estimates from the one H200 run so far
# (docs/benchmarks.md section 6: about 500 samples/s at batch 16); part 1 about 3 minutes, part 2 about 8.
#   part 1: why the Trainer's bf16 arm ran 6x slower than its fp32 arm on the H200. The suspect: cuDNN's attention,
#     which PyTorch may pick for bf16 on Hopper, builds a graph for every new input shape (hundreds of ms each;
#     sglang#4650, pytorch#187770), and dynamic padding makes nearly every batch a new shape; fp32 never uses it, and
#     this project's fit pads to multiples of 8 (fewer shapes, and it was 2.4x slower, not 6x). The same 125 steps as
#     before, with and without that kernel: if the bf16 arms catch up without it, that is the explanation.
#   part 2: the Trainer against this project's fit over 1,000 steps at batch 16 and at batch 64, bf16 and fp32 arms of
#     both (cuDNN attention off where part 1 shows it costs: pass --no_cudnn_sdpa through NO_CUDNN=1).
#   The training loop's own cost per step with a tiny model (the maths negligible) ends part 2.
# To run: PYTHON=.venv/bin/python bash benchmarks/gpu_check.sh 1   (then 2; on a machine with a CUDA GPU)
set -uo pipefail  # not -e: a step cut by its timeout leaves the arms it finished, and the next step runs
PY=${PYTHON:-python}
cd "$(dirname "$0")/.."
$PY -c "import torch; assert torch.cuda.is_available(), 'no CUDA GPU: this script is for a GPU machine'" || exit 1
case "${1:-}" in
  1)
    timeout 150 $PY benchmarks/trainer_vs_fit.py --lengths 256 --arms B,C --tag short
    timeout 100 $PY benchmarks/trainer_vs_fit.py --lengths 256 --arms B,C --no_cudnn_sdpa --tag short_no_cudnn_sdpa
    ;;
  2)
    flag=$([ "${NO_CUDNN:-0}" = 1 ] && echo --no_cudnn_sdpa)
    # 1,000 steps of 16 = 16,000 reviews; 1,000 steps of 64 = 3 passes over 21,500 reviews (the split has 22,500)
    timeout 240 $PY benchmarks/trainer_vs_fit.py --lengths 256 --arms B,B32,C,C32 --n_train 16000 --batch_size 16 \
        $flag --tag b16
    timeout 240 $PY benchmarks/trainer_vs_fit.py --lengths 256 --arms B,B32,C,C32 --n_train 21500 --epochs 3 \
        --batch_size 64 $flag --tag b64
    timeout 60 $PY benchmarks/step_overhead.py --steps 300 --rounds 2
    ;;
  *) echo "usage: bash benchmarks/gpu_check.sh 1|2" >&2; exit 2 ;;
esac
