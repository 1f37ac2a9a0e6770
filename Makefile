# Two commands on a fresh machine with Python 3.11 and pip: `make demo` and `make test`.
# Each creates the virtual environment on first use. CONSTRAINTS pins the CPU torch stack that lies on
# the project machines' disk; on a machine with its own torch (e.g. a GPU node), `make CONSTRAINTS= test`.
PYTHON ?= python3
VENV ?= .venv
CONSTRAINTS ?= constraints/cpu.txt
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install demo demo-quick test lint docs docs-serve clean

$(STAMP): pyproject.toml $(CONSTRAINTS)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet $(if $(CONSTRAINTS),-c $(CONSTRAINTS)) -e '.[dev,docs]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/avssl demo --out-dir runs/demo

demo-quick: $(STAMP)
	$(BIN)/avssl demo --quick --out-dir runs/demo-quick

test: $(STAMP)
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check avssl tests benchmarks

docs: $(STAMP)
	$(BIN)/mkdocs build --strict

docs-serve: $(STAMP)
	$(BIN)/mkdocs serve

clean:
	rm -rf $(VENV) site runs .pytest_cache
