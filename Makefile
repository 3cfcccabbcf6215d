# The two commands of the README: `make demo` and `make test`. Each creates the virtual
# environment and installs the project into it on first use (and after pyproject changes).
# The corpora are found without a setting (ACCUM_CORPORA, else ../shared/data); without
# them the demo downloads 20 Newsgroups and the tests skip (they fail under CI).

PYTHON ?= python3
VENV ?= .venv

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --upgrade pip
	$(VENV)/bin/python -m pip install --quiet -c constraints.txt -e '.[test,neural]'
	$(VENV)/bin/accum warm-up  # compile the kernels now, not at the first command
	touch $@

.PHONY: install demo test bench wheel-check
install: $(VENV)/.installed

demo: $(VENV)/.installed
	$(VENV)/bin/accum demo

test: $(VENV)/.installed
	$(VENV)/bin/python -m pytest

bench: $(VENV)/.installed
	$(VENV)/bin/python -m pip install --quiet -c constraints.txt -e '.[test,bench,neural]'
	$(VENV)/bin/python benchmarks/ingest_speed.py
	$(VENV)/bin/python benchmarks/classify_suite.py
	$(VENV)/bin/python benchmarks/classify_peers.py
	$(VENV)/bin/python benchmarks/tracking_cost.py --runs 7
	$(VENV)/bin/python benchmarks/markov_peers.py
	$(VENV)/bin/python benchmarks/dask_speedup.py --runs 2
	$(VENV)/bin/python benchmarks/service_load.py
	$(VENV)/bin/python benchmarks/scale.py
	$(VENV)/bin/python benchmarks/neural_capacity.py

# Build the wheel and check that every subpackage is inside it (editable installs hide
# a package missing from pyproject's list).
wheel-check: $(VENV)/.installed
	rm -rf build dist
	$(VENV)/bin/python -m pip wheel --quiet --no-deps -w dist .
	$(VENV)/bin/python .ci/check_wheel.py dist/*.whl
