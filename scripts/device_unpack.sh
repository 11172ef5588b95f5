#!/usr/bin/env bash
# On the GPU machine, at the start of every call: once all parts from scripts/device_pack.sh have been
# carried (the machine keeps them between calls while warm), unpack them into .device/ (weights and CIFAR
# zip; checksums verified). Installs the carried .whl/ wheels into /tmp/site. Prints what is still missing
# otherwise; exits 0 either way so that a call carrying an early part can run other work.
# Source it to get PYTHONPATH:  source scripts/device_unpack.sh
cd "$(dirname "${BASH_SOURCE[0]}")/.." || return 1 2>/dev/null || exit 1
parts=(.device/part-*)
if [ -f .device/SHA256SUMS ]; then
  echo "device_unpack: already unpacked"
elif [ "${#parts[@]}" -lt "${DEVICE_PARTS:-3}" ] || [ ! -e "${parts[0]}" ]; then
  echo "device_unpack: ${#parts[@]} of ${DEVICE_PARTS:-3} parts here; carry the next one"
else
  cat .device/part-* | tar -C .device -xf - && (cd .device && sha256sum -c --quiet SHA256SUMS) \
    && rm -f .device/part-* && echo "device_unpack: unpacked $(ls .device | tr '\n' ' ')"
fi
if [ -d .whl ] && [ ! -d /tmp/site/hydra ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .whl/*.whl
fi
export PYTHONPATH=/tmp/site:src${PYTHONPATH:+:$PYTHONPATH}
