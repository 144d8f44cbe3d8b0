# The two entry points the README promises: `make demo` and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# --compile-bytecode: machines with PYTHONDONTWRITEBYTECODE=1 (this kind, and CI) write no
# .pyc at import, so every server and CLI process the tests start compiled pandas, scipy
# and scikit-learn from source again: importing the server took 7.7 s of CPU, 3.3 s with them
UV = $(BIN)/uv pip install --quiet --compile-bytecode --python $(BIN)/python

.PHONY: demo test lint bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	# uv installs what pip would, from the same registry, in less than half the time
	# (fresh venv, warm caches: 20 s of CPU against 45 s)
	$(BIN)/python -m pip install --quiet 'uv>=0.9'
	$(UV) -e '.[dev]'
	# tests/server/test_generated_client.py: openapi-python-client pins httpx<0.29 and aiwarden
	# needs >=0.29 (no resolver can install both, so it is not in the dev extra); it reads the
	# document from a file (httpx only fetches a --url) and runs with httpx 0.29: no pins
	$(UV) --no-deps 'openapi-python-client>=0.29.1'
	$(UV) 'typer>0.16,<0.28' 'shellingham>=1.3.2' 'ruamel.yaml>=0.18.6,<0.20'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/aiwarden demo $(if $(PORT),--port $(PORT))

# One BLAS and one OpenMP thread per test process; servers the tests start inherit both.
# Three workers on two cores oversubscribe: a second OpenMP thread (scikit-learn's
# HistGradientBoosting, LightGBM, XGBoost) spin-waits for a core another worker holds
# (tests/server/test_multivariate_drift.py: 30 s -> 9.5 s CPU, 120 s -> 29 s wall under load).
# Workers take whole files (a module's shared server stays in one).
test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/python -m compileall -q aiwarden tests >/dev/null  # PYTHONDONTWRITEBYTECODE machines: the server processes tests start reuse these
	OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 $(BIN)/python -m pytest -q -n 3 --dist loadfile --no-loadscope-reorder  # 3 on 2 cores: tests wait on servers and processes (4,201 tests in 11:28 on a fresh clone, 2026-12-06)

bench: $(STAMP)
	$(BIN)/python bench/engine.py
	$(BIN)/python bench/ingest.py

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info
