# attnlab: one-command set-up, tests and demo. Every target sets itself up.
PY      ?= python3
VENV    := .venv
VPY     := $(VENV)/bin/python
STAMP   := $(VENV)/.installed
FMNIST  := /usr/share/datasets/fashion-mnist

.PHONY: setup test test-slow demo bench lint clean

setup: $(STAMP) fashion-mnist

$(VPY):
	$(PY) -m venv $(VENV)
	$(VPY) -m pip install --quiet --upgrade pip

# Re-installs only when the dependency declarations change.
$(STAMP): $(VPY) pyproject.toml constraints.txt
	$(VPY) -m pip install --quiet -c constraints.txt torch==2.13.0
	$(VPY) -m pip install --quiet -c constraints.txt -e ".[dev]"
	touch $(STAMP)

# Debian's Fashion-MNIST package, when we are root and it is missing (loaders also take a directory).
.PHONY: fashion-mnist
fashion-mnist:
	@if [ ! -f $(FMNIST)/train-images-idx3-ubyte.gz ] && [ "$$(id -u)" = "0" ] && command -v apt-get >/dev/null; then \
		echo "installing dataset-fashion-mnist"; \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dataset-fashion-mnist >/dev/null) \
		|| echo "warning: could not install dataset-fashion-mnist; tests that need it will skip"; \
	fi

test: setup
	$(VPY) -m pytest -q

test-slow: setup
	$(VPY) -m pytest -q -m slow

demo: setup
	$(VENV)/bin/attnlab bench modules

bench: setup
	$(VPY) benchmarks/modules.py

lint: setup
	$(VPY) -m ruff check src tests benchmarks

clean:
	rm -rf $(VENV) build *.egg-info src/*.egg-info .pytest_cache
