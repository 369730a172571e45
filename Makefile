# Every target builds its own virtual environment with pip (no uv/poetry: they would
# download CUDA wheels that this project's machines already have on disk).
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
STAMP   = $(VENV)/.caw-installed

.PHONY: setup run demo test test-fast bench screenshots wheel clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e ".[test]"
	touch $(STAMP)

setup: $(STAMP)

# The main job on the embedded default: vanilla vs every method on the toy world, offline, CPU
# (2 worker processes for 2 cores; tables and the clean-vs-robust plot in caw-demo/). The full experiment
# (learning-rate sweep, 3 seeds, ablation; hours on a CPU) is `caw-core demo --full`.
run demo: $(STAMP)
	$(BIN)/caw-core demo --workers 2

# The suite runs one pytest-xdist worker per core, at most 8 (each test on one torch thread, see
# tests/conftest.py); TEST_WORKERS=0 runs it in this one process, TEST_WORKERS=N in N.
TEST_WORKERS ?= auto
PYTEST = $(BIN)/python -m pytest -q -n $(TEST_WORKERS) --maxprocesses 8
test: $(STAMP)
	$(PYTEST)

test-fast: $(STAMP)
	$(PYTEST) -m "not slow"

bench: $(STAMP)
	$(BIN)/caw-core bench

screenshots: $(STAMP)
	QT_QPA_PLATFORM=offscreen $(BIN)/python scripts/screenshots.py

wheel: $(STAMP)
	$(BIN)/python -m pip wheel --no-deps --no-build-isolation -w dist .

clean:
	rm -rf $(VENV) build dist *.egg-info
