# attnlab: one-command set-up, tests and demo. Every target sets itself up.
PY      ?= python3
VENV    := .venv
VPY     := $(VENV)/bin/python
STAMP   := $(VENV)/.installed
FMNIST  := /usr/share/datasets/fashion-mnist

.PHONY: setup test test-slow demo bench bench-train lint clean

setup: $(STAMP) system-deps

$(VPY):
	$(PY) -m venv $(VENV)
	$(VPY) -m pip install --quiet --upgrade pip

# Re-installs only when the dependency declarations change.
$(STAMP): $(VPY) pyproject.toml constraints.txt
	$(VPY) -m pip install --quiet -c constraints.txt torch==2.13.0
	$(VPY) -m pip install --quiet -c constraints.txt -e ".[dev]"
	touch $(STAMP)

# Debian packages, when we are root and they are missing: the Fashion-MNIST files (loaders also take a
# directory) and Chromium (the report test opens the study's page in it). Without root, those tests skip.
APT_PKGS :=
ifeq ($(wildcard $(FMNIST)/train-images-idx3-ubyte.gz),)
APT_PKGS += dataset-fashion-mnist
endif
ifeq ($(shell command -v chromium 2>/dev/null),)
APT_PKGS += chromium
endif

.PHONY: system-deps
system-deps:
	@if [ -n "$(strip $(APT_PKGS))" ] && [ "$$(id -u)" = "0" ] && command -v apt-get >/dev/null; then \
		echo "installing Debian packages: $(APT_PKGS)"; \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(APT_PKGS) >/dev/null) \
		|| echo "warning: could not install $(APT_PKGS); the tests that need them will skip"; \
	fi

# Lint first: a test run is only green when ruff is too.
test: setup lint
	$(VPY) -m pytest -q

test-slow: setup
	$(VPY) -m pytest -q -m slow

# The main job on the built-in default: the quick study (finished runs are reused on a re-run).
demo: setup
	$(VENV)/bin/attnlab study --preset quick --out report

bench: setup
	$(VPY) benchmarks/modules.py
	$(VPY) benchmarks/models.py
	$(VPY) benchmarks/cam.py

# A full training run (ResNet-20 on Fashion-MNIST, 20 epochs: about an hour on 2 CPU cores), reused when finished.
bench-train: setup
	$(VPY) benchmarks/train.py

lint: setup
	$(VPY) -m ruff check src tests benchmarks

clean:
	rm -rf $(VENV) build *.egg-info src/*.egg-info .pytest_cache
