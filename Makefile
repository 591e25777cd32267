# Short verbs. Every target installs what it needs into .venv by itself.
PY      ?= python3
VENV    := .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed
NODES   ?= 3
THRESHOLD ?= 1

.PHONY: install check test cluster bench lint typecheck clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff check secretstore tests bench
	$(BIN)/ruff format --check secretstore tests bench

typecheck: $(STAMP)
	$(BIN)/mypy

# The quick loop: lint, types, import rules and the fast tests (under a minute).
check: lint typecheck
	$(BIN)/pytest -q -m "not e2e and not slow and not chain" -p no:cacheprovider

# The whole suite, as CI runs it.
test: lint typecheck
	$(BIN)/pytest -q -p no:cacheprovider

# A local cluster of $(NODES) nodes on embedded defaults (no chain, acl_contract = "none").
cluster: $(STAMP)
	$(BIN)/secretstore cluster --nodes $(NODES) --dir .cluster

# Figures, not tests: every script prints a table (the cluster ones start real node processes).
bench: $(STAMP)
	$(BIN)/python bench/crypto.py
	$(BIN)/python bench/sessions.py
	$(BIN)/python bench/storage.py
	$(BIN)/python bench/mesh.py
	$(BIN)/python bench/cluster.py
	$(BIN)/python bench/api.py
	$(BIN)/python bench/node_set_change.py

clean:
	rm -rf $(VENV) .cluster .mypy_cache .ruff_cache .pytest_cache
