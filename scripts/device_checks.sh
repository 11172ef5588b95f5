#!/usr/bin/env bash
# The GPU measurements of issues #3, #4 and #5, as two device calls (README "Measuring on a GPU machine
# without network"; pack first with scripts/device_pack.sh):
#   bash scripts/device_checks.sh speed          # carry .whl .device/inception-fp16.pth .device/cifar10-test.zip
#                                                #   .device/SHA256SUMS: pytest -m gpu, training throughput vs
#                                                #   a plain loop (also with CUDA graphs), FID-50k timing vs
#                                                #   torch-fidelity (exact and TF32 features)
#   bash scripts/device_checks.sh quick          # same carry, ~4.5 min: pytest -m gpu, throughput fp32 and
#                                                #   fast + CUDA graphs
#   bash scripts/device_checks.sh profile        # same carry: torch.profiler of both loops
#   bash scripts/device_checks.sh unpack         # carry .whl .device/inception-fp16.pth .device/SHA256SUMS
#   bash scripts/device_checks.sh cifar MINUTES [OVERRIDES]  # carry .whl .device/cifar10-jpeg.zip: CIFAR-10 for MINUTES,
#                                                #   FID-10k against the 50k train images at the end;
#                                                #   EXPERIMENT=cifar10_sngan_10min picks the preset;
#                                                #   CALL_SECONDS=500 stops the call there (last.ckpt):
#                                                #   the same command again resumes and finishes
# Results (JSON, logs, last sample grid, a slim EMA-generator checkpoint) go to $OUT (default outputs/device).
source scripts/device_unpack.sh
OUT=${OUT:-outputs/device}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
set -o pipefail
CIFAR=("experiment=${EXPERIMENT:-cifar10_sngan}" trainer=gpu speed=fast callbacks=metrics data=image_folder
  data.resolution=32 data.labels=true
  "callbacks.metrics.weights=$PWD/.device/inception.pth" callbacks.metrics.num_real=50000
  logger=csv callbacks.model_checkpoint.every_n_train_steps=20000
  callbacks.sample_grid.every_n_steps=5000)

bench() {  # NAME MODE SECONDS [ARGS]: one process each, so that a failing compile costs only its run
  local name=throughput_$1 mode=$2 limit=$3
  timeout "$limit" python3 -m ganforge.benchmarks.throughput --device cuda --mode "$mode" --warmup 30 \
    --steps 200 --out "$OUT/$name.json" "${@:4}" 2>&1 | grep -v "| D " | tee -a "$OUT/throughput.log"
}
CG="model.compile={mode: reduce-overhead}"  # CUDA graphs
# the CIFAR-10 preset's step (SNGAN-32, hinge, 5 D steps per G step, batch 64), ganforge alone
SNGAN=(--resolution 32 --batch-size 64 --ganforge-only --repeats 2 -- model=sngan loss=hinge loss.n_critic=5)

case "${1:-}" in
unpack)  # only the unpacking above: a call that brings the FID weights before the CIFAR-10 zip, as
  ;;     # both together exceed the 64 MiB a call can carry
quick)  # ~4.5 min: the GPU tests, fp32 and fastest throughput vs the plain loop
  timeout 100 python3 -m pytest -m gpu -q --tb=short -p no:cacheprovider tests/test_gpu.py > "$OUT/pytest_gpu.log" 2>&1
  grep -E "^(E |FAILED|ERROR)|passed|failed" "$OUT/pytest_gpu.log" | tail -n 30
  bench fp32 fp32 90 --repeats 2
  bench fast_cg fast 150 --repeats 2 -- "$CG"
  mkdir -p outputs
  if [ -s "$OUT/throughput_fast_cg.json" ]; then echo "$CG"; fi > outputs/device_cifar_overrides
  grep -E "round|^\| f" "$OUT/throughput.log" | tail -n 12
  ;;
