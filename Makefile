# ganforge developer commands. `make train` and `make test` set everything up on a fresh machine.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# torch/torchvision versions that resolve from local files on the project machines
TORCH_PINS ?= torch==2.14.1 torchvision==0.29.1

.PHONY: help setup data train test test-all lint format clean

help:  ## list targets
	@grep -E '^[a-zA-Z_-]+:.*##' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-10s %s\n", $$1, $$2}'

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -c "import torch, torchvision" 2>/dev/null || $(PY) -m pip install -q $(TORCH_PINS)
	$(PY) -m pip install -q -e ".[dev]"
	touch $@

setup: $(VENV)/.installed  ## create/reuse the virtualenv and install ganforge[dev]

data:  ## install the offline Fashion-MNIST (Debian package dataset-fashion-mnist) and rsvg-convert (data=avatars), if apt is available
	@if [ -d /usr/share/datasets/fashion-mnist ]; then echo "Fashion-MNIST present"; \
	elif command -v apt-get >/dev/null; then \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get install -y -q dataset-fashion-mnist || { $$SUDO apt-get update -q && $$SUDO apt-get install -y -q dataset-fashion-mnist; }; \
	else echo "no apt-get: Fashion-MNIST will be downloaded by torchvision on first use"; fi
	@if command -v rsvg-convert >/dev/null; then echo "rsvg-convert present"; \
	elif command -v apt-get >/dev/null; then \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get install -y -q librsvg2-bin || { $$SUDO apt-get update -q && $$SUDO apt-get install -y -q librsvg2-bin; }; \
	else echo "no apt-get: data=avatars needs rsvg-convert (macOS: brew install librsvg)"; fi

train: setup data  ## train the default DCGAN on Fashion-MNIST (about 6.5 minutes on 2 CPU cores)
	$(PY) train.py $(ARGS)

test: setup data  ## run the default test suite (excludes tests marked slow)
	$(VENV)/bin/pytest -m "not slow" $(ARGS)

test-all: setup data  ## run every test, slow ones included
	$(VENV)/bin/pytest $(ARGS)

lint: setup  ## ruff + the other pre-commit hooks on all files
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(VENV)/bin/pre-commit run --all-files --show-diff-on-failure

format: setup  ## format the code with ruff
	$(VENV)/bin/ruff format . && $(VENV)/bin/ruff check --fix .

clean:  ## remove caches (keeps outputs/ and the virtualenv)
	rm -rf .pytest_cache .ruff_cache build dist src/*.egg-info
