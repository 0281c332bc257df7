# Benchmarks (bench/ingest.py): the bare CSV+SQLite ceiling against the gateway end to end.
# Both set up the virtual environment first (./scripts/bootstrap is quick when it is current).

PYTHON := .venv/bin/python

.PHONY: bench bench-smoke bootstrap

bench: bootstrap  ## 1,000,000 rows: the figures to compare with the ceiling
	$(PYTHON) bench/ingest.py --rows 1000000

bench-smoke: bootstrap  ## 20,000 rows: does the benchmark still run
	$(PYTHON) bench/ingest.py --rows 20000

bootstrap:
	./scripts/bootstrap
