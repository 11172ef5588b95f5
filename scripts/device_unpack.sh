#!/usr/bin/env bash
# On the GPU machine, at the start of every call (source it: it sets PYTHONPATH): installs the carried
# .whl/ wheels into /tmp/site, checks the carried .device/ files against their checksums, and restores
# the float16 Inception weights to .device/inception.pth (float32). Files from earlier calls stay there
# while the machine is warm. See scripts/device_pack.sh.
cd "$(dirname "${BASH_SOURCE[0]}")/.." || return 1 2>/dev/null || exit 1
if [ -d .whl ] && [ ! -d /tmp/site/hydra ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .whl/*.whl
fi
export PYTHONPATH=/tmp/site:src${PYTHONPATH:+:$PYTHONPATH}
if [ -f .device/SHA256SUMS ]; then
  (cd .device && sha256sum -c --ignore-missing SHA256SUMS) || echo "device_unpack: CHECKSUM MISMATCH" >&2
fi
if [ -f .device/inception-fp16.pth ] && [ ! -f .device/inception.pth ]; then
  python3 scripts/device_weights.py unpack .device/inception-fp16.pth .device/inception.pth
fi
