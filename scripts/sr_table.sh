#!/usr/bin/env bash
# The super-resolution table of the README: x4 on the offline photos (data=sr_photos), every model trained
# on one CPU thread, two runs at a time (2 cores):
#   1. SRResNet (PSNR, 2,000 steps) and RRDBNet-lite (PSNR, ESRGAN's first stage, 2,400 steps) in parallel
#   2. SRGAN from SRResNet and ESRGAN-lite from RRDBNet-lite (500 steps each) in parallel
#   3. bicubic and the four checkpoints scored with one protocol (python -m ganforge.benchmarks.sr_table)
# About 40 + 25 + 5 minutes on 2 cores.
#   bash scripts/sr_table.sh [OUT=outputs/sr_table] [PHOTOS=../shared/datasets/sr-photos.zip]
set -euo pipefail
OUT=${1:-outputs/sr_table}
PHOTOS=${2:-../shared/datasets/sr-photos.zip}
PY=${PY:-.venv/bin/python}
mkdir -p "$OUT"
run() {  # name experiment steps [overrides...]
  local name=$1 exp=$2 steps=$3
  shift 3
  OMP_NUM_THREADS=1 "$PY" train.py "experiment=$exp" "data.path=$PHOTOS" "trainer.max_steps=$steps" \
    callbacks=default callbacks.sample_grid.every_n_steps=400 callbacks.model_checkpoint.every_n_train_steps=400 \
    "hydra.run.dir=$OUT/$name" "$@" > "$OUT/$name.out" 2>&1
}
run srresnet sr_photos_srresnet 2000 & run rrdbnet sr_photos_rrdbnet 2400 & wait
run srgan sr_photos_srgan 500 "model.init_generator=$OUT/srresnet/checkpoints/last.ckpt" &
run esrgan sr_photos_esrgan 500 "model.init_generator=$OUT/rrdbnet/checkpoints/last.ckpt" &
wait
OMP_NUM_THREADS=1 "$PY" -m ganforge.benchmarks.sr_table --data-path "$PHOTOS" --threads 1 --out "$OUT/table.json" \
  --run "SRResNet=$OUT/srresnet/checkpoints/last.ckpt" --run "SRGAN=$OUT/srgan/checkpoints/last.ckpt" \
  --run "RRDBNet-lite (PSNR)=$OUT/rrdbnet/checkpoints/last.ckpt" --run "ESRGAN-lite=$OUT/esrgan/checkpoints/last.ckpt" \
  | tee "$OUT/table.md"
