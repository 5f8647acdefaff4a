# The two set-up commands: `make run` (the CI chaos suite) and `make test` (the whole test suite).
# Each creates .venv when missing and installs the project into it first.

VENV ?= .venv
PYTHON := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test mutants examples install clean

$(PYTHON):
	python3 -m venv $(VENV)

$(STAMP): pyproject.toml | $(PYTHON)
	$(PYTHON) -m pip install --quiet --upgrade pip
	$(PYTHON) -m pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(VENV)/bin/genchaos run --suite ci --profile both --gate hardened --out reports/latest

test: $(STAMP)
	$(VENV)/bin/ruff check service chaos loadtests tests benchmarks
	$(PYTHON) -m pytest -n 2 --dist loadgroup $(PYTEST_ARGS)

# The mutation matrix: realistic defects planted one at a time in a copy of service/; fails unless
# the ci scenarios catch every one and pass on the unmutated copy.
mutants: $(STAMP)
	$(PYTHON) -m chaos.mutants

# The second service, judged through its contract: the ci suite, then its own defect matrix.
LUMEN := examples/lumen
examples: $(STAMP)
	$(PYTHON) -m chaos.mutants --service $(LUMEN)/genchaos.yaml --defects $(LUMEN)/defects.yaml

clean:
	rm -rf $(VENV) reports .pytest_cache
