# Benchmarks (bench/ingest.py): the bare CSV+SQLite ceiling against the gateway end to end,
# on SQLite and (with GATEWAY_BENCH_POSTGRES_URL set, e.g.
# postgresql://postgres@127.0.0.1:5432/test) on PostgreSQL, and 1 versus 2 `gateway worker`
# processes on 100 files. On PostgreSQL each measurement gets a scratch database that is
# dropped afterwards. Both set up the virtual environment first (./scripts/bootstrap is
# quick when it is current). `make bench ROWS=200000` measures a smaller file.

PYTHON := .venv/bin/python
ROWS ?= 1000000

.PHONY: bench bench-smoke bench-console bootstrap

bench: bootstrap  ## 1,000,000 rows: the figures to compare with the ceiling
	$(PYTHON) bench/ingest.py --rows $(ROWS) --files 100
	$(PYTHON) bench/console_lists.py --exchanges 5000

bench-smoke: bootstrap  ## 20,000 rows in 20 files: does the benchmark still run
	$(PYTHON) bench/ingest.py --rows 20000 --files 20

bench-console: bootstrap  ## one console list page with 5,000 exchanges behind it (budget 200 ms)
	$(PYTHON) bench/console_lists.py --exchanges 5000

bootstrap:
	./scripts/bootstrap
