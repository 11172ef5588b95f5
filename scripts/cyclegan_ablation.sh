#!/usr/bin/env bash
# The CycleGAN ablation of the README (the paper's Table 4 on emoji_unpaired, 3 seeds, 6,000 steps each,
# experiment=emoji_cyclegan_unet) on a 2-core CPU: two processes, each pinned to a core with one thread,
# 52 minutes in all on a 2-core CPU (at 36c45c2), then the table of every finished run and the do-nothing row.
#   bash scripts/cyclegan_ablation.sh [OUT=outputs/cyclegan_ablation] [ZIP=../shared/datasets/emoji64-google-twitter.zip]
set -euo pipefail
OUT=${1:-outputs/cyclegan_ablation}
ZIP=${2:-../shared/datasets/emoji64-google-twitter.zip}
PY=${PY:-.venv/bin/python}
mkdir -p "$OUT"
ablate() {  # core log [ablation options...]
  local core=$1 log=$2
  shift 2
  OMP_NUM_THREADS=1 taskset -c "$core" "$PY" -m ganforge.benchmarks.cyclegan_ablation --data-path "$ZIP" \
    --threads 1 --steps 6000 --out "$OUT" "$@" >> "$OUT/$log" 2>&1
}
# the full objective costs ~2x a step of the GAN alone: both cores get about the same work
{ ablate 0 core0.out --settings gan_cycle_identity --seeds 3 && ablate 0 core0.out --settings gan --first-seed 2 --seeds 1; } &
{ ablate 1 core1.out --settings gan --seeds 2 && ablate 1 core1.out --settings gan_cycle --seeds 3; } &
wait
"$PY" -m ganforge.benchmarks.cyclegan_ablation --summarize "$OUT"
