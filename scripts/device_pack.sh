#!/usr/bin/env bash
# Pack what the GPU checks need into .device/ (git-ignored) in two loads that each fit one device call
# (64 MiB a call, the working tree included):
#   call 1: .device/inception-fp16.pth (Inception FID weights in float16, 48 MB; scripts/device_weights.py)
#           .device/cifar10-test.zip (CIFAR-10's test split, 11 MB: real images for the FID timing)
#   call 2: .device/cifar10-jpeg.zip (the whole CIFAR-10 zip, 63 MB: training)
# Also builds .whl/ (scripts/device_wheels.sh), carried with every call. Files carried once stay there
# while the machine is warm. Begin every call with `source scripts/device_unpack.sh`. See README
# "Measuring on a GPU machine without network".
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
CIFAR=${CIFAR:-../shared/datasets/cifar10-jpeg.zip}
[ -d .whl ] || bash scripts/device_wheels.sh
if [ ! -f "$CIFAR" ]; then
  echo "device_pack: $CIFAR not found (../shared/datasets/README.md)" >&2
  exit 1
fi
rm -rf .device && mkdir -p .device
PYTHONPATH=src "$PY" scripts/device_weights.py pack .device/inception-fp16.pth
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
unzip -q "$CIFAR" 'test/*' -d "$stage"
(cd "$stage" && zip -q -r -0 "$OLDPWD/.device/cifar10-test.zip" test)
cp "$CIFAR" .device/cifar10-jpeg.zip
(cd .device && sha256sum inception-fp16.pth cifar10-test.zip cifar10-jpeg.zip > SHA256SUMS)
ls -l .device