speed)
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
  python3 -c "import torch, lightning; print('torch', torch.__version__, 'lightning', lightning.__version__)"
  timeout 150 python3 -m pytest -m gpu -q --tb=short -p no:cacheprovider tests/test_gpu.py > "$OUT/pytest_gpu.log" 2>&1
  grep -E "^(E |FAILED|ERROR)|passed|failed" "$OUT/pytest_gpu.log" | tail -n 30
  bench fp32 fp32 90 --repeats 2
  bench fast fast 150 --repeats 2
  bench fast_cg fast 150 --repeats 2 -- "$CG"
  bench sngan fast 100 "${SNGAN[@]}"
  bench sngan_cg fast 100 "${SNGAN[@]}" "$CG"
  # the faster of the two goes to the CIFAR-10 run of the next call (outputs/ stays on a warm machine)
  mkdir -p outputs
  python3 - "$OUT" "$CG" > outputs/device_cifar_overrides <<'PY' || true
import json, sys
rate = lambda n: json.load(open(f"{sys.argv[1]}/throughput_{n}.json"))["results"][0]["ganforge_img_per_s"]
try:
    print(sys.argv[2] if rate("sngan_cg") > 1.1 * rate("sngan") else "")
except (OSError, KeyError, ValueError):
    print("")
PY
  echo "CIFAR-10 run overrides: '$(cat outputs/device_cifar_overrides)'"
  timeout 170 python3 benchmarks/metrics_agreement.py --samples 50000 --agreement-samples 5000 --subdir test \
    --device cuda --real .device/cifar10-test.zip --weights .device/inception.pth --json "$OUT/metrics.json" \
    2>&1 | tee "$OUT/metrics.log"
  grep -E "round|img/s|^\| f|Error" "$OUT/throughput.log" | tail -n 20; grep -A10 "^Agreement" "$OUT/metrics.log"
  ;;
profile)
  # where ganforge's step loses time to the plain loop (DCGAN-64, batch 512, fast + CUDA graphs):
  # per-step host/device ms, kernel and graph launches, syncs and copies; tables + gzipped traces
  timeout 300 python3 -m ganforge.benchmarks.throughput --device cuda --mode fast --warmup 30 --steps 100 \
    --repeats 1 --profile "$OUT/profile" --out "$OUT/throughput_profile.json" -- "model.compile={mode: reduce-overhead}" \
    2>&1 | grep -E "round|profile|^\|"
  ;;
cifar)
  # A 10-minute run does not fit one device call (600 s at most, with data decoding and the final FID):
  # CALL_SECONDS cuts a call short with SIGTERM, ganforge writes last.ckpt, and the same command on the
  # warm machine resumes it (optimizer, schedules, EMA, data order, and max_time's clock) and finishes.
  minutes=${2:?minutes of training}
  run=outputs/device_cifar
  extra=$(cat outputs/device_cifar_overrides 2>/dev/null || echo "$CG")  # quick/speed write it
  echo "extra overrides: '$extra'"
  resume=()
  if [ -f $run/checkpoints/last.ckpt ]; then
    resume=("ckpt_path=$PWD/$run/checkpoints/last.ckpt")
    echo "resuming from $run/checkpoints/last.ckpt"
  fi
  # FID-10k once, at the end (a mid-run evaluation would take training time)
  timeout --kill-after=60 "${CALL_SECONDS:-$((minutes * 60 + 150))}" python3 train.py "${CIFAR[@]}" \
    "data.path=$PWD/.device/cifar10-jpeg.zip" data.subdir=train callbacks.metrics.every_n_steps=10000000 \
    "trainer.max_time=$(printf 00:%02d:%02d:00 $((minutes / 60)) $((minutes % 60)))" hydra.run.dir=$run \
    ${extra:+"$extra"} "${resume[@]}" "${@:3}" >> "$OUT/cifar.log" 2>&1
  status=$?
  echo "cifar run: exit $status"
  if [ $status -eq 124 ] || [ $status -eq 143 ]; then
    echo "stopped at CALL_SECONDS with last.ckpt written: run the same command again to go on"
  fi
  cp "$(ls $run/csv/version_*/metrics.csv | tail -1)" "$OUT/cifar_metrics.csv"
  cp "$(ls $run/samples/*.png | tail -1)" "$OUT/"
  python3 scripts/slim_checkpoint.py $run/checkpoints/last.ckpt "$OUT/cifar_slim.ckpt"
  grep -E "img/s|fid=|Error|error|resum" "$OUT/cifar.log" | tail -12
  ;;
*)
  echo "usage: bash scripts/device_checks.sh speed | quick | profile | unpack | cifar MINUTES [OVERRIDES]" >&2
  exit 2
  ;;
esac
