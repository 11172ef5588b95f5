#!/usr/bin/env bash
# The GPU measurements of issues #3, #4 and #5, as two device calls (README "Measuring on a GPU machine
# without network"; pack first with scripts/device_pack.sh):
#   bash scripts/device_checks.sh speed          # carry .whl .device/inception-fp16.pth .device/cifar10-test.zip
#                                                #   .device/SHA256SUMS: training throughput vs a plain loop,
#                                                #   FID-50k timing vs torch-fidelity, a 1,000-step CIFAR smoke run
#   bash scripts/device_checks.sh cifar MINUTES [OVERRIDES]  # carry .whl .device/cifar10-jpeg.zip: CIFAR-10 for MINUTES,
#                                                #   FID-10k against the 50k train images at the end
# Results (JSON, logs, last sample grid, a slim EMA-generator checkpoint) go to $OUT (default outputs/device).
source scripts/device_unpack.sh
OUT=${OUT:-outputs/device}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
set -o pipefail
CIFAR=(experiment=cifar10_sngan trainer=gpu speed=fast callbacks=metrics data=image_folder data.resolution=32
  "callbacks.metrics.weights=$PWD/.device/inception.pth" callbacks.metrics.num_real=50000
  callbacks.metrics.batch_size=500 logger=csv callbacks.model_checkpoint.every_n_train_steps=20000
  callbacks.sample_grid.every_n_steps=5000)

case "${1:-}" in
speed)
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
  python3 -c "import torch, lightning; print('torch', torch.__version__, 'lightning', lightning.__version__)"
  bench() {  # NAME MODE SECONDS [ARGS]: one process each, so that a failing compile costs only its run
    local name=throughput_$1 mode=$2 limit=$3
    timeout "$limit" python3 -m ganforge.benchmarks.throughput --device cuda --mode "$mode" --warmup 30 \
      --steps 200 --out "$OUT/$name.json" "${@:4}" 2>&1 | grep -v "| D " | tee -a "$OUT/throughput.log"
  }
  bench fp32 fp32 120
  bench fast fast 240
  fast_ok=$?
  # the CIFAR-10 preset's step rate (SNGAN-32, hinge, 5 D steps per G step, batch 64), ganforge alone
  bench sngan fast 150 --resolution 32 --batch-size 64 --ganforge-only -- model=sngan loss=hinge loss.n_critic=5
  timeout 150 python3 benchmarks/metrics_agreement.py --samples 50000 --agreement-samples 10000 --subdir test \
    --device cuda --real .device/cifar10-test.zip --weights .device/inception.pth --json "$OUT/metrics.json" \
    2>&1 | tee "$OUT/metrics.log"
  timeout 100 python3 train.py "${CIFAR[@]}" "data.path=$PWD/.device/cifar10-test.zip" data.subdir=test \
    trainer.max_steps=1000 callbacks.metrics.every_n_steps=1000 hydra.run.dir=outputs/device_smoke \
    > "$OUT/smoke.log" 2>&1
  echo "smoke run: exit $?"; grep -E "img/s|fid=|Error|error" "$OUT/smoke.log" | tail -5
  [ "$fast_ok" = 0 ] || bench fast_nchw fast 200 -- model.channels_last=false  # fast settings less NHWC
  grep -E "round|img/s|^\| f|Error" "$OUT/throughput.log" | tail -n 14; grep -A8 "^Agreement" "$OUT/metrics.log"
  ;;
cifar)
  minutes=${2:?minutes of training}
  run=outputs/device_cifar
  timeout $((minutes * 60 + 150)) python3 train.py "${CIFAR[@]}" "data.path=$PWD/.device/cifar10-jpeg.zip" \
    data.subdir=train callbacks.metrics.every_n_steps=20000 "trainer.max_time=$(printf 00:00:%02d:00 "$minutes")" \
    hydra.run.dir=$run "${@:3}" > "$OUT/cifar.log" 2>&1
  echo "cifar run: exit $?"
  cp "$(ls $run/csv/version_*/metrics.csv | tail -1)" "$OUT/cifar_metrics.csv"
  cp "$(ls $run/samples/*.png | tail -1)" "$OUT/"
  python3 scripts/slim_checkpoint.py $run/checkpoints/last.ckpt "$OUT/cifar_slim.ckpt"
  grep -E "img/s|fid=|Error|error" "$OUT/cifar.log" | tail -12
  ;;
*)
  echo "usage: bash scripts/device_checks.sh speed | cifar MINUTES [OVERRIDES]" >&2
  exit 2
  ;;
esac
