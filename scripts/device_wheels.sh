#!/usr/bin/env bash
# Wheels that ganforge needs on a GPU machine whose Python (3.12) already has torch, lightning,
# torchmetrics, rich, scipy and tensorboard but no network: hydra, omegaconf, torch-fidelity and pytest.
# Downloads them into .whl/ (git-ignored); on the GPU machine install them with
#   python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/*.whl && export PYTHONPATH=/tmp/site:src
# then run e.g.  python3 -m ganforge.benchmarks.throughput --device cuda --mode fp32 fast --out throughput.json
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
"$PY" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
  -d .whl \
  hydra-core==1.3.2 omegaconf==2.3.0 hydra-colorlog==1.2.0 colorlog torch-fidelity \
  pytest pluggy iniconfig  # pytest -m gpu (tests/run_if.py)
# omegaconf's parser runtime is published as a source archive only: build its (pure Python) wheel here
"$PY" -m pip wheel -q --no-deps -w .whl antlr4-python3-runtime==4.9.3
ls -l .whl
