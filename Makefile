# The README's commands. `make setup` is implied by the others.
PY := .venv/bin/python

.PHONY: setup test test-fast demo bench lint

setup:
	@bash scripts/setup.sh

test: setup
	$(PY) -m pytest -q -rs

test-fast: setup
	$(PY) -m pytest -q -rs -m "not slow"

demo: setup
	$(PY) -m desra_basicsr demo

bench: setup
	for b in benchmarks/bench_*.py; do $(PY) $$b || exit 1; done

lint: setup
	$(PY) -m flake8 desra_basicsr tests benchmarks scripts
